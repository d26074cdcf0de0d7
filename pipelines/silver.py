"""Silver assets: one staging model per bronze table that has a staging spec, then the canonical tables.

Wiring only: :func:`models.silver.build_staging` and :func:`models.silver.build_intermediate` do the work,
:mod:`quality.quarantine` reconciles, :mod:`quality.validation` validates. Every asset shares bronze's daily
partitions, so one nightly run carries a night from the departments' databases to the canonical tables;
each partition recomputes silver from what bronze holds, so a rerun or a backfill is idempotent.

Checks, per staging model: ``rows_reconcile`` (bronze live rows = silver + quarantined, blocking) and the
expectation suite (``expectations_hard`` blocking, ``expectations_soft`` a warning); per canonical table its
own suite, and per table of records ``mentions_reconcile`` (each declared mention of each staged row emitted or
quarantined with a reason, blocking). A blocking check that fails stops everything downstream in that run — a table whose rows went
missing never feeds entity resolution.
"""

# no `from __future__ import annotations`: Dagster inspects the `context` annotation at definition time

from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext

from connectors.config_schema import SourcesConfig
from lake.layout import validations_path
from models import canonical, silver
from models.staging.spec import StagingSpec, load_specs
from pipelines.bronze import bronze_asset_key, daily_partitions
from pipelines.home import staging_specs_folder
from pipelines.resources import LakeResource

SILVER_PREFIX = "silver"
RECONCILE_CHECK = "rows_reconcile"
#: The blocking check of each canonical record table: declared mentions = emitted + quarantined.
MENTIONS_CHECK = "mentions_reconcile"
HARD_CHECK = "expectations_hard"
SOFT_CHECK = "expectations_soft"
BLOCKING_CHECKS = frozenset({RECONCILE_CHECK, MENTIONS_CHECK, HARD_CHECK})
WARNING_CHECKS = frozenset({SOFT_CHECK})
#: A run with this tag set to "true" rebuilds silver in full whatever the night (``qst run --full``).
FULL_REBUILD_TAG = "qst/full_rebuild"


def full_night(context: AssetExecutionContext) -> bool:
    """Whether tonight rebuilds silver from every bronze row: the run asked for it (``qst run --full``, or the tag
    set in the Dagster UI's launchpad), or it is the deployment's weekly full night (``incremental`` in
    platform.yaml), which bounds any drift the incremental nights could leave."""
    from lake.platform import platform_settings

    if context.run.tags.get(FULL_REBUILD_TAG) == "true":
        return True
    night = context.partition_key if context.has_partition_key else None
    return platform_settings().incremental.full_night(night)


def silver_asset_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([SILVER_PREFIX, name])


def configured_specs(config: SourcesConfig, specs: dict[str, StagingSpec] | None = None) -> list[StagingSpec]:
    """The staging specs whose bronze table the configuration defines (a bronze table without a spec has
    no silver model yet: :func:`unstaged_tables` names them)."""
    specs = load_specs(staging_specs_folder()) if specs is None else specs
    infos = silver.source_infos(config)
    return [specs[s] for s in infos if s in specs]


def unstaged_tables(config: SourcesConfig, specs: dict[str, StagingSpec] | None = None) -> list[str]:
    specs = load_specs(staging_specs_folder()) if specs is None else specs
    return [s for s in silver.source_infos(config) if s not in specs]


def _suite_checks(key: dg.AssetKey, what: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            HARD_CHECK,
            asset=key,
            blocking=True,
            description=f"hard expectations of {what}: a failure blocks downstream assets",
        ),
        dg.AssetCheckSpec(SOFT_CHECK, asset=key, description=f"soft expectations of {what}: a warning"),
    ]


def _suite_results(key: dg.AssetKey, report, home: Path) -> list[dg.AssetCheckResult]:
    from quality.validation import save_report

    save_report(report, validations_path(home))
    meta = report.to_metadata()
    return [
        dg.AssetCheckResult(
            asset_key=key,
            check_name=HARD_CHECK,
            passed=report.passed_hard,
            severity=dg.AssetCheckSeverity.ERROR,
            description=report.describe("hard"),
            metadata={"report": dg.MetadataValue.json(meta)},
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name=SOFT_CHECK,
            passed=not report.failed_soft,
            severity=dg.AssetCheckSeverity.WARN,
            description=report.describe("soft"),
            metadata={"failed": dg.MetadataValue.json(report.failed_soft)},
        ),
    ]


def _staging_asset(config: SourcesConfig, spec: StagingSpec) -> dg.AssetsDefinition:
    key = silver_asset_key(spec.name)
    info = silver.source_infos(config)[spec.source]

    @dg.asset(
        key=key,
        deps=[bronze_asset_key(spec.department, spec.asset)],
        group_name=SILVER_PREFIX,
        kinds={"delta", "polars"},
        partitions_def=daily_partitions,
        check_specs=[
            dg.AssetCheckSpec(
                RECONCILE_CHECK,
                asset=key,
                blocking=True,
                description="bronze live rows = silver rows + quarantined rows",
            ),
            *_suite_checks(key, spec.name),
        ],
        description=f"Staging model of {spec.source} ({spec.grain}): standardized by "
        f"the deployment's specs/{spec.name}.yaml; unusable rows to lake/quarantine/rows/{spec.source}.",
        metadata={"department": spec.department, "source_asset": spec.asset, "grain": spec.grain},
    )
    def _build(context: AssetExecutionContext, lake: LakeResource):
        from quality.expectations import suite_for_staging
        from quality.quarantine import reconcile_staging
        from quality.validation import validate

        home = lake.home_path()
        report = silver.build_staging(home, spec, info, full=full_night(context))
        rec = reconcile_staging(home, spec)
        if report.drift_rows:
            context.log.warning(
                f"{spec.name}: the full rebuild found {report.drift_rows} row(s) the incremental nights "
                "had left different (now corrected)"
            )
        if report.quarantined_rows:
            context.log.warning(
                f"{spec.name}: {report.quarantined_rows} row(s) quarantined: {report.reasons}"
            )
        yield dg.MaterializeResult(
            metadata={
                "bronze_live_rows": rec.bronze_live_rows,
                "silver_rows": rec.silver_rows,
                "quarantined_rows": rec.quarantined_rows,
                "quarantine_reasons": dg.MetadataValue.json(report.reasons),
                "seconds": round(report.seconds, 3),
                "rows_per_second": round(report.rows_per_second),
                # incremental (the rows bronze changed) or full, and why
                "mode": report.mode,
                "why_full": report.why_full,
                "changed_bronze_rows": report.changed_bronze_rows,
                **({} if report.drift_rows is None else {"drift_rows": report.drift_rows}),
            }
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=RECONCILE_CHECK,
            passed=rec.ok,
            severity=dg.AssetCheckSeverity.ERROR,
            description=rec.describe(),
            metadata={
                "bronze_live_rows": rec.bronze_live_rows,
                "silver_rows": rec.silver_rows,
                "quarantined_rows": rec.quarantined_rows,
            },
        )
        sample, total = silver.sample_silver(home, spec.name)
        yield from _suite_results(key, validate(sample, suite_for_staging(spec), total_rows=total), home)

    return _build


#: Whether nights build the canonical tables incrementally (models/canonical_changes.py); off until it pays.
INCREMENTAL_CANONICAL = False


def _intermediate_asset(
    table: str, specs: list[StagingSpec], infos: dict[str, silver.SourceInfo]
) -> dg.AssetsDefinition:
    key = silver_asset_key(table)
    records = table in canonical.RECORD_TABLES
    mention_checks = (
        [
            dg.AssetCheckSpec(
                MENTIONS_CHECK,
                asset=key,
                blocking=True,
                description="declared mentions of the staged rows = records emitted + mentions quarantined",
            )
        ]
        if records
        else []
    )

    @dg.asset(
        key=key,
        deps=[silver_asset_key(s.name) for s in specs if canonical.feeds(table, s)],
        group_name=SILVER_PREFIX,
        kinds={"delta", "polars"},
        partitions_def=daily_partitions,
        check_specs=[*mention_checks, *_suite_checks(key, table)],
        description=f"Canonical `{table}`: the union of the staging models' mentions, events or service cases "
        "(models/canonical.py).",
    )
    def _build(context: AssetExecutionContext, lake: LakeResource):
        from quality.expectations import suite_for_intermediate
        from quality.validation import validate

        home = lake.home_path()
        full = full_night(context)
        # without infos: rebuilt in full every night. Applied by MERGE (copy-on-write) the incremental path is no
        # faster than a rebuild (docs/incremental.md, measured); it waits for merge-on-read tables.
        report = silver.build_intermediate(
            home, table, specs, infos=infos if INCREMENTAL_CANONICAL else None, full=full
        )
        if report.quarantined_mentions:
            context.log.warning(
                f"{table}: declared mentions without a name or identifier quarantined: {report.quarantined_mentions}"
            )
        yield dg.MaterializeResult(
            metadata={
                "rows": report.rows,
                "by_source": dg.MetadataValue.json(report.by_source),
                "quarantined_mentions": dg.MetadataValue.json(report.quarantined_mentions),
                "seconds": round(report.seconds, 3),
                # incremental (the rows of the source rows bronze changed) or full, and why
                "mode": report.mode,
                "why_full": report.why_full,
                "changed_source_rows": report.changed_keys,
            }
        )
        if records:
            from quality.quarantine import reconcile_mentions

            rec = reconcile_mentions(home, table, [s for s in specs if canonical.feeds(table, s)])
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=MENTIONS_CHECK,
                passed=rec.ok,
                severity=dg.AssetCheckSeverity.ERROR,
                description=rec.describe(),
            )
        sample, total = silver.sample_silver(home, table)
        # the vocabularies (roles, event types) of the specs this run staged: a deployment's own, not the shipped
        suite = suite_for_intermediate(table, {s.source: s for s in specs})
        yield from _suite_results(key, validate(sample, suite, total_rows=total), home)

    return _build


#: The blocking check of ``int_departments``: every department of sources.yaml, each once.
DEPARTMENTS_CHECK = "departments_reconcile"


def _departments_asset(config: SourcesConfig) -> dg.AssetsDefinition:
    """``int_departments`` from the configuration the definitions were loaded with: no staging model feeds it,
    but it shares the nightly partitions so that every night's lake names the departments it was built with."""
    key = silver_asset_key(canonical.DEPARTMENTS_TABLE)

    @dg.asset(
        key=key,
        group_name=SILVER_PREFIX,
        kinds={"delta", "polars"},
        partitions_def=daily_partitions,
        description="Canonical `int_departments`: the deployment's departments and their titles (sources.yaml).",
        check_specs=[dg.AssetCheckSpec(DEPARTMENTS_CHECK, asset=key, blocking=True)],
    )
    def _build(lake: LakeResource) -> dg.MaterializeResult:
        from quality.quarantine import departments_reconcile

        report = silver.build_departments(lake.home_path(), config)
        passed, description = departments_reconcile(lake.home_path(), list(config.departments))
        return dg.MaterializeResult(
            metadata={"rows": report.rows},
            check_results=[
                dg.AssetCheckResult(
                    asset_key=key, check_name=DEPARTMENTS_CHECK, passed=passed, description=description
                )
            ],
        )

    return _build


def silver_assets(
    config: SourcesConfig, specs: dict[str, StagingSpec] | None = None
) -> list[dg.AssetsDefinition]:
    chosen = configured_specs(config, specs)
    if not chosen:
        return []
    infos = silver.source_infos(config)
    return [
        *(_staging_asset(config, s) for s in chosen),
        *(_intermediate_asset(t, chosen, infos) for t in canonical.INTERMEDIATE_TABLES),
        _departments_asset(config),
    ]
