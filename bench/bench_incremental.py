"""Benchmark: an incremental night of silver against a full rebuild of the same night (issue 17, item 1).

Run:  .venv/bin/python bench/bench_incremental.py [--enterprises 100000] [--days 1] [--home /tmp/bench-incremental]

Night 1: the simulated city into SQLite, bronze, silver (full: nothing to build on). Then the estate moves on
``--days`` days (``simulator.estate.advance``: new enterprises and filings, renames, updates, deletions) and bronze
loads incrementally. Side by side on that same bronze, each in a fresh child process (its own peak memory):

- **incremental**: the staging models restage only the rows bronze wrote since night 1 (models/staging_changes.py);
- **full** (the anchor: what every night did before): every staging model rebuilt from every live bronze row, in a
  second home whose ``lake/bronze`` is the first one's.

The canonical tables (``int_*``) follow the same way (models/canonical_changes.py) against their full rebuild.
Printed: seconds and peak RSS of each, bronze rows changed, and whether the two give equal tables (every staging
model, quarantine and canonical table, rows in one order).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _chosen(sources: Path):
    from connectors.config import load_sources
    from models import silver
    from models.staging.spec import load_specs

    config = load_sources(sources)
    specs, infos = load_specs(), silver.source_infos(config)
    return [(specs[s], infos[s]) for s in infos if s in specs]


def load_bronze(sources: Path, home: Path, batch: str) -> dict:
    from connectors.config import load_sources
    from connectors.extract import load_file_drop, load_table

    started = time.perf_counter()
    config = load_sources(sources)
    rows = 0
    for dept, table in config.iter_tables():
        report = load_table(config, dept, table, home, batch_id=batch)
        if not report.reconciled:
            raise SystemExit(f"bronze {dept.key}/{table.asset} did not reconcile")
        rows += report.rows_read
    for dept, drop in config.iter_files():
        load_file_drop(dept, drop, home, batch_id=batch)
    return {"seconds": time.perf_counter() - started, "peak_mb": _peak_mb(), "rows_read": rows}


def build_staging(sources: Path, home: Path, full: bool) -> dict:
    from models import silver

    started = time.perf_counter()
    modes: dict[str, int] = {}
    staged = changed = 0
    for spec, info in _chosen(sources):
        report = silver.build_staging(home, spec, info, full=full)
        modes[report.mode] = modes.get(report.mode, 0) + 1
        staged += report.bronze_rows
        changed += report.changed_bronze_rows
    return {
        "seconds": time.perf_counter() - started,
        "peak_mb": _peak_mb(),
        "rows_staged": staged,
        "bronze_rows_changed": changed,
        "modes": modes,
    }


def build_intermediate(sources: Path, home: Path, full: bool = True) -> dict:
    from models import canonical, silver

    started = time.perf_counter()
    chosen = _chosen(sources)
    specs, infos = [spec for spec, _info in chosen], {spec.source: info for spec, info in chosen}
    modes: dict[str, int] = {}
    keys = 0
    for table in canonical.INTERMEDIATE_TABLES:
        report = silver.build_intermediate(home, table, specs, infos=infos, full=full)
        modes[report.mode] = modes.get(report.mode, 0) + 1
        keys += report.changed_keys
    return {"seconds": time.perf_counter() - started, "peak_mb": _peak_mb(), "modes": modes, "keys": keys}


def same_tables(sources: Path, a: Path, b: Path) -> tuple[bool, list[str]]:
    """Every staging model, quarantine and canonical table of ``a`` and ``b``, rows in one order, compared."""
    from lake.delta import read_frame
    from lake.layout import quarantine_mentions_path, quarantine_rows_path, silver_path
    from models import canonical

    names = []
    for spec, _info in _chosen(sources):
        names.append((silver_path, (spec.name,)))
        names.append((quarantine_rows_path, (spec.department, spec.asset)))
    for table in canonical.INTERMEDIATE_TABLES:
        names.append((silver_path, (table,)))
        if table in canonical.RECORD_TABLES:
            names.append((quarantine_mentions_path, (table,)))
    differ = []
    key = ["source_department", "source_asset", "source_pk", "_h"]
    for where, parts in names:
        x, y = read_frame(where(a, *parts)), read_frame(where(b, *parts))
        if x is None or y is None:
            differ.append("/".join(parts))
            continue
        x, y = (f.with_columns(_h=f.hash_rows(seed=0)).sort(key) for f in (x, y))
        if not x.equals(y):
            differ.append("/".join(parts))
    return not differ, differ


def child(fn, *args):
    """``fn(*args)`` in a fresh spawned process: its figures, its own peak memory."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--home", type=Path, default=Path("/tmp/bench-incremental"))
    args = parser.parse_args()
    import simulator.estate as est

    root = args.home
    shutil.rmtree(root, ignore_errors=True)
    estate, inc, full = root / "estate", root / "incremental", root / "full"
    sources = estate / "sources.yaml"
    started = time.perf_counter()
    est.simulate(estate, enterprises=args.enterprises, seed=args.seed)
    print(f"simulated {args.enterprises:,} enterprises in {time.perf_counter() - started:.0f} s", flush=True)
    night1 = child(load_bronze, sources, inc, "night-1")
    print(f"night 1 bronze: {night1['rows_read']:,} rows, {night1['seconds']:.0f} s", flush=True)
    first = child(build_staging, sources, inc, False)
    print(f"night 1 staging (full): {first['seconds']:.1f} s, peak {first['peak_mb']:,.0f} MB", flush=True)
    child(build_intermediate, sources, inc, True)
    est.advance(estate, args.days)
    night2 = child(load_bronze, sources, inc, "night-2")
    print(f"night 2 bronze: {night2['rows_read']:,} rows read, {night2['seconds']:.0f} s", flush=True)
    (full / "lake").mkdir(parents=True)
    (full / "lake" / "bronze").symlink_to(inc / "lake" / "bronze")
    shutil.copytree(inc / "lake" / "silver", full / "lake" / "silver")
    shutil.copytree(inc / "lake" / "quarantine", full / "lake" / "quarantine")

    incremental = child(build_staging, sources, inc, False)
    anchor = child(build_staging, sources, full, True)
    canon_inc = child(build_intermediate, sources, inc, False)
    canon_full = child(build_intermediate, sources, full, True)
    equal, differ = same_tables(sources, inc, full)
    print()
    print(f"silver, night 2 of a {args.enterprises:,}-enterprise city ({args.days} day(s) of change)")
    print(f"{'':44}{'seconds':>10}{'peak MB':>10}")
    rows = (
        ("staging models, incremental (changed rows)", incremental),
        ("staging models, full rebuild (anchor)", anchor),
        ("canonical tables, incremental", canon_inc),
        ("canonical tables, full rebuild (anchor)", canon_full),
    )
    for name, r in rows:
        print(f"{name:44}{r['seconds']:>10.1f}{r['peak_mb']:>10,.0f}")
    both_inc = incremental["seconds"] + canon_inc["seconds"]
    both_full = anchor["seconds"] + canon_full["seconds"]
    print(
        f"bronze rows changed: {incremental['bronze_rows_changed']:,} (staged {incremental['rows_staged']:,} of "
        f"{anchor['rows_staged']:,}); staging modes {incremental['modes']}, canonical modes {canon_inc['modes']} "
        f"({canon_inc['keys']:,} source rows replaced)"
    )
    print(
        f"silver in all: incremental {both_inc:.1f} s, full {both_full:.1f} s ({both_full / both_inc:.1f}x)"
    )
    print(f"incremental tables equal the full rebuild: {equal}" + ("" if equal else f" -- differ: {differ}"))


if __name__ == "__main__":
    main()
