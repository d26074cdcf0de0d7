"""Silver inside the nightly Dagster run: a failing hard expectation blocks everything downstream of it, and
a spec folder of the deployment's own replaces the shipped one."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from connectors.config import load_sources
from lake.deployment import EXAMPLE_DEPLOYMENT
from pipelines.run_cli import failed_check_lines
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
    # the check's own message, and the line `qst run` prints under the asset, name the rule, column and values
    note = penalties.notes["expectations_hard"]
    assert note.startswith(
        "stg_samr__penalties: decision_number_not_null_declared on column decision_number: "
    )
    assert "e.g. 'null'" in note
    assert f"      expectations_hard: {note}" in failed_check_lines(penalties)
    assert "rows_reconcile" not in " ".join(failed_check_lines(penalties))  # passed checks stay quiet
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


def test_an_event_type_of_the_deployments_own_specs_passes_the_canonical_checks(estate_with_own_specs):
    """Issue 15: the canonical tables' suites came from the shipped specs, so an event type a deployment
    declared failed ``silver/int_events: expectations_hard``."""
    out, home, specs = estate_with_own_specs
    path = specs / "stg_samr__registrations.yaml"
    text = path.read_text(encoding="utf-8")
    declared = "  - {type: registration, event_category: business_registration, subject: subject, date: founded_on, status: status, reference: uscc}\n"
    assert declared in text
    extra = "  - {type: registry_approval, event_category: other, subject: subject, date: approved_on}\n"
    path.write_text(text.replace(declared, declared + extra), encoding="utf-8")
    outcome = run_pipeline(load_sources(out / "sources.yaml"), home, partition="2026-10-31", until="silver")
    events = {a.key: a for a in outcome.assets}["silver/int_events"]
    assert events.status == "materialized", events.error
    assert events.checks["expectations_hard"] is True, events.notes
    report = (home / "docs" / "validations" / "int_events.json").read_text(encoding="utf-8")
    assert '"registry_approval"' in report  # the suite's vocabulary is the deployment's
    assert outcome.ok, (outcome.failed_checks, [failed_check_lines(a) for a in outcome.assets])
