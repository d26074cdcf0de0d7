"""Properties of the bureau exports, for random entitlements and random data (hypothesis):

* a package never holds a column or a row outside its entitlement: its columns are exactly the entitled
  ones, its rows exactly those a plain-Python reading of the filters selects (protected as a plain-Python
  reference of the masks and HMAC says), in the Parquet file and in the CSV;
* a masked or hashed value is never a clear value of its column;
* the manifest verifies, and any tampered file fails verification;
* a crash at any point of a re-export leaves a complete package: the old one, or the new one.

Each example builds its own small DuckDB marts file; the examples are few and small to stay fast.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import re
import tempfile
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import EXPORT_SIGNING_KEY, SIGNING_KEY_ENV
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.exports import export_bureau, verify_package
from models.exports.entitlements import ColumnRule, ExportsConfig
from models.exports.protect import KeyedHasher, protect_series

KEY = "property-test-key-0123456789abcdef"
ENV = {"QST_EXPORT_HMAC_KEY": KEY, SIGNING_KEY_ENV: EXPORT_SIGNING_KEY}
DAY = dt.date(2026, 11, 22)
DEPARTMENT = "tax"

# no '*' in any clear value: a value made of mask characters would be "masked" already
CODE_CHARS = "0123456789Xx８６１ -"
NAME_CHARS = "张王李欧阳中文测试"
ENTITIES = ["E1", "E2", "E3", "E4", "E5", "E6"]
DIVISIONS = ["440305", "440306", "440305001", "4403", ""]
PROTECTIONS = ["keep", "mask_id", "mask_mobile", "mask_bank_card", "mask_name", "mask", "hmac", "drop"]
SOURCE_COLUMNS = ["entity_id", "division_code", "idn", "phone", "person_name", "amount"]

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


# ---------------------------------------------------------------------------------------------------------
# a plain-Python reference of the protections (independent of the Polars implementation)


def _norm(value: Any) -> str | None:
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip()
    return text or None


def ref_protect(value: Any, rule: ColumnRule) -> Any:
    if rule.protect == "keep":
        return value
    text = _norm(value)
    if text is None:
        return None
    if rule.protect == "hmac":
        return hmac.new(KEY.encode(), text.upper().encode(), hashlib.sha256).hexdigest()
    if rule.protect == "mask_id":
        text = text.upper()
    elif rule.protect == "mask_mobile":
        text = re.sub(r"[\s\-()（）]", "", text)
        m = re.fullmatch(r"\+?86(1[0-9]{10})", text)
        text = m.group(1) if m else text
    elif rule.protect == "mask_bank_card":
        text = re.sub(r"[\s\-]", "", text)
    first, last = rule.keeps()
    n = len(text)
    if n <= first + last:
        return "*" * n if n else None
    return text[:first] + "*" * (n - first - last) + text[n - last :]


codes = st.one_of(st.none(), st.text(alphabet=CODE_CHARS, max_size=20))


@settings(max_examples=300, deadline=None, database=None)
@given(
    values=st.lists(codes, max_size=20),
    protect=st.sampled_from([p for p in PROTECTIONS if p not in ("keep", "drop")]),
    keep_first=st.integers(0, 7),
    keep_last=st.integers(0, 7),
)
def test_protections_match_the_reference_and_hide_the_value(values, protect, keep_first, keep_last):
    rule = ColumnRule(
        protect=protect, **({"keep_first": keep_first, "keep_last": keep_last} if protect == "mask" else {})
    )
    got = protect_series(pl.Series("v", values, dtype=pl.String), rule, KeyedHasher(KEY.encode())).to_list()
    assert got == [ref_protect(v, rule) for v in values]
    clear = {v for v in values if v is not None} | {_norm(v) for v in values if _norm(v)}
    assert not clear & {g for g in got if g is not None}


# ---------------------------------------------------------------------------------------------------------
# random marts and entitlements


rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "entity_id": st.one_of(st.none(), st.sampled_from(ENTITIES)),
            "division_code": st.one_of(st.none(), st.sampled_from(DIVISIONS)),
            "idn": codes,
            "phone": codes,
            "person_name": st.one_of(st.none(), st.text(alphabet=NAME_CHARS, max_size=4)),
            "amount": st.one_of(st.none(), st.integers(-500, 500)),
        }
    ),
    max_size=25,
)
crosswalk_strategy = st.lists(
    st.tuples(st.sampled_from(ENTITIES), st.sampled_from(["tax", "samr"])), max_size=8
)


@st.composite
def conditions(draw) -> list[dict[str, Any]]:
    kinds = draw(st.lists(st.sampled_from(["in", "prefix", "related"]), min_size=0, max_size=2))
    if not kinds:
        return [{"all": True}]
    out = []
    for kind in kinds:
        if kind == "related":
            out.append({"related": "entity_id"})
        elif kind == "in":
            column = draw(st.sampled_from(["division_code", "entity_id", "amount"]))
            pool = {"division_code": DIVISIONS, "entity_id": ENTITIES, "amount": ["0", "1", "-1", "7"]}[
                column
            ]
            out.append(
                {"column": column, "in": draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))}
            )
        else:
            column = draw(st.sampled_from(["division_code", "idn"]))
            out.append(
                {
                    "column": column,
                    "prefix": draw(
                        st.lists(st.sampled_from(["4403", "440305", "1", "8"]), min_size=1, max_size=2)
                    ),
                }
            )
    return out


@st.composite
def column_rules(draw) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(SOURCE_COLUMNS), min_size=1, max_size=6, unique=True))
    columns: dict[str, Any] = {}
    for name in chosen:
        protect = draw(st.sampled_from(PROTECTIONS))
        rule: dict[str, Any] = {"protect": protect}
        if protect == "mask":
            rule.update(keep_first=draw(st.integers(0, 5)), keep_last=draw(st.integers(0, 5)))
        out = draw(st.sampled_from([name, f"{name}_out"]))
        if out != name:
            rule["from"] = name
        columns[out] = rule
    if draw(st.booleans()):
        columns["joined_hash"] = {"from": draw(st.sampled_from(SOURCE_COLUMNS)), "protect": "hmac"}
    if all(r["protect"] == "drop" for r in columns.values()):
        columns[chosen[0] + "_kept"] = {"from": chosen[0], "protect": "keep"}
    return columns


def make_config(columns: dict[str, Any], rows: list[dict[str, Any]], encoding: str) -> ExportsConfig:
    return ExportsConfig.model_validate(
        {
            "version": 1,
            "hmac_key_env": "QST_EXPORT_HMAC_KEY",
            "defaults": {"retention": 2},
            "bureaus": {
                "tax": {
                    "title": "税务局",
                    "csv_encoding": encoding,
                    "tables": [
                        {
                            "table": "data",
                            "sharing": "有条件",
                            "purpose": "p",
                            "agreement": "a",
                            "rows": rows,
                            "columns": columns,
                        },
                        {"table": "secret_table", "sharing": "不予共享"},
                    ],
                }
            },
        }
    )


def make_marts(path: Path, rows: list[dict[str, Any]], crosswalk: list[tuple[str, str]]) -> Path:
    data = pa.table(
        {c: [r[c] for r in rows] for c in SOURCE_COLUMNS},
        schema=pa.schema([(c, pa.int64() if c == "amount" else pa.string()) for c in SOURCE_COLUMNS]),
    )
    xw = pa.table(
        {"entity_id": [e for e, _ in crosswalk], "source_department": [d for _, d in crosswalk]},
        schema=pa.schema([("entity_id", pa.string()), ("source_department", pa.string())]),
    )
    con = duckdb.connect(str(path))
    try:
        for name, table in (("data", data), ("entity_crosswalk", xw), ("secret_table", data)):
            con.register("src", table)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM src')
            con.unregister("src")
    finally:
        con.close()
    return path


def selected(row: dict[str, Any], conds: list[dict[str, Any]], crosswalk: list[tuple[str, str]]) -> bool:
    related = {e for e, d in crosswalk if d == DEPARTMENT}
    for c in conds:
        if c.get("all"):
            continue
        if "related" in c:
            if row[c["related"]] not in related:
                return False
            continue
        value = row[c["column"]]
        if value is None:
            return False
        text = str(value)
        if "in" in c and text not in c["in"]:
            return False
        if "prefix" in c and not any(text.startswith(p) for p in c["prefix"]):
            return False
    return True


def _key(row: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in row)


def _csv_cell(value: Any) -> str:
    """A value as its CSV cell: text a spreadsheet would run as a formula (OWASP's list) quoted."""
    if isinstance(value, str) and value[:1] and value[0] in "=+-@\t\r":
        return "'" + value
    return "" if value is None else str(value)


@contextmanager
def workdir():
    with tempfile.TemporaryDirectory(prefix="qst-exports-") as tmp:
        yield Path(tmp)


@FAST
@given(
    rows=rows_strategy,
    crosswalk=crosswalk_strategy,
    columns=column_rules(),
    conds=conditions(),
    encoding=st.sampled_from(["utf-8-sig", "gb18030"]),
    tamper=st.randoms(use_true_random=False),
)
def test_a_package_holds_exactly_its_entitlement(rows, crosswalk, columns, conds, encoding, tamper):
    config = make_config(columns, conds, encoding)
    ent = config.bureaus["tax"].tables[0]
    exported = ent.exported_columns()
    with workdir() as tmp:
        marts = make_marts(tmp / "marts.duckdb", rows, crosswalk)
        result = export_bureau(
            config, "tax", marts=marts, exports_root=tmp / "exports", date=DAY, environ=ENV
        )
        pkg = result.path
        assert sorted(p.name for p in pkg.iterdir()) == [
            "README.md",
            "data.csv",
            "data.parquet",
            "manifest.json",
            "manifest.json.sig",
            "public_key.pem",
        ]

        expected = [
            tuple(ref_protect(r[ent.source_of(out)], rule) for out, rule in exported)
            for r in rows
            if selected(r, conds, crosswalk)
        ]
        table = pq.read_table(pkg / "data.parquet")
        assert table.column_names == [out for out, _ in exported]
        got = [tuple(r.values()) for r in table.to_pylist()]
        assert sorted(got, key=_key) == sorted(expected, key=_key)

        raw = (pkg / "data.csv").read_bytes()
        assert (encoding == "utf-8-sig") == raw.startswith(b"\xef\xbb\xbf")
        lines = list(csv.reader(io.StringIO(raw.decode(encoding), newline="")))
        assert lines[0] == table.column_names
        assert lines[1:] == [[_csv_cell(v) for v in row] for row in got]

        # a protected value is never a clear value of its source column
        for i, (out, rule) in enumerate(exported):
            if rule.protect == "keep":
                continue
            src = ent.source_of(out)
            clear = {str(r[src]) for r in rows if r[src] is not None} | {
                _norm(r[src]) for r in rows if _norm(r[src])
            }
            assert not clear & {row[i] for row in got if row[i] is not None}, (out, rule)

        manifest = json.loads((pkg / "manifest.json").read_text(encoding="utf-8"))
        assert [f["rows"] for f in manifest["files"] if f.get("table")] == [len(expected)] * 2
        assert manifest["withheld"][0]["table"] == "secret_table"
        assert verify_package(pkg).ok

        victim = tamper.choice(sorted(p for p in pkg.iterdir() if p.name != "manifest.json"))
        data = bytearray(victim.read_bytes())
        at = tamper.randrange(len(data))
        data[at] ^= tamper.randrange(1, 256)
        victim.write_bytes(bytes(data))
        report = verify_package(pkg)
        expected_problem = (
            ("manifest.json", "signature") if victim.name.endswith(".sig") else (victim.name, "sha256")
        )
        assert not report.ok and any((p.file, p.kind) == expected_problem for p in report.problems)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(rows=rows_strategy, crash_at=st.integers(1, 12), encoding=st.sampled_from(["utf-8-sig", "gb18030"]))
def test_a_crash_at_any_fsync_leaves_a_whole_package(rows, crash_at, encoding):
    old = make_config({"entity_id": "keep", "idn": "mask_id"}, [{"all": True}], encoding)
    new = make_config({"entity_id": "keep", "idn": "hmac", "phone": "mask_mobile"}, [{"all": True}], encoding)
    with workdir() as tmp:
        marts = make_marts(tmp / "marts.duckdb", rows, [])
        first = export_bureau(old, "tax", marts=marts, exports_root=tmp / "exports", date=DAY, environ=ENV)
        before = {p.name: p.read_bytes() for p in first.path.iterdir()}
        calls = {"n": 0}
        real_fsync = os.fsync

        def failing_fsync(fd: int) -> None:
            calls["n"] += 1
            if calls["n"] == crash_at:
                raise OSError(5, "Input/output error")
            real_fsync(fd)

        crashed = False
        with mock.patch("os.fsync", failing_fsync):
            try:
                export_bureau(new, "tax", marts=marts, exports_root=tmp / "exports", date=DAY, environ=ENV)
            except OSError:
                crashed = True
        pkg = first.path
        assert verify_package(pkg).ok
        now = {p.name: p.read_bytes() for p in pkg.iterdir()}
        is_new = pq.read_table(pkg / "data.parquet").column_names == ["entity_id", "idn", "phone"]
        # the old package, untouched, or the new one, whole (a failure after the swap: fsyncing the folder)
        assert now == before or is_new
        assert is_new or crashed
        builds = list((tmp / "exports" / "tax" / ".builds").iterdir())
        assert len(builds) == (2 if is_new else 1)  # no half-written build is left behind
