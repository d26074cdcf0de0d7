"""`qst run`: materialize the nightly pipeline, with the same assets the Dagster UI shows.

In-process by default; with ``execution.mode: celery`` in the deployment's ``platform.yaml`` the steps go to
Celery workers (pipelines/celery_night.py) and this process only orchestrates. Either way the outcome is
collected from the same events into the same :class:`RunOutcome`.

Runs go to the Dagster instance under ``<home>/.dagster`` (``make dagster`` points the UI at the same
folder), so a run started from cron or the demo appears in the UI's run history; when the variable named by
``execution.run_storage_env`` holds a PostgreSQL URL, runs, events and schedules are stored there instead
(what workers on other machines need: they report each step's events to the same storage).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from connectors.config_schema import SourcesConfig
from lake.layout import dagster_path
from lake.platform import ExecutionSettings, platform_settings
from pipelines.assemble import build_definitions
from pipelines.bronze import daily_partitions, pool_name
from pipelines.celery_job import reconstructable_nightly
from pipelines.celery_night import broker_url, worker_name_of
from pipelines.gold import GOLD_BLOCKING_CHECKS
from pipelines.home import LAYERS
from pipelines.marts import MARTS_BLOCKING_CHECKS
from pipelines.silver import BLOCKING_CHECKS, FULL_REBUILD_TAG, WARNING_CHECKS, unstaged_tables

INSTANCE_YAML = """\
# Written by qst: the Dagster instance that `qst run` and `make dagster` share.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 2
"""

#: Appended when the run storage is PostgreSQL: the URL stays in the variable (resolved by each process that
#: opens the instance, workers included), never in the file nor in the messages to the workers.
POSTGRES_STORAGE_YAML = """\
storage:
  postgres:
    postgres_url:
      env: {env}
"""


def instance_yaml(execution: ExecutionSettings) -> str:
    """The ``dagster.yaml`` qst writes: runs, events and schedules in PostgreSQL when the variable named by
    ``execution.run_storage_env`` is set, else in SQLite files beside it."""
    if os.environ.get(execution.run_storage_env, "").strip():
        return INSTANCE_YAML + POSTGRES_STORAGE_YAML.format(env=execution.run_storage_env)
    return INSTANCE_YAML


def dagster_instance(
    home: Path, config: SourcesConfig, execution: ExecutionSettings | None = None
) -> dg.DagsterInstance:
    """The persistent instance in ``home/.dagster``, with one pool per source database limited to that
    department's ``max_concurrent_reads``. A ``dagster.yaml`` that qst wrote is rewritten when the storage
    changed (a deployment moved to PostgreSQL); one written by hand is left alone."""
    execution = execution or platform_settings().execution
    folder = dagster_path(home)
    folder.mkdir(parents=True, exist_ok=True)
    yaml_path = folder / "dagster.yaml"
    wanted = instance_yaml(execution)
    if not yaml_path.exists() or (
        yaml_path.read_text().startswith(INSTANCE_YAML.splitlines()[0]) and yaml_path.read_text() != wanted
    ):
        yaml_path.write_text(wanted)
    instance = dg.DagsterInstance.from_config(str(folder))
    storage = instance.event_log_storage
    for dept in config.departments.values():
        storage.set_concurrency_slots(
            pool_name(dept.key), dept.effective_max_concurrent_reads(config.defaults)
        )
    return instance


def check_partition(value: str) -> str:
    """``value`` as a nightly partition key, or a ValueError that says what a night is and which exist: the
    first night (the partitions' start) to the last complete one (a night is over at 02:00 in the city's time
    zone)."""
    import datetime as dt

    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or len(value) != 10:
        raise ValueError(f"{value!r} is not a date: a night is written YYYY-MM-DD, e.g. 2026-11-30")
    first = daily_partitions.get_first_partition_key()
    last = daily_partitions.get_last_partition_key()
    if first is None or last is None:
        raise ValueError("no night is complete yet: the first night ends at 02:00 the day after it")
    if value < first:
        raise ValueError(f"{value} is before the first night, {first}: there is nothing to run for it")
    if value > last:
        raise ValueError(
            f"the night of {value} is not over yet (a night ends at 02:00 the next day): the last complete "
            f"night is {last}"
        )
    return value


def last_complete_partition() -> str:
    key = daily_partitions.get_last_partition_key()
    if key is None:
        raise RuntimeError("no complete nightly partition yet")
    return key


@dataclass
class AssetOutcome:
    key: str
    status: str  # materialized | failed | skipped
    metadata: dict = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    error: str | None = None
    #: what each check said (its description): for a failed expectation suite, the rules, columns and samples
    notes: dict[str, str] = field(default_factory=dict)


@dataclass
class RunOutcome:
    run_id: str
    partition: str
    success: bool
    assets: list[AssetOutcome]
    unstaged: list[str] = field(default_factory=list)  # bronze tables without a staging spec
    #: step -> the Celery worker (``name@host``) that executed it; empty when the night ran in-process
    workers: dict[str, str] = field(default_factory=dict)

    @property
    def failed_checks(self) -> list[str]:
        """Checks that failed, warnings (soft expectations) not included."""
        return [
            f"{a.key}:{name}"
            for a in self.assets
            for name, ok in a.checks.items()
            if not ok and name not in WARNING_CHECKS
        ]

    @property
    def warnings(self) -> list[str]:
        """Soft checks that failed: reported, never a failed run."""
        return [
            f"{a.key}:{name}"
            for a in self.assets
            for name, ok in a.checks.items()
            if not ok and name in WARNING_CHECKS
        ]

    @property
    def ok(self) -> bool:
        """Every step succeeded and every check passed."""
        return self.success and not self.failed_checks


def _execute(
    job,
    instance: dg.DagsterInstance,
    partition: str,
    selection: list[dg.AssetKey] | None,
    log_level: str,
    workers: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> tuple[str, bool, dict[str, AssetOutcome]]:
    """One run of ``job``: a JobDefinition executed in this process, or a ReconstructableJob (the Celery
    mode) whose steps the workers execute while this process orchestrates. ``workers`` receives, per step,
    the Celery worker that executed it."""
    quiet = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    if isinstance(job, dg.JobDefinition):
        result = job.execute_in_process(
            instance=instance,
            partition_key=partition,
            raise_on_error=False,
            asset_selection=selection,
            run_config=quiet,
            tags=tags,
        )
    else:
        result = dg.execute_job(
            job,
            instance,
            run_config=quiet,
            tags={"dagster/partition": partition, **(tags or {})},
            raise_on_error=False,
            asset_selection=selection,
        )
    outcomes: dict[str, AssetOutcome] = {}
    for event in result.all_events:
        if workers is not None and event.step_key and (worker := worker_name_of(event)):
            workers[event.step_key] = worker
        key = event.asset_key.to_user_string() if event.asset_key else None
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION and key:
            meta = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
            seen = outcomes.get(key, AssetOutcome(key, ""))
            outcomes[key] = AssetOutcome(key, "materialized", meta, checks=seen.checks, notes=seen.notes)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            k = evaluation.asset_key.to_user_string()
            outcome = outcomes.setdefault(k, AssetOutcome(k, "materialized"))
            outcome.checks[evaluation.check_name] = evaluation.passed
            if evaluation.description:
                outcome.notes[evaluation.check_name] = evaluation.description
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            step = event.step_key or ""
            error = event.event_specific_data.error
            while (
                error is not None and error.cause is not None
            ):  # the user's exception, not Dagster's wrapper
                error = error.cause
            message = (error.message.strip().splitlines() or ["failed"])[-1] if error else "failed"
            k = step.replace("__", "/")
            seen = outcomes.get(
                k, AssetOutcome(k, "")
            )  # a failed blocking check fails the step: keep its note
            outcomes[k] = AssetOutcome(k, "failed", checks=seen.checks, error=message, notes=seen.notes)
    return result.run_id, result.success, outcomes


def run_pipeline(
    config: SourcesConfig,
    home: Path,
    *,
    partition: str | None = None,
    select: list[str] | None = None,
    log_level: str = "WARNING",
    retries: bool = True,
    until: str = "quality",
    full: bool = False,
) -> RunOutcome:
    """Materialize the nightly job (or the bronze assets whose key starts with one of ``select``, e.g.
    ``tax`` or ``tax/filings``, and everything downstream of them) for a partition, up to the layer
    ``until`` (one of :data:`pipelines.home.LAYERS`); failures of one asset do not stop the others. ``full``:
    rebuild silver from every bronze row whatever the night (:data:`pipelines.silver.FULL_REBUILD_TAG`).

    Dagster skips everything downstream of a failed step (an open Dagster issue, #15761), so one department
    whose database is down would also hold back the canonical tables and the scorecard of every other
    department. When bronze failed somewhere and no blocking check failed, a second pass therefore builds
    the skipped canonical and quality assets from the staging models as they stand (the failed department's
    from its last good night). A failed blocking check keeps blocking: that is what it is for.
    """
    if until not in LAYERS:
        raise ValueError(f"until must be one of {', '.join(LAYERS)}, not {until!r}")
    execution = platform_settings().execution
    defs = build_definitions(config, home=home, retries=retries)
    job = defs.resolve_job_def("nightly")
    partition = partition or last_complete_partition()
    graph = defs.resolve_asset_graph()
    layers = LAYERS[: LAYERS.index(until) + 1]
    planned = [k for k in graph.materializable_asset_keys if k.path[0] in layers]
    if select:
        wanted = [s.strip("/").split("/") for s in select]
        roots = [
            k for k in planned if k.path[0] == "bronze" and any(k.path[1 : 1 + len(w)] == w for w in wanted)
        ]
        if not roots:
            raise ValueError(f"--select {select} matches no bronze asset")
        downstream = dg.AssetSelection.assets(*roots).downstream().resolve(graph)
        planned = [k for k in planned if k in downstream]
    planned = sorted(planned, key=lambda k: k.path)
    if execution.mode == "celery":  # its settings checked before the instance connects to the run storage
        job = _celery_job(config, home, retries, execution)
    instance = dagster_instance(home, config, execution)
    workers: dict[str, str] = {}
    tags = {FULL_REBUILD_TAG: "true"} if full else None
    run_id, success, outcomes = _execute(job, instance, partition, planned, log_level, workers, tags)
    skipped = [k for k in planned if k.to_user_string() not in outcomes]
    bronze_failed = any(o.status == "failed" and o.key.startswith("bronze/") for o in outcomes.values())
    blocked = any(
        not ok
        for o in outcomes.values()
        for name, ok in o.checks.items()
        if name in BLOCKING_CHECKS | GOLD_BLOCKING_CHECKS | MARTS_BLOCKING_CHECKS
    )
    retry = [k for k in skipped if k.path[0] != "bronze" and not k.path[-1].startswith("stg_")]
    if bronze_failed and retry and not blocked:
        _, _, second = _execute(job, instance, partition, retry, log_level, workers, tags)
        outcomes.update(second)
        success = success and all(o.status != "failed" for o in second.values())
    for k in planned:
        outcomes.setdefault(k.to_user_string(), AssetOutcome(k.to_user_string(), "skipped"))
    return RunOutcome(
        run_id,
        partition,
        success,
        sorted(outcomes.values(), key=lambda o: o.key),
        unstaged=unstaged_tables(config),
        workers=workers,
    )


def _celery_job(config: SourcesConfig, home: Path, retries: bool, execution: ExecutionSettings):
    """The night for the Celery workers: a job they can rebuild from the ``sources.yaml`` file and HOME, on
    an instance they can all reach."""
    origin = Path(config.origin)
    if not origin.is_file():
        raise ValueError(
            f"execution.mode is celery, and the workers rebuild the night from the sources.yaml file: "
            f"this configuration was not read from one ({config.origin})"
        )
    if not os.environ.get(execution.run_storage_env, "").strip():
        raise ValueError(
            f"execution.mode is celery but ${execution.run_storage_env} is not set: the workers report each "
            "step to the run storage, which must be PostgreSQL (postgresql+psycopg2://USER@HOST:5432/DB) "
            "reachable from every machine (platform.yaml names the variable: execution.run_storage_env)"
        )
    broker_url(execution)  # unset: say so now, not from inside Dagster
    # dagster-celery registers its step task again for every step it submits (the same function): not news
    warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")
    return reconstructable_nightly(origin, home, retries)
