"""Benchmark: throughput of the silver standardizers (models/standardize) on 1M realistic messy values.

Run:  .venv/bin/python bench/bench_standardize.py [--rows 1000000] [--estate DIR] [--repeat 3]

Simulates a 30,000-enterprise estate (``simulator.estate.simulate``, seed 1; or reuses ``--estate``), reads
the messy source columns with sqlite3 — SAMR USCCs, registration numbers, legal representatives' IDs and
phones; tax TINs and 'YYYYMMDD' dates; environment USCCs (full-width, lower case, spaces) and
'YYYY年M月D日' dates; court 'YYYY/M/D' dates and party IDs (masked, 15-digit, USCCs); social-security IDs and
Excel serials; tax periods — and tiles each to ``--rows`` values. Prints rows/s per function (best of
``--repeat``) and for all of them in one ``select`` over a frame holding every column; then
``enterprise_name`` on ``--rows`` realistic names (the enterprise-name columns of SAMR, tax, courts,
environment and social security, mojibake repaired, mixed and tiled), as used (each distinct name computed
once) and with every row computed (the worst case: all names distinct).
Target: >= 200,000 rows/s per standardizer on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.encoding import repair_gbk_in_latin1_series
from models.standardize import (
    excel_serial_to_date,
    names,
    normalize_code,
    nullify,
    org_code,
    org_code_from_tin,
    org_code_from_uscc,
    parse_date,
    parse_datetime,
    parse_yyyymm,
    phone,
    regno,
    resident_id,
    tin,
    uscc,
)
from models.standardize.names import enterprise_name
from simulator import estate

# (benchmark column name, department, table, source column, dtype)
SOURCES = [
    ("samr_uscc", "samr", "T_SCZT_DJXX", "TYSHXYDM", pl.Utf8),
    ("env_uscc", "env", "HB_XZCF", "统一社会信用代码", pl.Utf8),
    ("samr_regno", "samr", "T_SCZT_DJXX", "ZCH", pl.Utf8),
    ("court_org", "courts", "SXBZXR", "ZJHM", pl.Utf8),
    ("tax_tin", "tax", "DJ_NSRXX", "NSRSBH", pl.Utf8),
    ("ss_id", "social", "SB_GRCBXX", "SFZHM", pl.Utf8),
    ("court_party_id", "courts", "AJ_DSR", "ZJHM", pl.Utf8),
    ("samr_rep_id", "samr", "T_SCZT_DJXX", "FDDBRZJHM", pl.Utf8),
    ("samr_phone", "samr", "T_SCZT_DJXX", "LXDH", pl.Utf8),
    ("samr_name", "samr", "T_SCZT_DJXX", "QYMC", pl.Utf8),
    ("tax_djrq", "tax", "DJ_NSRXX", "DJRQ", pl.Utf8),
    ("env_date", "env", "HB_XZCF", "处罚日期", pl.Utf8),
    ("court_larq", "courts", "AJ_DSR", "LARQ", pl.Utf8),
    ("samr_hzrq", "samr", "T_SCZT_DJXX", "HZRQ", pl.Utf8),
    ("ss_cbrq", "social", "SB_GRCBXX", "CBRQ", pl.Int64),
    ("samr_gxsj", "samr", "T_SCZT_DJXX", "GXSJ", pl.Utf8),
    ("tax_ssq", "tax", "SB_ZSXX", "SSQ", pl.Utf8),
]

# (label, function, benchmark column)
CASES = [
    ("nullify", nullify, "samr_name"),
    ("normalize_code", normalize_code, "env_uscc"),
    ("uscc (SAMR TYSHXYDM)", uscc, "samr_uscc"),
    ("uscc (env 统一社会信用代码)", uscc, "env_uscc"),
    ("org_code (courts SXBZXR.ZJHM)", org_code, "court_org"),
    ("org_code_from_uscc", org_code_from_uscc, "samr_uscc"),
    ("org_code_from_tin (tax NSRSBH)", org_code_from_tin, "tax_tin"),
    ("regno (SAMR ZCH)", regno, "samr_regno"),
    ("tin (tax NSRSBH)", tin, "tax_tin"),
    ("resident_id (social SFZHM)", resident_id, "ss_id"),
    ("resident_id (courts ZJHM)", resident_id, "court_party_id"),
    ("phone (SAMR LXDH)", phone, "samr_phone"),
    ("parse_date (tax DJRQ YYYYMMDD)", parse_date, "tax_djrq"),
    ("parse_date (env YYYY年M月D日)", parse_date, "env_date"),
    ("parse_date (courts LARQ Y/M/D)", parse_date, "court_larq"),
    ("parse_date (SAMR HZRQ +sentinels)", parse_date, "samr_hzrq"),
    ("parse_date (social CBRQ Excel int)", parse_date, "ss_cbrq"),
    ("excel_serial_to_date (CBRQ)", excel_serial_to_date, "ss_cbrq"),
    ("parse_datetime (SAMR GXSJ)", parse_datetime, "samr_gxsj"),
    ("parse_yyyymm (tax SSQ)", parse_yyyymm, "tax_ssq"),
]


# the enterprise-name columns mixed for enterprise_name: (department, table, column)
NAME_COLUMNS = [
    ("samr", "T_SCZT_DJXX", "QYMC"),
    ("tax", "DJ_NSRXX", "NSRMC"),
    ("courts", "AJ_DSR", "DSRMC"),
    ("env", "HB_XZCF", "企业名称"),
    ("social", "SB_DWCBXX", "DWMC"),
]


def read_values(out: Path, dept: str, table: str, col: str, dtype: pl.DataType) -> pl.Series:
    with sqlite3.connect(out / f"{dept}.sqlite") as conn:
        values = [r[0] for r in conn.execute(f'SELECT "{col}" FROM "{table}"')]
    if dtype == pl.Utf8:
        values = [None if v is None else str(v) for v in values]
    return pl.Series(values, dtype=dtype)


def tile(base: pl.Series, rows: int) -> pl.Series:
    reps = -(-rows // len(base))
    return pl.concat([base] * reps).head(rows).rechunk()


def read_column(out: Path, dept: str, table: str, col: str, dtype: pl.DataType, rows: int) -> pl.Series:
    return tile(read_values(out, dept, table, col, dtype), rows)


def realistic_names(out: Path, rows: int) -> pl.Series:
    """``rows`` enterprise names as the departments hold them: the NAME_COLUMNS one after the other (social
    security's GBK mojibake repaired), tiled to ``rows``."""
    parts = []
    for dept, table, col in NAME_COLUMNS:
        s = read_values(out, dept, table, col, pl.Utf8)
        parts.append(repair_gbk_in_latin1_series(s) if dept == "social" else s)
    return tile(pl.concat(parts), rows).alias("name")


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--estate", type=Path, default=None, help="reuse a simulated estate folder")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qst-bench-std-") as tmp:
        out = args.estate or Path(tmp)
        if args.estate is None or not (out / "estate.json").exists():
            started = time.perf_counter()
            estate.simulate(out, enterprises=30_000, seed=1)
            print(f"simulated 30,000 enterprises in {time.perf_counter() - started:.1f} s")
        frame = pl.DataFrame(
            [
                read_column(out, dept, table, col, dtype, args.rows).alias(name)
                for name, dept, table, col, dtype in SOURCES
            ]
        )
        realistic = realistic_names(out, args.rows)

    print(
        f"{args.rows:,} values per column; {os.cpu_count()} CPUs, Polars {pl.__version__} "
        f"({pl.thread_pool_size()} threads); best of {args.repeat}; "
        f"load average before: {os.getloadavg()[0]:.1f}"
    )
    print(f"{'function (column)':<40}{'seconds':>9}{'rows/s':>14}  result")
    for label, fn, col in CASES:
        expr = fn(col)
        results: list[pl.DataFrame] = []
        seconds = best_of(args.repeat, lambda expr=expr, results=results: results.append(frame.select(expr)))
        summary = _summary(results[-1].to_series())
        print(f"{_pad(label, 40)}{seconds:>9.2f}{args.rows / seconds:>14,.0f}  {summary}")

    everything = [fn(col).alias(f"{i}_{col}") for i, (_, fn, col) in enumerate(CASES)]
    seconds = best_of(args.repeat, lambda: frame.select(everything))
    print(
        f"{f'all {len(CASES)} in one select':<40}{seconds:>9.2f}{args.rows / seconds:>14,.0f}"
        f"  ({len(CASES) * args.rows / seconds:,.0f} values/s)"
    )
    seconds = best_of(args.repeat, lambda: frame.lazy().select(everything).collect(engine="streaming"))
    print(
        f"{'all, streaming engine':<40}{seconds:>9.2f}{args.rows / seconds:>14,.0f}"
        f"  ({len(CASES) * args.rows / seconds:,.0f} values/s)"
    )

    # enterprise_name on realistic names: its maps are built once per process, not counted
    names._patterns()
    names.traditional_to_simplified_map()
    distinct = f"{realistic.n_unique():,} distinct names"
    realistic_frame = realistic.to_frame()
    seconds = best_of(args.repeat, lambda: realistic_frame.select(enterprise_name("name")))
    print(
        f"{'enterprise_name (realistic, as used)':<40}{seconds:>9.2f}{args.rows / seconds:>14,.0f}  {distinct}"
    )
    seconds = best_of(args.repeat, lambda: names._enterprise_unique(realistic))
    print(
        f"{'enterprise_name (every row computed)':<40}{seconds:>9.2f}{args.rows / seconds:>14,.0f}"
        "  worst case: all names distinct"
    )
    print("target: >= 200,000 rows/s per standardizer")


def _pad(text: str, width: int) -> str:
    """Left-justify counting CJK characters as two columns, as a terminal shows them."""
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - shown)


def _summary(s: pl.Series) -> str:
    """Share of each status/kind (struct results) or of non-null values."""
    if s.dtype == pl.Struct:
        fields = [f.name for f in s.dtype.fields]
        key = "kind" if "kind" in fields and "status" not in fields else "status"
        counts = s.struct.field(key).value_counts(sort=True)
        return " ".join(f"{k}={c / len(s):.1%}" for k, c in counts.iter_rows())
    return f"non-null={s.is_not_null().mean():.1%}"


if __name__ == "__main__":
    main()
