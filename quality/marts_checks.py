"""Checks of the marts file after a build: what must hold before a bureau export or a dashboard reads it.

Dagster-free (``pipelines/marts.py`` turns the results into blocking asset checks). Two rules:

* the file carries every table of the marts registry (:func:`models.marts.graph.contract`: the tables of
  :mod:`models.marts.contract` and those the service, KPI and calendar modules keep in their ``COMMENTS``) with
  its columns in order -- the dashboard's queries and the bureaus' entitlements name them, and a mart that is
  missing must stop the exports, not vanish;
* one-enterprise-one-record (一企一档): ``mart_enterprise_360`` has exactly one row per entity id of the golden
  records it was built from (the Delta version in ``meta_build``), none missing, none doubled.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb

from lake.delta import delta_table
from lake.storage import Location
from quality.gold_checks import CheckResult

__all__ = ["CheckResult", "contract_holds", "one_row_per_enterprise"]


def contract_holds(marts: Path, tables: Iterable[str] | None = None) -> CheckResult:
    """Every table of the registry (or of ``tables``) is in the file with its contract's columns in order."""
    from models.marts.graph import contract

    wanted = contract()
    if tables is not None:
        wanted = {t: wanted[t] for t in tables}
    with duckdb.connect(str(marts), read_only=True) as con:
        have: dict[str, list[str]] = {}
        for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main' "
            "ORDER BY table_name, column_index"
        ).fetchall():
            have.setdefault(table, []).append(column)
    problems = []
    for name, columns in wanted.items():
        if name not in have:
            problems.append(f"{name}: missing")
        elif have[name] != list(columns):
            missing = [c for c in columns if c not in have[name]]
            extra = [c for c in have[name] if c not in columns]
            problems.append(
                f"{name}: columns differ from the contract (missing {missing}, extra {extra}"
                + (", order" if not missing and not extra else "")
                + ")"
            )
    if problems:
        return CheckResult(
            False,
            f"{len(problems)} table(s) break the marts contract: " + "; ".join(problems[:10]),
            {"problems": problems},
        )
    return CheckResult(
        True, f"all {len(wanted)} tables of the contract, with their columns", {"tables": len(wanted)}
    )


def one_row_per_enterprise(marts: Path, lake: Location) -> CheckResult:
    """Compares against the golden records at the version the build read (``meta_build``)."""

    with duckdb.connect(str(marts), read_only=True) as con:
        [(version,)] = con.execute(
            "SELECT max(delta_version) FROM meta_build WHERE lake_table = 'gold/dim_enterprise'"
        ).fetchall() or [(None,)]
        rows, distinct = con.execute(
            "SELECT count(*), count(DISTINCT entity_id) FROM mart_enterprise_360"
        ).fetchall()[0]
        golden = delta_table(lake / "gold" / "dim_enterprise", version=version).to_pyarrow_dataset()
        con.register("golden", golden)
        missing, extra = con.execute(
            "SELECT (SELECT count(*) FROM (SELECT entity_id FROM golden EXCEPT SELECT entity_id FROM mart_enterprise_360)),"
            " (SELECT count(*) FROM (SELECT entity_id FROM mart_enterprise_360 EXCEPT SELECT entity_id FROM golden))"
        ).fetchall()[0]
    meta = {
        "rows": rows,
        "entities": distinct,
        "golden_missing": missing,
        "not_golden": extra,
        "dim_enterprise_version": version,
    }
    if rows != distinct or missing or extra:
        return CheckResult(
            False,
            f"mart_enterprise_360 has {rows:,} rows for {distinct:,} entity ids; "
            f"{missing:,} golden enterprise(s) missing, {extra:,} id(s) not golden "
            f"(gold/dim_enterprise v{version})",
            meta,
        )
    return CheckResult(
        True, f"one row for each of the {rows:,} golden enterprises (gold/dim_enterprise v{version})", meta
    )
