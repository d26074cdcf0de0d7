"""connectors.bronze: the Delta writer of the bronze layer -- nothing lost, nothing doubled.

Batches are built by hand: a tax-rating-like table with a composite key (taxpayer id, year), Chinese
names, decimals and a UTC timestamp cursor. The crash and lock tests run real child processes (one is
killed with SIGKILL right after a commit) and check that a rerun from the committed watermark converges
to exactly the source.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.parquet as pq
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake

from connectors import bronze
from connectors.bronze import merge as bronze_merge
from connectors.bronze.rowhash import RowHasher
from lake.layout import bronze_path

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
KEY = ["NSRSBH", "PJND"]
SCHEMA = pa.schema(
    [
        ("NSRSBH", pa.string()),  # taxpayer id
        ("PJND", pa.int32()),  # rating year
        ("NSRMC", pa.string()),  # taxpayer name
        ("PJJB", pa.string()),  # rating A/B/M/C/D
        ("YNSE", pa.decimal128(18, 2)),  # tax due, yuan
        ("GXSJ", pa.timestamp("us", tz="UTC")),  # last updated: the cursor
        ("_qst_flags", pa.string()),
    ]
)
NAMES = [
    "深圳市腾讯计算机系统有限公司",
    "华为技术有限公司",
    "比亚迪股份有限公司",
    "平安银行股份有限公司（深圳）",
    "招商局集团有限公司",
    "顺丰速运有限公司",
    "大疆创新科技有限公司",
    "万科企业股份有限公司",
]


# --------------------------------------------------------------------------------------------- helpers


def source_rows(n: int, *, version: int = 0, start: int = 0) -> list[dict]:
    """n rows of the simulated source; ``version`` changes names and cursors."""
    rows = []
    for i in range(start, start + n):
        rows.append(
            {
                "NSRSBH": f"9144030{i // 3:07d}X",
                "PJND": 2020 + i % 3,
                "NSRMC": f"{NAMES[i % len(NAMES)]}{i}号" + ("（更名）" * version),
                "PJJB": "ABMCD"[i % 5],
                "YNSE": Decimal(i * 1234 % 100000) / 100 + Decimal("0.05"),
                "GXSJ": T0 + dt.timedelta(minutes=i, days=version),
                "_qst_flags": "gbk_repaired" if i % 7 == 0 else None,
            }
        )
    return rows


def batches(rows: list[dict], size: int = 100, schema: pa.Schema = SCHEMA) -> list[pa.RecordBatch]:
    return [
        pa.RecordBatch.from_pylist(rows[i : i + size], schema=schema) for i in range(0, len(rows), size)
    ] or [pa.RecordBatch.from_pylist([], schema=schema)]


def key_of(row: dict) -> tuple:
    return tuple(row[c] for c in KEY)


def load(
    path: Path, rows: list[dict], *, batch_id: str = "b1", schema: pa.Schema = SCHEMA, size: int = 100, **kw
) -> bronze.LoadResult:
    return bronze.upsert_batches(
        path,
        batches(rows, size, schema),
        schema,
        primary_key=KEY,
        source="tax.XY_NSPJ",
        batch_id=batch_id,
        extracted_at=kw.pop("extracted_at", T0 + dt.timedelta(days=1)),
        **kw,
    )


def read(path: Path, version: int | None = None) -> list[dict]:
    """Every row as committed, sorted by key (read with pyarrow, independently of the writer's code)."""
    table = DeltaTable(str(path), version=version)
    data = pds.dataset(
        table.file_uris(), schema=pa.schema(table.schema().to_arrow()), format="parquet"
    ).to_table()
    return sorted(data.to_pylist(), key=lambda r: (r["NSRSBH"] or "", r["PJND"] or 0, r["_qst_row_hash"]))


def source_values(rows: list[dict]) -> list[dict]:
    return sorted(
        ({c: r[c] for c in SCHEMA.names} for r in rows), key=lambda r: (r["NSRSBH"] or "", r["PJND"] or 0)
    )


def live(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["_qst_deleted_at"] is None]


def history(path: Path) -> list[dict]:
    """Commit infos, oldest first."""
    return list(reversed(DeltaTable(str(path)).history()))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return bronze_path(tmp_path, "tax", "credit_ratings")


# ------------------------------------------------------------------------------------------ first load


def test_bronze_path_layout_and_refusal(tmp_path: Path) -> None:
    assert bronze_path(tmp_path, "samr", "registrations") == tmp_path / "lake/bronze/samr/registrations"
    for bad in ("..", "a/b", ""):
        with pytest.raises(ValueError):
            bronze_path(tmp_path, "samr", bad)


def test_first_load_lands_every_row_with_lineage_by_plain_append(path: Path) -> None:
    src = source_rows(250)
    result = load(path, src, batch_id="run-1")

    assert (result.rows_read, result.rows_inserted, result.rows_updated, result.rows_unchanged) == (
        250,
        250,
        0,
        0,
    )
    rows = read(path)
    assert source_values(rows) == source_values(src)
    assert {r["_qst_source"] for r in rows} == {"tax.XY_NSPJ"}
    assert {r["_qst_batch_id"] for r in rows} == {"run-1"}
    assert {r["_qst_extracted_at"] for r in rows} == {T0 + dt.timedelta(days=1)}
    assert all(r["_qst_deleted_at"] is None for r in rows)
    assert all(isinstance(r["_qst_row_hash"], int) for r in rows)
    assert len({r["_qst_row_hash"] for r in rows}) == 250
    schema = pa.schema(DeltaTable(str(path)).schema().to_arrow())
    assert schema.field("_qst_row_hash").type == pa.int64()
    assert DeltaTable(str(path)).metadata().configuration["qst.row_hash"] == bronze.ROW_HASH_VERSION
    assert result.first_load
    assert schema.field("GXSJ").type == pa.timestamp("us", tz="UTC")
    assert schema.field("_qst_extracted_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("YNSE").type == pa.decimal128(18, 2)
    assert schema.names[-len(bronze.LINEAGE) :] == list(bronze.LINEAGE)
    # a new table: created, then appended (no MERGE), the last commit saying the load completed
    ops = [(c["operation"], c.get("qst.operation"), c.get("qst.final")) for c in history(path)]
    assert ops == [("CREATE TABLE", "create", False), ("WRITE", "append", True)]
    info = bronze.table_info(path)
    assert (info["rows"], info["rows_live"], info["rows_deleted"], info["last_batch_id"]) == (
        250,
        250,
        0,
        "run-1",
    )
    assert info["version"] == result.version == 1 and info["complete"]
    assert info["schema"]["NSRMC"] == "string"


def test_empty_first_load_creates_the_table(path: Path) -> None:
    result = load(path, [])
    assert (result.rows_read, result.rows_inserted) == (0, 0)
    assert read(path) == []
    assert bronze.watermark(path, "GXSJ") is None
    assert bronze.table_info(path)["complete"]


def test_reload_of_the_same_data_writes_nothing(path: Path) -> None:
    src = source_rows(300)
    load(path, src, batch_id="run-1")
    version, files = DeltaTable(str(path)).version(), sorted(DeltaTable(str(path)).file_uris())

    again = load(path, src, batch_id="run-2")

    assert (again.rows_read, again.rows_inserted, again.rows_updated, again.rows_unchanged) == (
        300,
        0,
        0,
        300,
    )
    assert again.commits == 0 and again.version == version
    assert sorted(DeltaTable(str(path)).file_uris()) == files  # no churn: not a single file rewritten
    assert {r["_qst_batch_id"] for r in read(path)} == {"run-1"}


def test_changed_rows_are_updated_the_rest_left_alone(path: Path) -> None:
    src = source_rows(200)
    load(path, src, batch_id="run-1")
    changed = {5, 77, 150}
    new = [dict(r) for r in src]
    for i in changed:
        new[i]["NSRMC"] = "改名后的公司"
        new[i]["YNSE"] = Decimal("99999.99")
        new[i]["GXSJ"] = T0 + dt.timedelta(days=3)
    new += source_rows(10, start=200)  # and 10 new rows

    result = load(path, new, batch_id="run-2")

    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (10, 3, 197)
    rows = read(path)
    assert source_values(rows) == source_values(new)
    by_key = {key_of(r): r for r in rows}
    assert {k for k, r in by_key.items() if r["_qst_batch_id"] == "run-2"} == (
        {key_of(new[i]) for i in changed} | {key_of(r) for r in new[200:]}
    )
    assert bronze.watermark(path, "GXSJ") == T0 + dt.timedelta(days=3)


def test_flags_are_not_part_of_the_row_hash(path: Path) -> None:
    src = source_rows(20)
    load(path, src)
    reflagged = [{**r, "_qst_flags": "encoding_guess"} for r in src]
    result = load(path, reflagged, batch_id="run-2")
    assert (result.rows_updated, result.rows_unchanged) == (0, 20)


# An independent implementation of the documented row hash (module docstring, "The row hash").
M64 = (1 << 64) - 1


def fmix(h: int) -> int:
    h ^= h >> 33
    h = h * 0xFF51AFD7ED558CCD & M64
    h ^= h >> 33
    h = h * 0xC4CEB9FE1A85EC53 & M64
    return h ^ (h >> 33)


def bytes_hash(data: bytes) -> int:
    h = fmix(len(data) ^ 0x9E3779B97F4A7C15)
    for i in range(0, len(data), 8):
        h = fmix(h ^ int.from_bytes(data[i : i + 8], "little"))
    return h


def value_hash(value: object, scale: int | None = None) -> int:
    if isinstance(value, str):
        return bytes_hash(value.encode())
    if isinstance(value, bytes):
        return bytes_hash(value)
    if isinstance(value, Decimal):
        sign, digits, exponent = (
            value.as_tuple()
        )  # exactly: the stored unscaled integer at the column's scale
        unscaled, s = int("".join(map(str, digits))) * (-1 if sign else 1) * 10 ** (exponent + scale), scale
        while s > 0 and unscaled % 10 == 0:
            unscaled, s = unscaled // 10, s - 1
        lo, hi = unscaled & M64, (unscaled >> 64) & M64
        return fmix(fmix(fmix(lo ^ 0xE7037ED1A0B428DB) ^ hi) ^ s)
    if isinstance(value, float):
        bits = 0x7FF8000000000000 if math.isnan(value) else struct.unpack("<Q", struct.pack("<d", value))[0]
        return fmix(bits ^ 0xA0761D6478BD642F)
    if isinstance(value, dt.datetime):
        value = (value - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)
    elif isinstance(value, dt.date):
        value = (value - dt.date(1970, 1, 1)).days
    return fmix((int(value) & M64) ^ 0xD6E8FEB86659FD93)


def row_hash(row: dict, scales: dict[str, int] | None = None) -> int:
    total = (
        sum(
            fmix(bytes_hash(name.encode()) ^ value_hash(v, (scales or {}).get(name)))
            for name, v in row.items()
            if v is not None and name != "_qst_flags"
        )
        & M64
    )
    return total - (1 << 64) if total >> 63 else total


def test_row_hash_is_the_documented_recipe(path: Path) -> None:
    row = {
        "NSRSBH": "91440300708461136T",
        "PJND": 2023,
        "NSRMC": "深圳市腾讯计算机系统有限公司",
        "PJJB": None,
        "YNSE": Decimal("1500.50"),
        "GXSJ": dt.datetime(2024, 3, 1, 8, 0, 0, 250, tzinfo=UTC),
        "_qst_flags": "gbk_repaired",
    }
    load(path, [row])
    (stored,) = read(path)
    # PJJB is null and _qst_flags is not a source column: neither contributes; 1500.50 hashes as (15005, 1)
    assert stored["_qst_row_hash"] == row_hash(row, {"YNSE": 2})


def test_row_hash_recipe_for_every_type(tmp_path: Path) -> None:
    schema = pa.schema(
        [
            ("ID", pa.int64()),
            ("I8", pa.int8()),
            ("OK", pa.bool_()),
            ("F32", pa.float32()),
            ("F64", pa.float64()),
            ("D0", pa.decimal128(38, 0)),
            ("D4", pa.decimal128(38, 4)),
            ("BIN", pa.binary()),
            ("TXT", pa.string()),
            ("DAY", pa.date32()),
            ("TS", pa.timestamp("us", tz="UTC")),
        ]
    )
    huge = 10**37 + 7  # beyond 64 bits: the per-value path
    rows = [
        {
            "ID": 1,
            "I8": -5,
            "OK": True,
            "F32": 0.5,
            "F64": float("nan"),
            "D0": Decimal(huge),
            "D4": Decimal("-12.3400"),
            "BIN": b"\x00\xff" * 9,
            "TXT": "",
            "DAY": dt.date(1969, 12, 31),
            "TS": dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        },
        {
            "ID": 2,
            "I8": None,
            "OK": False,
            "F32": None,
            "F64": -0.0,
            "D0": Decimal(-huge),
            "D4": Decimal("0.0000"),
            "BIN": None,
            "TXT": "张" * 40,
            "DAY": None,
            "TS": None,
        },
        {
            "ID": 3,
            "I8": 127,
            "OK": None,
            "F32": -1.25,
            "F64": 1e300,
            "D0": Decimal(100),
            "D4": Decimal(f"{huge}E-4"),
            "BIN": b"",
            "TXT": "x" * 1000 + "尾",
            "DAY": dt.date(2024, 2, 29),
            "TS": T0,
        },
    ] + [{"ID": i, "TXT": "街道" * (i % 37), "D4": Decimal(i) / 100, "F64": i / 3} for i in range(4, 60)]
    path = bronze_path(tmp_path, "t", "types")
    batch = pa.RecordBatch.from_pylist([{c: r.get(c) for c in schema.names} for r in rows], schema=schema)
    bronze.upsert_batches(
        path, [batch], schema, primary_key=["ID"], source="s", batch_id="b", extracted_at=T0
    )
    stored = {
        r["ID"]: r["_qst_row_hash"]
        for r in pds.dataset(DeltaTable(str(path)).file_uris()).to_table().to_pylist()
    }
    scales = {"D0": 0, "D4": 4}
    assert stored == {r["ID"]: row_hash({c: r.get(c) for c in schema.names}, scales) for r in rows}


def test_row_hash_survives_widening_reordering_and_added_null_columns() -> None:
    narrow = pa.table(
        {
            "A": pa.array([1, None], pa.int32()),
            "B": pa.array([Decimal("1.50"), Decimal(-2)], pa.decimal128(10, 2)),
            "C": pa.array([0.25, 3.0], pa.float32()),
            "T": ["甲", None],
        }
    )
    wide = pa.table(
        {
            "T": pa.array(["甲", None], pa.large_string()),
            "X": pa.nulls(2, pa.string()),
            "C": pa.array([0.25, 3.0], pa.float64()),
            "B": pa.array([Decimal("1.5000"), Decimal("-2.0000")], pa.decimal128(14, 4)),
            "A": pa.array([1, None], pa.int64()),
        }
    )
    narrow_hash = RowHasher(narrow.schema)(narrow).to_pylist()
    assert narrow_hash == RowHasher(wide.schema)(wide).to_pylist()
    assert narrow_hash == [row_hash(r, {"B": 2}) for r in narrow.to_pylist()]


def test_row_hash_ignores_column_order(path: Path, tmp_path: Path) -> None:
    src = source_rows(30)
    load(path, src)
    reordered = pa.schema([SCHEMA.field(n) for n in reversed(SCHEMA.names)])
    other = bronze_path(tmp_path, "tax", "reordered")
    load(other, src, schema=reordered)
    assert [r["_qst_row_hash"] for r in read(path)] == [r["_qst_row_hash"] for r in read(other)]
    result = load(path, src, schema=reordered, batch_id="run-2")
    assert result.rows_unchanged == 30


def test_a_table_hashed_by_an_older_recipe_is_rehashed_once(path: Path) -> None:
    """A table written before the recipe changed (md5 text, no ``qst.row_hash`` property): one rewrite
    recomputes its hashes before any data; re-read rows are then unchanged, never doubled (null keys
    included), and lineage is kept."""
    src = source_rows(30) + [dict(r, NSRSBH=None) for r in source_rows(3, start=100)]
    old_schema = pa.schema(
        [
            *SCHEMA,
            ("_qst_source", pa.string()),
            ("_qst_batch_id", pa.string()),
            ("_qst_extracted_at", pa.timestamp("us", tz="UTC")),
            ("_qst_row_hash", pa.string()),
            ("_qst_deleted_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    old_rows = [
        dict(
            r,
            _qst_source="tax.XY_NSPJ",
            _qst_batch_id="md5-era",
            _qst_extracted_at=T0,
            _qst_row_hash=hashlib.md5(repr(sorted(r.items())).encode()).hexdigest(),
            _qst_deleted_at=None,
        )
        for r in src
    ]
    path.parent.mkdir(parents=True)
    write_deltalake(
        str(path),
        pa.Table.from_pylist(old_rows, schema=old_schema),
        commit_properties=CommitProperties(
            custom_metadata={"qst.batch_id": "md5-era", "qst.final": True, "qst.operation": "append"}
        ),
    )

    result = load(path, src, batch_id="run-2")

    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (0, 0, 33)
    rows = read(path)
    assert len(rows) == 33 and source_values(rows) == source_values(src)
    assert {r["_qst_batch_id"] for r in rows} == {"md5-era"}  # lineage kept: nothing was re-landed
    assert {r["_qst_row_hash"] for r in rows} == {row_hash(r, {"YNSE": 2}) for r in src}
    table = DeltaTable(str(path))
    assert pa.schema(table.schema().to_arrow()).field("_qst_row_hash").type == pa.int64()
    assert table.metadata().configuration["qst.row_hash"] == bronze.ROW_HASH_VERSION
    assert [c.get("qst.operation") for c in history(path)][-2:] == ["rehash", "row_hash"]
    assert bronze.watermark(path, "GXSJ") == max(r["GXSJ"] for r in src)
    version = table.version()
    assert load(path, src, batch_id="run-3").commits == 0 and DeltaTable(str(path)).version() == version


# ---------------------------------------------------------------------------------------- duplicates


def test_duplicate_keys_in_one_stream_keep_the_last_occurrence(path: Path) -> None:
    src = source_rows(40)
    first_versions = [dict(r, NSRMC="旧名称") for r in src[:10]]
    stream = first_versions + src  # the first 10 keys read twice (a look-back), the later read wins
    result = load(path, stream, size=7, max_rows_per_commit=1000)
    assert (result.rows_read, result.rows_inserted, result.rows_duplicate) == (50, 40, 10)
    assert source_values(read(path)) == source_values(src)


def test_duplicates_spread_over_several_commits_of_a_first_load(path: Path) -> None:
    src = source_rows(60)
    later = [dict(r, NSRMC=r["NSRMC"] + "（新）") for r in src[:15]]
    stream = src + later  # the repeats land in a later commit: append must not double them
    result = load(path, stream, size=10, max_rows_per_commit=20)

    rows = read(path)
    assert len(rows) == 60 and len({key_of(r) for r in rows}) == 60
    assert source_values(rows) == source_values(later + src[15:])
    assert result.rows_read == 75
    assert result.rows_inserted + result.rows_updated + result.rows_unchanged + result.rows_duplicate == 75
    assert result.rows_updated == 15


def test_a_row_changed_twice_then_back_during_one_read_ends_as_last_read(path: Path) -> None:
    src = source_rows(30)
    load(path, src)
    changed = dict(src[3], PJJB="D")
    stream = [changed, *src[10:20], src[3]]  # changed, buffered for MERGE, then read again as it was
    load(path, stream, size=5, max_rows_per_commit=5, batch_id="run-2")
    assert source_values(read(path)) == source_values(src)


def test_rows_with_a_null_key_are_kept_apart_and_never_doubled(path: Path) -> None:
    src = source_rows(10)
    orphans = [dict(r, NSRSBH=None) for r in source_rows(3, start=100)]  # legacy rows without a key value
    load(path, src + orphans)
    result = load(path, src + orphans, batch_id="run-2")
    rows = read(path)
    assert len(rows) == 13 and result.rows_unchanged == 13
    assert sum(r["NSRSBH"] is None for r in rows) == 3


@pytest.mark.parametrize(
    ("key_type", "keys"),
    [
        # the log keeps timestamps to the millisecond, rounded down: 1.5 ms and 1.9 ms share a statistic
        (pa.timestamp("us", tz="UTC"), [T0 + dt.timedelta(microseconds=1000 + 100 * i) for i in range(40)]),
        # the log truncates strings to 64 bytes: these differ only after 70 characters
        (pa.string(), ["深圳市南山区" * 12 + f"{i:04d}" for i in range(40)]),
        # the log writes decimals as floats: these 20-digit keys differ in their last digit
        (pa.decimal128(20, 0), [Decimal(18446744073709551000 + i) for i in range(40)]),
        (pa.date32(), [dt.date(2024, 1, 1) + dt.timedelta(days=i // 2) for i in range(0, 80, 2)]),
    ],
)
def test_skipping_files_by_key_statistics_never_doubles_a_row(
    path: Path, key_type: pa.DataType, keys: list
) -> None:
    schema = pa.schema([("K", key_type), ("V", pa.string())])
    rows = [{"K": k, "V": f"v{i}"} for i, k in enumerate(keys)]
    shuffled_rows = rows[1::2] + rows[::2]  # every commit's key range overlaps the others'
    first = bronze.upsert_batches(
        path,
        batches(shuffled_rows, 7, schema),
        schema,
        primary_key=["K"],
        source="s",
        batch_id="b1",
        extracted_at=T0,
        max_rows_per_commit=10,
    )
    assert first.first_load and first.commits == 4
    changed = [dict(r, V=r["V"] + "*") for r in rows[::3]] + rows[1::3]
    again = bronze.upsert_batches(
        path,
        batches(changed, 5, schema),
        schema,
        primary_key=["K"],
        source="s",
        batch_id="b2",
        extracted_at=T0,
        max_rows_per_commit=10,
    )
    assert not again.first_load
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == (0, 14, 13)
    stored = pds.dataset(DeltaTable(str(path)).file_uris()).to_table().to_pylist()
    assert len(stored) == 40 and len({r["K"] for r in stored}) == 40
    assert {r["K"]: r["V"] for r in stored} == {r["K"]: r["V"] for r in rows} | {
        r["K"]: r["V"] for r in changed
    }


def test_a_first_load_in_random_key_order_with_repeats_keeps_the_last(path: Path) -> None:
    src = source_rows(300)
    order = src[::7] + src[3::7] + src[1::7] + src[6::7] + src[2::7] + src[5::7] + src[4::7]
    repeats = [dict(r, PJJB="R") for r in order[::10]]
    result = load(path, order + repeats + order[::25], size=13, max_rows_per_commit=40)
    rows = read(path)
    assert len(rows) == 300 and len({key_of(r) for r in rows}) == 300
    last = {key_of(r): r for r in order + repeats + order[::25]}
    assert source_values(rows) == source_values(list(last.values()))
    assert (
        result.rows_read
        == result.rows_inserted + result.rows_updated + result.rows_unchanged + result.rows_duplicate
    )


# ------------------------------------------------------------------------------------------- watermark


def test_watermark_is_the_max_cursor_of_committed_rows(path: Path) -> None:
    assert bronze.watermark(path, "GXSJ") is None
    src = source_rows(120)
    load(path, list(reversed(src)))
    assert bronze.watermark(path, "GXSJ") == max(r["GXSJ"] for r in src) == T0 + dt.timedelta(minutes=119)
    late = [dict(src[0], NSRMC="迟到的更新", GXSJ=T0 - dt.timedelta(days=30))]  # an older cursor value
    load(path, late, batch_id="run-2")
    assert bronze.watermark(path, "GXSJ") == T0 + dt.timedelta(minutes=119)
    assert bronze.watermark(path, "PJND") == 2022
    with pytest.raises(KeyError):
        bronze.watermark(path, "NO_SUCH_COLUMN")


def test_watermark_from_log_statistics_is_the_true_maximum(path: Path) -> None:
    schema = pa.schema(
        [
            ("ID", pa.int64()),
            ("BIG", pa.decimal128(20, 0)),
            ("DAY", pa.date32()),
            ("TS", pa.timestamp("us", tz="UTC")),
        ]
    )
    rows = [
        {
            "ID": i,
            "BIG": Decimal(18446744073709551000 + i),
            "DAY": dt.date(2024, 1, 1) + dt.timedelta(days=i),
            "TS": T0 + dt.timedelta(microseconds=i),
        }
        for i in range(1, 60)
    ]
    rows[17]["TS"] = T0 + dt.timedelta(
        microseconds=1999
    )  # the highest, in a file whose maximum is logged as 1 ms
    rows[40]["TS"] = T0 + dt.timedelta(microseconds=1500)
    bronze.upsert_batches(
        path,
        batches(rows, 10, schema),
        schema,
        primary_key=["ID"],
        source="s",
        batch_id="b",
        extracted_at=T0,
        max_rows_per_commit=10,
    )
    assert len(DeltaTable(str(path)).file_uris()) == 6
    assert bronze.watermark(path, "ID") == 59
    assert bronze.watermark(path, "BIG") == Decimal(18446744073709551059)
    assert bronze.watermark(path, "DAY") == dt.date(2024, 1, 1) + dt.timedelta(days=59)
    assert bronze.watermark(path, "TS") == T0 + dt.timedelta(microseconds=1999)


# ---------------------------------------------------------------------------------------- schema drift


def test_new_column_is_added_and_reported(path: Path) -> None:
    src = source_rows(20)
    load(path, src)
    wider = pa.schema([*SCHEMA, ("ZGSWJG", pa.string())])  # tax office, new at the source
    new = [dict(r, ZGSWJG="国家税务总局深圳市税务局") for r in source_rows(5, start=20)]
    old = [dict(r, ZGSWJG=None) for r in src]

    result = load(path, old + new, schema=wider, batch_id="run-2")

    assert [(d.column, d.change, d.old_type, d.new_type) for d in result.drift] == [
        ("ZGSWJG", "added", None, "string")
    ]
    assert (result.rows_inserted, result.rows_unchanged) == (5, 20)  # a null new column is not a change
    rows = read(path)
    assert [r["ZGSWJG"] for r in rows].count(None) == 20
    schema_commit = next(c for c in history(path) if c.get("qst.operation") == "schema")
    assert schema_commit["qst.drift"] == [
        {"column": "ZGSWJG", "change": "added", "old_type": None, "new_type": "string"}
    ]
    assert schema_commit["qst.batch_id"] == "run-2"


def test_safe_widenings_are_applied_without_churn(path: Path) -> None:
    src = source_rows(25)
    load(path, src)
    wider = pa.schema(
        [
            ("NSRSBH", pa.large_string()),
            ("PJND", pa.int64()),
            ("NSRMC", pa.large_string()),
            ("PJJB", pa.string()),
            ("YNSE", pa.decimal128(22, 4)),
            ("GXSJ", pa.timestamp("ns", tz="Asia/Shanghai")),
            ("_qst_flags", pa.string()),
        ]
    )
    result = load(path, src, schema=wider, batch_id="run-2")

    assert sorted((d.column, d.change, d.old_type, d.new_type) for d in result.drift) == [
        ("PJND", "widened", "int32", "int64"),
        ("YNSE", "widened", "decimal128(18, 2)", "decimal128(22, 4)"),
    ]  # string -> large_string and the timestamp's zone/unit are the same Delta types: no drift
    assert (result.rows_updated, result.rows_unchanged) == (0, 25)  # the row hash survives widening
    schema = pa.schema(DeltaTable(str(path)).schema().to_arrow())
    assert (schema.field("PJND").type, schema.field("YNSE").type) == (pa.int64(), pa.decimal128(22, 4))
    assert schema.field("GXSJ").type == pa.timestamp("us", tz="UTC")
    assert source_values(read(path)) == source_values(src)
    big = [dict(source_rows(1, start=500)[0], PJND=3_000_000_000)]  # now fits
    load(path, big, schema=wider, batch_id="run-3")
    assert 3_000_000_000 in {r["PJND"] for r in read(path)}
    # a narrower incoming type is simply cast up, not reported
    assert load(path, src, batch_id="run-4").drift == []


def test_float_widening(path: Path) -> None:
    schema32 = pa.schema([("ID", pa.int64()), ("RATE", pa.float32())])
    rows = [{"ID": i, "RATE": i / 8} for i in range(8)]
    bronze.upsert_batches(
        path,
        [pa.RecordBatch.from_pylist(rows, schema=schema32)],
        schema32,
        primary_key=["ID"],
        source="s",
        batch_id="b1",
        extracted_at=T0,
    )
    schema64 = pa.schema([("ID", pa.int64()), ("RATE", pa.float64())])
    result = bronze.upsert_batches(
        path,
        [pa.RecordBatch.from_pylist(rows, schema=schema64)],
        schema64,
        primary_key=["ID"],
        source="s",
        batch_id="b2",
        extracted_at=T0,
    )
    assert [(d.column, d.change) for d in result.drift] == [("RATE", "widened")]
    assert result.rows_unchanged == 8


@pytest.mark.parametrize(
    ("column", "new_type", "why"),
    [
        ("YNSE", pa.decimal128(18, 4), "not a safe widening"),  # fewer integer digits
        ("PJND", pa.string(), "not a safe widening"),
        ("GXSJ", pa.date32(), "not a safe widening"),
        ("NSRMC", None, "missing from the source"),
    ],
)
def test_unsafe_drift_is_refused_before_any_write(path: Path, column: str, new_type, why: str) -> None:
    src = source_rows(10)
    load(path, src)
    version, before = DeltaTable(str(path)).version(), read(path)
    fields = [SCHEMA.field(n) for n in SCHEMA.names if not (n == column and new_type is None)]
    drifted = pa.schema([pa.field(f.name, new_type) if f.name == column else f for f in fields])
    rows = [{k: v for k, v in r.items() if k in drifted.names} for r in source_rows(10, start=50)]
    if new_type == pa.string():
        rows = [dict(r, PJND=str(r["PJND"])) for r in rows]
    if new_type == pa.date32():
        rows = [dict(r, GXSJ=r["GXSJ"].date()) for r in rows]

    with pytest.raises(bronze.SchemaDriftError) as info:
        load(path, rows, schema=drifted, batch_id="run-2")

    message = str(info.value)
    assert "tax/credit_ratings" in message and repr(column) in message and why in message
    assert str(SCHEMA.field(column).type) in message
    if new_type is not None:
        assert str(new_type) in message
    assert DeltaTable(str(path)).version() == version and read(path) == before


def test_date_to_timestamp_is_refused(path: Path) -> None:
    schema = pa.schema([("ID", pa.int64()), ("CLRQ", pa.date32())])
    batch = pa.RecordBatch.from_pylist([{"ID": 1, "CLRQ": dt.date(2019, 3, 1)}], schema=schema)
    bronze.upsert_batches(
        path, [batch], schema, primary_key=["ID"], source="s", batch_id="b1", extracted_at=T0
    )
    wider = pa.schema([("ID", pa.int64()), ("CLRQ", pa.timestamp("us", tz="UTC"))])
    batch = pa.RecordBatch.from_pylist([{"ID": 1, "CLRQ": dt.datetime(2019, 3, 1, tzinfo=UTC)}], schema=wider)
    with pytest.raises(bronze.SchemaDriftError, match=r"'CLRQ': date32\[day\] -> timestamp\[us, tz=UTC\]"):
        bronze.upsert_batches(
            path, [batch], wider, primary_key=["ID"], source="s", batch_id="b2", extracted_at=T0
        )


def test_naive_timestamps_are_refused(path: Path) -> None:
    naive = pa.schema([("ID", pa.int64()), ("GXSJ", pa.timestamp("us"))])
    batch = pa.RecordBatch.from_pylist([{"ID": 1, "GXSJ": dt.datetime(2024, 1, 1)}], schema=naive)
    with pytest.raises(ValueError, match="naive timestamp"):
        bronze.upsert_batches(
            path, [batch], naive, primary_key=["ID"], source="s", batch_id="b", extracted_at=T0
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        load(path, source_rows(1), extracted_at=dt.datetime(2024, 1, 1))
    assert not DeltaTable.is_deltatable(str(path))


# ----------------------------------------------------------------------------------- deletes, snapshots


def test_mark_deleted_marks_absent_keys_and_unmarks_returning_ones(path: Path) -> None:
    src = source_rows(30)
    load(path, src)
    at = T0 + dt.timedelta(days=7)
    present = [r for i, r in enumerate(src) if i % 3]  # every third row deleted at the source
    keys = pa.RecordBatch.from_pylist(
        [{"NSRSBH": r["NSRSBH"], "PJND": r["PJND"]} for r in present],
        schema=pa.schema([("NSRSBH", pa.large_string()), ("PJND", pa.int64())]),
    )

    assert bronze.mark_deleted(path, [keys], primary_key=KEY, at=at) == 10
    rows = {key_of(r): r for r in read(path)}
    assert len(rows) == 30  # flagged, never removed
    assert {k for k, r in rows.items() if r["_qst_deleted_at"] == at} == {
        key_of(r) for i, r in enumerate(src) if i % 3 == 0
    }
    assert bronze.table_info(path)["rows_live"] == 20
    assert bronze.last_key_snapshot(path) == at
    version = DeltaTable(str(path)).version()

    assert bronze.mark_deleted(path, [keys], primary_key=KEY, at=at + dt.timedelta(days=7)) == 0  # idempotent
    assert [r["_qst_deleted_at"] for r in read(path)] == [rows[k]["_qst_deleted_at"] for k in sorted(rows)]
    assert DeltaTable(str(path)).version() == version + 1  # only the key-snapshot time was recorded

    back = pa.RecordBatch.from_pylist(
        [{"NSRSBH": r["NSRSBH"], "PJND": r["PJND"]} for r in src],
        schema=pa.schema([("NSRSBH", pa.string()), ("PJND", pa.int32())]),
    )
    assert bronze.mark_deleted(path, [back], primary_key=KEY, at=at + dt.timedelta(days=14)) == 0
    assert all(r["_qst_deleted_at"] is None for r in read(path))
    assert bronze.mark_deleted(bronze_path(path.parent, "x", "none"), [back], primary_key=KEY, at=at) == 0


def test_an_unchanged_row_read_again_is_no_longer_deleted(path: Path) -> None:
    src = source_rows(10)
    load(path, src)
    bronze.mark_deleted(path, [], primary_key=KEY, at=T0 + dt.timedelta(days=2))
    assert bronze.table_info(path)["rows_live"] == 0
    result = load(path, src[:4], batch_id="run-2")
    assert result.rows_updated == 4 and bronze.table_info(path)["rows_live"] == 4


def test_replace_snapshot_makes_live_rows_exactly_the_source(path: Path) -> None:
    first = source_rows(40)

    def snapshot(rows: list[dict], batch_id: str, at: dt.datetime) -> bronze.LoadResult:
        return bronze.replace_snapshot(
            path,
            batches(rows, 9),
            SCHEMA,
            primary_key=KEY,
            source="tax.XY_NSPJ",
            batch_id=batch_id,
            extracted_at=at,
            max_rows_per_commit=15,
        )

    snapshot(first, "night-1", T0)
    second = [r for i, r in enumerate(first) if i % 4] + source_rows(5, start=40)
    second[0] = dict(second[0], PJJB="D")
    at2 = T0 + dt.timedelta(days=1)
    result = snapshot(second, "night-2", at2)

    assert (result.rows_inserted, result.rows_updated, result.rows_deleted) == (5, 1, 10)
    rows = read(path)
    assert source_values(live(rows)) == source_values(second)
    assert len(rows) == 45 and {r["_qst_deleted_at"] for r in rows if r not in live(rows)} == {at2}
    third = first[:8]  # some deleted rows come back; the rest disappear
    snapshot(third, "night-3", T0 + dt.timedelta(days=2))
    assert source_values(live(read(path))) == source_values(third)
    assert bronze.table_info(path)["rows_live"] == 8


def test_key_snapshot_is_exact_when_only_the_pairing_of_key_values_changed(path: Path) -> None:
    rows = source_rows(6)
    load(path, [rows[0], rows[4]])  # keys (A, 2020) and (B, 2021)
    swapped = [{"NSRSBH": rows[0]["NSRSBH"], "PJND": 2021}, {"NSRSBH": rows[4]["NSRSBH"], "PJND": 2020}]
    keys = pa.RecordBatch.from_pylist(
        swapped, schema=pa.schema([("NSRSBH", pa.string()), ("PJND", pa.int32())])
    )
    # the same values in each key column, paired differently: both rows are gone from the source
    assert bronze.mark_deleted(path, [keys], primary_key=KEY, at=T0 + dt.timedelta(days=3)) == 2
    assert bronze.table_info(path)["rows_live"] == 0
    assert not list(path.parent.glob(f".{path.name}.keys-*")), "the spooled keys are removed"


def test_key_snapshot_unflags_rows_with_a_null_key_that_came_back(path: Path) -> None:
    src = source_rows(4) + [dict(r, NSRSBH=None) for r in source_rows(2, start=10)]
    load(path, src)
    key_schema = pa.schema([("NSRSBH", pa.string()), ("PJND", pa.int32())])
    without_nulls = pa.RecordBatch.from_pylist([{c: r[c] for c in KEY} for r in src[:4]], schema=key_schema)
    assert bronze.mark_deleted(path, [without_nulls], primary_key=KEY, at=T0 + dt.timedelta(days=1)) == 2
    everything = pa.RecordBatch.from_pylist([{c: r[c] for c in KEY} for r in src], schema=key_schema)
    assert bronze.mark_deleted(path, [everything], primary_key=KEY, at=T0 + dt.timedelta(days=2)) == 0
    assert bronze.table_info(path)["rows_live"] == 6


# ------------------------------------------------------------------------------ bounded commits, memory


def test_commits_are_bounded_and_the_result_is_the_same(path: Path, tmp_path: Path) -> None:
    src = source_rows(5000)
    result = load(path, src, size=300, max_rows_per_commit=1000)
    assert result.commits == 5
    appends = [c for c in history(path) if c.get("qst.operation") == "append"]
    assert [c["qst.rows"] for c in appends] == [1000] * 5
    assert [c["qst.final"] for c in appends] == [False] * 4 + [True]

    one = bronze_path(tmp_path, "tax", "one_commit")
    load(one, src, size=300)
    assert read(path) == read(one)

    changed = [dict(r, PJJB="Z") if i % 2 else r for i, r in enumerate(src)]  # 2500 changed rows
    result = load(path, changed, size=300, max_rows_per_commit=1000, batch_id="run-2")
    merges = [c for c in history(path) if c.get("qst.operation") == "merge"]
    assert (result.rows_updated, result.rows_unchanged) == (2500, 2500)
    assert [c["qst.rows"] for c in merges] == [1000, 1000, 500]
    assert [c["qst.final"] for c in merges] == [False, False, True]
    assert source_values(read(path)) == source_values(changed)


def test_a_failing_commit_stops_the_load_and_a_rerun_converges(path: Path, monkeypatch) -> None:
    src = source_rows(500)
    real, calls = bronze_merge.write_deltalake, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(bronze_merge, "write_deltalake", flaky)
    with pytest.raises(OSError, match="disk full"):
        load(path, src, size=50, max_rows_per_commit=100)
    assert len(read(path)) == 200 and not bronze.table_info(path)["complete"]
    monkeypatch.setattr(bronze_merge, "write_deltalake", real)
    load(path, src, batch_id="rerun", max_rows_per_commit=100)
    assert source_values(read(path)) == source_values(src) and bronze.table_info(path)["complete"]


def test_a_failing_reader_raises_its_own_error_and_releases_the_lock(path: Path) -> None:
    class SourceGoneError(Exception):
        pass

    def stream():
        yield from batches(source_rows(300), 100)
        raise SourceGoneError("connection reset")

    with pytest.raises(SourceGoneError, match="connection reset"):
        bronze.upsert_batches(
            path,
            stream(),
            SCHEMA,
            primary_key=KEY,
            source="s",
            batch_id="b1",
            extracted_at=T0,
            max_rows_per_commit=100,
        )
    assert len(read(path)) in (100, 200, 300)  # whatever was committed before the error is whole
    load(path, source_rows(300), batch_id="b2")  # the lock was released
    assert len(read(path)) == 300


# ------------------------------------------------------------------------------------ crash and locking

CHILD = textwrap.dedent("""
    import datetime as dt, os, sys, time, traceback
    sys.path.insert(0, {root!r})
    import pyarrow.parquet as pq
    from connectors import bronze
    from connectors.bronze import merge

    pause_after, pause_seconds, marker = {pause_after!r}, {pause_seconds!r}, {marker!r}

    def hook(n):  # after commit n: say so, then wait for a go-ahead (or pause_seconds)
        if n == pause_after:
            open(marker, "w").close()
            deadline = time.monotonic() + pause_seconds
            while not os.path.exists(marker + ".go") and time.monotonic() < deadline:
                time.sleep(0.01)

    merge._after_commit = hook  # the test seam of the commit loop
    open(marker + ".started", "w").close()
    try:
        stream = pq.ParquetFile({stream!r})
        result = bronze.upsert_batches({path!r}, stream.iter_batches(batch_size=100), stream.schema_arrow,
                                       primary_key={key!r}, source="tax.XY_NSPJ", batch_id={batch_id!r},
                                       extracted_at=dt.datetime.now(dt.UTC), max_rows_per_commit={max_rows!r})
        print("done", result.commits, flush=True)
        os._exit(0)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
""")


def spawn(
    tmp_path: Path,
    path: Path,
    rows: list[dict],
    *,
    name: str,
    batch_id: str,
    pause_after: int,
    pause_seconds: float,
    max_rows: int,
) -> tuple[subprocess.Popen, Path]:
    stream = tmp_path / f"{name}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), stream)
    marker = tmp_path / f"{name}.paused"
    code = CHILD.format(
        root=str(ROOT),
        pause_after=pause_after,
        pause_seconds=pause_seconds,
        marker=str(marker),
        stream=str(stream),
        path=str(path),
        key=KEY,
        batch_id=batch_id,
        max_rows=max_rows,
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, marker


def wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 600) -> None:  # a hang guard only
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child ended early: {proc.communicate()}")
        assert time.monotonic() < deadline, f"{marker.name} never appeared"
        time.sleep(0.02)


def rerun_from_watermark(
    path: Path, source: list[dict], *, lookback: dt.timedelta, batch_id: str
) -> bronze.LoadResult:
    """What the incremental extraction does: read rows past the committed watermark minus the look-back."""
    since = bronze.watermark(path, "GXSJ")
    todo = source if since is None else [r for r in source if r["GXSJ"] > since - lookback]
    return load(path, todo, batch_id=batch_id, max_rows_per_commit=100)


def shuffled(rows: list[dict]) -> list[dict]:
    return rows[::2][::-1] + rows[1::2]  # a reader that does not stream in cursor order


def test_killed_first_load_then_rerun_from_watermark_equals_source(path: Path, tmp_path: Path) -> None:
    src = source_rows(1000)
    proc, marker = spawn(
        tmp_path,
        path,
        shuffled(src),
        name="first",
        batch_id="run-1",
        pause_after=2,
        pause_seconds=120,
        max_rows=100,
    )
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL

    committed = read(path)
    assert len(committed) == 200  # two commits of 100 rows landed, the rest did not
    naive = max(r["GXSJ"] for r in committed)
    assert [r for r in src if r["GXSJ"] <= naive and key_of(r) not in {key_of(c) for c in committed}]
    # ... so restarting from max(cursor) would lose rows; the watermark knows the load was interrupted
    assert bronze.watermark(path, "GXSJ") is None
    assert not bronze.table_info(path)["complete"]

    rerun_from_watermark(path, shuffled(src), lookback=dt.timedelta(0), batch_id="run-2")

    rows = read(path)
    assert source_values(rows) == source_values(src)  # no duplicates, nothing lost
    assert bronze.table_info(path)["complete"]
    assert bronze.watermark(path, "GXSJ") == max(r["GXSJ"] for r in src)


def test_killed_incremental_load_then_rerun_converges(path: Path, tmp_path: Path) -> None:
    src = source_rows(600)
    load(path, src, batch_id="night-1")
    # the next night: 200 rows changed (newer cursor), 300 new rows
    night2 = [
        dict(r, NSRMC=r["NSRMC"] + "（变更）", GXSJ=r["GXSJ"] + dt.timedelta(days=1)) if i % 3 == 0 else r
        for i, r in enumerate(src)
    ] + source_rows(300, start=600, version=1)
    since = bronze.watermark(path, "GXSJ")
    todo = shuffled([r for r in night2 if r["GXSJ"] > since])
    proc, marker = spawn(
        tmp_path,
        path,
        todo,
        name="night2",
        batch_id="night-2",
        pause_after=1,
        pause_seconds=120,
        max_rows=100,
    )
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert source_values(read(path)) not in (source_values(src), source_values(night2))  # really midway

    rerun_from_watermark(path, night2, lookback=dt.timedelta(hours=1), batch_id="night-2-rerun")

    assert source_values(read(path)) == source_values(night2)
    assert bronze.watermark(path, "GXSJ") == max(r["GXSJ"] for r in night2)


def test_the_lock_serializes_two_writers_in_two_processes(path: Path, tmp_path: Path) -> None:
    src = source_rows(1000)
    load(path, src, batch_id="seed")
    a_rows = [dict(r, PJJB="A") for r in src[:600]]
    b_rows = [dict(r, PJJB="B") for r in src[300:]]

    a, a_paused = spawn(
        tmp_path, path, a_rows, name="a", batch_id="writer-a", pause_after=1, pause_seconds=60, max_rows=150
    )
    wait_for(a_paused, a)  # A has committed once and holds the lock while it waits
    b, b_paused = spawn(
        tmp_path, path, b_rows, name="b", batch_id="writer-b", pause_after=0, pause_seconds=0, max_rows=150
    )
    wait_for(Path(str(b_paused) + ".started"), b)  # B is about to write: it must block on the lock
    time.sleep(1.0)
    Path(str(a_paused) + ".go").touch()
    out_a, err_a = a.communicate(timeout=600)  # hang guards, not speed checks
    out_b, err_b = b.communicate(timeout=600)
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    assert out_a.startswith("done") and out_b.startswith("done")
    assert "CommitFailedError" not in err_a + err_b

    writers = [c["qst.batch_id"] for c in history(path) if c.get("qst.batch_id") in ("writer-a", "writer-b")]
    assert (
        writers == sorted(writers) and writers.count("writer-a") >= 4 and "writer-b" in writers
    )  # no interleaving
    b_started = Path(str(b_paused) + ".started").stat().st_mtime
    a_last = max(c["timestamp"] for c in history(path) if c.get("qst.batch_id") == "writer-a") / 1000
    assert b_started < a_last  # B was running while A still had commits to make: it waited for the lock
    rows = {key_of(r): r["PJJB"] for r in read(path)}
    assert [rows[key_of(r)] for r in src] == ["A"] * 300 + ["B"] * 700
