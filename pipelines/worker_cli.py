"""`qst worker`: a Celery worker that executes the steps of nights run with ``execution.mode: celery``."""

from __future__ import annotations

import socket

import click

from pipelines.cli_options import HOME_OPTION

QUEUE_HELP = (
    "A queue to take steps from: a department's key (its extractions: the queue qst.DEPT) or 'default' "
    "(every other step: silver, quality, gold, marts, exports). Repeat for several. Default: 'default' and "
    "every department of the deployment's sources.yaml (one machine that reaches every database)."
)


def queue_names(values: tuple[str, ...]) -> list[str]:
    """``--queue`` values as Celery queue names: ``default`` -> ``qst.default``, ``DEPT`` -> ``qst.DEPT``
    (a name already starting with ``qst.`` is kept)."""
    from pipelines.bronze import queue_name
    from pipelines.celery_night import DEFAULT_QUEUE

    out: list[str] = []
    for value in values:
        value = value.strip()
        if not value or any(c.isspace() or c == "," for c in value):
            raise click.BadParameter(f"{value!r}: a queue is one word (a department's key or 'default')")
        name = (
            value if value.startswith("qst.") else DEFAULT_QUEUE if value == "default" else queue_name(value)
        )
        if name not in out:
            out.append(name)
    return out


def _every_queue() -> list[str]:
    from pipelines.bronze import queue_name
    from pipelines.celery_night import DEFAULT_QUEUE
    from pipelines.home import sources_path
    from pipelines.sources import SourcesLoadError, load_config

    try:
        config = load_config(sources_path())
    except SourcesLoadError as exc:
        raise click.ClickException(f"{exc}\n(or name the queues: --queue default --queue DEPT ...)") from None
    return [DEFAULT_QUEUE, *(queue_name(key) for key in config.departments)]


@click.command()
@click.option("--queue", "queues", multiple=True, metavar="DEPT|default", help=QUEUE_HELP)
@click.option(
    "--name",
    default=None,
    help="The worker's name, shown per step in the run's events as NAME@HOST (default: qst-PID).",
)
@click.option("--loglevel", default="INFO", show_default=True, help="Celery's log level.")
@HOME_OPTION
def worker(queues: tuple[str, ...], name: str | None, loglevel: str, home) -> None:
    """Execute steps of the night on this machine: a Celery worker for deployments whose platform.yaml says
    `execution: {mode: celery}`.

    \b
    Queues: each department's extractions go to the queue qst.DEPT, everything else to qst.default. Start
    a worker with --queue DEPT on a machine that reaches DEPT's database (its URL variable set there), and
    at least one worker with --queue default on a machine with the memory for resolution and the marts.
    How many extractions hit one database at once is still the department's max_concurrent_reads (the
    Dagster pools, claimed by the process that submits the night).

    \b
    Every worker needs: the broker's URL in the variable platform.yaml names (execution.broker_env), the
    run storage's PostgreSQL URL likewise (execution.run_storage_env), the same deployment folder and HOME
    at the same paths as the machine that runs `qst run` (a shared file system), and the secrets the
    night's steps read (the departments' database URLs, QST_EXPORT_HMAC_KEY,
    QST_EXPORT_SIGNING_KEY).

    \b
    A worker executes one step at a time (a heavy step in a child process of its own, so its memory goes
    back when it ends): start several workers on a machine to run several steps there at once, as many as
    its memory allows (resolution and the marts each peak at several GB on a large city).

    \b
    Restart every worker on each deploy: a worker runs the code it started with, and a step executed with
    old code in a new night gives an answer neither version would. Stopping a worker (Ctrl-C, SIGTERM)
    lets it finish its step; a killed worker's step is handed to another worker.
    """
    import os

    from lake.platform import platform_settings
    from pipelines.celery_night import celery_app

    os.environ.setdefault("QST_HOME", str(home))
    settings = platform_settings().execution
    if settings.mode != "celery":
        click.echo(
            "note: this deployment's platform.yaml does not say `execution: {mode: celery}`: `qst run` runs "
            "in-process and sends this worker nothing",
            err=True,
        )
    wanted = queue_names(queues) if queues else _every_queue()
    try:
        app = celery_app(settings)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    import pipelines.celery_job  # noqa: F401  (what every step imports: loaded once, before the first step)

    node = f"{name or f'qst-{os.getpid()}'}@{socket.gethostname()}"
    click.echo(f"qst worker {node}: queues {', '.join(wanted)}")
    app.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--queues={','.join(wanted)}",
            f"--hostname={node}",
            # one step at a time, in this process, as `qst run` does in-process: the heavy steps still go to a
            # fresh child each (pipelines/isolation.py), which a prefork pool's daemonic children could not
            # start; and a child forked from a process with Dagster, Polars and DuckDB loaded can deadlock
            "--pool=solo",
            "--prefetch-multiplier=1",
            "--without-gossip",
            "--without-mingle",
        ]
    )
