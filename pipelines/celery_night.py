"""The night on several machines: Dagster's Celery executor over a broker (RabbitMQ or Redis), one queue per
department.

Why Celery and not more in-process threads: a department's database is often reachable only from inside that
department's network, so its extraction must run on a machine there, while resolution and the marts want the
biggest machine. Celery queues say *where* a step runs: the bronze steps of department ``X`` carry the
``dagster-celery/queue`` tag ``qst.X`` (:func:`pipelines.bronze.queue_name`), everything else goes to
:data:`DEFAULT_QUEUE`; a worker started with ``qst worker --queue X`` on a machine that reaches X's database
takes them. The per-department concurrency pools still say *how many* reads hit one database at once: the
process that submits the night claims a pool slot (in the run storage, shared by every machine) before it
hands a step to the broker, exactly as in-process.

A worker rebuilds the job from :func:`pipelines.celery_job.nightly_for_workers`, a module-level function given
the ``sources.yaml``, HOME and the deployment's path overrides (never a secret: those come from each worker's own
environment, as do the departments' database URLs). Hence the rules of a distributed deployment: every machine
sees the same HOME (the lake, the marts, HOME/.dagster) and the same deployment folder at the same paths, the run
storage is PostgreSQL, and workers restart on every deploy (a worker keeps the code it started with).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from lake.deployment import DEPLOYMENT_ENV
from lake.platform import ExecutionSettings

__all__ = [
    "DEFAULT_QUEUE",
    "PASSED_ENV",
    "broker_url",
    "celery_app",
    "executor_config",
    "night_executor",
    "worker_name_of",
]

#: The queue of every step that is not a department's extraction (silver, quality, gold, marts, exports).
DEFAULT_QUEUE = "qst.default"

#: Environment variables that say which files a night reads: handed to the workers with the job, since they
#: are paths (never secrets) and a worker must read the same deployment as the process that submitted it.
PASSED_ENV = (DEPLOYMENT_ENV, "QST_SOURCES", "QST_STAGING_SPECS", "QST_EXPORTS")

#: Celery settings shared by the submitting process and the workers: one task at a time per worker process
#: (a step is long; prefetching would park a second one behind it while another worker idles), and a task
#: acknowledged only when done, so a worker killed mid-step (a deploy) leaves it for another worker.
CELERY_SETTINGS: dict[str, Any] = {
    "task_default_queue": DEFAULT_QUEUE,
    "worker_prefetch_multiplier": 1,
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "broker_connection_retry_on_startup": True,
}


def broker_url(settings: ExecutionSettings) -> str:
    """The broker's URL from the variable ``platform.yaml`` names; a clear error when it is unset. The URL
    itself is never printed nor written anywhere (it may carry a password)."""
    value = os.environ.get(settings.broker_env, "").strip()
    if not value:
        raise RuntimeError(
            f"execution.mode is celery but ${settings.broker_env} is not set: export the broker's URL there "
            "(e.g. amqp://USER:PASSWORD@HOST:5672/VHOST or redis://HOST:6379/0) on this machine and on every "
            "worker (platform.yaml names the variable: execution.broker_env)"
        )
    return value


def _backend(settings: ExecutionSettings) -> str | dict[str, str]:
    """Where the workers put a step's events for the submitting process: over the broker itself for AMQP
    (``rpc://``), the same Redis database for Redis (Redis has no RPC reply queues)."""
    if broker_url(settings).startswith(("redis://", "rediss://")):
        return _from_variable(settings.broker_env)
    return "rpc://"


def _from_variable(name: str) -> dict[str, str]:
    """Dagster's config value read from the environment variable ``name`` by the process that uses it."""
    return dict(env=name)  # noqa: C408  (keyword form: the key is Dagster's, not a department's)


def night_executor(settings: ExecutionSettings) -> dg.ExecutorDefinition | None:
    """The executor of the nightly job for ``execution.mode``: ``None`` (Dagster's default: ``qst run``
    executes in-process, the UI in subprocesses) or dagster-celery's, configured with the broker's variable
    *name* so that neither the run config in the run storage nor a message carries the URL."""
    if settings.mode != "celery":
        return None
    from dagster_celery import celery_executor

    return celery_executor.configured(executor_config(settings), name="qst_celery")


def executor_config(settings: ExecutionSettings) -> dict[str, Any]:
    """The Celery executor's configuration: the broker by its variable's name, resolved by each process."""
    return {
        "broker": _from_variable(settings.broker_env),
        "backend": _backend(settings),
        "config_source": dict(CELERY_SETTINGS),
    }


def celery_app(settings: ExecutionSettings):
    """The Celery app a worker runs: dagster-celery's, with the step task registered and the same settings
    as the submitting process (:data:`CELERY_SETTINGS`)."""
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    backend = _backend(settings)
    app = make_app(
        CeleryExecutor.for_cli(
            broker=broker_url(settings),
            backend=broker_url(settings) if isinstance(backend, dict) else backend,
            config_source=dict(CELERY_SETTINGS),
        ).app_args()
    )
    create_task(app)
    return app


def worker_name_of(event: dg.DagsterEvent) -> str | None:
    """The Celery worker (``name@host``) an engine event says a step was executed in, else ``None``."""
    if event.event_type != dg.DagsterEventType.ENGINE_EVENT:
        return None
    data = event.event_specific_data
    metadata = getattr(data, "metadata", None) or {}
    value = metadata.get("Celery worker")
    return str(value.value) if value is not None else None
