"""Silver inside the nightly Dagster run: a failing hard expectation blocks everything downstream of it, and
a spec folder of the deployment's own replaces the shipped one."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from connectors.config import load_sources
from lake.deployment import EXAMPLE_DEPLOYMENT
from pipelines.runner import run_pipeline
from simulator import estate as est


@pytest.fixture
def estate_with_own_specs(tmp_path, monkeypatch):
    out = tmp_path / "estate"
    est.simulate(out, enterprises=300, seed=11)
    specs = tmp_path / "specs"
    shutil.copytree((EXAMPLE_DEPLOYMENT / "specs"), specs)
    monkeypatch.setenv("QST_STAGING_SPECS", str(specs))
    return out, tmp_path / "home", specs


def test_a_failing_hard_expectation_blocks_downstream(estate_with_own_specs):
    out, home, specs = estate_with_own_specs
    # the market regulator's rule: every penalty decision has its number (双公示 publishes it)
    with open(specs / "stg_samr__penalties.yaml", "a", encoding="utf-8") as f:
        f.write("expectations:\n  - {rule: not_null, column: decision_number, severity: hard}\n")
    with sqlite3.connect(out / "samr.sqlite") as db:
        db.execute(
            "INSERT INTO T_XZCF (CFID, XDRMC, TYSHXYDM, JDSWH, JDRQ, GXSJ) VALUES "
            "('NO_NUMBER', '深圳市某某有限公司', NULL, NULL, '2026-10-30', '2026-10-30 10:00:00')"
        )
    outcome = run_pipeline(load_sources(out / "sources.yaml"), home, partition="2026-10-31", until="quality")
    assert not outcome.ok
    by_key = {a.key: a for a in outcome.assets}
    penalties = by_key["silver/stg_samr__penalties"]
    assert penalties.status == "materialized" and penalties.checks["expectations_hard"] is False
    assert penalties.checks["rows_reconcile"] is True  # the row is in silver: nothing was lost
    assert "silver/stg_samr__penalties:expectations_hard" in outcome.failed_checks
    # everything downstream of it waits; the other staging models were built
    for key in (
        "silver/int_enterprise_records",
        "silver/int_person_records",
        "silver/int_events",
        "quality/department_scorecard",
        "quality/data_docs",
    ):
        assert by_key[key].status == "skipped", key
    assert by_key["silver/stg_samr__registrations"].status == "materialized"
    assert by_key["silver/stg_samr__registrations"].checks["expectations_hard"] is True
    # the check says which rule and how many rows
    report = (home / "docs" / "validations" / "stg_samr__penalties.json").read_text(encoding="utf-8")
    assert (
        '"decision_number_not_null_declared"' in report
        and '"failed_hard": ["decision_number_not_null_declared"]' in report
    )


def test_without_the_rule_the_same_night_passes(estate_with_own_specs):
    out, home, _ = estate_with_own_specs
    with sqlite3.connect(out / "samr.sqlite") as db:
        db.execute(
            "INSERT INTO T_XZCF (CFID, XDRMC, TYSHXYDM, JDSWH, JDRQ, GXSJ) VALUES "
            "('NO_NUMBER', '深圳市某某有限公司', NULL, NULL, '2026-10-30', '2026-10-30 10:00:00')"
        )
    outcome = run_pipeline(load_sources(out / "sources.yaml"), home, partition="2026-10-31", until="quality")
    assert outcome.ok, outcome.failed_checks
    assert {a.status for a in outcome.assets} == {"materialized"}
