"""The marts asset: the analysts' and the dashboard's DuckDB file (HOME/marts.duckdb), rebuilt each night.

Wiring only: :func:`models.marts.build.build_marts` builds and atomically replaces the file,
:mod:`quality.marts_checks` checks it. Its checks are blocking: a marts file that breaks its contract or loses
an enterprise must not reach the bureaus (the exports run after it).
"""

# no `from __future__ import annotations`: Dagster inspects the `context` annotation at definition time

import dagster as dg
from dagster import AssetExecutionContext

from models import canonical
from models.gold.build import DIM_TABLE, KINDS
from pipelines.bronze import daily_partitions
from pipelines.gold import check_result, gold_asset_key
from pipelines.isolation import run_isolated
from pipelines.quality import quality_asset_key
from pipelines.resources import LakeResource
from pipelines.silver import silver_asset_key

MARTS_PREFIX = "marts"
CONTRACT_CHECK = "contract_holds"
ENTERPRISE_CHECK = "one_row_per_enterprise"
MARTS_BLOCKING_CHECKS = frozenset({CONTRACT_CHECK, ENTERPRISE_CHECK})
MARTS_KEY = dg.AssetKey([MARTS_PREFIX, "marts_duckdb"])


def marts_assets(with_scorecard: bool = True) -> list[dg.AssetsDefinition]:
    deps = [gold_asset_key("entity_crosswalk"), *(gold_asset_key(DIM_TABLE[k]) for k in KINDS),
            *(silver_asset_key(t) for t in canonical.INTERMEDIATE_TABLES)]
    if with_scorecard:
        deps.append(quality_asset_key("department_scorecard"))

    @dg.asset(key=MARTS_KEY, deps=deps, group_name=MARTS_PREFIX, kinds={"duckdb"}, partitions_def=daily_partitions,
              check_specs=[
                  dg.AssetCheckSpec(CONTRACT_CHECK, asset=MARTS_KEY, blocking=True,
                                    description="every table of models/marts/contract.py with its columns"),
                  dg.AssetCheckSpec(ENTERPRISE_CHECK, asset=MARTS_KEY, blocking=True,
                                    description="mart_enterprise_360: one row per golden enterprise"),
              ],
              description="HOME/marts.duckdb: 一企一档, 一人一档, credit risk and warnings, abnormal listings, the "
                          "department scorecard, service efficiency and the KPI forecasts, with Chinese/English "
                          "comments (docs/data_dictionary.md). Replaced atomically; readers never see half a file.")
    def _build(context: AssetExecutionContext, lake: LakeResource):
        from models.marts.build import build_marts, describe
        from quality.marts_checks import contract_holds, one_row_per_enterprise

        home = lake.home_path()
        report = run_isolated(build_marts, home)
        context.log.info(describe(report))
        yield dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(report.path)), "as_of_date": report.as_of_date.isoformat(),
            "rows": report.rows.get("mart_enterprise_360", 0), "seconds": round(report.total_seconds, 1),
            "tables": dg.MetadataValue.json(report.rows), "lake_versions": dg.MetadataValue.json(report.versions),
            "skipped": dg.MetadataValue.json(report.skipped)})
        yield check_result(MARTS_KEY, CONTRACT_CHECK, contract_holds(report.path))
        yield check_result(MARTS_KEY, ENTERPRISE_CHECK, one_row_per_enterprise(report.path, home / "lake"))

    return [_build]
