"""Keys and relations declared in the staging specs (issue 15, "a new city is configuration"): a department's own
number links records within that department because its specs say so, whatever the department is called; the
employment links and the insured headcount follow a declared employment relation; the errors name file, line
and key. Tiny frames, a department named ``hrss`` (the simulated city calls it ``social``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest

from lake.yamlfile import ConfigError
from models import canonical
from models.marts.enterprise import build_crosswalk, build_headcount, build_links
from models.resolution.deterministic import ENTERPRISE_KEYS, link
from models.staging.spec import StagingSpec, load_spec, load_specs
from models.staging.stage import SourceInfo, stage


def employers_spec(*, keyed: bool = True, headcount: bool = True) -> StagingSpec:
    columns = {
        "local_id": {"from": "DWBH"},
        "name": {"from": "DWMC", "as": "enterprise_name"},
        "contribution_month": {"from": "JFYF", "as": "period"},
    }
    if headcount:
        columns["insured_headcount"] = {"from": "CBRS", "as": "integer"}
    data: dict = {
        "source": "hrss/employers",
        "grain": "one row per employer and month",
        "columns": columns,
        "enterprises": [{"role": "subject"}],
        "quarantine": [{"reason": "no_name_no_identifier", "all_missing": ["name", "local_id"]}],
    }
    if keyed:
        data["keys"] = {"local": "local_id"}
    return StagingSpec.model_validate(data)


def members_spec(*, keyed: bool = True, related: bool = True) -> StagingSpec:
    data: dict = {
        "source": "hrss/members",
        "grain": "one row per member",
        "columns": {
            "id_number": {"from": "SFZHM", "as": "resident_id"},
            "name": {"from": "XM", "as": "person_name"},
            "employer_local_id": {"from": "DWBH"},
        },
        "persons": [{"role": "member"}],
        "enterprises": [{"role": "workplace", "prefix": "employer_"}],
        "quarantine": [{"reason": "no_name_no_identifier", "all_missing": ["name", "id_number"]}],
    }
    if keyed:
        data["keys"] = {"references": [{"column": "employer_local_id", "table": "hrss/employers"}]}
    if related:
        data["relations"] = [{"kind": "employment", "person": "member", "enterprise": "workplace"}]
    return StagingSpec.model_validate(data)


EMPLOYERS = pl.DataFrame(
    {
        "DWBH": ["DW1", "DW1", "DW2"],
        "DWMC": [
            "甲公司",
            "甲有限公司",
            "乙公司",
        ],  # the names differ: only the employer number links the months
        "JFYF": ["202401", "202402", "202402"],
        "CBRS": ["3", "4", "2"],
        "ID": ["e1", "e2", "e3"],
    }
)
MEMBERS = pl.DataFrame(
    {
        "SFZHM": ["11010519491231002X", "110105194912310037", "110105194912310053"],
        "XM": ["张三", "李四", "王五"],
        "DWBH": ["DW1", "DW1", "DW2"],
        "GRBH": ["m1", "m2", "m3"],
    }
)


def canonical_records(
    emp: StagingSpec, mem: StagingSpec, department: str = "hrss"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    staged_e = stage(EMPLOYERS, emp, SourceInfo(department, "employers", "DW", ("ID",))).rows
    staged_m = stage(MEMBERS, mem, SourceInfo(department, "members", "GR", ("GRBH",))).rows
    ent = pl.concat(
        [canonical.enterprise_records(staged_e, emp), canonical.enterprise_records(staged_m, mem)]
    )
    return ent, canonical.person_records(staged_m, mem)


def test_a_declared_local_key_links_within_any_department():
    ent, _ = canonical_records(employers_spec(), members_spec())
    assert ent.filter(pl.col("local_id") == "DW1")["link_local_key"].unique().to_list() == [
        "hrss/employers:DW1"
    ]
    out = dict(
        zip(*link(ent, ENTERPRISE_KEYS).select("record_id", "cluster").to_dict().values(), strict=True)
    )
    dw1 = {
        out["hrss.employers:e1:subject"],
        out["hrss.employers:e2:subject"],
        out["hrss.members:m1:workplace"],
    }
    assert len(dw1) == 1 and out["hrss.members:m2:workplace"] in dw1
    assert out["hrss.employers:e3:subject"] == out["hrss.members:m3:workplace"] not in dw1
    assert set(link(ent, ENTERPRISE_KEYS)["rule"].drop_nulls()) == {"local_id"}


def test_an_undeclared_local_id_links_nothing():
    ent, _ = canonical_records(employers_spec(keyed=False), members_spec(keyed=False))
    assert ent["local_id"].null_count() == 0 and ent["link_local_key"].null_count() == ent.height
    assert link(ent, ENTERPRISE_KEYS)["cluster"].n_unique() == ent.height


def test_a_declared_employment_relation_relates_the_member_to_the_employer_of_the_row():
    _, per = canonical_records(employers_spec(), members_spec())
    assert per["relation"].to_list() == ["employment"] * 3
    assert per["related_record_id"].to_list() == [f"hrss.members:m{i}:workplace" for i in (1, 2, 3)]
    _, undeclared = canonical_records(employers_spec(), members_spec(related=False))
    assert undeclared["relation"].null_count() == 3 and undeclared["related_record_id"].null_count() == 3


def _marts_connection(ent: pl.DataFrame, per: pl.DataFrame) -> duckdb.DuckDBPyConnection:
    """The lake tables the headcount and links marts read, with a crosswalk from the deterministic clusters."""
    ent_c = link(ent, ENTERPRISE_KEYS)
    crosswalk = pl.concat(
        [
            ent.select("record_id", "source_department", "source_asset", "source_pk", "role")
            .with_columns(
                entity_id=pl.lit("E") + ent_c["cluster"].cast(pl.Utf8), entity_type=pl.lit("enterprise")
            )
            .select(
                "record_id",
                "entity_id",
                "entity_type",
                "source_department",
                "source_asset",
                "source_pk",
                "role",
            ),
            per.select("record_id", "source_department", "source_asset", "source_pk", "role")
            .with_columns(entity_id=pl.lit("P") + pl.col("source_pk"), entity_type=pl.lit("person"))
            .select(
                "record_id",
                "entity_id",
                "entity_type",
                "source_department",
                "source_asset",
                "source_pk",
                "role",
            ),
        ]
    )
    con = duckdb.connect()
    for name, frame in (
        ("lake_int_enterprise_records", ent),
        ("lake_int_person_records", per),
        ("lake_entity_crosswalk", crosswalk),
    ):
        con.register(f"_{name}", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _{name}")
    build_crosswalk(con)
    return con


def test_headcount_and_employee_links_follow_the_declarations_under_another_name():
    ent, per = canonical_records(employers_spec(), members_spec())
    con = _marts_connection(ent, per)
    assert build_headcount(con, dt.date(2024, 3, 31)) is None  # reported: the employers' monthly figures
    hc = con.sql("SELECT entity_id, month, headcount FROM _headcount ORDER BY headcount").fetchall()
    assert [(m, h) for _, m, h in hc] == [
        (dt.date(2024, 2, 1), 2),
        (dt.date(2024, 1, 1), 3),
        (dt.date(2024, 2, 1), 4),
    ]
    build_links(con)
    links = con.sql("SELECT person_id, relation, departments FROM _links ORDER BY person_id").fetchall()
    assert links == [(f"Pm{i}", "insured_at", ["hrss"]) for i in (1, 2, 3)]


def test_without_a_reported_headcount_it_is_counted_from_the_employment_relation():
    ent, per = canonical_records(employers_spec(headcount=False), members_spec())
    con = _marts_connection(ent, per)
    assert "employment" in (build_headcount(con, dt.date(2024, 3, 15)) or "")
    hc = sorted(r[1:] for r in con.sql("SELECT entity_id, month, headcount FROM _headcount").fetchall())
    assert hc == [(dt.date(2024, 3, 1), 1), (dt.date(2024, 3, 1), 2)]  # non-zero: DW1 employs two, DW2 one


# ---- the errors a data engineer sees ------------------------------------------------------------------------
def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


MEMBERS_YAML = """\
source: hrss/members
grain: one row per member
columns:
  name: {from: XM, as: person_name}
  employer_local_id: {from: DWBH}
  employer_name: {from: DWMC, as: enterprise_name}
persons: [{role: member}]
enterprises: [{role: workplace, prefix: employer_}]
quarantine: [{reason: no_name, all_missing: [name]}]
keys:
  references: [{column: employer_local_id, table: hrss/employers}]
relations:
  - {kind: employment, person: member, enterprise: workplace}
"""


def test_key_and_relation_errors_name_the_problem(tmp_path):
    bad = (
        MEMBERS_YAML.replace(
            "column: employer_local_id, table: hrss/employers", "column: name, table: tax/payers"
        )
        .replace("person: member", "person: staff")
        .replace("{kind: employment,", "{kind: employment, enterprise: x,")
        + "  - {kind: roster}\n"
    )
    path = write(tmp_path, "stg_hrss__members.yaml", bad)
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    assert f"{path}:13" in text and "duplicate key" in text  # enterprise twice in one mapping
    path = write(tmp_path, "stg_hrss__members.yaml", bad.replace("enterprise: x, ", ""))
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    assert f"{path}:14" in text and "relations[1].person" in text  # a roster relation names its person
    path = write(
        tmp_path,
        "stg_hrss__members.yaml",
        bad.replace("enterprise: x, ", "").replace("  - {kind: roster}\n", ""),
    )
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    for fragment in (
        "keys.references[0].column: 'name' is not the local_id of an enterprise mention",
        "keys.references[0].table: 'tax/payers' is not of department 'hrss'",
        "relations[0].person: no person mention has role 'staff'",
    ):
        assert fragment in text, fragment


def test_a_reference_to_a_table_without_a_local_key_is_an_error_at_its_line(tmp_path):
    write(tmp_path, "stg_hrss__members.yaml", MEMBERS_YAML)
    employers = """\
source: hrss/employers
grain: one row per employer and month
columns:
  local_id: {from: DWBH}
  name: {from: DWMC, as: enterprise_name}
enterprises: [{role: subject}]
quarantine: [{reason: no_name, all_missing: [name, local_id]}]
"""
    write(tmp_path, "stg_hrss__employers.yaml", employers)
    with pytest.raises(ConfigError) as err:
        load_specs(tmp_path)
    text = str(err.value)
    assert f"{tmp_path / 'stg_hrss__members.yaml'}:11" in text and "keys.references[0].table" in text
    assert "no spec of 'hrss/employers' declares a local key" in text
    write(tmp_path, "stg_hrss__employers.yaml", employers + "keys: {local: local_id}\n")
    specs = load_specs(tmp_path)
    member = specs["hrss/members"]
    assert member.key_space(member.enterprises[0]) == "hrss/employers"
    assert member.relation_of("member") is not None and member.relation_of("member").kind == "employment"


def test_the_simulated_city_declares_its_keys_and_relations():
    specs = load_specs()
    keyed = {s for s, spec in specs.items() if spec.keys.local}
    assert keyed == {"social/employers"}
    assert {(s, r.kind) for s, spec in specs.items() for r in spec.relations} == {
        ("social/insured_persons", "employment"),
        ("streets/street_rosters_csv", "roster"),
        ("streets/street_rosters_excel", "roster"),
    }
