"""Quality assets of the nightly run: the department scorecard (报送考核) and the Data Docs.

Wiring only: :func:`quality.scorecard.nightly_scorecard` computes the scorecard, :mod:`quality.validation`
keeps each silver table's last validation (its asset checks save them) and builds the Data Docs site at
``HOME/docs/data_docs/index.html`` from those files, so no table is validated twice.
"""

# no `from __future__ import annotations`: Dagster inspects the `context` annotation at definition time

import datetime as dt

import dagster as dg
from dagster import AssetExecutionContext

from connectors.config_schema import SourcesConfig
from lake.layout import data_docs_path, validations_path
from models import canonical
from models.staging.spec import StagingSpec, load_specs
from pipelines.bronze import bronze_asset_key, daily_partitions
from pipelines.home import staging_specs_folder
from pipelines.resources import LakeResource
from pipelines.silver import configured_specs, silver_asset_key, unstaged_tables

QUALITY_PREFIX = "quality"


def quality_asset_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([QUALITY_PREFIX, name])


def _scorecard_asset(config: SourcesConfig, specs: dict[str, StagingSpec]) -> dg.AssetsDefinition:
    chosen = configured_specs(config, specs)
    deps = [silver_asset_key(s.name) for s in chosen]
    deps += [bronze_asset_key(*source.split("/")) for source in unstaged_tables(config, specs)]

    @dg.asset(
        key=quality_asset_key("department_scorecard"),
        deps=deps,
        group_name=QUALITY_PREFIX,
        kinds={"delta", "polars"},
        partitions_def=daily_partitions,
        description="报送考核: per department, table and day, records received, on time or late (及时率), "
        "completeness, valid identifiers, quarantined, and the overall score (formula: "
        "quality/scorecard.py). Rewrites the night's day and the days before it that late rows "
        "can still change.",
    )
    def _build(context: AssetExecutionContext, lake: LakeResource):
        from quality.scorecard import department_totals, nightly_scorecard, write_scorecard

        day = dt.date.fromisoformat(context.partition_key)
        card = nightly_scorecard(lake.home_path(), config, {s.source: s for s in chosen}, day)
        write_scorecard(lake.home_path(), card)
        totals = department_totals(card, day)
        return dg.MaterializeResult(
            metadata={
                "day": day.isoformat(),
                "rows": card.height,
                "departments": dg.MetadataValue.json(
                    {
                        r["department"]: {
                            "score": r["score"],
                            "grade": r["grade"],
                            "received": r["records_received"],
                        }
                        for r in totals.to_dicts()
                    }
                ),
            }
        )

    return _build


def _data_docs_asset(config: SourcesConfig, specs: dict[str, StagingSpec]) -> dg.AssetsDefinition:
    chosen = configured_specs(config, specs)
    tables = [s.name for s in chosen] + list(canonical.INTERMEDIATE_TABLES)

    @dg.asset(
        key=quality_asset_key("data_docs"),
        deps=[silver_asset_key(t) for t in tables],
        group_name=QUALITY_PREFIX,
        kinds={"html"},
        partitions_def=daily_partitions,
        description="Great Expectations Data Docs of every silver table's last validation, at "
        "HOME/docs/data_docs/index.html.",
    )
    def _build(context: AssetExecutionContext, lake: LakeResource):
        from quality.expectations import suite_for_intermediate, suite_for_staging
        from quality.validation import build_data_docs, load_reports

        suites = {s.name: suite_for_staging(s) for s in chosen}
        staged = {s.source: s for s in chosen}  # the specs silver validated with (pipelines.silver)
        suites |= {t: suite_for_intermediate(t, staged) for t in canonical.INTERMEDIATE_TABLES}
        reports = load_reports(validations_path(lake.home_path()), suites)
        index = build_data_docs(reports, data_docs_path(lake.home_path()))
        return dg.MaterializeResult(
            metadata={
                "index": dg.MetadataValue.path(str(index)),
                "suites": len(reports),
                "failed_soft": dg.MetadataValue.json(
                    {r.suite.name: r.failed_soft for r in reports if r.failed_soft}
                ),
            }
        )

    return _build


def quality_assets(
    config: SourcesConfig, specs: dict[str, StagingSpec] | None = None
) -> list[dg.AssetsDefinition]:
    specs = load_specs(staging_specs_folder()) if specs is None else specs
    if not configured_specs(config, specs):
        return []
    return [_scorecard_asset(config, specs), _data_docs_asset(config, specs)]
