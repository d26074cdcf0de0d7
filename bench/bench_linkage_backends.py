"""Benchmark: the linkage model on Splink's DuckDB backend against its Spark backend, side by side on the same
silver records of simulated cities of a few sizes: seconds, peak memory, and whether both gave the same pairs and
clusters.

Run:  .venv/bin/python bench/bench_linkage_backends.py                          (3k, 10k, 30k enterprises)
      .venv/bin/python bench/bench_linkage_backends.py --sizes 3000 10000 --driver-memory 3g

Each size is simulated and carried to silver once (not timed; kept in /tmp/qst-bench-linkage-<size> for a rerun).
Then each backend resolves it in a fresh child process, as the nightly gold build does (per kind, enterprises then
persons with the enterprise clusters: :func:`models.resolution.probabilistic.prepare_silver` and
:func:`~models.resolution.probabilistic.resolve_prepared` from the trained model in the repository), with
``linkage.backend`` duckdb or spark (a local Spark session, ``local[2]``, started inside the timed run: a night
pays it too; its start is also printed alone). Peak memory is the whole child's, Spark's JVM included (psutil, the
child and its children, every 0.1 s). The parent then compares the two runs' pairs and clusters.

Why: docs/scaling.md says up to what size one machine's DuckDB serves and when to switch to Spark, from these
figures and the 1M figures of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import childrun  # noqa: E402 - bench/ on the path first

KINDS = ("enterprise", "person")
BACKENDS = ("duckdb", "spark")


def run_child(args: list[str], timeout: float) -> tuple[dict | None, float, str]:
    """Run this script as a child; its RESULT and its peak MB (itself and its children: Spark's JVM)."""

    def keep(line: str) -> bool:  # Spark's start-up chatter
        return "WARN" not in line and "log4j" not in line and "setLogLevel" not in line

    run = childrun.run_child(__file__, args, timeout, keep)
    return run.result, run.peak_mb, run.output


def child(home: Path, backend: str, driver_memory: str, partitions: int, out: Path) -> dict:
    import polars as pl

    from lake.platform import LinkageSettings
    from models.resolution import probabilistic

    linkage = LinkageSettings(
        backend=backend,
        spark_driver_memory=driver_memory,
        spark_shuffle_partitions=partitions,
    )
    phases: dict[str, float] = {}
    started = time.perf_counter()
    if backend == "spark":
        from models.resolution import spark_backend

        spark_backend.session(linkage)
        phases["spark session start"] = time.perf_counter() - started
    related = None
    for kind in KINDS:
        t = time.perf_counter()
        res = probabilistic.resolve_prepared(
            probabilistic.prepare_silver(home, kind, related), linkage=linkage
        )
        phases[f"{kind}: resolution"] = time.perf_counter() - t
        phases[f"{kind}: of which Splink's prediction"] = res.timings["predict"]
        phases[f"{kind}: pairs"] = float(res.pairs.height)
        res.pairs.write_parquet(out / f"{backend}-{kind}-pairs.parquet")
        res.records.write_parquet(out / f"{backend}-{kind}-records.parquet")
        if kind == "enterprise":
            related = res.records.select("record_id", "cluster")
    seconds = time.perf_counter() - started
    records = pl.scan_parquet(out / f"{backend}-enterprise-records.parquet").select(pl.len()).collect().item()
    return {"seconds": seconds, "phases": phases, "enterprise_records": records}


def same_results(out: Path) -> str:
    """Whether both backends gave the same pairs (and probabilities) and clusters."""
    import polars as pl

    keys = ["record_id_l", "record_id_r"]
    said = []
    for kind in KINDS:
        duck = pl.read_parquet(out / f"duckdb-{kind}-pairs.parquet")
        spark = pl.read_parquet(out / f"spark-{kind}-pairs.parquet")
        joined = duck.join(spark, on=keys, how="full", suffix="_s", coalesce=False)
        only = joined.filter(pl.col("record_id_l").is_null() | pl.col("record_id_l_s").is_null()).height
        both = joined.drop_nulls(["record_id_l", "record_id_l_s"])
        dp = (both["match_probability"] - both["match_probability_s"]).abs().max() if both.height else 0.0
        status = bool((both["status"] == both["status_s"]).all()) if both.height else True
        cols = ["record_id", "cluster", "rule"]
        clusters = (
            pl.read_parquet(out / f"duckdb-{kind}-records.parquet", columns=cols)
            .sort("record_id")
            .equals(pl.read_parquet(out / f"spark-{kind}-records.parquet", columns=cols).sort("record_id"))
        )
        said.append(
            f"{kind}: {duck.height:,} / {spark.height:,} pairs, {only} in one only, max |Δp| {dp:.1e}, "
            f"same status {status}, same clusters {clusters}"
        )
    return "; ".join(said)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 10_000, 30_000])
    parser.add_argument(
        "--driver-memory", default="3g", help="Spark's JVM heap (linkage.spark_driver_memory)"
    )
    parser.add_argument("--partitions", type=int, default=8, help="linkage.spark_shuffle_partitions")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.home, args.child, args.driver_memory, args.partitions, args.out)
        print("RESULT " + json.dumps(result), flush=True)
        return
    if max(args.sizes) > 100_000:
        parser.error(
            "at most 100,000 enterprises: the machine is shared (docs/benchmarks.md has the 1M figures)"
        )
    import bench_silver

    rows = []
    for size in args.sizes:
        home = Path(f"/tmp/qst-bench-linkage-{size}")
        if not (home / "lake").exists():
            started = time.perf_counter()
            bench_silver.prepare(home, size)
            bench_silver.build(home)
            print(
                f"simulated {size:,} enterprises into silver in {time.perf_counter() - started:.0f}s (not timed)"
            )
        with tempfile.TemporaryDirectory(prefix="qst-bench-linkage-") as tmp:
            measured = {}
            for backend in BACKENDS:
                argv = ["--child", backend, "--home", str(home), "--out", tmp]
                argv += ["--driver-memory", args.driver_memory, "--partitions", str(args.partitions)]
                result, peak, out = run_child(argv, args.timeout)
                if out.strip():
                    print(out)
                measured[backend] = (result, peak)
                if result:
                    phases = ", ".join(
                        f"{k} {v:,.0f}" if "pairs" in k else f"{k} {v:.1f}s"
                        for k, v in result["phases"].items()
                    )
                    print(
                        f"  {size:,} {backend}: {result['seconds']:.1f}s, peak {peak:,.0f} MB ({phases})",
                        flush=True,
                    )
            same = same_results(Path(tmp)) if all(r for r, _ in measured.values()) else "a run did not finish"
        print(f"  {size:,}: {same}", flush=True)
        rows.append((size, measured, same))
    print("\n  linkage (both kinds: silver in, clusters out), seconds and peak MB (process and Spark's JVM)")
    print(
        f"  {'enterprises':>11}{'records':>11}{'DuckDB s':>10}{'MB':>7}{'Spark s':>10}{'MB':>7}{'Spark/DuckDB':>14}"
    )
    for size, measured, _ in rows:
        (d, dmb), (s, smb) = measured["duckdb"], measured["spark"]
        if not (d and s):
            print(f"  {size:>11,}  did not finish")
            continue
        print(
            f"  {size:>11,}{d['enterprise_records']:>11,}{d['seconds']:>10.1f}{dmb:>7,.0f}{s['seconds']:>10.1f}"
            f"{smb:>7,.0f}{s['seconds'] / d['seconds']:>13.1f}x"
        )


if __name__ == "__main__":
    main()
