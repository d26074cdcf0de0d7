"""Benchmark: the demo night with the lake on local disk vs on an S3 endpoint (issue 17, item 3).

Simulates a city (default 1,000 enterprises), then runs the same night (``run_pipeline`` to the marts) twice,
each in its own fresh subprocess and HOME: once with the lake at ``HOME/lake`` (no platform.yaml), once with
``lake.root: s3://<bucket>/night`` in a copy of the example deployment. The S3 endpoint is a moto server started
here on the loopback (in-memory, one Python process: a stand-in for the object store's protocol and round
trips, not for a real store's throughput), or ``$QST_BENCH_S3_URL`` with the ``AWS_*`` credentials of the
environment. Prints the seconds of each night, the ratio, and whether their marts have the same rows.

Run:  .venv/bin/python bench/bench_lake_s3.py [--enterprises 1000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from connectors.config import load_sources
from pipelines.runner import run_pipeline
config = load_sources(Path(sys.argv[1]))
t0 = time.perf_counter()
outcome = run_pipeline(config, Path(sys.argv[2]), partition=sys.argv[3], until="marts")
print(json.dumps({"seconds": time.perf_counter() - t0, "success": outcome.success,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2):
            return True
    except OSError:
        return False


def _moto() -> tuple[str, subprocess.Popen | None]:
    url = os.environ.get("QST_BENCH_S3_URL", "").rstrip("/")
    if url:
        return url, None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        if _answers(url):
            break
        time.sleep(0.1)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    return url, server


def _night(sources: Path, home: Path, partition: str, env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(sources), str(home), partition],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"the night failed in {home}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _marts(path: Path) -> dict[str, list]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {
            n: sorted(con.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)
            for n in names
            if n != "meta_build"
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    import boto3

    from lake.deployment import DEPLOYMENT_ENV, EXAMPLE_DEPLOYMENT
    from simulator import estate as est

    work = Path(tempfile.mkdtemp(prefix="qst-bench-s3-"))
    url, server = _moto()
    try:
        print(f"simulating {args.enterprises:,} enterprises ...", flush=True)
        state = est.simulate(work / "estate", enterprises=args.enterprises, seed=7)
        sources, partition = work / "estate" / "sources.yaml", str(state.as_of)
        base = {k: v for k, v in os.environ.items() if k != DEPLOYMENT_ENV}
        base.setdefault("QST_EXPORT_HMAC_KEY", "a-bench-secret-of-thirty-two-chars!")
        s3_env = {**base, "AWS_ENDPOINT_URL": url, "AWS_EC2_METADATA_DISABLED": "true"}
        bucket = f"qst-bench-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", endpoint_url=url).create_bucket(Bucket=bucket)
        times: dict[str, list[float]] = {"local": [], "s3": []}
        homes: dict[str, Path] = {}
        for r in range(args.rounds):
            deployment = work / f"deployment{r}"
            shutil.copytree(EXAMPLE_DEPLOYMENT, deployment)
            (deployment / "platform.yaml").write_text(
                f"lake:\n  root: s3://{bucket}/night{r}\n", encoding="utf-8"
            )
            for mode, env in (("local", base), ("s3", {**s3_env, DEPLOYMENT_ENV: str(deployment)})):
                home = homes[mode] = work / f"{mode}{r}"
                got = _night(sources, home, partition, env)
                times[mode].append(got["seconds"])
                print(
                    f"round {r + 1} {mode:5s}: {got['seconds']:6.1f} s  (peak {got['peak_mb']:.0f} MB, "
                    f"success {got['success']})",
                    flush=True,
                )
        local, s3 = min(times["local"]), min(times["s3"])
        same = _marts(homes["local"] / "marts.duckdb") == _marts(homes["s3"] / "marts.duckdb")
        print(
            f"\nthe night to the marts, {args.enterprises:,} enterprises (best of {args.rounds}): "
            f"local disk {local:.1f} s, S3 (moto at {url}) {s3:.1f} s, ratio {s3 / local:.2f}x; "
            f"marts identical: {same}"
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
