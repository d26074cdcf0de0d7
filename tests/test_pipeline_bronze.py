"""The nightly pipeline end to end: legacy databases -> bronze, through the real Dagster assets.

Bronze must equal the source exactly after every night, whatever the night brought (new rows, updates,
late arrivals, deletions), on SQLite, PostgreSQL and MariaDB; one failing department must not stop the
others; a killed extraction rerun must converge; no secret may reach the lake or Dagster.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow as pa
import pytest
import sqlalchemy as sa

from connectors import bronze
from connectors.config import load_sources
from connectors.readers import open_table
from lake.delta import read_dataset
from lake.deployment import EXAMPLE_DEPLOYMENT
from lake.layout import bronze_path
from models.canonical import INTERMEDIATE_TABLES
from models.exports import load_entitlements, verify_package
from models.gold.build import read_gold
from models.silver import read_silver
from pipelines.assemble import build_definitions
from pipelines.marts import MARTS_KEYS
from pipelines.runner import run_pipeline
from simulator import estate as est

REPO = Path(__file__).resolve().parents[1]


def bronze_live(home: Path, dept: str, asset: str) -> pl.DataFrame:
    ds = read_dataset(bronze_path(home, dept, asset))
    assert ds is not None, f"no bronze table for {dept}/{asset}"
    return pl.from_arrow(ds.to_table()).filter(pl.col("_qst_deleted_at").is_null())


def assert_bronze_equals_source(config_path: Path, home: Path) -> int:
    """Every table: the same rows (by primary key) with the same values as a fresh full read."""
    config = load_sources(config_path)
    checked = 0
    for dept, table in config.iter_tables():
        stream = open_table(dept, table, config.defaults, engine="sqlalchemy")
        source = pl.from_arrow(pa.Table.from_batches(list(stream.batches), schema=stream.schema))
        pk = [table.output_name(c) for c in table.primary_key]
        cols = [c for c in source.columns if c != "_qst_flags"]
        live = bronze_live(home, dept.key, table.asset).select(cols).sort(pk)
        source = source.select(cols).sort(pk)
        assert live.height == source.height, f"{dept.key}.{table.name}: {live.height} != {source.height}"
        assert live.equals(source), f"{dept.key}.{table.name} differs from the source"
        checked += 1
    return checked


@pytest.fixture
def sqlite_estate(tmp_path) -> tuple[Path, Path]:
    out = tmp_path / "estate"
    est.simulate(out, enterprises=600, seed=17)
    return out, tmp_path / "home"


EXPORT_KEY = "a-test-secret-of-thirty-two-chars!"


@pytest.fixture(scope="module")
def first_night(tmp_path_factory):
    """One whole night (bronze to the bureaus' exports) on a fresh estate, shared by the tests that look at it:
    a night is the slowest thing the suite does."""
    root = tmp_path_factory.mktemp("first_night")
    out, home = root / "estate", root / "home"
    est.simulate(out, enterprises=600, seed=17)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QST_EXPORT_HMAC_KEY", EXPORT_KEY)
        outcome = run_pipeline(
            load_sources(out / "sources.yaml"), home, partition="2026-11-01", until="exports"
        )
    return out, home, outcome


@pytest.mark.xdist_group("first_night")
def test_nightly_run_loads_every_table_and_checks_pass(first_night):
    out, home, outcome = first_night
    assert outcome.ok, (outcome.failed_checks, [a.error for a in outcome.assets if a.error])
    statuses = {a.key: a.status for a in outcome.assets}
    assert set(statuses.values()) == {"materialized"}
    layers = [k.split("/")[0] for k in statuses]
    # 15 bronze tables and drops; their 15 staging models, the canonical tables (mentions of enterprises and
    # persons, events, service cases) and the departments table; the scorecard and Data Docs;
    # the crosswalk, id history, review queue and the two golden tables; the marts; one export per bureau
    bureaus = load_entitlements(EXAMPLE_DEPLOYMENT / "exports.yaml").bureaus
    assert [layers.count(layer) for layer in ("bronze", "silver", "quality", "gold", "marts", "exports")] == [
        15,
        15 + len(INTERMEDIATE_TABLES) + 1,
        2,
        5,
        len(MARTS_KEYS),
        len(bureaus),
    ]
    gold_checks = {
        name: ok for a in outcome.assets if a.key.startswith("gold/") for name, ok in a.checks.items()
    }
    assert gold_checks == {
        "crosswalk_complete": True,
        "id_changes_recorded": True,
        "one_golden_record_per_entity": True,
    }
    marts_checks = {n: ok for a in outcome.assets if a.key.startswith("marts/") for n, ok in a.checks.items()}
    assert marts_checks == {"contract_holds": True, "one_row_per_enterprise": True}
    # every bureau's package of the night is published and verifies against its manifest
    for bureau in bureaus:
        report = verify_package(home / "exports" / bureau / "2026-11-01")
        assert report.ok, (bureau, str(report))
    assert all(checks for k, checks in ((a.key, a.checks) for a in outcome.assets) if k.startswith("silver/"))
    assert (home / "docs" / "data_docs" / "index.html").exists()
    assert assert_bronze_equals_source(out / "sources.yaml", home) == 13
    roster = bronze_live(home, "streets", "street_rosters_csv")
    assert {"姓名", "身份证号", "_qst_file", "_qst_line"} <= set(roster.columns)


def test_incremental_nights_follow_the_source_exactly(sqlite_estate):
    out, home = sqlite_estate
    config = load_sources(out / "sources.yaml")
    run_pipeline(config, home, partition="2026-11-01", until="bronze")
    for night in ("2026-11-02", "2026-11-03"):
        est.advance(out, 1)
        outcome = run_pipeline(config, home, partition=night, until="bronze")
        assert outcome.ok, outcome.failed_checks
        assert_bronze_equals_source(out / "sources.yaml", home)
    by_key = {a.key: a.metadata for a in outcome.assets}
    filings = by_key["bronze/tax/filings"]
    assert 0 < filings["rows_read"] < filings["bronze_live_rows"], (
        "an incremental night reads only what changed"
    )
    # deletions are kept in bronze, flagged with the time they were noticed
    deleted = pl.read_parquet(out / "truth" / "deleted" / "*.parquet").filter(pl.col("table") == "BJ_BJXX")
    ds = read_dataset(bronze_path(home, "service", "service_cases"))
    everything = pl.from_arrow(ds.to_table(columns=["BJBH", "_qst_deleted_at"]))
    flagged = set(everything.filter(pl.col("_qst_deleted_at").is_not_null())["BJBH"])
    assert flagged and flagged <= set(deleted["pk"])
    # a row created and deleted between two nights never reached bronze, so there is nothing to flag
    assert not (set(deleted["pk"]) - flagged) & set(everything["BJBH"])


def _mart_counts(home: Path, tables: tuple[str, ...]) -> dict[str, int]:
    with duckdb.connect(str(home / "marts.duckdb"), read_only=True) as con:
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


@pytest.mark.xdist_group("first_night")
def test_rerunning_a_night_is_idempotent(first_night, tmp_path, monkeypatch):
    out, first_home, _ = first_night
    monkeypatch.setenv("QST_EXPORT_HMAC_KEY", EXPORT_KEY)
    home = tmp_path / "home"  # a copy: the first night stays as it was for the other tests
    shutil.copytree(first_home, home, symlinks=True)  # packages are relative links to their builds
    config = load_sources(out / "sources.yaml")
    before = {
        d: bronze.table_info(bronze_path(home, d, a))["rows"]
        for d, a in [("samr", "registrations"), ("tax", "filings")]
    }
    canonical_before = read_silver(home, "int_enterprise_records").sort("record_id")
    ids_before = read_gold(home, "entity_crosswalk", ["record_id", "entity_id"]).sort("record_id")
    marts_tables = ("mart_enterprise_360", "mart_person_360", "mart_credit_risk")
    marts_before = _mart_counts(home, marts_tables)
    again = run_pipeline(config, home, partition="2026-11-01", until="exports")
    assert again.ok, (again.failed_checks, [a.error for a in again.assets if a.error])
    assert read_silver(home, "int_enterprise_records").sort("record_id").equals(canonical_before)
    # the same night again: the same entity ids, and its id history replaced, not doubled
    assert (
        read_gold(home, "entity_crosswalk", ["record_id", "entity_id"]).sort("record_id").equals(ids_before)
    )
    history = read_gold(home, "entity_id_history")
    assert history.height == ids_before["entity_id"].n_unique() and set(history["reason"]) == {"new"}
    # the marts and every bureau's package of the night: rebuilt to the same figures, republished whole
    assert _mart_counts(home, marts_tables) == marts_before
    for bureau in load_entitlements(EXAMPLE_DEPLOYMENT / "exports.yaml").bureaus:
        assert verify_package(home / "exports" / bureau / "2026-11-01").ok, bureau
    for a in again.assets:
        if "rows_inserted" in a.metadata:
            assert a.metadata["rows_inserted"] == 0 and a.metadata["rows_updated"] == 0, a.key
    after = {
        d: bronze.table_info(bronze_path(home, d, a))["rows"]
        for d, a in [("samr", "registrations"), ("tax", "filings")]
    }
    assert before == after


def test_schema_drift_added_column_is_loaded_and_recorded(sqlite_estate):
    out, home = sqlite_estate
    config = load_sources(out / "sources.yaml")
    run_pipeline(config, home, partition="2026-11-01", until="bronze")
    engine = sa.create_engine(f"sqlite:///{out / 'env.sqlite'}")
    with engine.begin() as conn:
        conn.execute(sa.text('ALTER TABLE "HB_XZCF" ADD COLUMN "整改情况" VARCHAR(40)'))
        conn.execute(
            sa.text('UPDATE "HB_XZCF" SET "整改情况" = \'已整改\', "更新时间" = \'2026-11-01 08:00:00\'')
        )
    engine.dispose()
    outcome = run_pipeline(config, home, partition="2026-11-02", select=["env"], until="bronze")
    assert outcome.ok
    meta = {a.key: a.metadata for a in outcome.assets}["bronze/env/penalties"]
    assert any(d["column"] == "整改情况" and d["change"] == "added" for d in meta["schema_drift"])
    assert set(bronze_live(home, "env", "penalties")["整改情况"]) == {"已整改"}


def test_one_department_down_does_not_stop_the_others(tmp_path, pg_url, monkeypatch):
    out = tmp_path / "estate"
    est.simulate(out, enterprises=300, seed=5, targets={"tax": pg_url})
    # the tax database goes away: wrong port, with a password in the URL that must not leak
    monkeypatch.setenv("QST_TAX_URL", "postgresql+psycopg://postgres:Leak3dPassw0rd@127.0.0.1:1/none")
    home = tmp_path / "home"
    outcome = run_pipeline(
        load_sources(out / "sources.yaml"), home, partition="2026-11-01", retries=False, until="quality"
    )
    assert not outcome.ok
    by_key = {a.key: a for a in outcome.assets}
    tax = [a for k, a in by_key.items() if k.startswith("bronze/tax/")]
    assert tax and all(a.status == "failed" for a in tax)
    assert all("tax" in a.error and "Leak3dPassw0rd" not in a.error for a in tax)
    others = [a for k, a in by_key.items() if k.startswith("bronze/") and not k.startswith("bronze/tax/")]
    assert len(others) == 11 and all(a.status == "materialized" for a in others)
    # silver: the tax staging models wait for their bronze; every other department's are built, and so are the
    # canonical tables and the scorecard (a second pass: Dagster would skip them with tax's failure)
    assert all(
        by_key[f"silver/stg_tax__{t}"].status == "skipped"
        for t in ("taxpayers", "filings", "credit_ratings", "arrears")
    )
    assert by_key["silver/stg_samr__registrations"].status == "materialized"
    for key in ("silver/int_enterprise_records", "silver/int_events", "quality/department_scorecard"):
        assert by_key[key].status == "materialized", key
    sources = set(read_silver(home, "int_enterprise_records", ["source_department"])["source_department"])
    assert "samr" in sources and "tax" not in sources
    # nothing Dagster recorded about the run carries the secret
    instance = dg.DagsterInstance.from_config(str(home / ".dagster"))
    records = instance.all_logs(outcome.run_id)
    assert records and not any("Leak3dPassw0rd" in str(r) for r in records)
    for f in home.rglob("*"):  # nor anything written under home: the lake, the instance's storage
        if f.is_file():
            assert b"Leak3dPassw0rd" not in f.read_bytes(), f


def test_postgres_and_mariadb_sources_round_trip(tmp_path, pg_url, mariadb_url):
    out = tmp_path / "estate"
    from simulator.mess import MessProfile

    est.simulate(
        out,
        enterprises=400,
        seed=8,
        targets={"tax": pg_url, "courts": pg_url, "social": mariadb_url, "samr": mariadb_url},
        profile=MessProfile.with_overrides({"date_sentinel": 0.2}),
    )
    home = tmp_path / "home"
    config = load_sources(out / "sources.yaml")
    # to quality: what a database changes is bronze and silver (types, encodings, zero dates); the layers after
    # silver read only the lake, and the whole night is run by the tests above
    assert run_pipeline(config, home, partition="2026-11-01", until="quality").ok
    est.advance(out, 1)
    outcome = run_pipeline(config, home, partition="2026-11-02", until="quality")
    assert outcome.ok, outcome.failed_checks
    assert assert_bronze_equals_source(out / "sources.yaml", home) == 13
    names = bronze_live(home, "social", "employers")["DWMC"]
    assert names.str.contains("公司|店").mean() > 0.95, "GBK-in-latin1 repaired on the way in"
    hzrq = bronze_live(home, "samr", "registrations")
    assert hzrq.filter(pl.col("_qst_flags").str.contains("zero_date:HZRQ")).height > 0
    # a Monday follows the changes; `qst run --full` rebuilds it from every bronze row and finds no drift
    staged = [a for a in outcome.assets if a.key.startswith("silver/stg_")]
    assert any(a.metadata["mode"] == "incremental" for a in staged), [a.metadata for a in staged]
    again = run_pipeline(config, home, partition="2026-11-02", until="silver", full=True)
    rebuilt = [a for a in again.assets if a.key.startswith("silver/stg_")]
    assert again.ok and len(rebuilt) == len(staged)
    assert all(a.metadata["mode"] == "full" and a.metadata.get("drift_rows") == 0 for a in rebuilt), [
        a.metadata for a in rebuilt
    ]
    assert {a.metadata["why_full"] for a in rebuilt} == {"a full build was asked for"}


def test_new_file_drops_are_sensed_and_loaded_once(sqlite_estate):
    out, home = sqlite_estate
    config = load_sources(out / "sources.yaml")
    defs = build_definitions(config, home=home)
    sensor = defs.resolve_sensor_def("file_drops")
    with dg.build_sensor_context(resources={"lake": defs.resources["lake"]}) as ctx:
        first = list(sensor(ctx) or [])
    assert {tuple(r.asset_selection[0].path) for r in first} == {
        ("bronze", "streets", "street_rosters_csv"),
        ("bronze", "streets", "street_rosters_excel"),
    }
    run_pipeline(config, home, partition="2026-11-01", select=["streets"], until="bronze")
    with dg.build_sensor_context(resources={"lake": defs.resources["lake"]}) as ctx:
        assert list(sensor(ctx) or []) == []
    folder = out / "drops" / "streets"
    (folder / "440305_南山区_20261101.csv").write_text(
        "南山区人员登记表\n\n网格,姓名,身份证号\n一网格,张伟,110105194912310021\n", encoding="gb18030"
    )
    (folder / "440306_宝安区_broken.csv").write_bytes(b"\x00\x01garbage")
    with dg.build_sensor_context(resources={"lake": defs.resources["lake"]}) as ctx:
        again = list(sensor(ctx) or [])
    assert len(again) == 1
    outcome = run_pipeline(
        config, home, partition="2026-11-02", select=["streets/street_rosters_csv"], until="bronze"
    )
    meta = outcome.assets[0].metadata
    assert meta["files_loaded"] == 1 and meta["files_quarantined"] == 1
    assert "440306_宝安区_broken.csv" in str(meta["quarantined"])
    rows = bronze_live(home, "streets", "street_rosters_csv")
    assert rows.filter(pl.col("_qst_file") == "440305_南山区_20261101.csv")["姓名"].to_list() == ["张伟"]


def test_schedule_runs_nightly_at_two_shanghai_time():
    defs = build_definitions(load_sources(EXAMPLE_DEPLOYMENT / "sources.yaml"))
    schedule = defs.resolve_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Asia/Shanghai"
    asset = next(
        a
        for a in defs.resolve_asset_graph().assets_defs
        if any(k.path[:2] == ["bronze", "tax"] for k in a.keys)
    )
    assert asset.partitions_def is not None
    policy = asset.op.retry_policy
    assert policy.max_retries == 3 and policy.backoff == dg.Backoff.EXPONENTIAL
    assert asset.op.pool == "source_tax"


def test_hostile_identifier_is_refused_before_any_sql(tmp_path):
    from pipelines.sources import SourcesLoadError, load_config

    bad = tmp_path / "sources.yaml"
    bad.write_text(
        "version: 1\ndepartments:\n  samr:\n    connection: {sqlite: x.sqlite}\n    tables:\n"
        "      - name: 'T; DROP TABLE T_SCZT_DJXX'\n        asset: reg\n        primary_key: [ZTID]\n"
        "        mode: snapshot\n"
    )
    with pytest.raises(SourcesLoadError) as err:
        load_config(bad)
    assert "sources.yaml:6" in str(err.value) and "departments.samr.tables[0].name" in str(err.value)
    assert not (tmp_path / "x.sqlite").exists(), "nothing was opened"


KILL_SCRIPT = """
import sys
from pathlib import Path
from connectors.config import load_sources
from connectors.extract import load_table
config = load_sources(Path(sys.argv[1]))
dept = config.department("tax")
load_table(config, dept, dept.table("filings"), Path(sys.argv[2]), batch_id=sys.argv[3], max_rows_per_commit=5000)
"""


def test_killed_extraction_reruns_to_exactly_the_source(tmp_path, pg_url):
    """SIGKILL a real extraction after its first commit, run again: no lost rows, no duplicates."""
    out = tmp_path / "estate"
    est.simulate(
        out,
        enterprises=20_000,
        seed=4,
        targets={"tax": pg_url},
        only=["tax.SB_ZSXX", "tax.DJ_NSRXX", "tax.XY_NSPJ", "tax.QS_XX"],
    )
    yaml_path = out / "sources.yaml"
    text = yaml_path.read_text().replace("batch_rows: 100000", "batch_rows: 5000")
    yaml_path.write_text(text)
    home = tmp_path / "home"
    path = bronze_path(home, "tax", "filings")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(yaml_path), str(home), "killed"], env=env, cwd=REPO
    )
    deadline = time.time() + 1200  # a hang guard: a busy machine may take long to commit twice
    while time.time() < deadline:
        log = path / "_delta_log"
        if log.exists() and len(list(log.glob("*.json"))) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the extraction was killed midway, not finished"
    partial = pl.from_arrow(read_dataset(path).to_table(columns=["ID"]))
    source_rows = est.EstateState.load(out).rows["tax.SB_ZSXX"]
    assert 0 < partial.height < source_rows
    from connectors.extract import load_table

    config = load_sources(yaml_path)
    dept = config.department("tax")
    report = load_table(config, dept, dept.table("filings"), home, batch_id="rerun")
    assert report.reconciled
    final = pl.from_arrow(read_dataset(path).to_table(columns=["ID"]))
    assert final.height == source_rows and final["ID"].n_unique() == source_rows
