"""The simulated legacy estate: messy like the real thing, with known truth, deterministic."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from connectors.config import load_sources
from models import identifiers as idf
from simulator import estate as est
from simulator.tables import BUILDERS
from simulator.writers import LEGACY_TEXT_ENCODING

N = 2_500


@pytest.fixture(scope="module")
def small_estate(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("estate")
    est.simulate(out, enterprises=N, seed=11)
    return out


def rows(out: Path, dept: str, sql: str) -> list[tuple]:
    with sqlite3.connect(out / f"{dept}.sqlite") as conn:
        return conn.execute(sql).fetchall()


def column(out: Path, dept: str, table: str, col: str) -> list:
    return [r[0] for r in rows(out, dept, f'SELECT "{col}" FROM "{table}"')]


def digest(out: Path) -> str:
    h = hashlib.sha256()
    for spec, _ in BUILDERS.values():
        for r in rows(out, spec.department, f'SELECT * FROM "{spec.name}" ORDER BY 1, 2'):
            h.update(repr(r).encode())
    for f in sorted((out / "truth").rglob("*.parquet")):
        h.update(pl.read_parquet(f).write_csv().encode())
    for f in sorted((out / "drops").rglob("*.csv")):
        h.update(f.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
def test_every_department_and_table_is_generated(small_estate):
    state = est.EstateState.load(small_estate)
    for key, (spec, _) in BUILDERS.items():
        (count,) = rows(small_estate, spec.department, f'SELECT COUNT(*) FROM "{spec.name}"')[0]
        assert count == state.rows[key] > 0, key
    assert state.rows["streets.street_rosters"] > 0
    drops = sorted(p.suffix for p in (small_estate / "drops" / "streets").iterdir())
    assert ".csv" in drops and ".xlsx" in drops


def test_realistic_proportions(small_estate):
    """About 15 source records per enterprise: 3M enterprises give a ~45M-record estate."""
    state = est.EstateState.load(small_estate)
    per_enterprise = sum(state.rows.values()) / N
    assert 13 <= per_enterprise <= 18
    assert 0.9 * N <= state.rows["samr.T_SCZT_DJXX"] <= 1.1 * N
    assert state.rows["social.SB_GRCBXX"] > 2 * N  # employees outnumber enterprises


def test_same_seed_same_estate_and_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    est.simulate(a, enterprises=400, seed=5)
    est.simulate(b, enterprises=400, seed=5)
    est.simulate(c, enterprises=400, seed=6)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_rerun_replaces_instead_of_doubling(tmp_path):
    est.simulate(tmp_path, enterprises=300, seed=5)
    first = digest(tmp_path)
    est.simulate(tmp_path, enterprises=300, seed=5)
    assert digest(tmp_path) == first


def test_true_identifiers_pass_their_check_algorithms(small_estate):
    ents = pl.read_parquet(small_estate / "truth" / "enterprises" / "*.parquet")
    persons = pl.read_parquet(small_estate / "truth" / "persons" / "*.parquet")
    assert all(idf.is_valid_uscc(c) for c in ents["uscc"])
    assert all(idf.is_valid_org_code(c) for c in ents["org_code"])
    assert all(idf.org_code_of_uscc(u) == o for u, o in zip(ents["uscc"], ents["org_code"], strict=True))
    assert all(idf.is_valid_regno(c) for c in ents["regno"].drop_nulls())
    assert ents["regno"].drop_nulls().len() > 0
    assert all(idf.is_valid_resident_id(c) for c in persons["id_number"])
    assert ents["uscc"].n_unique() == ents.height
    assert persons["id_number"].n_unique() == persons.height


def test_corrupted_keys_fail_the_checks(small_estate):
    """Typos make a key invalid; case, width and spaces only hide a valid key."""
    keys = [k for k in column(small_estate, "samr", "T_SCZT_DJXX", "TYSHXYDM") if k and len(k) == 18]
    invalid = [k for k in keys if not idf.is_valid_uscc(k.upper())]
    assert 0 < len(invalid) < 0.02 * len(keys)
    ents = set(pl.read_parquet(small_estate / "truth" / "enterprises" / "*.parquet")["uscc"])
    assert not any(k.upper() in ents for k in invalid)  # a typo never lands on a real code


def test_key_variants_occur(small_estate):
    env = column(small_estate, "env", "HB_XZCF", "统一社会信用代码")
    assert any(k and re.search(r"[０-９Ａ-Ｚ]", k) for k in env), "full-width characters"
    assert any(k and " " in k.strip() for k in env), "spaces inside codes"
    samr = column(small_estate, "samr", "T_SCZT_DJXX", "TYSHXYDM")
    assert any(k and re.search(r"[a-z]", k) for k in samr), "lower-case USCC"
    tax = column(small_estate, "tax", "DJ_NSRXX", "NSRSBH")
    assert any(k and len(k) == 15 for k in tax), "old 15-character TINs"
    assert any(k and len(k) == 18 for k in tax)
    ss = column(small_estate, "social", "SB_DWCBXX", "TYSHXYDM")
    assert sum(1 for k in ss if not k) > 0.4 * len(ss), "social security rarely has the USCC"


def test_person_id_variants_occur(small_estate):
    ids = column(small_estate, "social", "SB_GRCBXX", "SFZHM")
    assert any(len(i) == 15 and i.isdigit() for i in ids), "15-digit IDs"
    assert any(i.endswith("x") for i in ids), "lower-case x"
    fifteen = [i for i in ids if len(i) == 15]
    assert sum(idf.is_valid_resident_id(idf.id15_to_id18(i)) for i in fifteen) > 0.9 * len(fifteen)
    courts = column(small_estate, "courts", "AJ_DSR", "ZJHM")
    assert any(i and "**********" in i for i in courts), "masked IDs"


def test_name_variants_occur(small_estate):
    tax_names = column(small_estate, "tax", "DJ_NSRXX", "NSRMC")
    assert any("有限责任公司" in n for n in tax_names)
    assert any("（深圳）" in n for n in tax_names) and any(n.startswith("深圳市") for n in tax_names)
    assert any("(" in n for n in tax_names), "half-width brackets"
    assert any(n.endswith("  ") for n in tax_names), "trailing spaces"
    ss = [
        v.encode("latin1").decode(LEGACY_TEXT_ENCODING)
        for v in column(small_estate, "social", "SB_DWCBXX", "DWMC")
    ]
    assert any(re.search("[發貿電業實網華東]", n) for n in ss), "traditional characters"
    courts = column(small_estate, "courts", "AJ_DSR", "DSRMC")
    assert any(n.endswith("（已注销）") for n in courts)
    reg = column(small_estate, "samr", "T_SCZT_DJXX", "QYMC")
    assert any(n.endswith("分公司") for n in reg), "branches"


def test_renamed_entities_keep_former_names_elsewhere(small_estate):
    ents = pl.read_parquet(small_estate / "truth" / "enterprises" / "*.parquet")
    former = set(ents["former_name"].drop_nulls())
    tax_names = set(column(small_estate, "tax", "DJ_NSRXX", "NSRMC"))
    assert former & tax_names


def test_dates_in_every_dialect(small_estate):
    djrq = column(small_estate, "tax", "DJ_NSRXX", "DJRQ")
    assert all(re.fullmatch(r"\d{8}", d) for d in djrq)
    larq = column(small_estate, "courts", "AJ_DSR", "LARQ")
    assert all(re.fullmatch(r"\d{4}/\d{1,2}/\d{1,2}", d) for d in larq)
    assert any(re.fullmatch(r"\d{4}/\d/\d", d) for d in larq), "unpadded months/days"
    env = column(small_estate, "env", "HB_XZCF", "处罚日期")
    assert all(re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", d) for d in env)
    serials = column(small_estate, "social", "SB_GRCBXX", "CBRQ")
    assert all(isinstance(s, int) and 30_000 < s < 50_000 for s in serials), "Excel serial day numbers"
    hzrq = column(small_estate, "samr", "T_SCZT_DJXX", "HZRQ")
    assert "0000-00-00" in hzrq and "1900-01-01" in hzrq, "sentinel dates"


def test_null_markers_occur(small_estate):
    values = set(column(small_estate, "tax", "DJ_NSRXX", "SCJYDZ"))
    assert {"NULL", "无", "-", "不详"} & values
    assert None in values


def test_gbk_text_in_latin1_columns_is_repairable(small_estate):
    raw = column(small_estate, "social", "SB_GRCBXX", "XM")
    assert not any(re.search(r"[\u4e00-\u9fff]", v) for v in raw), "stored as mojibake"
    repaired = [v.encode("latin1").decode(LEGACY_TEXT_ENCODING) for v in raw]
    assert all(re.fullmatch(r"[\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df]{2,4}", n) for n in repaired)


def test_duplicate_registrations_after_migration(small_estate):
    dups = rows(small_estate, "samr", "SELECT ZTID, TYSHXYDM, ZCH FROM T_SCZT_DJXX WHERE ZTID LIKE 'ZTM%'")
    assert dups
    truth = (
        est.load_truth(small_estate)
        .filter(pl.col("table") == "T_SCZT_DJXX", pl.col("role") == "subject")
        .collect()
    )
    by_pk = dict(zip(truth["pk"], truth["entity_id"], strict=True))
    for ztid, _, _ in dups:
        assert by_pk[ztid] == by_pk["ZT" + ztid[3:]], "a duplicate is the same true entity"


def test_every_source_row_has_truth(small_estate):
    truth = est.load_truth(small_estate).collect()
    for spec, _ in BUILDERS.values():
        cols = ", ".join(f'"{c}"' for c in spec.primary_key)
        pks = {
            "|".join(str(v) for v in r)
            for r in rows(small_estate, spec.department, f'SELECT {cols} FROM "{spec.name}"')
        }
        truth_pks = set(truth.filter(pl.col("table") == spec.name)["pk"])
        assert pks == truth_pks, spec.name
    roster = truth.filter(pl.col("table") == "street_rosters")
    blank_lines = est.EstateState.load(small_estate).rows["streets.street_rosters"] - roster.height
    assert roster.height > 0 and 0 <= blank_lines < 0.05 * roster.height
    assert set(truth["entity_type"]) == {"enterprise", "person"}


def test_roster_truth_points_at_real_lines(small_estate):
    truth = est.load_truth(small_estate).filter(pl.col("table") == "street_rosters").collect()
    persons = pl.read_parquet(small_estate / "truth" / "persons" / "*.parquet")
    names = dict(zip(persons["person_id"], persons["name"], strict=True))
    csv_rows = truth.filter(pl.col("pk").str.contains(r"\.csv#"))
    assert csv_rows.height > 0
    for pk, pid in csv_rows.head(50).select("pk", "entity_id").iter_rows():
        fname, line = pk.split("#")
        lines = (small_estate / "drops" / "streets" / fname).read_text(encoding="gb18030").splitlines()
        record = lines[3 + int(line) - 1].split(",")  # title, blank, header, then data lines
        assert record[1][0] == names[pid][0], "the surname on that line is the true person's"


def test_branches_link_to_parents(small_estate):
    ents = pl.read_parquet(small_estate / "truth" / "enterprises" / "*.parquet")
    branches = ents.filter(pl.col("kind") == "branch")
    assert branches.height > 0
    parents = ents.join(branches.select("parent_id"), left_on="entity_id", right_on="parent_id")
    assert parents.height == branches.height
    joined = branches.join(ents.select(parent_id="entity_id", parent_name="name"), on="parent_id")
    assert all(b.startswith(p) for b, p in zip(joined["name"], joined["parent_name"], strict=True))


def test_sources_yaml_describes_the_estate(small_estate):
    config = load_sources(small_estate / "sources.yaml")
    for dept, table in config.iter_tables():
        assert dept.connection.sqlite.exists()
        cols = [r[1] for r in rows(small_estate, dept.key, f'PRAGMA table_info("{table.name}")')]
        assert set(table.primary_key) <= set(cols)
        if table.cursor:
            assert table.cursor in cols
    social = config.department("social").table("employers")
    assert social.columns["DWMC"].repair == "gbk_in_latin1"
    assert config.department("streets").files


def test_repo_example_sources_yaml_is_in_step_with_the_simulator():
    """The committed sources.yaml is what `qst simulate --out data/estate` writes (paths from the root)."""
    repo = Path(__file__).resolve().parents[1]
    state = est.EstateState.example()
    example = repo / "deployments" / "simcity"
    generated = est.sources_yaml_text(state, repo / "data" / "estate", example)
    assert (example / "sources.yaml").read_text() == generated, (
        "regenerate: scripts/regenerate_sources_example.py"
    )


def test_rates_are_configurable(tmp_path):
    from simulator.mess import MessProfile

    est.simulate(tmp_path, enterprises=400, seed=3, profile=MessProfile.with_overrides({"key_typo": 0.5}))
    keys = [k for k in column(tmp_path, "samr", "T_SCZT_DJXX", "TYSHXYDM") if k and len(k) == 18]
    invalid = sum(not idf.is_valid_uscc(k.upper()) for k in keys)
    assert invalid > 0.15 * len(keys)
    assert est.EstateState.load(tmp_path).rates == {"key_typo": 0.5}
    with pytest.raises(ValueError, match="unknown mess rate"):
        MessProfile.with_overrides({"no_such_rate": 0.1})


def test_nothing_is_stamped_after_the_as_of_date(small_estate):
    """A last-updated stamp in the future would push the watermark past rows that arrive later."""
    for spec, _ in BUILDERS.values():
        if spec.cursor and spec.cursor_kind == "timestamp":
            (latest,) = rows(
                small_estate, spec.department, f'SELECT MAX("{spec.cursor}") FROM "{spec.name}"'
            )[0]
            assert latest <= "2026-10-31 23:59:59", spec.name
    for col in ("SQSJ", "SLSJ", "BJSJ"):
        (latest,) = rows(small_estate, "service", f"SELECT MAX({col}) FROM BJ_BJXX")[0]
        assert latest <= "2026-10-31 23:59:59", col
