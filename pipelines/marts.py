"""The marts assets: one per table of the analysts' and the dashboard's DuckDB file (HOME/marts.duckdb), all
materialized by one build each night.

Wiring only: :func:`models.marts.build.build_marts` builds and atomically replaces the file,
:mod:`quality.marts_checks` checks it. Why one ``multi_asset`` with an ``AssetSpec`` per table: the tables live
in one file swapped whole (a reader never sees half a night), so they are built together, yet each shows in
Dagster with its own lineage, read from the registry's declared inputs (:func:`models.marts.graph.lineage`), to
the gold, silver and quality assets or the other marts it is made from. Its checks are blocking: a table that
breaks its contract, or an enterprise lost or doubled, must not reach the bureaus (the exports run after it).
"""

# no `from __future__ import annotations`: Dagster inspects the `context` annotation at definition time

import dagster as dg
from dagster import AssetExecutionContext

from lake.layout import lake_root
from models.marts.common import LAKE_TABLES
from models.marts.graph import lineage, order
from pipelines.bronze import daily_partitions
from pipelines.gold import GOLD_PREFIX, check_result
from pipelines.isolation import run_measured
from pipelines.quality import quality_asset_key
from pipelines.resources import LakeResource
from pipelines.silver import silver_asset_key

MARTS_PREFIX = "marts"
CONTRACT_CHECK = "contract_holds"
ENTERPRISE_CHECK = "one_row_per_enterprise"
MARTS_BLOCKING_CHECKS = frozenset({CONTRACT_CHECK, ENTERPRISE_CHECK})
ENTERPRISE_TABLE = "mart_enterprise_360"
#: The canonical silver tables every night has; staging tables are lineage only when the caller names them.
_CANONICAL = ("int_events", "int_enterprise_records", "int_person_records", "int_service_cases")


def marts_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey([MARTS_PREFIX, table])


#: One key per table of the file, in the build's (topological) order: Dagster wants a multi_asset's results
#: yielded upstream first.
MARTS_KEYS: tuple[dg.AssetKey, ...] = tuple(marts_asset_key(t) for m in order() for t in m.published)


def _lake_key(name: str, with_scorecard: bool, silver_tables: frozenset[str]) -> dg.AssetKey | None:
    """The asset that writes a lake table the marts read (None: not an asset of this code location)."""
    layer, table = LAKE_TABLES[name].split("/", 1)
    if layer == "quality":
        return quality_asset_key("department_scorecard") if with_scorecard else None
    if layer == GOLD_PREFIX:
        return dg.AssetKey([GOLD_PREFIX, table])
    return silver_asset_key(table) if table in _CANONICAL or table in silver_tables else None


def marts_assets(
    with_scorecard: bool = True, silver_tables: frozenset[str] | set[str] = frozenset()
) -> list[dg.AssetsDefinition]:
    """``silver_tables``: the staging tables this code location builds (a mart's optional department tables
    are lineage only when they are assets here, never phantom external assets)."""
    silver_tables = frozenset(silver_tables)
    specs = []
    for table, upstream in lineage().items():
        deps = []
        for name in upstream:
            key = (
                _lake_key(name, with_scorecard, silver_tables)
                if name in LAKE_TABLES
                else marts_asset_key(name)
            )
            if key is not None:
                deps.append(key)
        specs.append(
            dg.AssetSpec(
                marts_asset_key(table),
                deps=deps,
                group_name=MARTS_PREFIX,
                kinds={"duckdb"},
                description=f"HOME/marts.duckdb, table {table} (docs/data_dictionary.md).",
            )
        )
    checks = [
        dg.AssetCheckSpec(
            CONTRACT_CHECK,
            asset=key,
            blocking=True,
            description="the table is in the file with its contract's columns, in order",
        )
        for key in MARTS_KEYS
    ]
    checks.append(
        dg.AssetCheckSpec(
            ENTERPRISE_CHECK,
            asset=marts_asset_key(ENTERPRISE_TABLE),
            blocking=True,
            description="mart_enterprise_360: one row per golden enterprise",
        )
    )

    @dg.multi_asset(
        name="marts",
        specs=specs,
        check_specs=checks,
        partitions_def=daily_partitions,
        description="HOME/marts.duckdb: 一企一档, 一人一档, credit risk and warnings, abnormal listings, the "
        "department scorecard, service efficiency and the KPI forecasts, with Chinese/English "
        "comments (docs/data_dictionary.md). Built once, replaced atomically; readers never "
        "see half a file.",
    )
    def _build(context: AssetExecutionContext, lake: LakeResource):
        from models.marts.build import build_marts, describe
        from quality.marts_checks import contract_holds, one_row_per_enterprise

        home = lake.home_path()
        report, peak_mb = run_measured(build_marts, home)
        context.log.info(f"{describe(report)}; peak memory {peak_mb:,.0f} MB")
        common = {
            "peak_memory_mb": round(peak_mb),
            "path": dg.MetadataValue.path(str(report.path)),
            "as_of_date": report.as_of_date.isoformat(),
            "lake_versions": dg.MetadataValue.json(report.versions),
        }
        for key in MARTS_KEYS:
            table = key.path[-1]
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    **common,
                    "rows": report.rows.get(table, 0),
                    **({"note": report.notes[table]} if table in report.notes else {}),
                },
            )
        for key in MARTS_KEYS:
            yield check_result(key, CONTRACT_CHECK, contract_holds(report.path, [key.path[-1]]))
        yield check_result(
            marts_asset_key(ENTERPRISE_TABLE),
            ENTERPRISE_CHECK,
            one_row_per_enterprise(report.path, lake_root(home)),
        )

    return [_build]
