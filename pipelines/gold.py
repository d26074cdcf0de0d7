"""Gold assets: entity resolution (crosswalk, id history, review queue) and the golden records.

Wiring only: :func:`models.gold.build.build_gold` and :func:`models.gold.golden.build_golden` do the work,
:mod:`quality.gold_checks` checks it. Daily partitions like the rest of the night: a night's ids are carried
from the newest crosswalk of an earlier night, so re-running a partition gives the same ids. The checks are
blocking: a crosswalk that lost a record, or an id that changed without a record of it, stops the marts.
"""

# no `from __future__ import annotations`: Dagster inspects the `context` annotation at definition time

import dagster as dg
from dagster import AssetExecutionContext

from models.gold.build import DIM_TABLE, KINDS, SILVER_INPUTS
from models.staging.spec import StagingSpec, load_specs
from pipelines.bronze import daily_partitions
from pipelines.home import staging_specs_folder
from pipelines.isolation import run_measured
from pipelines.resources import LakeResource
from pipelines.silver import silver_asset_key

GOLD_PREFIX = "gold"
COMPLETE_CHECK = "crosswalk_complete"
IDS_CHECK = "id_changes_recorded"
GOLDEN_CHECK = "one_golden_record_per_entity"
GOLD_BLOCKING_CHECKS = frozenset({COMPLETE_CHECK, IDS_CHECK, GOLDEN_CHECK})


def gold_asset_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([GOLD_PREFIX, name])


def check_result(key: dg.AssetKey, name: str, result) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.description,
        metadata={"details": dg.MetadataValue.json(result.metadata)},
    )


def _resolution_asset() -> dg.AssetsDefinition:
    crosswalk = gold_asset_key("entity_crosswalk")
    sources = [silver_asset_key(t) for t in SILVER_INPUTS]

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                crosswalk,
                deps=sources,
                group_name=GOLD_PREFIX,
                kinds={"delta", "splink"},
                description="Every canonical enterprise and person record -> its stable entity id, "
                "with the rule or the Splink probability, weight and levels that linked it.",
            ),
            dg.AssetSpec(
                gold_asset_key("entity_id_history"),
                deps=sources,
                group_name=GOLD_PREFIX,
                kinds={"delta"},
                description="Every entity id change (new, merged, split, retired) "
                "per night and run (rules: models/gold/identity.py).",
            ),
            dg.AssetSpec(
                gold_asset_key("review_queue"),
                deps=sources,
                group_name=GOLD_PREFIX,
                kinds={"delta"},
                description="One item per pair of entities a reviewer's decision could change, ranked by "
                "consequence and explained in Chinese; decisions with `qst review`.",
            ),
        ],
        partitions_def=daily_partitions,
        check_specs=[
            dg.AssetCheckSpec(
                COMPLETE_CHECK,
                asset=crosswalk,
                blocking=True,
                description="every silver enterprise/person record has exactly one entity id",
            ),
            dg.AssetCheckSpec(
                IDS_CHECK,
                asset=crosswalk,
                blocking=True,
                description="every id that appeared or vanished tonight is in the id history",
            ),
        ],
        name="entity_resolution",
    )
    def _resolve(context: AssetExecutionContext, lake: LakeResource):
        from models.gold.build import build_gold, describe
        from quality.gold_checks import crosswalk_complete, id_changes_recorded

        home = lake.home_path()
        report, peak_mb = run_measured(build_gold, home, context.partition_key, context.run.run_id)
        context.log.info(f"{describe(report)}; peak memory {peak_mb:,.0f} MB")
        per_kind = {
            k: {
                "records": r.records,
                "entities": r.entities,
                "kept": r.kept,
                "minted": r.minted,
                "changes": r.changes,
                "by_rule": r.by_rule,
                "review_pairs": r.review_pairs,
                "review_open": r.review_open,
                "seconds": round(r.seconds, 1),
            }
            for k, r in report.kinds.items()
        }
        yield dg.MaterializeResult(
            asset_key=crosswalk,
            metadata={
                "previous_night": report.previous_partition or "",
                "kinds": dg.MetadataValue.json(per_kind),
                "rows": sum(r.records for r in report.kinds.values()),
                "seconds": round(report.seconds, 1),
                "peak_memory_mb": round(peak_mb),
            },
        )
        yield dg.MaterializeResult(
            asset_key=gold_asset_key("entity_id_history"),
            metadata={"changes": dg.MetadataValue.json({k: r.changes for k, r in report.kinds.items()})},
        )
        yield dg.MaterializeResult(
            asset_key=gold_asset_key("review_queue"),
            metadata={
                "rows": sum(r.review_pairs for r in report.kinds.values()),
                "open_items": dg.MetadataValue.json({k: r.review_open for k, r in report.kinds.items()}),
            },
        )
        yield check_result(crosswalk, COMPLETE_CHECK, crosswalk_complete(home))
        yield check_result(crosswalk, IDS_CHECK, id_changes_recorded(home, context.partition_key))

    return _resolve


def _golden_asset(kind: str, specs: dict[str, StagingSpec]) -> dg.AssetsDefinition:
    key = gold_asset_key(DIM_TABLE[kind])

    @dg.asset(
        key=key,
        deps=[gold_asset_key("entity_crosswalk"), silver_asset_key(f"int_{kind}_records")],
        group_name=GOLD_PREFIX,
        kinds={"delta", "polars"},
        partitions_def=daily_partitions,
        check_specs=[
            dg.AssetCheckSpec(
                GOLDEN_CHECK,
                asset=key,
                blocking=True,
                description="one golden record per entity id of the crosswalk",
            )
        ],
        description=f"Golden {kind} records: per attribute the most authoritative, most recent valid value "
        "and the record it came from (rules: models/gold/survivorship.py).",
    )
    def _build(context: AssetExecutionContext, lake: LakeResource):
        from models.gold.golden import build_golden
        from quality.gold_checks import golden_complete

        report, peak_mb = run_measured(
            build_golden, lake.home_path(), kind, context.partition_key, context.run.run_id, specs
        )
        for warning in report.warnings:
            context.log.warning(warning)
        yield dg.MaterializeResult(
            metadata={
                "rows": report.rows,
                "warnings": dg.MetadataValue.json(report.warnings),
                "peak_memory_mb": round(peak_mb),
            }
        )
        yield check_result(key, GOLDEN_CHECK, golden_complete(lake.home_path(), kind))

    return _build


def gold_assets(specs: list[StagingSpec] | None = None) -> list[dg.AssetsDefinition]:
    """``specs``: the staging specs the run stages (:func:`pipelines.silver.configured_specs`); their
    ``authority:`` sections rank the sources of the golden records. Default: every spec of the deployment."""
    chosen = {s.source: s for s in specs} if specs is not None else load_specs(staging_specs_folder())
    return [_resolution_asset(), *(_golden_asset(k, chosen) for k in KINDS)]
