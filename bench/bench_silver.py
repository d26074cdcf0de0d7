"""Benchmark: bronze rows per second through standardization, end to end — bronze Delta -> staging models
(+ quarantine, + reconciliation) -> canonical intermediate tables — on a simulated estate.

Run:  .venv/bin/python bench/bench_silver.py [--enterprises 400000] [--home /tmp/qst-bench-silver]
      (or: make bench-silver)

For each of two sizes (a quarter and the full ``--enterprises``): a child process simulates the estate into
SQLite (seed 1) and loads every table into bronze (not timed); then a fresh child process builds silver and
times it, so its peak memory is silver's alone: the one-time warm-up of the standardizers (division and name
tables, compiled patterns) first, then ``models.silver.build_staging`` for every staging spec and
``build_intermediate`` for the three canonical tables, one after the other (as ``qst run`` does). Printed per
table: bronze rows, seconds, rows/s, quarantined rows and the peak resident memory so far; then the totals.
The figure of the issue is the staging total, bronze rows / seconds over every staging model (target >= 200,000
rows/s on the 2-core machine); the end-to-end figure adds the canonical tables.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(home: Path, size: int) -> None:
    from connectors.config import load_sources
    from connectors.extract import load_file_drop, load_table
    from simulator import estate

    shutil.rmtree(home, ignore_errors=True)
    out = home / "estate"
    estate.simulate(out, enterprises=size, seed=1)
    config = load_sources(out / "sources.yaml")
    for dept, table in config.iter_tables():
        load_table(config, dept, table, home, batch_id="bench", reconcile=False)
    for dept, drop in config.iter_files():
        load_file_drop(dept, drop, home, batch_id="bench")


def build(home: Path) -> dict:
    from connectors.config import load_sources
    from models import canonical, silver
    from models.staging.spec import load_specs
    from quality.quarantine import reconcile_staging

    config = load_sources(home / "estate" / "sources.yaml")
    specs = load_specs()
    infos = silver.source_infos(config)
    chosen = [specs[s] for s in infos if s in specs]
    started = time.perf_counter()
    silver.warm_up(chosen, infos)
    warm = time.perf_counter() - started
    print(f"  warm-up of the standardizers (once per process): {warm:.2f}s", flush=True)
    print(f"  {'model':<38}{'bronze rows':>12}{'seconds':>9}{'rows/s':>11}{'quarant.':>9}{'peak MB':>9}")
    rows, staging = 0, 0.0
    for spec in chosen:
        report = silver.build_staging(home, spec, infos[spec.source])
        rec = reconcile_staging(home, spec)
        assert rec.ok, rec.describe()
        rows += report.bronze_rows
        staging += report.seconds
        print(
            f"  {spec.name:<38}{report.bronze_rows:>12,}{report.seconds:>9.2f}{report.rows_per_second:>11,.0f}"
            f"{report.quarantined_rows:>9,}{peak_mb():>9,.0f}",
            flush=True,
        )
    print(
        f"  {'ALL STAGING MODELS':<38}{rows:>12,}{staging:>9.2f}{rows / staging:>11,.0f}{'':>9}{peak_mb():>9,.0f}"
    )
    intermediate = 0.0
    for table in canonical.INTERMEDIATE_TABLES:
        report = silver.build_intermediate(home, table, chosen)
        intermediate += report.seconds
        print(
            f"  {table:<38}{report.rows:>12,}{report.seconds:>9.2f}{report.rows / report.seconds:>11,.0f}"
            f"{'':>9}{peak_mb():>9,.0f}",
            flush=True,
        )
    total = staging + intermediate
    print(
        f"  end to end (staging + canonical): {rows:,} bronze rows in {total:.1f}s = {rows / total:,.0f} rows/s; "
        f"with the warm-up {rows / (total + warm):,.0f} rows/s; peak {peak_mb():,.0f} MB"
    )
    return {"rows": rows, "staging_s": staging, "total_s": total, "warm_s": warm, "peak_mb": peak_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--enterprises", type=int, default=400_000)
    parser.add_argument("--home", type=Path, default=Path("/tmp/qst-bench-silver"))
    parser.add_argument("--child", choices=["prepare", "build"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "prepare":
        prepare(args.home, args.size)
        return
    if args.child == "build":
        print("RESULT " + json.dumps(build(args.home)), flush=True)
        return
    from models.silver import DEFAULT_BATCH_ROWS

    print("bronze -> silver (staging models, quarantine, canonical tables), seed 1, 2 cores")
    results = []
    for size in (args.enterprises // 4, args.enterprises):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--child", "prepare", "--size", str(size), "--home", str(args.home)],
            check=True,
            cwd=REPO,
        )
        print(
            f"\n{size:,} enterprises: simulated and loaded into bronze in {time.perf_counter() - started:.0f}s "
            "(not timed)",
            flush=True,
        )
        proc = subprocess.run(
            [sys.executable, __file__, "--child", "build", "--home", str(args.home)],
            check=True,
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        out = [line for line in proc.stdout.splitlines() if not line.startswith("RESULT ")]
        print("\n".join(out), flush=True)
        results.append((size, json.loads(proc.stdout.split("RESULT ", 1)[1])))
    print("\n  enterprises   bronze rows   staging rows/s   end-to-end rows/s   peak MB")
    for size, r in results:
        print(
            f"  {size:>11,}{r['rows']:>14,}{r['rows'] / r['staging_s']:>17,.0f}{r['rows'] / r['total_s']:>20,.0f}"
            f"{r['peak_mb']:>10,.0f}"
        )
    print(
        f"\ntarget: >= 200,000 bronze rows/s through standardization; memory bounded by the batch "
        f"({DEFAULT_BATCH_ROWS:,} rows), not the table"
    )
    shutil.rmtree(args.home, ignore_errors=True)


if __name__ == "__main__":
    main()
