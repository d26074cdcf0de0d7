"""The second simulated city (rivercity) end to end, scored against its truth, at a size given on the command line.

    .venv/bin/python bench/bench_city2.py --enterprises 20000 [--seed 7] [--work /tmp/city2] [--city rivercity]
                                          [--deployment deployments/rivercity]

Simulates the city, runs `qst check` on its deployment, runs the whole night to the exports, and prints what
tests/test_city2.py asserts on a small city: records lost (source -> bronze -> silver + quarantine), mentions
without a canonical record, golden status and name against the registry truth, mart_enterprise_360 rows against
the true number of enterprises (with the fragments by source table), the headcount of the employment relation,
every bureau's export package verified, and entity-resolution precision / recall / F1 (qst er-eval), with the
seconds of each step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
PARTITION = "2026-11-01"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--city", default="rivercity")
    parser.add_argument("--deployment", type=Path, default=REPO / "deployments" / "rivercity")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_city2"))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    os.environ["QST_DEPLOYMENT"] = str(args.deployment.resolve())
    os.environ.setdefault("QST_EXPORT_HMAC_KEY", "bench-city2-secret-of-thirty-two-chars")
    from models.exports.signing import SIGNING_KEY_ENV, new_key_text

    os.environ.setdefault(SIGNING_KEY_ENV, new_key_text())  # signs the packages' manifests

    from connectors.config import load_sources
    from pipelines.runner import run_pipeline
    from quality.deployment_check import check_deployment
    from simulator.estate import simulate
    from simulator.scoring import score_night

    shutil.rmtree(args.work, ignore_errors=True)
    estate, home = args.work / "estate", args.work / "home"
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    state = simulate(estate, enterprises=args.enterprises, seed=args.seed, city=args.city)
    seconds["simulate"] = time.perf_counter() - t
    print(
        f"simulated {args.city}: {args.enterprises:,} enterprises, {sum(state.rows.values()):,} source rows"
    )
    t = time.perf_counter()
    report = check_deployment(
        estate / "sources.yaml", args.deployment / "specs", args.deployment / "exports.yaml"
    )
    seconds["check"] = time.perf_counter() - t
    print(f"qst check: {report.summary()}")
    for finding in report.findings:
        if finding.severity != "note":
            print(f"  {finding.severity} {finding.where}: {finding.message}")
    t = time.perf_counter()
    outcome = run_pipeline(load_sources(estate / "sources.yaml"), home, partition=PARTITION, until="exports")
    seconds["night"] = time.perf_counter() - t
    print(f"night: ok={outcome.ok}; failed checks {outcome.failed_checks}")
    for a in outcome.assets:
        if a.error:
            print(f"  {a.key}: {a.error[:400]}")
    t = time.perf_counter()
    figures = score_night(estate, home, args.deployment / "exports.yaml", PARTITION)
    seconds["score"] = time.perf_counter() - t
    print_figures(figures)
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    if args.json:
        print(json.dumps({**figures, "seconds": seconds}, ensure_ascii=False, default=str))


def print_figures(f: dict) -> None:
    print(f"records lost: {f['records_lost']:,}")
    for r in f["rows"]:
        print(
            f"  {r['table']:<28} source {r['source']:>9,}  bronze {r['bronze']:>9,}  silver {r['silver']:>9,}  "
            f"quarantined {r['quarantined']:>7,}"
        )
    print(f"mentions without a canonical record (not quarantined): {f['mentions_missing']:,}")
    for m in f["mentions"]:
        if m["missing"] or m["quarantined"]:
            print(
                f"  {m['department']}.{m['table']} {m['role']}/{m['entity_type']}: truth {m['truth']:,}, staged "
                f"{m['staged']:,}, quarantined {m['quarantined']:,}, missing {m['missing']:,}"
            )
    g = f["golden"]
    print(
        f"golden records vs the registry truth ({g['enterprises']:,} enterprises): name and status "
        f"{g['share']:.2%} (name {g['name_share']:.2%}, status {g['status_share']:.2%}; "
        f"{g['with_golden']:,} with a golden record)"
    )
    m = f["marts"]
    print(
        f"mart_enterprise_360: {m['mart_enterprise_360_rows']:,} rows for {m['true_enterprises']:,} true "
        f"enterprises ({m['mart_excess_share']:+.2%}); {m['fragments']:,} golden enterprises without a "
        "registry record, by source:"
    )
    for s in m["fragments_by_source"]:
        print(
            f"  {s['source_department']}.{s['source_table']}: {s['entities']:,} entities ({s['records']:,} records)"
        )
    print(
        f"headcount: {m['with_headcount']:,} enterprises with insured_headcount > 0 (total {m['headcount']:,}) "
        f"for {m['true_employers']:,} true employers of the employment relation"
    )
    print("exports: " + ", ".join(f"{b} {'verifies' if ok else 'FAILS'}" for b, ok in f["exports"].items()))
    for kind, s in f["resolution"].items():
        print(
            f"resolution {kind}: precision {s['precision']:.4f} recall {s['recall']:.4f} f1 {s['f1']:.4f} "
            f"(records {s['records']:,}, entities {s['entities']:,}, clusters {s['clusters']:,})"
        )


if __name__ == "__main__":
    main()
