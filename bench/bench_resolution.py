"""Benchmark: entity resolution on a simulated estate — Quanshitong's resolution against a plain Splink baseline,
on the same silver records: wall time, peak memory, pairwise and B-cubed F1 against the simulator's truth.

Run:  .venv/bin/python bench/bench_resolution.py --home /work/scratch/e100000     (an estate already in silver)
      .venv/bin/python bench/bench_resolution.py --enterprises 100000             (simulate + load first, not timed)
      .venv/bin/python bench/bench_resolution.py --home ... --only baseline        (one contender)

Each contender runs in a fresh child process, which samples its own resident memory every 50 ms and reports its
peak while resolving (silver in, clusters out: the figure the target is about) and its phases; the parent also
samples the whole child (psutil, the child and its own children, every 0.1 s) and prints that peak too, which
includes reading the truth file and scoring. Reading silver is timed and measured (it is part of a night); reading
the truth and scoring are not.

* **quanshitong**: per kind (enterprises, then persons with the enterprise clusters), as the nightly gold build:
  :func:`models.resolution.probabilistic.prepare_silver` (the deterministic pass on the key columns, then the profiles
  from the compared columns, silver read one group of columns at a time), then
  :func:`models.resolution.probabilistic.resolve_prepared` from the trained model in the repository (Splink
  prediction, the record ids, guard, decisions, components). Phases: reading is inside the phase that reads.
* **baseline**: plain Splink 5 configured as Splink's documentation advises, on the same silver records and without
  Quanshitong's resolution code (no deterministic pass, no profiles, nothing from ``models.resolution``); the
  settings, each with the documentation it follows, are in ``bench/splink_baseline.py``. Per kind one
  ``dedupe_only`` model: identifiers as exact-match comparisons and each a blocking rule (enterprises: USCC, TIN,
  organization code, registration number, the department's own key; persons: the resident ID, with a level for one
  mistyped digit), their u and m fixed by hand (random sampling on records with ~14 copies per enterprise measures
  the duplicates, not collisions: on the 100k estate a pair sharing only the employer number then scored 0.26 and
  enterprise recall was 0.45); names with ``NameComparison`` (exact with term frequencies, Jaro-Winkler levels);
  phone, legal representative, district (term frequencies) and address as further comparisons; blocking also on
  the name and on name fragments with a second column. Trained as Splink's training guide advises: the prior from
  deterministic rules on the identifiers with a recall guess of 0.8, u by random sampling of 10^7 pairs, m by EM
  in a round robin of blocking rules. Predictions clustered at 0.9 with ``cluster_pairwise_predictions_at_threshold``.
  Enterprises are linked on their distinct rows (exact duplicates dropped, mapped back after); persons get one
  derived column, the baseline's own cluster of the enterprise they are mentioned with. The same DuckDB memory
  limit and threads. It gets ``--baseline-timeout`` seconds.

Targets (issue 5, 1,000,000 enterprises, 2 cores, 24 GB): the whole resolution in <= 10 minutes, peak < 8 GB, F1
higher than the baseline's.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import childrun  # noqa: E402 - bench/ on the path first

KINDS = ("enterprise", "person")


def run_child(args: list[str], timeout: float) -> tuple[dict | None, float, float, str]:
    """Run this script as a child; return its RESULT, wall seconds, peak MB (sampled), and its other output."""
    run = childrun.run_child(__file__, args, timeout)
    return run.result, run.seconds, run.peak_mb, run.output


class PeakSampler:
    """This process's resident memory, sampled every 50 ms from a thread: the child reports its peak *during the
    resolution* (the target's figure), before the truth is read for scoring, which is not part of a night."""

    def __init__(self) -> None:
        import psutil

        self.peak = 0
        self._proc = psutil.Process()
        self._done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.05)

    def stop(self) -> float:
        """Stop sampling; the peak in MB."""
        self.peak = max(self.peak, self._proc.memory_info().rss)
        self._done.set()
        return self.peak / 2**20


def _score(home: Path, outputs: dict) -> dict:
    """Scores per kind, and the evidence ceiling: the recall (and F1 at precision 1) within reach when a record
    known by a shared name alone stays alone (:func:`models.resolution.evaluate.evidence_ceiling`)."""
    from models.resolution.evaluate import (
        evidence_ceiling,
        evidence_columns,
        name_only,
        scores,
        truth_for_records,
    )
    from models.silver import read_silver, scan_silver
    from simulator import estate as est

    truth = est.load_truth(home / "estate").collect()
    out = {}
    for kind, predicted in outputs.items():
        table = "int_enterprise_records" if kind == "enterprise" else "int_person_records"
        recs = read_silver(
            home, table, columns=["record_id", "source_department", "source_table", "role", "source_pk"]
        )
        truth_records = truth_for_records(truth, recs)
        out[kind] = scores(predicted, truth_records)
        present = set(scan_silver(home, table).collect_schema().names())
        cols = ["record_id", "name_comparison", *sorted(set(evidence_columns(kind)) & present)]
        evidence = read_silver(home, table, columns=cols)
        alone = evidence.filter(name_only(evidence, evidence_columns(kind))).select("record_id")
        out[kind]["ceiling"] = evidence_ceiling(truth_records, evidence, alone)
    return out


def child_quanshitong(home: Path) -> dict:
    from models.resolution import probabilistic

    phases: dict[str, float] = {}
    outputs = {}
    related = None
    sampler = PeakSampler()
    started = time.perf_counter()
    for kind in KINDS:
        # as the nightly gold build does: silver read a group of columns at a time (keys, compared columns, ids)
        prepared = probabilistic.prepare_silver(home, kind, related)
        res = probabilistic.resolve_prepared(prepared)
        del prepared
        for phase, seconds in res.timings.items():
            phases[f"{kind}: {phase}"] = seconds
        outputs[kind] = res.records.select("record_id", "cluster")
        phases[f"{kind}: pairs kept/review"] = float(res.pairs.height)
        if kind == "enterprise":
            related = res.records.select("record_id", "cluster")
        del res
    total = time.perf_counter() - started
    peak = sampler.stop()
    return {"seconds": total, "peak_mb": peak, "phases": phases, "scores": _score(home, outputs)}


def child_baseline(home: Path) -> dict:
    """Plain Splink 5 as its documentation advises (bench/splink_baseline.py): enterprises, then persons with the
    baseline's own enterprise clusters; the same DuckDB memory limit and threads as Quanshitong's."""
    import duckdb
    import splink_baseline

    from models.resolution import splink_model

    logging.getLogger("splink").setLevel(logging.ERROR)
    phases: dict[str, float] = {}
    outputs = {}
    sampler = PeakSampler()
    started = time.perf_counter()
    enterprises = None
    for kind in KINDS:
        t = time.perf_counter()
        frame = splink_baseline.read_frame(home, kind, enterprises)
        phases[f"{kind}: read silver"] = time.perf_counter() - t
        con = duckdb.connect()
        con.execute(f"SET memory_limit = '{splink_model.DUCKDB_MEMORY_LIMIT}'")
        con.execute(f"SET threads = {splink_model.DUCKDB_THREADS}")
        outputs[kind] = splink_baseline.resolve(frame, kind, con, phases)
        if kind == "enterprise":
            enterprises = outputs[kind]
        del frame, con
    total = time.perf_counter() - started
    peak = sampler.stop()
    return {"seconds": total, "peak_mb": peak, "phases": phases, "scores": _score(home, outputs)}


def prepare_home(home: Path, enterprises: int) -> None:
    import bench_silver

    bench_silver.prepare(home, enterprises)
    bench_silver.build(home)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=None, help="an estate already carried to silver")
    parser.add_argument("--enterprises", type=int, default=100_000, help="without --home: simulate this size")
    parser.add_argument("--baseline-timeout", type=float, default=1800.0)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--only",
        choices=["quanshitong", "baseline"],
        default=None,
        help="run one contender (to iterate faster)",
    )
    parser.add_argument("--child", choices=["quanshitong", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fn = child_quanshitong if args.child == "quanshitong" else child_baseline
        print("RESULT " + json.dumps(fn(args.home)), flush=True)
        return
    home = args.home
    if home is None:
        home = Path(f"/tmp/qst-bench-resolution-{args.enterprises}")
        started = time.perf_counter()
        prepare_home(home, args.enterprises)
        print(
            f"simulated {args.enterprises:,} enterprises into silver in {time.perf_counter() - started:.0f}s "
            "(not timed)",
            flush=True,
        )
    print(
        f"entity resolution on {home} (2 cores; DuckDB memory limit per connection "
        f"{__import__('models.resolution.splink_model', fromlist=['x']).DUCKDB_MEMORY_LIMIT})",
        flush=True,
    )
    rows = []
    contenders = ["quanshitong"] + ([] if args.skip_baseline else ["baseline"])
    if args.only:
        contenders = [args.only]
    for name in contenders:
        timeout = args.baseline_timeout if name == "baseline" else 3600.0
        result, wall, peak, out = run_child(["--child", name, "--home", str(home)], timeout)
        resolving = f"peak {result['peak_mb']:,.0f} MB while resolving, " if result else ""
        print(
            f"\n== {name}: {wall:.0f}s wall, {resolving}peak {peak:,.0f} MB of the whole child "
            "(with reading the truth and scoring)",
            flush=True,
        )
        if out.strip():
            print(out)
        if result is None:
            rows.append((name, wall, peak, None))
            continue
        for phase, seconds in result["phases"].items():
            unit = "" if "pairs" in phase else "s"
            print(f"  {phase:<36}{seconds:>12,.1f}{unit}")
        rows.append((name, wall, peak, result))
    print("\n  seconds and peak MB: while resolving (silver in, clusters out), without scoring")
    print(
        f"  {'':<12}{'seconds':>9}{'peak MB':>9}  {'enterprise P / R / F1 / B3-F1':>32}  "
        f"{'person P / R / F1 / B3-F1':>32}"
    )
    for name, wall, peak, result in rows:
        if result is None:
            print(f"  {name:<12}{wall:>9.0f}{peak:>9,.0f}  did not finish")
            continue
        cells = []
        for kind in KINDS:
            s = result["scores"][kind]
            cells.append(f"{s['precision']:.3f} / {s['recall']:.3f} / {s['f1']:.3f} / {s['bcubed_f1']:.3f}")
        print(
            f"  {name:<12}{result['seconds']:>9.0f}{result['peak_mb']:>9,.0f}  {cells[0]:>32}  {cells[1]:>32}"
        )
    for kind in KINDS:
        ceilings = [r["scores"][kind]["ceiling"] for _, _, _, r in rows if r is not None]
        if ceilings:
            c = ceilings[0]
            print(
                f"  {kind} evidence ceiling: {c['shared_name_only_records']:,} records known by a name other "
                f"entities bear and nothing else; within reach, recall <= {c['recall']:.3f}, F1 <= {c['f1']:.3f}"
            )
    print("\ntargets (1M enterprises): <= 600 s, < 8,000 MB, F1 above the baseline's")


if __name__ == "__main__":
    main()
