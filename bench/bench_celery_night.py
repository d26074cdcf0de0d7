"""Benchmark: the demo night in-process vs. through Celery with two workers (issue 17, item 3).

Run:  .venv/bin/python bench/bench_celery_night.py [--enterprises 3000] [--out /tmp/qst-bench-celery]

Needs the local RabbitMQ (127.0.0.1:5672, guest/guest, and rabbitmqctl: a virtual host is made for the run and
deleted after) and PostgreSQL (127.0.0.1:5432, user postgres, trust: a database is made and dropped). Simulates
the demo's city (seed 1; not timed), then times `qst run --until exports` twice, one after the other on the
same estate into two HOMEs: in-process (the default), then with ``execution.mode: celery`` and two
`qst worker` processes started beforehand (their start-up not timed), each taking the default queue and half
of the departments' queues. Prints the seconds of each, the steps each worker executed, and `uptime` before
and after (the machine is shared: say its load with the figure).

What the figure means on one machine: two workers on a 2-core machine can at best run two steps at once, as
Dagster's multiprocess executor would; the in-process night runs one step at a time but pays no per-step
hand-over (the broker, the run storage, rebuilding the job in the worker). Celery's point is several machines
and each department's extraction where its database is reachable, not speed on one machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
QST = REPO / ".venv" / "bin" / "qst"
PARTITION = "2026-11-01"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def deployment(folder: Path, mode: str) -> Path:
    from lake.deployment import EXAMPLE_DEPLOYMENT

    folder.mkdir(parents=True)
    for entry in EXAMPLE_DEPLOYMENT.iterdir():
        if entry.name != "platform.yaml":
            (folder / entry.name).symlink_to(entry)
    (folder / "platform.yaml").write_text(f"execution:\n  mode: {mode}\n")
    return folder


def night(home: Path, estate: Path, env: dict[str, str], log: Path) -> float:
    args = [str(QST), "run", "--config", str(estate / "sources.yaml"), "--home", str(home)]
    args += ["--date", PARTITION, "--until", "exports", "--skip-check"]
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"the night failed ({code}): see {log}")
    return seconds


def main() -> None:
    import sqlalchemy as sa

    from connectors.config import load_sources
    from simulator.estate import simulate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enterprises", type=int, default=3_000, help="the demo's city (qst demo): 3,000")
    parser.add_argument("--out", type=Path, default=Path("/tmp/qst-bench-celery"))
    opts = parser.parse_args()
    shutil.rmtree(opts.out, ignore_errors=True)
    opts.out.mkdir(parents=True)
    estate = opts.out / "estate"
    simulate(estate, enterprises=opts.enterprises, seed=1)
    departments = sorted(load_sources(estate / "sources.yaml").departments)

    tag = uuid.uuid4().hex[:10]
    vhost, database = f"qst_bench_{tag}", f"qst_bench_{tag}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True
    )
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f'CREATE DATABASE "{database}"'))
    base = {k: v for k, v in os.environ.items() if not k.startswith("QST_")}
    base["QST_EXPORT_HMAC_KEY"] = os.environ.get("QST_EXPORT_HMAC_KEY") or uuid.uuid4().hex * 2
    from models.exports.signing import SIGNING_KEY_ENV, new_key_text

    base[SIGNING_KEY_ENV] = os.environ.get(SIGNING_KEY_ENV) or new_key_text()  # signs the packages
    local_env = {**base, "QST_DEPLOYMENT": str(deployment(opts.out / "local_deployment", "in_process"))}
    celery_env = {
        **base,
        "QST_DEPLOYMENT": str(deployment(opts.out / "celery_deployment", "celery")),
        "QST_CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "QST_RUN_STORAGE_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}",
    }
    workers: list[subprocess.Popen] = []
    try:
        print(f"{opts.enterprises:,} enterprises, night {PARTITION}, through the exports")
        print(f"before: {uptime()}")
        local = night(opts.out / "local_home", estate, local_env, opts.out / "local.log")
        print(f"in-process:          {local:7.1f} s")
        for i, queues in enumerate((departments[0::2], departments[1::2]), start=1):
            args = [str(QST), "worker", "--name", f"w{i}", "--queue", "default"]
            for q in queues:
                args += ["--queue", q]
            log = (opts.out / f"w{i}.log").open("w")
            workers.append(
                subprocess.Popen(
                    args, env=celery_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        while not all(" ready." in (opts.out / f"w{i}.log").read_text() for i in (1, 2)):
            time.sleep(0.5)
        celery = night(opts.out / "celery_home", estate, celery_env, opts.out / "celery.log")
        print(f"Celery, 2 workers:   {celery:7.1f} s  ({celery / local:.2f}x the in-process night)")
        host = socket.gethostname()
        for i in (1, 2):
            steps = len(
                re.findall(r"Task execute_plan\[.*\] succeeded", (opts.out / f"w{i}.log").read_text())
            )
            print(f"  w{i}@{host}: {steps} steps")
        print(f"after:  {uptime()}")
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=60)
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)
        with admin.connect() as con:
            con.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
