"""The night distributed: `qst run` with ``execution.mode: celery`` over the local RabbitMQ, two `qst worker`
processes, run storage on the local PostgreSQL -- against the same night run in-process in another HOME.

The same night must give the same marts and exports in both modes (issue 17), the steps must really have run
in both workers, each department's extractions in the worker that listens on that department's queue, and the
run's events must be in PostgreSQL, not in HOME. The two nights run at the same time (each `qst run` in its
own process): the Celery one mostly waits on its workers.

Isolation: a RabbitMQ virtual host and a PostgreSQL database of their own per test run, removed afterwards,
so parallel runs never see each other's queues. Locally, a server that does not answer makes the tests skip
with the reason; under CI they must run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
import sqlalchemy as sa
from conftest import EXPORT_SIGNING_KEY, PG_ADMIN_URL, SIGNING_KEY_ENV, _fresh_database, _unavailable

from connectors.config import load_sources
from lake.deployment import DEPLOYMENT_ENV, EXAMPLE_DEPLOYMENT
from lake.platform import PLATFORM_FILE
from models.exports import load_entitlements, verify_package

pytestmark = [pytest.mark.xdist_group("celery_night"), pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
QST = REPO / ".venv" / "bin" / "qst"
ENTERPRISES, SEED = 200, 23
PARTITION = "2026-11-01"
EXPORT_KEY = "a-test-secret-of-thirty-two-chars!"
BROKER_ENV, RUN_STORAGE_ENV = "QST_TEST_BROKER_URL", "QST_TEST_RUN_STORAGE_URL"
RABBITMQ = ("127.0.0.1", 5672)
#: the columns that say *when* a table was written: different in any two nights, whatever the executor
WHEN_WRITTEN = {"built_at", "committed_at"}
NIGHT_TIMEOUT = 900


#: test credentials: moto accepts any
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def s3_lake(s3_endpoint: str) -> tuple[str, dict[str, str]]:
    """A fresh bucket on the test S3 endpoint (the moto server `.ci/run` starts, or the session's own): the
    Celery night's lake root and the environment its workers and its run need to reach it."""
    import boto3

    bucket = f"qst-celery-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_CREDENTIALS["AWS_REGION"],
    )
    client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/city", {"AWS_ENDPOINT_URL": s3_endpoint, **S3_CREDENTIALS}


def _deployment(folder: Path, root: str | None, mode: str) -> Path:
    """The example deployment (its files linked, not copied) with a platform.yaml of ``mode`` whose lake is at
    ``root`` (None: HOME/lake on local disk)."""
    folder.mkdir(parents=True)
    for entry in EXAMPLE_DEPLOYMENT.iterdir():
        if entry.name != PLATFORM_FILE:
            (folder / entry.name).symlink_to(entry)
    lines = [] if root is None else ["lake:", f"  root: {json.dumps(root)}"]
    lines += [
        "execution:",
        f"  mode: {mode}",
        f"  broker_env: {BROKER_ENV}",
        f"  run_storage_env: {RUN_STORAGE_ENV}",
    ]
    (folder / PLATFORM_FILE).write_text("\n".join(lines) + "\n")
    return folder


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    """An AMQP URL to a virtual host of the local RabbitMQ made for this test run, deleted afterwards."""
    vhost = f"qst_t_{uuid.uuid4().hex[:12]}"
    try:
        socket.create_connection(RABBITMQ, timeout=3).close()
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    except (OSError, subprocess.SubprocessError) as exc:
        _unavailable("RabbitMQ at 127.0.0.1:5672 (and rabbitmqctl)", exc)
    try:
        yield f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="module")
def run_storage_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the run storage, as the psycopg2 URL dagster-postgres takes."""
    for url in _fresh_database(PG_ADMIN_URL, "PostgreSQL at 127.0.0.1:5432"):
        yield (
            sa.engine.make_url(url)
            .set(drivername="postgresql+psycopg2")
            .render_as_string(hide_password=False)
        )


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QST_")}
    return {**env, "QST_EXPORT_HMAC_KEY": EXPORT_KEY, SIGNING_KEY_ENV: EXPORT_SIGNING_KEY, **extra}


def _start_worker(name: str, queues: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    args = [str(QST), "worker", "--name", name]
    for queue in queues:
        args += ["--queue", queue]
    with log.open("w") as out:
        # a session of its own: stopped with everything it started, by its id
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(worker: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if " ready." in log.read_text(errors="replace"):
            return
        if worker.poll() is not None:
            pytest.fail(
                f"the worker exited ({worker.returncode}):\n{log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.5)
    pytest.fail(f"the worker was not ready in {timeout:.0f}s:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)


def _night(home: Path, estate: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    args = [str(QST), "run", "--config", str(estate / "sources.yaml"), "--home", str(home)]
    args += ["--date", PARTITION, "--until", "exports", "--skip-check"]
    with log.open("w") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def nights(simulated_estate, broker_url, run_storage_url, s3_lake, tmp_path_factory):
    """The same night of a small city run twice at once: through Celery (two workers, the departments' queues
    split between them, both on the default queue), its lake on S3, and in-process, its lake on local disk."""
    estate = simulated_estate(enterprises=ENTERPRISES, seed=SEED)
    root = tmp_path_factory.mktemp("celery_night")
    celery_home, local_home = root / "celery_home", root / "local_home"
    departments = sorted(load_sources(estate / "sources.yaml").departments)
    queues = {"w1": ["default", *departments[0::2]], "w2": ["default", *departments[1::2]]}
    lake, s3_env = s3_lake
    celery_env = _environment(
        **{
            DEPLOYMENT_ENV: str(_deployment(root / "celery_deployment", lake, "celery")),
            BROKER_ENV: broker_url,
            RUN_STORAGE_ENV: run_storage_url,
            **s3_env,
        }
    )
    local_env = _environment(
        **{DEPLOYMENT_ENV: str(_deployment(root / "local_deployment", None, "in_process"))}
    )
    workers = {name: _start_worker(name, q, celery_env, root / f"{name}.log") for name, q in queues.items()}
    try:
        for name, worker in workers.items():
            _wait_ready(worker, root / f"{name}.log")
        runs = {
            "celery": _night(celery_home, estate, celery_env, root / "celery_run.log"),
            "local": _night(local_home, estate, local_env, root / "local_run.log"),
        }
        codes = {}
        for name, run in runs.items():
            try:
                codes[name] = run.wait(timeout=NIGHT_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                codes[name] = None
    finally:
        for worker in workers.values():
            _stop(worker)
    output = {name: (root / f"{name}_run.log").read_text(errors="replace") for name in runs}
    return {
        "homes": {"celery": celery_home, "local": local_home},
        "s3_lake": s3_lake,
        "codes": codes,
        "output": output,
        "queues": queues,
        "run_storage_url": run_storage_url,
        "worker_logs": {name: root / f"{name}.log" for name in workers},
    }


def test_both_nights_succeed(nights):
    for mode in ("celery", "local"):
        output = nights["output"][mode]
        errors = "\n".join(line for line in output.splitlines() if "error" in line.lower())
        assert nights["codes"][mode] == 0, f"the {mode} night:\n{errors}\n{output[-6000:]}"


def _marts(home: Path) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(home / "marts.duckdb"), read_only=True)
    try:
        names = [
            r[0] for r in con.sql("SELECT table_name FROM duckdb_tables() WHERE NOT internal").fetchall()
        ]
        out = {}
        for name in names:
            frame = con.sql(f'SELECT * FROM "{name}"').pl()
            frame = frame.drop([c for c in frame.columns if c in WHEN_WRITTEN])
            out[name] = frame.sort(frame.columns, nulls_last=True)
        return out
    finally:
        con.close()


def test_the_marts_are_identical(nights):
    celery, local = (_marts(nights["homes"][m]) for m in ("celery", "local"))
    assert len(local) >= 10 and sorted(celery) == sorted(local)
    for name, frame in local.items():
        assert frame.height > 0 or name.startswith("meta_"), f"{name} is empty: nothing was compared"
        assert celery[name].columns == frame.columns, name
        assert celery[name].equals(frame), f"{name} differs between the Celery and the in-process night"


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in WHEN_WRITTEN}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def test_the_exports_are_identical(nights):
    bureaus = load_entitlements(EXAMPLE_DEPLOYMENT / "exports.yaml").bureaus
    assert bureaus
    for bureau in bureaus:
        packages = {m: nights["homes"][m] / "exports" / bureau / PARTITION for m in ("celery", "local")}
        report = verify_package(packages["celery"])
        assert report.ok, (bureau, str(report))
        files = sorted(p.name for p in packages["local"].iterdir())
        assert sorted(p.name for p in packages["celery"].iterdir()) == files
        for name in files:
            if name == "manifest.json.sig":  # the signature of a manifest whose times differ (checked above)
                continue
            celery, local = ((packages[m] / name).read_bytes() for m in ("celery", "local"))
            if name == "manifest.json":  # says when each table was written
                celery, local = (_without_times(json.loads(x)) for x in (celery, local))
            assert celery == local, f"{bureau}/{name} differs between the Celery and the in-process night"


def _celery_events(nights):
    """The run's events as the run storage (PostgreSQL) holds them: (run, step -> worker)."""
    import dagster as dg

    from pipelines.celery_night import worker_name_of

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(RUN_STORAGE_ENV, nights["run_storage_url"])
        instance = dg.DagsterInstance.from_config(str(nights["homes"]["celery"] / ".dagster"))
        try:
            runs = instance.get_runs()
            assert len(runs) == 1, [r.run_id for r in runs]
            run = runs[0]
            steps = {}
            for record in instance.all_logs(run.run_id):
                event = record.dagster_event
                if event is not None and event.step_key and (worker := worker_name_of(event)):
                    steps[event.step_key] = worker
            return run, steps
        finally:
            instance.dispose()


def test_the_run_and_its_events_are_in_postgresql(nights):
    import dagster as dg

    run, steps = _celery_events(nights)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags.get("dagster/partition") == PARTITION
    assert len(steps) >= 40, "every step of the night reports the worker that executed it"
    # the in-process night kept its runs in SQLite under HOME/.dagster, the Celery night did not
    assert (nights["homes"]["local"] / ".dagster" / "history" / "runs.db").exists()
    assert not (nights["homes"]["celery"] / ".dagster" / "history" / "runs.db").exists()


def test_steps_ran_in_both_workers_and_extractions_on_their_departments_queue(nights):
    _, steps = _celery_events(nights)
    host = socket.gethostname()
    assert set(steps.values()) == {f"w1@{host}", f"w2@{host}"}, "both workers executed steps"
    bronze = {step: worker for step, worker in steps.items() if step.startswith("bronze__")}
    assert len(bronze) >= 10
    for step, worker in bronze.items():
        department = step.split("__")[1]
        listens = [name for name, queues in nights["queues"].items() if department in queues]
        assert worker == f"{listens[0]}@{host}", f"{step} ran in {worker}, not on the queue of {department}"
    # everything else went to the default queue, which both workers take
    others = {w for s, w in steps.items() if not s.startswith("bronze__")}
    assert others, "steps other than the extractions ran through Celery too"


def test_the_celery_nights_lake_is_on_s3(nights):
    import boto3

    lake, env = nights["s3_lake"]
    bucket, prefix = lake.removeprefix("s3://").split("/", 1)
    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    for layer in ("bronze", "silver", "gold"):
        assert any(k.startswith(f"{prefix}/{layer}/") and "/_delta_log/" in k for k in keys), layer
    assert not (nights["homes"]["celery"] / "lake").exists()  # nothing of the lake on the workers' disk
    assert (nights["homes"]["local"] / "lake" / "silver").is_dir()
