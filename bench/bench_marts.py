"""Benchmark of the marts: the build (seconds per step, total, peak RSS) and the dashboard's queries (p50/p95 ms
over N runs each, parameters drawn from the data), for a HOME that has silver and gold.

    .venv/bin/python bench/bench_marts.py --home /tmp/g1 [--runs 200] [--no-build]

Targets (issue 6, on the estate of ``qst simulate --enterprises 1000000``): the whole build <= 5 minutes, each
dashboard query <= 100 ms at the 95th percentile. The queries run on a fresh read-only connection, as the
dashboard's would, with parameters cycling over real USCCs, names, districts and departments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb

from models.marts.build import build_marts, describe, marts_path
from models.marts.contract import DASHBOARD_QUERIES


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parameter_sets(con: duckdb.DuckDBPyConnection, n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    rows = con.execute(
        "SELECT uscc, name, entity_id FROM (SELECT * FROM mart_enterprise_360 WHERE uscc IS NOT NULL) "
        "USING SAMPLE 2000 ROWS"
    ).fetchall()
    divisions = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT division_code FROM mart_abnormal_distribution WHERE division_code IS NOT NULL"
        ).fetchall()
    ] or ["440305"]
    departments = [
        r[0] for r in con.execute("SELECT DISTINCT department FROM mart_department_scorecard").fetchall()
    ] or ["samr"]
    latest = con.execute("SELECT max(as_of_date) FROM mart_credit_risk").fetchall()[0][0] or dt.date.today()
    out = []
    for _ in range(n):
        uscc, name, entity_id = rng.choice(rows)
        out.append(
            {
                "uscc": uscc,
                "name": name if rng.random() < 0.5 else name[:4],
                "limit": 20,
                "entity_id": entity_id,
                "division_code": rng.choice(divisions),
                "from_month": latest.replace(day=1) - dt.timedelta(days=730),
                "to_month": latest,
                "since": latest - dt.timedelta(days=90),
                "department": rng.choice(departments),
                "grain": rng.choice(["day", "month"]),
            }
        )
    return out


def bench_queries(path: Path, runs: int) -> dict[str, tuple[float, float, float]]:
    con = duckdb.connect(str(path), read_only=True)
    params = parameter_sets(con, runs)
    out = {}
    for name, sql in DASHBOARD_QUERIES.items():
        times = []
        for p in params:
            wanted = {k: v for k, v in p.items() if f"${k}" in sql}
            t0 = time.perf_counter()
            con.execute(sql, wanted or None).fetchall() if wanted else con.execute(sql).fetchall()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        out[name] = (statistics.median(times), times[int(0.95 * (len(times) - 1))], times[-1])
    con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--no-build", action="store_true", help="only the queries, on the existing file")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit for the build, e.g. 8GB")
    args = parser.parse_args()
    if not args.no_build:
        t0 = time.perf_counter()
        report = build_marts(args.home, memory_limit=args.memory_limit)
        print(describe(report))
        print(
            f"build total {time.perf_counter() - t0:.1f} s (target <= 300 s), peak RSS {_peak_rss_mb():.0f} MB"
        )
        print(f"file size {marts_path(args.home).stat().st_size / 1e6:.1f} MB")
    print(f"dashboard queries, {args.runs} runs each (target p95 <= 100 ms):")
    for name, (p50, p95, worst) in bench_queries(marts_path(args.home), args.runs).items():
        flag = "" if p95 <= 100 else "  OVER TARGET"
        print(f"  {name:<32} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  max {worst:7.2f} ms{flag}")


if __name__ == "__main__":
    main()
