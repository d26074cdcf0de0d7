"""Benchmark: a big PostgreSQL table into Delta — Quanshitong's bronze load vs dlt, side by side.

The table is the simulator's tax filings (税务 SB_ZSXX, 7 columns incl. two decimal(18,2)) on the local
PostgreSQL server, at 2 million and then 8 million rows. For each size, each loader runs in its own fresh
subprocess (so peak RSS is that loader's alone), one after the other on the same table:

- Quanshitong: ``connectors.extract.load_table`` (connectorx arrow stream -> Delta, lineage columns,
  row hashes, upsert-ready);
- dlt 1.31: ``sql_table(backend="connectorx")`` into the ``filesystem`` destination with
  ``table_format="delta"`` (write_disposition append: dlt's fastest mode, no merge).

Then an incremental night: 1% new rows are inserted at the source and Quanshitong runs again; it must
read only those rows. Prints rows/s, seconds and peak memory for each loader and the ratios, then
Quanshitong's seconds per phase (``TableLoadReport.timings``: ``read`` is time spent waiting for the
reader; ``append``/``merge`` run on the commit thread, overlapping the others).

Run:  make bench-bronze    (or: .venv/bin/python bench/bench_bronze_vs_dlt.py [--sizes 2000000 8000000])
Needs the bench dependency group (dlt): scripts/bootstrap.sh --group bench.
Targets on the 2-core machine: Quanshitong >= 1.5x dlt's rows/s; peak < 0.6 GB at every size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ADMIN_URL = os.environ.get("QST_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ROWS_PER_ENTERPRISE = 3.6 * 0.85 * 0.95  # filings per enterprise (active taxpayers x Poisson(3.6))

QST_CHILD = r"""
import json, resource, sys, time, datetime as dt
from pathlib import Path
from connectors.config import load_sources
from connectors.extract import load_table
config = load_sources(Path(sys.argv[1]))
dept = config.department("tax")
t0 = time.perf_counter()
r = load_table(config, dept, dept.table("filings"), Path(sys.argv[2]), batch_id=sys.argv[3], reconcile=False)
secs = time.perf_counter() - t0
print(json.dumps({"rows": r.rows_read, "seconds": secs, "inserted": r.rows_inserted,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "reader": r.reader,
                  "timings": r.timings, "key_snapshot": r.key_snapshot}))
"""

DLT_CHILD = r"""
import json, resource, sys, time
import dlt
from dlt.sources.sql_database import sql_table
url, table, out = sys.argv[1], sys.argv[2], sys.argv[3]
pipeline = dlt.pipeline(pipeline_name="bench_dlt", destination=dlt.destinations.filesystem(bucket_url=out),
                        dataset_name="bronze", pipelines_dir=out + "/_pipelines")
resource_ = sql_table(credentials=url, table=table,
                      backend="connectorx", chunk_size=100_000, reflection_level="full_with_precision")
t0 = time.perf_counter()
info = pipeline.run(resource_, table_format="delta", loader_file_format="parquet")
secs = time.perf_counter() - t0
rows = pipeline.last_trace.last_normalize_info.row_counts.get(table.lower(), 0) if pipeline.last_trace else 0
print(json.dumps({"rows": rows, "seconds": secs,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RUNTIME__LOG_LEVEL": "WARNING"}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ensure_database(name: str) -> str:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if not exists:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def filings_estate(rows: int, work: Path) -> tuple[Path, str, int]:
    """A PostgreSQL database holding ~``rows`` simulated filings (reused when it is already there)."""
    from simulator import estate as est

    url = ensure_database(f"qst_bench_filings_{rows}")
    out = work / f"estate_{rows}"
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        have = conn.execute(sa.text("SELECT to_regclass('\"SB_ZSXX\"') IS NOT NULL")).scalar_one()
        count = conn.execute(sa.text('SELECT COUNT(*) FROM "SB_ZSXX"')).scalar_one() if have else 0
    engine.dispose()
    if count < 0.9 * rows or not (out / "sources.yaml").exists():
        started = time.perf_counter()
        print(f"  simulating ~{rows:,} filings into PostgreSQL ...", flush=True)
        est.simulate(
            out,
            enterprises=int(rows / ROWS_PER_ENTERPRISE),
            seed=7,
            targets={"tax": url},
            only=["tax.SB_ZSXX"],
        )
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            count = conn.execute(sa.text('SELECT COUNT(*) FROM "SB_ZSXX"')).scalar_one()
        engine.dispose()
        print(f"  ... {count:,} rows in {time.perf_counter() - started:.0f}s", flush=True)
    os.environ["QST_TAX_URL"] = url
    return out, url, count


def phases(result: dict) -> str:
    """The loader's per-phase seconds (connectors.extract.TableLoadReport.timings), biggest first.

    ``read`` is the time spent waiting for the reader; ``append``/``merge`` run on the commit thread,
    overlapping the other phases, and ``wait_commit`` is the time spent waiting for them.
    """
    timings = result.get("timings") or {}
    shown = sorted(((k, v) for k, v in timings.items() if v >= 0.005), key=lambda kv: -kv[1])
    text = ", ".join(f"{k} {v:.2f}s" for k, v in shown) or "-"
    return text + ("" if result.get("key_snapshot") else " (no key snapshot)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000_000, 8_000_000])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "qst-bench-bronze")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"PostgreSQL -> Delta, table SB_ZSXX (simulated tax filings), {os.cpu_count()} cores")
    results = []
    for size in args.sizes:
        estate, url, count = filings_estate(size, args.work)
        home = args.work / f"qst_home_{size}"
        dlt_out = args.work / f"dlt_{size}"
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(dlt_out, ignore_errors=True)
        qst = child(QST_CHILD, str(estate / "sources.yaml"), str(home), f"bench-{size}")
        dl = child(DLT_CHILD, url, "SB_ZSXX", str(dlt_out))
        engine = sa.create_engine(url)
        with engine.begin() as conn:  # an incremental night: 1% new filings arrive
            new = count // 100
            conn.execute(
                sa.text(
                    'INSERT INTO "SB_ZSXX" SELECT "ID" + 1000000000000, "NSRSBH", "SSQ", "ZSXM", '
                    '"YNSE", "YJSE", "RKRQ" FROM "SB_ZSXX" ORDER BY "ID" LIMIT :n'
                ),
                {"n": new},
            )
        incr = child(QST_CHILD, str(estate / "sources.yaml"), str(home), f"bench-{size}-night2")
        with engine.begin() as conn:
            conn.execute(sa.text('DELETE FROM "SB_ZSXX" WHERE "ID" >= 1000000000000'))
        engine.dispose()
        results.append((count, qst, dl, incr, new))
    print()
    print(f"{'rows':>12} {'loader':<12}{'seconds':>9}{'rows/s':>11}{'peak MB':>10}")
    for count, qst, dl, incr, new in results:
        for name, r in (("quanshitong", qst), ("dlt", dl)):
            print(
                f"{count:>12,} {name:<12}{r['seconds']:>9.1f}{count / r['seconds']:>11,.0f}{r['peak_mb']:>10,.0f}"
            )
        print(
            f"{'':>12} ratio: Quanshitong/dlt throughput {dl['seconds'] / qst['seconds']:.2f}x, "
            f"peak memory {qst['peak_mb'] / dl['peak_mb']:.2f}x (reader: {qst['reader']})"
        )
        print(
            f"{'':>12} incremental night: {new:,} new rows at the source; Quanshitong read {incr['rows']:,} rows "
            f"in {incr['seconds']:.1f}s (peak {incr['peak_mb']:,.0f} MB)"
        )
        print(f"{'':>12} Quanshitong phases, first load: {phases(qst)}")
        print(f"{'':>12} Quanshitong phases, incremental night: {phases(incr)}")
    print(
        "targets: >= 1.5x dlt's rows/s; peak < 600 MB at every size; an incremental night reads only what changed"
    )


if __name__ == "__main__":
    main()
