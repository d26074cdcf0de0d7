"""Benchmark: bronze rows per second through standardization, end to end — bronze Delta -> staging models
(+ quarantine, + reconciliation) -> canonical intermediate tables — on a simulated estate.

Run:  .venv/bin/python bench/bench_silver.py [--enterprises 60000] [--home /tmp/qst-bench-silver]
      (make bench-silver)

Simulates the estate into SQLite (seed 1), loads every table into bronze (not timed), then times
``models.silver.build_staging`` for every staging spec and ``build_intermediate`` for the three canonical
tables, in this process, one after the other, and prints per table: bronze rows, seconds, rows/s, and the
peak resident memory. The figure of the issue is the total: bronze rows / seconds over all staging models
(target >= 200,000 rows/s on the 2-core machine); the canonical tables are printed beside it.
Two sizes are run (a quarter and the full size) so that memory staying bounded by the batch can be seen.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.config import load_sources  # noqa: E402
from connectors.extract import load_file_drop, load_table  # noqa: E402
from models import canonical, silver  # noqa: E402
from models.staging.spec import load_specs  # noqa: E402
from simulator import estate  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(size: int, home: Path) -> tuple[int, float]:
    shutil.rmtree(home, ignore_errors=True)
    out = home / "estate"
    started = time.perf_counter()
    estate.simulate(out, enterprises=size, seed=1)
    config = load_sources(out / "sources.yaml")
    for dept, table in config.iter_tables():
        load_table(config, dept, table, home, batch_id="bench", reconcile=False)
    for dept, drop in config.iter_files():
        load_file_drop(dept, drop, home, batch_id="bench")
    print(f"\n{size:,} enterprises: simulated and loaded into bronze in {time.perf_counter() - started:.0f}s "
          f"(not timed below)")
    specs = load_specs()
    infos = silver.source_infos(config)
    chosen = [specs[s] for s in infos if s in specs]
    print(f"  {'model':<38}{'bronze rows':>12}{'seconds':>9}{'rows/s':>11}{'quarant.':>9}{'peak MB':>9}")
    total_rows, total_secs = 0, 0.0
    for spec in chosen:
        report = silver.build_staging(home, spec, infos[spec.source])
        assert report.reconciliation.ok, report.reconciliation.describe()
        total_rows += report.bronze_rows
        total_secs += report.seconds
        print(f"  {spec.name:<38}{report.bronze_rows:>12,}{report.seconds:>9.2f}{report.rows_per_second:>11,.0f}"
              f"{report.quarantined_rows:>9,}{peak_mb():>9,.0f}")
    print(f"  {'ALL STAGING MODELS':<38}{total_rows:>12,}{total_secs:>9.2f}{total_rows / total_secs:>11,.0f}"
          f"{'':>9}{peak_mb():>9,.0f}")
    int_secs = 0.0
    for table in canonical.INTERMEDIATE_TABLES:
        report = silver.build_intermediate(home, table, chosen)
        int_secs += report.seconds
        print(f"  {table:<38}{report.rows:>12,}{report.seconds:>9.2f}{report.rows / report.seconds:>11,.0f}"
              f"{'':>9}{peak_mb():>9,.0f}")
    print(f"  end to end (staging + canonical): {total_rows:,} bronze rows in {total_secs + int_secs:.1f}s = "
          f"{total_rows / (total_secs + int_secs):,.0f} bronze rows/s")
    return total_rows, total_secs + int_secs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--enterprises", type=int, default=60_000)
    parser.add_argument("--home", type=Path, default=Path("/tmp/qst-bench-silver"))
    args = parser.parse_args()
    print("bronze -> silver (staging models, quarantine, canonical tables), 2 cores, seed 1")
    for size in (args.enterprises // 4, args.enterprises):
        run(size, args.home)
    print("\ntarget: >= 200,000 bronze rows/s through standardization; peak memory bounded by the batch "
          f"({silver.DEFAULT_BATCH_ROWS:,} rows), not the table")
    shutil.rmtree(args.home, ignore_errors=True)


if __name__ == "__main__":
    main()
