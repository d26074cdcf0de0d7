"""Benchmark: how fast `qst simulate` fills SQLite (target: >= 100k source rows/s), and its peak memory.

Run:  .venv/bin/python bench/bench_simulate.py [--enterprises 200000] [--out /tmp/qst-bench-estate]
Prints rows, seconds, rows/s per unit of 20,000 enterprises and overall, and the peak resident memory,
twice at two sizes so that memory staying flat as the estate grows can be seen.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator import estate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--enterprises", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/qst-bench-estate"))
    args = parser.parse_args()
    print("qst simulate into SQLite (the embedded default), seed 1")
    print(f"{'enterprises':>12}{'rows':>14}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>14}")
    for size in (args.enterprises // 4, args.enterprises):
        shutil.rmtree(args.out, ignore_errors=True)
        started = time.perf_counter()
        state = estate.simulate(args.out, enterprises=size, seed=1)
        seconds = time.perf_counter() - started
        rows = sum(state.rows.values())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{size:>12,}{rows:>14,}{seconds:>10.1f}{rows / seconds:>12,.0f}{peak:>14,.0f}")
    print(
        "target: >= 100,000 rows/s; peak memory bounded by the unit size (20,000 enterprises), not the estate"
    )
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
