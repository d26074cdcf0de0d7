"""Survivorship ranks sources as the deployment's specs declare, never by a department's name (issue 15: an
unknown city's registry lost to tax, silently): renamed sources give the same golden records, the declared
registry beats a more recent tax record, an undeclared group warns, an unknown group is a spec error."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import polars as pl
import pytest

from lake.deployment import EXAMPLE_DEPLOYMENT
from lake.yamlfile import ConfigError
from models.gold.golden import declared_authority
from models.gold.survivorship import GROUPS, RULES, authority, golden_records
from models.staging.spec import load_spec, load_specs

SPECS = load_specs(EXAMPLE_DEPLOYMENT / "specs")
SIMCITY = declared_authority(SPECS)

#: the simulated city's sources, each renamed to a name nobody wrote into the code
RENAMED_DEPARTMENTS = {
    d: f"dept_{chr(ord('a') + i)}" for i, d in enumerate(sorted({s.department for s in SPECS.values()}))
}
RENAMED_ASSETS = {
    a: f"table_{chr(ord('p') + i)}" for i, a in enumerate(sorted({s.asset for s in SPECS.values()}))
}


def renamed(source: str) -> str:
    department, asset = source.split("/")
    return f"{RENAMED_DEPARTMENTS[department]}/{RENAMED_ASSETS[asset]}"


def t(day: int) -> dt.datetime:
    return dt.datetime(2026, 1, day, tzinfo=dt.UTC)


def canonical_frame(kind: str, rows: list[dict]) -> pl.DataFrame:
    """Canonical records with every column the kind's rules read (absent ones null)."""
    columns = {"record_id", "source_department", "source_asset", "updated_at"}
    for rule in RULES[kind]:
        columns |= set(rule.columns.values()) | set(rule.candidate.meta.root_names())
    types = {
        "updated_at": pl.Datetime("us", "UTC"),
        "founded_on": pl.Date,
        "registered_capital_wan": pl.Float64,
    }
    types |= {"name_is_branch": pl.Boolean}
    schema = {c: types.get(c, pl.Utf8) for c in sorted(columns)}
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


def random_records(kind: str, seed: int, entities: int = 60) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Records of ``entities`` entities from the sources whose specs mention the kind, with values present or
    not, valid or not, and updated on random days: every rank, recency and validity case at once."""
    rng = random.Random(seed)
    mentions = "enterprises" if kind == "enterprise" else "persons"
    sources = sorted(s.source for s in SPECS.values() if getattr(s, mentions))
    rows, ids = [], []
    for e in range(entities):
        for r in range(rng.randint(1, 6)):
            department, asset = rng.choice(sources).split("/")
            row: dict = {
                "record_id": f"e{e}r{r}",
                "source_department": department,
                "source_asset": asset,
                "updated_at": t(rng.randint(1, 5)),  # ties on purpose: the record id breaks them
            }
            for rule in RULES[kind]:
                if rng.random() < 0.6:
                    for golden, col in rule.columns.items():
                        row[col] = f"{golden}-{e}-{r}"
                    for col in rule.candidate.meta.root_names():
                        if col.endswith("_status"):
                            row[col] = rng.choice(["valid", "valid", "invalid"])
            if kind == "enterprise":
                row["name_is_branch"] = False
                row["founded_on"] = dt.date(2000, 1, 1 + r) if rng.random() < 0.5 else None
                row["registered_capital_wan"] = float(r) if rng.random() < 0.5 else None
            rows.append(row)
            ids.append({"record_id": row["record_id"], "entity_id": f"E{e}"})
    return canonical_frame(kind, rows), pl.DataFrame(ids)


@pytest.mark.parametrize("kind", ["enterprise", "person"])
def test_renaming_every_source_changes_no_golden_value(kind):
    """The code knows no source by name: the same ranks declared under other names pick the same records."""
    frame, ids = random_records(kind, seed=15)
    original = golden_records(frame, ids, kind, SIMCITY)
    other_city = frame.with_columns(
        source_department=pl.col("source_department").replace_strict(RENAMED_DEPARTMENTS),
        source_asset=pl.col("source_asset").replace_strict(RENAMED_ASSETS),
    )
    declarations = {renamed(source): ranks for source, ranks in SIMCITY.items()}
    moved = golden_records(other_city, ids, kind, declarations)
    assert set(SIMCITY).isdisjoint(declarations)
    assert moved.drop("departments").equals(original.drop("departments"))
    back = {v: k for k, v in RENAMED_DEPARTMENTS.items()}
    assert (
        moved["departments"]
        .list.eval(pl.element().replace_strict(back))
        .list.sort()
        .equals(original["departments"])
    )
    # and the ranking matters here: with no declarations (recency only) some golden values differ
    assert not golden_records(frame, ids, kind, {}).drop("departments").equals(original.drop("departments"))


REGISTRY_SPEC = """\
source: {source}
grain: one row per registration
columns:
  name: {{from: MC, as: enterprise_name}}
  status: {{from: ZT}}
enterprises: [{{role: subject}}]
{authority}"""


def write(folder: Path, source: str, authority: str) -> Path:
    department, asset = source.split("/")
    path = folder / f"stg_{department}__{asset}.yaml"
    path.write_text(REGISTRY_SPEC.format(source=source, authority=authority), encoding="utf-8")
    return path


def test_the_declared_registry_wins_status_and_name_over_a_more_recent_tax_record(tmp_path):
    """A city whose registry is ``amr/companies``: declared, it wins although tax updated later; undeclared,
    tax's more recent record wins — and the build is told so."""
    write(tmp_path, "amr/companies", "authority: {enterprise: {name: 1, status: 1}}\n")
    write(tmp_path, "fisc/payers", "authority: {enterprise: {name: 2, status: 2}}\n")
    frame = canonical_frame(
        "enterprise",
        [
            {
                "record_id": "reg",
                "source_department": "amr",
                "source_asset": "companies",
                "updated_at": t(1),
                "name": "注册名称",
                "status": "存续",
            },
            {
                "record_id": "tax",
                "source_department": "fisc",
                "source_asset": "payers",
                "updated_at": t(28),
                "name": "税务名称",
                "status": "注销",
            },
        ],
    )
    ids = pl.DataFrame({"record_id": ["reg", "tax"], "entity_id": ["E1", "E1"]})
    ranking = authority(declared_authority(load_specs(tmp_path)), "enterprise")
    g = golden_records(frame, ids, "enterprise", ranking).to_dicts()[0]
    assert (g["name"], g["name_from"], g["status"], g["status_from"]) == ("注册名称", "reg", "存续", "reg")
    assert "status" not in ranking.undeclared and "name" not in ranking.undeclared

    # the simulated city's declarations rank its registry over its tax bureau the same way
    simcity = frame.with_columns(
        source_department=pl.Series(["samr", "tax"]), source_asset=pl.Series(["registrations", "taxpayers"])
    )
    g = golden_records(simcity, ids, "enterprise", SIMCITY).to_dicts()[0]
    assert (g["name_from"], g["status_from"]) == ("reg", "reg")

    # nobody declared: recency decides (tax, the later record) and the warning names the groups
    silent = authority({}, "enterprise")
    g = golden_records(frame, ids, "enterprise", silent).to_dicts()[0]
    assert (g["name_from"], g["status_from"]) == ("tax", "tax")
    assert any("'status'" in w for w in silent.warnings())


def test_a_group_no_source_declares_is_warned_about_by_name(tmp_path):
    write(tmp_path, "amr/companies", "authority: {enterprise: {name: 1}}\n")
    write(tmp_path, "fisc/payers", "")
    ranking = authority(declared_authority(load_specs(tmp_path)), "enterprise")
    assert ranking.undeclared == tuple(g for g in GROUPS["enterprise"] if g != "name")
    warnings = ranking.warnings()
    assert len(warnings) == len(GROUPS["enterprise"]) - 1
    assert any("enterprise attribute group 'status'" in w for w in warnings)
    assert not any("'name'" in w for w in warnings)
    # a declaring source ranks before one that declares nothing; the simulated city declares every group
    assert ranking.ranks["name"] == {"amr/companies": 0}
    for kind in ("enterprise", "person"):
        assert authority(SIMCITY, kind).warnings() == []


def test_equal_ranks_share_a_place_and_only_their_order_matters():
    ranking = authority(
        {"a/x": {"person": {"phone": 7}}, "b/y": {"person": {"phone": 7}}, "c/z": {"person": {"phone": 30}}},
        "person",
    )
    assert ranking.ranks["phone"] == {"a/x": 0, "b/y": 0, "c/z": 1}


@pytest.mark.parametrize(
    ("authority_yaml", "fragments"),
    [
        (
            "authority:\n  enterprise: {nme: 1}\n",
            [
                "x.yaml:8:",
                "authority.enterprise.nme",
                "unknown key 'nme'",
                "did you mean 'name'",
                "status, legal_rep",
            ],
        ),
        (
            "authority:\n  company: {name: 1}\n",
            ["x.yaml:8:", "authority.company", "allowed here: enterprise, person"],
        ),
        (
            "authority:\n  enterprise: {name: 0}\n",
            ["authority.enterprise.name", "greater than or equal to 1"],
        ),
        ("authority:\n  person: {name: 1}\n", ["authority.person", "no person mentions"]),
    ],
)
def test_a_bad_authority_section_names_file_line_and_key(tmp_path, authority_yaml, fragments):
    path = tmp_path / "x.yaml"
    path.write_text(REGISTRY_SPEC.format(source="amr/companies", authority=authority_yaml), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))
