"""Bronze assets: one per source table and file drop, generated from ``sources.yaml``.

Wiring only. Each asset calls :func:`connectors.extract.load_table` (or ``load_file_drop``) and turns
its report into Dagster metadata and a reconciliation check; every rule lives in ``connectors/``.

Per department: a group ``bronze_<department>`` and a pool ``source_<department>`` whose limit is the
department's ``max_concurrent_reads`` (so a fragile legacy server is never hammered). Per asset: a
retry policy with exponential backoff, daily partitions (02:00 in the city's time zone) that can be backfilled,
and an asset check that source rows equal bronze's live rows after the load.
"""

import datetime as dt
import json

import dagster as dg
from dagster import AssetExecutionContext, SensorEvaluationContext

from connectors.config_schema import DepartmentConfig, FileDropConfig, SourcesConfig, TableConfig
from connectors.extract import TableLoadReport, load_file_drop, load_table
from lake.city import city_timezone
from pipelines.resources import LakeResource
from pipelines.sources import legacy_asset_key

BRONZE_PREFIX = "bronze"
RECONCILE_CHECK = "source_rows_reconcile"
# the deployment's zone: pipelines modules are imported after `qst --deployment` (and QST_DEPLOYMENT) is set
NIGHTLY_TIMEZONE = city_timezone()
daily_partitions = dg.DailyPartitionsDefinition(
    start_date="2026-01-01", timezone=NIGHTLY_TIMEZONE, hour_offset=2
)
retry_policy = dg.RetryPolicy(
    max_retries=3, delay=20, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def bronze_asset_key(department: str, asset: str) -> dg.AssetKey:
    return dg.AssetKey([BRONZE_PREFIX, department, asset])


def pool_name(department: str) -> str:
    return f"source_{department}"


def queue_name(department: str) -> str:
    """The Celery queue of a department's extractions (``execution.mode: celery``): a worker that reaches the
    department's database listens on it (``qst worker --queue DEPT``; pipelines/celery_night.py)."""
    return f"qst.{department}"


def _report_metadata(report: TableLoadReport) -> dict[str, object]:
    meta: dict[str, object] = {
        "reader": report.reader,
        "rows_read": report.rows_read,
        "rows_inserted": report.rows_inserted,
        "rows_updated": report.rows_updated,
        "rows_unchanged": report.rows_unchanged,
        "rows_marked_deleted": report.rows_marked_deleted,
        "key_snapshot": report.key_snapshot,
        "bronze_live_rows": report.bronze_live_rows,
        "delta_version": report.version,
        "seconds": round(report.seconds, 3),
    }
    if report.source_rows is not None:
        meta["source_rows"] = report.source_rows
    if report.since is not None:
        meta["read_since"] = report.since
    if report.drift:
        meta["schema_drift"] = dg.MetadataValue.json(report.drift)
    return {k: v for k, v in meta.items() if v is not None}


def _reconcile_result(key: dg.AssetKey, report: TableLoadReport) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=RECONCILE_CHECK,
        passed=report.reconciled,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "source_rows": report.source_rows if report.source_rows is not None else -1,
            "bronze_live_rows": report.bronze_live_rows if report.bronze_live_rows is not None else -1,
        },
        description="source COUNT(*) equals bronze rows not flagged deleted",
    )


def _table_asset(
    config: SourcesConfig, dept: DepartmentConfig, table: TableConfig, retry: dg.RetryPolicy | None
) -> dg.AssetsDefinition:
    key = bronze_asset_key(dept.key, table.asset)

    @dg.asset(
        key=key,
        deps=[legacy_asset_key(dept.key, table.asset)],
        group_name=f"{BRONZE_PREFIX}_{dept.key}",
        kinds={"delta", "arrow"},
        pool=pool_name(dept.key),
        op_tags={"dagster-celery/queue": queue_name(dept.key)},
        retry_policy=retry,
        partitions_def=daily_partitions,
        check_specs=[
            dg.AssetCheckSpec(
                RECONCILE_CHECK, asset=key, description="source rows = bronze live rows after the load"
            )
        ],
        description=f"Bronze copy of `{table.name}` ({dept.title or dept.key}): every source row, upserted by "
        f"{', '.join(table.primary_key)}, with lineage columns.",
        metadata={"department": dept.key, "source_table": table.name, "mode": table.mode},
    )
    def _load(context: AssetExecutionContext, lake: LakeResource):
        report = load_table(config, dept, table, lake.home_path(), batch_id=context.run.run_id)
        for change in report.drift:
            context.log.warning(
                f"schema drift in {dept.key}.{table.name}: {json.dumps(change, ensure_ascii=False)}"
            )
        yield dg.MaterializeResult(metadata=_report_metadata(report))
        yield _reconcile_result(key, report)

    return _load


def _file_asset(
    dept: DepartmentConfig, drop: FileDropConfig, retry: dg.RetryPolicy | None
) -> dg.AssetsDefinition:
    key = bronze_asset_key(dept.key, drop.name)

    @dg.asset(
        key=key,
        deps=[legacy_asset_key(dept.key, drop.name)],
        group_name=f"{BRONZE_PREFIX}_{dept.key}",
        kinds={"delta", drop.format},
        pool=pool_name(dept.key),
        op_tags={"dagster-celery/queue": queue_name(dept.key)},
        retry_policy=retry,
        partitions_def=daily_partitions,
        description=f"Bronze rows of the `{drop.name}` file drop ({dept.title or dept.key}); each file loaded "
        "once, unparseable files quarantined with the reason.",
        metadata={"department": dept.key, "folder_pattern": drop.pattern, "format": drop.format},
    )
    def _load(context: AssetExecutionContext, lake: LakeResource):
        report = load_file_drop(dept, drop, lake.home_path(), batch_id=context.run.run_id)
        for bad in report.quarantined:
            context.log.warning(f"file drop {dept.key}.{drop.name}: quarantined {bad}")
        return dg.MaterializeResult(
            metadata={
                "files_loaded": len(report.loaded),
                "files_skipped_already_loaded": len(report.skipped),
                "files_quarantined": len(report.quarantined),
                "rows_loaded": report.rows,
                "quarantined": dg.MetadataValue.json(report.quarantined),
            }
        )

    return _load


def bronze_assets(config: SourcesConfig, *, retries: bool = True) -> list[dg.AssetsDefinition]:
    """``retries=False`` drops the retry policy (tests, and `qst run --no-retries` for a quick answer)."""
    retry = retry_policy if retries else None
    assets = [_table_asset(config, dept, table, retry) for dept, table in config.iter_tables()]
    assets += [_file_asset(dept, drop, retry) for dept, drop in config.iter_files()]
    return assets


nightly_selection = dg.AssetSelection.key_prefixes(
    [BRONZE_PREFIX], ["silver"], ["quality"], ["gold"], ["marts"], ["exports"]
)


def nightly_job():
    return dg.define_asset_job(
        "nightly",
        selection=nightly_selection,
        description="Every department's tables into bronze, then everything downstream.",
    )


def nightly_schedule(job) -> dg.ScheduleDefinition:
    """02:00 in the city's time zone, for the day that just ended."""
    return dg.build_schedule_from_partitioned_job(
        job, hour_of_day=2, minute_of_hour=0, default_status=dg.DefaultScheduleStatus.RUNNING
    )


def file_drop_sensor(config: SourcesConfig) -> dg.SensorDefinition:
    """Starts a load of a file drop as soon as a file appears that bronze has not loaded yet."""
    from connectors.extract import pending_drop_files

    drops = list(config.iter_files())

    @dg.sensor(
        name="file_drops",
        minimum_interval_seconds=60,
        asset_selection=[bronze_asset_key(d.key, f.name) for d, f in drops],
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: SensorEvaluationContext, lake: LakeResource):
        today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date() - dt.timedelta(days=1)
        for dept, drop in drops:
            pending = pending_drop_files(dept, drop, lake.home_path())
            if not pending:
                continue
            yield dg.RunRequest(
                run_key=f"{dept.key}.{drop.name}:" + ",".join(sorted(f.sha256[:12] for f in pending)),
                asset_selection=[bronze_asset_key(dept.key, drop.name)],
                partition_key=today.isoformat(),
            )

    return _sensor
