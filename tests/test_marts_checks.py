"""The marts' blocking checks (quality/marts_checks.py) fail on the files they exist to stop."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
from deltalake import write_deltalake

from models.marts.contract import TABLES
from models.marts.graph import contract
from quality.marts_checks import contract_holds, one_row_per_enterprise


def _contract_file(path: Path, skip: str | None = None, rename: tuple[str, str, str] | None = None) -> Path:
    """Every table of the registry; types from models/marts/contract/ (VARCHAR for the modules' own tables)."""
    with duckdb.connect(str(path)) as con:
        for name, columns in contract().items():
            if name == skip:
                continue
            types = {c.name: c.type for c in TABLES[name].columns} if name in TABLES else {}
            cols = []
            for col in columns:
                typ = types.get(col, "VARCHAR")
                if rename and rename[0] == name and rename[1] == col:
                    col = rename[2]
                cols.append(f'"{col}" {typ}')
            con.execute(f'CREATE TABLE "{name}" ({", ".join(cols)})')
    return path


def test_contract_holds_on_the_contract_and_names_what_breaks_it(tmp_path: Path):
    assert contract_holds(_contract_file(tmp_path / "ok.duckdb")).passed
    missing = contract_holds(_contract_file(tmp_path / "missing.duckdb", skip="mart_credit_risk"))
    assert not missing.passed and "mart_credit_risk: missing" in missing.description
    renamed = contract_holds(
        _contract_file(tmp_path / "renamed.duckdb", rename=("mart_enterprise_360", "uscc", "usc_code"))
    )
    assert not renamed.passed
    assert "mart_enterprise_360" in renamed.description and "'uscc'" in renamed.description


def test_contract_holds_covers_the_marts_of_other_modules(tmp_path: Path):
    """The KPI, service and calendar marts keep their contract in their modules: the check holds them too."""
    assert {
        "dim_calendar",
        "mart_service_efficiency",
        "mart_business_startup",
        "mart_business_startup_cases",
        "mart_kpi_daily",
    } <= set(contract())
    for table in ("mart_kpi_daily", "dim_calendar", "mart_business_startup_cases"):
        missing = contract_holds(_contract_file(tmp_path / f"{table}.duckdb", skip=table))
        assert not missing.passed and f"{table}: missing" in missing.description
    renamed = contract_holds(
        _contract_file(
            tmp_path / "renamed_kpi.duckdb", rename=("mart_service_efficiency", "item_code", "item")
        )
    )
    assert not renamed.passed and "mart_service_efficiency" in renamed.description
    one = contract_holds(
        _contract_file(tmp_path / "one.duckdb", skip="mart_kpi_daily"), tables=["mart_credit_risk"]
    )
    assert one.passed


def _lake_and_marts(tmp_path: Path, golden: list[str], mart: list[str]) -> tuple[Path, Path]:
    lake = tmp_path / "lake"
    write_deltalake(lake / "gold" / "dim_enterprise", pl.DataFrame({"entity_id": golden}).to_arrow())
    marts = tmp_path / "marts.duckdb"
    with duckdb.connect(str(marts)) as con:
        con.execute("CREATE TABLE mart_enterprise_360 (entity_id VARCHAR)")
        con.executemany("INSERT INTO mart_enterprise_360 VALUES (?)", [(e,) for e in mart])
        con.execute(
            "CREATE TABLE meta_build AS SELECT 'gold/dim_enterprise' AS lake_table, 0::BIGINT AS delta_version"
        )
    return marts, lake


def test_one_row_per_enterprise(tmp_path: Path):
    ids = ["E0000000001", "E0000000002", "E0000000003"]
    assert one_row_per_enterprise(*_lake_and_marts(tmp_path / "ok", ids, ids)).passed
    doubled = one_row_per_enterprise(*_lake_and_marts(tmp_path / "doubled", ids, [*ids, ids[0]]))
    assert not doubled.passed and "4 rows for 3 entity ids" in doubled.description
    lost = one_row_per_enterprise(*_lake_and_marts(tmp_path / "lost", ids, ids[:2]))
    assert not lost.passed and lost.metadata["golden_missing"] == 1
    foreign = one_row_per_enterprise(*_lake_and_marts(tmp_path / "foreign", ids[:2], ids))
    assert not foreign.passed and foreign.metadata["not_golden"] == 1
