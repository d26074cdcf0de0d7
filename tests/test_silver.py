"""Silver on a simulated estate: every bronze row reconciles into silver or quarantine, every true record has
its canonical record, reruns are idempotent, and silver follows bronze through a night of changes."""

from __future__ import annotations

import sqlite3

import polars as pl
import pytest
from conftest import build_silver, load_bronze

from connectors.config import load_sources
from lake.delta import read_dataset
from lake.layout import quarantine_rows_path, silver_path
from models import canonical, silver
from models.staging.spec import load_specs
from quality.quarantine import reconcile, reconcile_mentions, reconcile_staging
from simulator import estate as est

pytestmark = pytest.mark.xdist_group("silver_estate")


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    """A small city loaded into bronze and silver (small batches, so that batching is exercised)."""
    root = tmp_path_factory.mktemp("silver")
    out, home = root / "estate", root / "home"
    est.simulate(out, enterprises=500, seed=23)
    load_bronze(out / "sources.yaml", home)
    reports = build_silver(out / "sources.yaml", home)
    return out, home, reports


def test_every_bronze_table_has_a_staging_model_that_reconciles(estate):
    out, home, reports = estate
    config = load_sources(out / "sources.yaml")
    assert set(reports) == set(silver.source_infos(config)), (
        "a bronze table of the demo estate has no staging spec"
    )
    specs = load_specs()
    for source, report in reports.items():
        rec = reconcile_staging(home, specs[source])
        assert rec.ok, rec.describe()
        assert rec.bronze_live_rows > 0 and rec.silver_rows > 0, source
        assert report.bronze_rows == rec.bronze_live_rows  # what the run read is what is committed


def test_every_true_record_has_its_canonical_record(estate):
    out, home, _ = estate
    truth = est.load_truth(out).collect()
    records = pl.concat(
        [
            silver.read_silver(
                home, table, ["source_department", "source_table", "source_pk", "role"]
            ).with_columns(kind=pl.lit(kind))
            for table, kind in (("int_enterprise_records", "enterprise"), ("int_person_records", "person"))
        ]
    )
    # the two roster drops are one truth table
    records = records.with_columns(
        source_table=pl.when(pl.col("source_department") == "streets")
        .then(pl.lit("street_rosters"))
        .otherwise("source_table")
    )
    joined = truth.join(
        records,
        left_on=["department", "table", "pk", "role"],
        right_on=["source_department", "source_table", "source_pk", "role"],
        how="left",
    )
    missing = joined.filter(pl.col("kind").is_null())
    assert missing.height == 0, f"true records without a canonical record: {missing.head(5).to_dicts()}"
    wrong = joined.filter(pl.col("kind") != pl.col("entity_type"))
    assert wrong.height <= truth.height * 0.001, f"mentions of the wrong kind: {wrong.head(5).to_dicts()}"
    # and no canonical record that the truth does not know (nothing invented, nothing doubled)
    assert records.height == records.unique().height
    extra = records.join(
        truth,
        left_on=["source_department", "source_table", "source_pk", "role"],
        right_on=["department", "table", "pk", "role"],
        how="anti",
    )
    assert extra.height == 0, extra.head(5).to_dicts()


def test_every_declared_mention_is_emitted_or_quarantined(estate):
    out, home, _ = estate
    specs = load_specs()
    chosen = [specs[s] for s in silver.source_infos(load_sources(out / "sources.yaml")) if s in specs]
    for table in canonical.RECORD_TABLES:
        rec = reconcile_mentions(home, table, chosen)
        assert rec.ok, rec.describe()
        assert sum(c.expected for c in rec.counts) >= silver.read_silver(home, table, ["role"]).height > 0


def test_canonical_tables_have_the_contract_schema_and_unique_ids(estate):
    _, home, _ = estate
    for table, key in (
        ("int_enterprise_records", "record_id"),
        ("int_person_records", "record_id"),
        ("int_events", "event_id"),
        ("int_service_cases", "service_case_id"),
    ):
        frame = silver.read_silver(home, table)
        assert frame.schema == pl.Schema(canonical.SCHEMAS[table]), table
        assert frame[key].n_unique() == frame.height, f"{table}.{key} is not unique"
    events = silver.read_silver(home, "int_events")
    people = silver.read_silver(home, "int_person_records", ["record_id"])
    firms = silver.read_silver(home, "int_enterprise_records", ["record_id"])
    subjects = pl.concat([people, firms])["record_id"]
    dangling = events.filter(~pl.col("subject_record_id").is_in(subjects.implode()))
    assert dangling.height <= events.height * 0.001, dangling.head(5).to_dicts()
    assert events.filter(pl.col("event_date").is_null()).height <= events.height * 0.05


def test_service_cases_are_the_declared_staging_columns(estate):
    """int_service_cases holds every row of the specs declaring ``service_cases``, each field the declared
    staging column (the applicant's USCC and comparison name from its enterprise mention)."""
    from models.marts.service import CASE_COLUMNS

    _, home, _ = estate
    declaring = [s for s in load_specs().values() if s.service_cases is not None]
    assert [s.name for s in declaring] == ["stg_service__service_cases"]
    staged = silver.read_silver(home, "stg_service__service_cases").sort("source_pk")
    cases = silver.read_silver(home, "int_service_cases").sort("source_pk")
    assert cases.height == staged.height > 0
    for column in CASE_COLUMNS:
        assert cases[column].cast(pl.Utf8).to_list() == staged[column].cast(pl.Utf8).to_list(), column
    assert (cases["service_case_id"] == "service.service_cases:" + cases["source_pk"]).all()


def test_standardization_is_visible_in_staging(estate):
    _, home, _ = estate
    reg = silver.read_silver(home, "stg_samr__registrations")
    share = (
        reg["uscc_status"].value_counts(normalize=True).filter(pl.col("uscc_status") == "valid")["proportion"]
    )
    assert share[0] > 0.9
    emp = silver.read_silver(home, "stg_social__employers")
    # GBK-in-latin1 repaired in bronze, standardized here: Chinese names with a legal form
    assert emp["name_legal_form"].is_not_null().mean() > 0.8
    ins = silver.read_silver(home, "stg_social__insured_persons")
    assert (
        ins["id_number_was_15"].any()
        and (ins.filter("id_number_was_15")["id_number"].str.len_chars() == 18).all()
    )


def test_unusable_rows_go_to_quarantine_with_reason_and_reconcile(estate, tmp_path):
    out, _home, _ = estate
    # a separate copy of the estate, so the module's fixture stays as it was
    import shutil

    out2, home2 = tmp_path / "estate", tmp_path / "home"
    shutil.copytree(out, out2)
    (out2 / "sources.yaml").write_text((out / "sources.yaml").read_text().replace(str(out), str(out2)))
    with sqlite3.connect(out2 / "samr.sqlite") as db:
        db.execute(
            "INSERT INTO T_XZCF (CFID, XDRMC, TYSHXYDM, FDDBR, JDSWH, JDRQ, GXSJ) VALUES "
            "('BAD1', 'NULL', '无', NULL, 'X1', '2020-01-01', '2026-10-30 10:00:00'), "
            "('BAD2', '深圳市某某有限公司', NULL, NULL, 'X2', '2020-13-45', '2026-10-30 10:00:00')"
        )
    load_bronze(out2 / "sources.yaml", home2)
    reports = build_silver(out2 / "sources.yaml", home2)
    report = reports["samr/penalties"]
    assert reconcile_staging(home2, load_specs()["samr/penalties"]).ok and report.quarantined_rows == 2
    assert report.reasons == {"no_name_no_identifier": 1, "unparseable_decided_on": 1}
    q = pl.from_arrow(read_dataset(quarantine_rows_path(home2, "samr", "penalties")).to_table())
    rows = {r["source_pk"]: r for r in q.to_dicts()}
    assert (
        rows["BAD1"]["reasons"] == ["no_name_no_identifier"] and '"XDRMC":"NULL"' in rows["BAD1"]["original"]
    )
    # the SQLite date column held no date: bronze's reader nulled it and flagged it; silver calls it unreadable
    assert (
        rows["BAD2"]["reasons"] == ["unparseable_decided_on"] and "bad_date:JDRQ" in rows["BAD2"]["original"]
    )
    staged = silver.read_silver(home2, "stg_samr__penalties", ["source_pk"])["source_pk"]
    assert not staged.is_in(["BAD1", "BAD2"]).any()


def test_rebuilding_gives_the_same_tables(estate, tmp_path):
    out, home, _ = estate
    specs = load_specs()
    spec = specs["social/employers"]
    info = silver.source_infos(load_sources(out / "sources.yaml"))[spec.source]
    before = silver.read_silver(home, spec.name).sort("source_pk")
    # one batch instead of the fixture's 1,000-row ones: repeated values are then standardized once and joined
    # back (stage.py de-duplicates batches of 2,000 rows and more), which must give the very same table
    silver.build_staging(home, spec, info)
    after = silver.read_silver(home, spec.name).sort("source_pk")
    assert reconcile_staging(home, spec).ok
    assert before.equals(after)


def test_a_reconciliation_mismatch_is_reported(estate, tmp_path):
    _out, home, _ = estate
    spec = load_specs()["tax/arrears"]
    rec = reconcile(home, spec, silver_path(home, "stg_samr__registrations"))  # the wrong table
    assert not rec.ok and "MISMATCH" in rec.describe() and "tax/arrears" in rec.describe()


@pytest.mark.slow
def test_silver_follows_bronze_through_a_night(estate, tmp_path):
    out, _, _ = estate
    import shutil

    out2, home2 = tmp_path / "estate", tmp_path / "home"
    shutil.copytree(out, out2)
    (out2 / "sources.yaml").write_text((out / "sources.yaml").read_text().replace(str(out), str(out2)))
    load_bronze(out2 / "sources.yaml", home2)
    est.advance(out2, 2)
    load_bronze(out2 / "sources.yaml", home2)
    reports = build_silver(out2 / "sources.yaml", home2)
    specs = load_specs()
    assert all(reconcile_staging(home2, specs[source]).ok for source in reports)
    truth = est.load_truth(out2).collect()
    deleted = pl.read_parquet(out2 / "truth" / "deleted" / "*.parquet")
    assert deleted.height > 0
    records = pl.concat(
        [
            silver.read_silver(home2, t, ["source_department", "source_table", "source_pk"])
            for t in ("int_enterprise_records", "int_person_records")
        ]
    )
    gone = deleted.join(
        records,
        left_on=["department", "table", "pk"],
        right_on=["source_department", "source_table", "source_pk"],
        how="semi",
    )
    assert gone.height == 0, f"deleted source rows still in silver: {gone.head(5).to_dicts()}"
    alive = truth.join(
        deleted, on=["department", "table", "pk"], how="anti"
    )  # the truth keeps deleted records
    present = alive.join(
        records,
        left_on=["department", "table", "pk"],
        right_on=["source_department", "source_table", "source_pk"],
        how="anti",
    )
    missing = present.filter(pl.col("department") != "streets")
    assert missing.height == 0, missing.group_by("department", "table", "role").len().to_dicts()


def test_the_departments_table_names_the_deployments_departments(estate):
    """int_departments: every department of sources.yaml with its title and short name (what the marts'
    dim_department and the dashboard show)."""
    out, home, _ = estate
    config = load_sources(out / "sources.yaml")
    frame = silver.read_silver(home, canonical.DEPARTMENTS_TABLE)
    assert frame.schema == canonical.DEPARTMENT_SCHEMA
    assert set(frame["department"]) == set(config.departments)
    titles = dict(zip(frame["department"], frame["title"], strict=True))
    short = dict(zip(frame["department"], frame["short_title"], strict=True))
    for key, dept in config.departments.items():
        assert titles[key] == dept.title and short[key] == (dept.title or "").split(" ")[0]
    assert short["samr"] == "市场监管局"
