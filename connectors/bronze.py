"""Bronze: land a source table's Arrow stream in its Delta table -- nothing lost, nothing doubled.

One Delta table per source table at ``<home>/lake/bronze/<department>/<asset>``. A reader delivers the
source columns (renamed and typed, timestamps in UTC) plus the nullable string column ``_qst_flags``;
this module adds the lineage columns and upserts by primary key. No Dagster and no source SQL here.

Columns
=======
Source columns, ``_qst_flags`` (from the reader), then the lineage of :data:`LINEAGE`:

``_qst_source``       ``<department>.<table>`` the row came from
``_qst_batch_id``     the load (run id) that last *wrote* this version of the row
``_qst_extracted_at`` when that load extracted it (UTC)
``_qst_row_hash``     64-bit hash (``long``) of the row's source values (below)
``_qst_deleted_at``   null while the row exists at the source; when a key snapshot or a full snapshot
                      no longer saw the key. Rows are never physically deleted.

The row hash
============
A 64-bit hash of the row's *source* columns (never ``_qst_flags`` or lineage), defined here -- not by a
library's hash, which may change between versions -- and computed vectorized with numpy, batch by
batch as the stream arrives (about 3x cheaper than the md5 of a canonical text computed by DuckDB it
replaces, and a quarter of the bytes to store). With ``fmix`` murmur3's 64-bit finalizer (a bijection)
and all arithmetic modulo 2**64:

* each *non-null* value of column ``c`` contributes ``fmix(H(name of c) ^ V(value))``; null values
  contribute nothing; the row hash is the *sum* of the contributions, stored as a signed ``long``;
* ``H(bytes)``: ``h = fmix(len ^ S_BYTES)``, then ``h = fmix(h ^ w)`` for each 8-byte little-endian word
  ``w`` of the bytes (the last one zero-padded). Strings hash their UTF-8 bytes, binary its bytes;
* integers, booleans (0/1), dates (days) and timestamps (UTC microseconds): ``fmix(int64 value ^ S_INT)``;
  floats: ``fmix(float64 bits ^ S_FLOAT)`` (one NaN); decimals: the unscaled integer ``u`` and scale ``s``
  with trailing zeros removed (``1500.50`` is ``(15005, 1)``), ``fmix(fmix(fmix(lo(u) ^ S_DEC) ^ hi(u)) ^ s)``
  over the two 64-bit halves of ``u`` as a 128-bit integer; nested values: ``H`` of DuckDB's text of them.

The constants are in the code and a test pins the recipe against an independent pure-Python
implementation. The hash does not change when columns are reordered (a sum), when a column is added
(its nulls contribute nothing) or when a type is widened (int32->int64, decimal(10,2)->decimal(12,4),
float32->float64: the values are hashed in canonical form). A row changed in one column always gets a
new hash when that column is not text, or is text whose change keeps its length and stays within one
8-byte word (every step is a bijection); otherwise two versions collide with probability about 2**-64.
The hash decides whether a re-read row is rewritten, and identifies rows whose key has a null (below).
The recipe's name (:data:`ROW_HASH_VERSION`) is the table property ``qst.row_hash``; a table written
under another recipe (or before the property existed: md5 text) has its row hashes recomputed by one
streaming rewrite, committed before any data and idempotent like a widening -- a recipe change costs one
rewrite of each table, never a lost or doubled row.

Upsert rules
============
* A key not in the table is inserted. A key whose ``_qst_row_hash`` is unchanged is *not* rewritten
  (no file churn, no commit at all when nothing changed); its ``_qst_batch_id``/``_qst_extracted_at``
  keep saying when this version first landed. A changed row is replaced (Delta MERGE) and
  ``_qst_deleted_at`` cleared; so is an unchanged row that was flagged deleted (it is back at the source).
* The same key several times in one stream (a look-back re-read, a row updated while being read): the
  last occurrence wins -- inside a chunk by de-duplication, across chunks because a later read of a key
  is always committed after the earlier one.
* Keys compare null-safely. A row whose key has a null (legacy tables without constraints) is identified
  by its key *and* its row hash: re-reading it never doubles it and two different such rows are both kept.

Batching and memory
===================
MERGE memory is the budget, and in delta-rs (1.6) it grows with the MERGE *source*: measured on a
1M-row table, a 500k-row source (10% of it changed) took 17-34 s and 4-8 GB, a 50k-row source 2 s and
0.6 GB. So only rows that really changed go through MERGE (``streamed_exec``: 500k changed rows into a
3M- or a 12M-row table peaked at about +1.1 GB). Incoming batches are cut into chunks of at most
``max_rows_per_commit`` rows (default :data:`DEFAULT_MAX_ROWS_PER_COMMIT`); each chunk is hashed,
de-duplicated and classified against the committed table: *new* rows are appended at once (a plain
append, the fast path), *unchanged* rows are dropped, *changed* rows wait in a buffer flushed by one
MERGE whenever it would exceed ``max_rows_per_commit`` rows and at the end.

Classification never materializes the table. The files that can hold a key of the chunk are chosen from
the per-file key statistics of the Delta log (min/max and null counts; integer, date and string keys as
logged, timestamps widened by the log's millisecond rounding, decimals compared as floats with a margin;
other key types keep every file). Only those files are read -- their key, ``_qst_row_hash`` and
``_qst_deleted_at`` columns, a row group at a time -- and joined with the chunk (polars). A stream that
arrives roughly in key order -- a first load of a table read in insertion order, an incremental read of
what changed -- is checked against almost nothing; a stream in random key order is checked against the
files written so far (correct, and slower: it reads them once per chunk).

Commits run on one background thread, in order, while the loading thread reads, hashes and de-duplicates
the next chunk (delta-rs, numpy, polars and connectorx release the GIL); a chunk is classified only once
every earlier commit is in. Appends are written in row groups of 64k rows (delta-rs flushes as it goes).
The loading path does not import pyarrow.dataset, DuckDB or (through pyarrow's array constructors)
pandas, which cost about 80 MB of memory and a second of start-up. Memory is one chunk being
committed, one being prepared, the MERGE buffer and one incoming batch, whatever the table size:
measured on a 7-column PostgreSQL table, peak RSS about 0.5 GB at 2M and 8M rows alike.

Key snapshots (:func:`mark_deleted`, and the end of :func:`replace_snapshot`) spool the snapshot's keys
to a Parquet file next to the table while summing a hash of each; one pass over the table's key columns
sums its live keys the same way. Equal counts and sums -- the usual night, nothing deleted -- mean there
is nothing to flag (a difference goes unseen only if the 64-bit hashes of a key that left and one that
came collide: about 2**-64 per such pair); otherwise an exact DuckDB semi-join (memory-limited to
:data:`KEY_SNAPSHOT_MEMORY_LIMIT`, spilling to disk) finds the rows.

Crash safety: state is derived from committed data
===================================================
Each data commit records in its commit info ``qst.batch_id`` and ``qst.final`` -- true only on the load's
last commit (or on an empty marker commit when the last chunk changed nothing). :func:`watermark` reads:

* normally (the newest load commit is final): ``max(cursor)`` over all rows -- from the Delta log's file
  statistics where they are exact (integer and date cursors), else reading only that column of the files
  whose logged maximum (timestamps, decimals: widened by the log's error) can reach the highest, and of
  the files without statistics;
* after an interrupted load: ``max(cursor)`` over rows *not* written by the loads that have no final
  commit (their ``_qst_batch_id``), which is at most the watermark the interrupted load started from.

Why a rerun converges to exactly the source, wherever ``kill -9`` lands:

1. Every Delta commit is atomic, so the table is always the state after some whole commit of a load.
2. A completed load ended with a final commit and had committed every row it read; the incremental
   reader read everything past the previous watermark, so all rows up to ``max(cursor)`` are in.
3. An interrupted load only touched rows whose cursor lies past the watermark it started from; the
   watermark skips those rows, so the rerun re-reads everything the interrupted load did or missed,
   *in whatever order* the reader streams rows (no ordering contract is needed).
4. Every chunk -- of a first load too -- is classified by key against what is committed (under the
   lock, and only once every earlier commit of the load is in, so exactly): an unchanged row is left
   alone, a changed one replaced by MERGE, only an absent key appended -- never doubled. Skipping a file
   or a row group by its statistics is exact: the bounds used contain every key of the file (the log's
   timestamps are widened by its millisecond rounding and its decimals by their float error, a decimal
   the log saturates at 2**63-1 bounds nothing, a truncated string maximum is rounded up by delta-rs and
   a long one is ignored, a file without statistics is always read; row groups are skipped only by the
   exact Parquet statistics of integer, date and timestamp keys). Tests pin each of these cases.
5. Schema changes and row-hash recomputations are committed before any data and are idempotent (a rerun
   finds them applied, or applies them again); a snapshot load flags absent rows only after all its rows
   are in, so a rerun of it re-flags correctly.
6. Commits of a load run on a background thread, but one at a time and in order, and the load waits for
   the one in flight before it classifies, flags, finishes or returns -- also when it fails, so no commit
   of it lands after the lock is released. ``kill -9`` stops both threads at once: the state is still
   "some whole commit".

Concurrency
===========
Two writers committing to one Delta table fail (``CommitFailedError``). Every write here
(:func:`upsert_batches`, :func:`replace_snapshot`, :func:`mark_deleted`) holds an exclusive ``fcntl.flock``
on ``<path>.lock`` for its whole duration, so writers of one table -- threads or processes on this
machine -- run one after another, and what a load reads of the table cannot change under it. The
kernel releases the lock when a process dies, so a crash never leaves a stale lock. The lock is local:
writers on several machines sharing the lake need an external lock. Readers need no lock.

Schema drift
============
Compared on the types Delta stores (``string``/``large_string`` are both Delta ``string``; every
timestamp is ``timestamp[us, UTC]``):

* a new column is added (existing rows null) -- reported ``added``;
* a safe widening is applied by rewriting the table once with the wider type (Delta has no in-place
  type change in delta-rs) -- reported ``widened``: signed integers to a wider integer, float32->float64,
  decimal(p,s)->decimal(p',s') with s'>=s and p'-s'>=p-s. A *narrower* incoming type is cast up silently;
* anything else raises :class:`SchemaDriftError` before any write: another type change, a table column
  missing from the source, a name differing only in case. ``date``->``timestamp`` is refused on purpose:
  which midnight (UTC or the source's zone) a date means is a decision for the configuration
  (``type: date`` or ``timestamp`` in ``sources.yaml``), not for the writer.

Each change is recorded in its commit's custom metadata (``qst.drift``) and returned in
:class:`LoadResult`. Naive timestamps are refused: bronze never stores ``timestamp_ntz``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlparse

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import ColumnProperties, CommitProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake import Field as DeltaField

if TYPE_CHECKING:
    import duckdb
    import pyarrow.dataset as pds

__all__ = [
    "DEFAULT_MAX_ROWS_PER_COMMIT",
    "FLAGS",
    "LINEAGE",
    "ROW_HASH_VERSION",
    "LoadResult",
    "SchemaChange",
    "SchemaDriftError",
    "bronze_path",
    "last_key_snapshot",
    "mark_deleted",
    "read_dataset",
    "replace_snapshot",
    "table_info",
    "upsert_batches",
    "watermark",
]

log = logging.getLogger(__name__)

LINEAGE = ("_qst_source", "_qst_batch_id", "_qst_extracted_at", "_qst_row_hash", "_qst_deleted_at")
FLAGS = "_qst_flags"
DEFAULT_MAX_ROWS_PER_COMMIT = 500_000
ROW_HASH_VERSION = "qst-fmix64-sum-v2"
KEY_SNAPSHOT_MEMORY_LIMIT = "128MB"  # DuckDB's budget for a key snapshot; it spills to disk beyond

UTC_TS = pa.timestamp("us", tz="UTC")
_LINEAGE_FIELDS = [
    pa.field("_qst_source", pa.string()),
    pa.field("_qst_batch_id", pa.string()),
    pa.field("_qst_extracted_at", UTC_TS),
    pa.field("_qst_row_hash", pa.int64()),
    pa.field("_qst_deleted_at", UTC_TS),
]
_RESERVED = frozenset((*LINEAGE, FLAGS))
_KEY_SNAPSHOT_PROPERTY = "qst.last_key_snapshot"
_ROW_HASH_PROPERTY = "qst.row_hash"
_INT_RANK = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 3, pa.int64(): 4}
_ROW_CHANGED = "t._qst_row_hash <> s._qst_row_hash OR t._qst_deleted_at IS NOT NULL"


def _append_properties(primary_key: list[str]) -> WriterProperties:
    """How appends are written (measured on 500k-row chunks of a 7-column table, see the module docstring).

    Row groups of 64k rows let delta-rs flush as it goes (40-60 MB less peak memory than one row group
    per file). A key or a 64-bit hash never repeats within a file, so no dictionary for them, and a
    dictionary page limit of 128 KB makes other many-valued columns fall back to plain encoding early:
    together about a quarter less CPU than the defaults, for files no larger.
    """
    plain = ColumnProperties(dictionary_enabled=False)
    return WriterProperties(compression="SNAPPY", max_row_group_size=65_536, dictionary_page_size_limit=131_072,
                            column_properties={c: plain for c in ["_qst_row_hash", *primary_key]})


# Test seam: called with the load's commit count after each commit (the crash tests pause here).
_after_commit: Callable[[int], None] | None = None


@dataclass
class SchemaChange:
    column: str
    change: Literal["added", "widened"]
    old_type: str | None
    new_type: str


@dataclass
class LoadResult:
    """What a load did. ``rows_read`` = inserted + updated + unchanged + duplicate."""

    rows_read: int
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int
    version: int | None
    drift: list[SchemaChange]
    seconds: float
    rows_duplicate: int = 0  # repeated keys inside the stream (the last occurrence was kept)
    rows_deleted: int = 0  # replace_snapshot: rows flagged deleted because the snapshot lacked them
    commits: int = 0
    first_load: bool = False  # the table held no rows when the load began
    # seconds per phase: read (waiting for the stream), hash, dedupe, classify, append, merge (these two on
    # the commit thread, overlapping the others), wait_commit (waiting for them), flag, schema
    timings: dict[str, float] = field(default_factory=dict)


class SchemaDriftError(Exception):
    """The source's schema changed in a way bronze does not follow by itself; nothing was written."""

    def __init__(self, table: str, problems: list[tuple[str, str | None, str | None, str]]):
        self.table = table
        self.problems = problems  # (column, old type, new type, why)
        details = "; ".join(f"column {col!r}: {old or '-'} -> {new or '-'} ({why})"
                            for col, old, new, why in problems)
        super().__init__(f"bronze table {table}: schema drift refused, nothing written: {details}")


def _from_numpy(values: np.ndarray) -> pa.Array:
    """An Arrow array of a numpy bool or number array.

    Not ``pa.array``: pyarrow imports pandas (about 65 MB and a second) the first time it converts a
    Python object, to check it is not a pandas one -- the loading path builds arrays from buffers.
    """
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def _repeat_text(value: str, n: int) -> pa.Array:
    """``value`` ``n`` times, as a string array."""
    data = value.encode()
    if len(data) * n >= 2**31:
        return pa.repeat(value, n)
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(data))
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)])


def _repeat_utc(moment: datetime, n: int) -> pa.Array:
    """``moment`` ``n`` times, as a UTC microsecond timestamp array."""
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return pa.Array.from_buffers(UTC_TS, n, [None, pa.py_buffer(np.full(n, micros, dtype=np.int64))])


def _bits(arr: pa.Array, buffer: int) -> np.ndarray:
    """A bitmap buffer of ``arr`` (0: validity, 1: boolean values) as a numpy bool array."""
    bitmap = arr.buffers()[buffer]
    if bitmap is None:
        return np.ones(len(arr), dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[arr.offset:arr.offset + len(arr)].astype(bool)


class _Timer:
    """Adds the seconds spent in ``with timer("phase"):`` blocks to a ``timings`` dict."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - started


# --------------------------------------------------------------------------------------------- paths


def bronze_path(home: Path, department: str, asset: str) -> Path:
    """``<home>/lake/bronze/<department>/<asset>``; the names must be single path components."""
    for what, name in (("department", department), ("asset", asset)):
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise ValueError(f"bronze_path: {what} {name!r} is not a valid folder name")
    return Path(home) / "lake" / "bronze" / department / asset


def _table_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@contextmanager
def _writer_lock(path: Path) -> Iterator[None]:
    """Exclusive per-table writer lock (``<path>.lock``), released by the kernel if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f"{path.name}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _scratch_dir(path: Path, kind: str) -> str:
    """A fresh folder next to the table for spooled keys and DuckDB's spill files (under the writer lock)."""
    for stale in path.parent.glob(f".{path.name}.{kind}-*"):  # left by a killed run (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f".{path.name}.{kind}-", dir=path.parent)


# --------------------------------------------------------------------------------------- delta access


def _open(path: Path) -> DeltaTable | None:
    return DeltaTable(str(path)) if DeltaTable.is_deltatable(str(path)) else None


def _arrow_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def _dataset(table: DeltaTable, files: list[str] | None = None) -> pds.Dataset:
    # A plain Parquet dataset over the snapshot's files (delta-rs writes no deletion vectors and no
    # column mapping); files older than an added column read it as null. pyarrow's own local filesystem
    # also avoids an abort at interpreter exit seen with delta-rs' Python filesystem handler.
    import pyarrow.dataset as pds  # only when needed: it imports pandas (about 65 MB)

    return pds.dataset(table.file_uris() if files is None else files, schema=_arrow_schema(table),
                       format="parquet")


def read_dataset(path: Path) -> pds.Dataset | None:
    """The committed table as a pyarrow dataset (None when there is no table yet) — how other modules
    read bronze (DuckDB registers it; DESIGN.md: no delta extension offline)."""
    table = _open(path)
    return None if table is None else _dataset(table)


def _read_files(files: list[str], schema: pa.Schema, columns: list[str], batch_rows: int = 262_144,
                ranges: dict[str, tuple[int, int]] | None = None) -> Iterator[pa.RecordBatch]:
    """``columns`` of the rows of ``files`` (Parquet files of a table of ``schema``), a batch at a time.

    pyarrow.parquet reads a row group at a time (the loading path stays clear of pyarrow.dataset, which
    imports pandas); a column a file predates reads as null. ``ranges``: skip the row groups whose
    Parquet statistics (exact for integer columns) put a column's values outside ``(low, high)``, given
    as the column's physical integers -- a filter that may let other rows through.
    """
    wanted = pa.schema([schema.field(c) for c in columns])
    for file in files:
        parquet = pq.ParquetFile(file)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        groups = _row_groups(parquet, ranges) if ranges else None
        if groups == []:
            continue
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=present, row_groups=groups):
            yield _conform(batch, wanted)


def _row_groups(parquet: pq.ParquetFile, ranges: dict[str, tuple[int, int]]) -> list[int] | None:
    """The row groups of ``parquet`` whose integer statistics overlap ``ranges`` (None: all of them)."""
    metadata = parquet.metadata
    leaves = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    checks = [(leaves[name], low, high) for name, (low, high) in ranges.items()
              if name in leaves and metadata.schema.column(leaves[name]).physical_type in ("INT32", "INT64")]
    if not checks:
        return None
    keep = []
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for index, low, high in checks:
            stats = group.column(index).statistics
            if stats is not None and stats.has_min_max and (stats.max_raw < low or stats.min_raw > high):
                break
        else:
            keep.append(g)
    return keep


def _physical_range(column: pa.ChunkedArray | pa.Array) -> tuple[int, int] | None:
    """(min, max) of an integer, date or microsecond timestamp column as Parquet stores it (None: not one,
    or a null in it, or empty)."""
    t = column.type
    if column.null_count or not len(column) or not (
            pa.types.is_integer(t) or pa.types.is_date32(t) or t == UTC_TS):
        return None
    values = pl.from_arrow(column)
    assert isinstance(values, pl.Series)
    if not pa.types.is_integer(t):
        values = values.to_physical()
    return int(values.min()), int(values.max())  # type: ignore[arg-type]


def _add_actions(table: DeltaTable) -> pl.DataFrame:
    """The snapshot's add actions, statistics flattened (``num_records``, ``min.<column>``, ...)."""
    actions = pl.from_arrow(table.get_add_actions(flatten=True))  # an Arrow stream: polars reads it as a struct
    return actions.struct.unnest() if isinstance(actions, pl.Series) else actions


def _files(table: DeltaTable) -> tuple[list[str], pl.DataFrame]:
    """The snapshot's file URIs and their add actions (statistics flattened), row for row."""
    uris = table.file_uris()
    actions = _add_actions(table)
    paths = [unquote(p) for p in actions.get_column("path").to_list()] if actions.height else []
    if len(paths) == len(uris) and all(uri.endswith(p) for uri, p in zip(uris, paths, strict=True)):
        return uris, actions
    row = {p: i for i, p in enumerate(paths)}  # not in the same order: match them by relative path
    root = unquote(urlparse(table.table_uri).path).rstrip("/") + "/"
    order = [row.get(uri[len(root):]) if uri.startswith(root) else None for uri in uris]
    if len(paths) != len(uris) or None in order:
        raise RuntimeError("bronze: the Delta log's add actions do not match its file list")
    return uris, actions[order]


def _history(table: DeltaTable) -> Iterator[dict[str, Any]]:
    """Commit infos, newest first, read a page at a time (usually only the newest few are needed)."""
    seen = 0
    for limit in (16, 256, None):
        page = table.history(limit)
        yield from page[seen:]
        if limit is None or len(page) < limit:
            return
        seen = len(page)


def _incomplete_loads(table: DeltaTable) -> set[str]:
    """Batch ids of the loads committed after the newest final load commit (interrupted loads)."""
    pending: set[str] = set()
    for commit in _history(table):
        if "qst.batch_id" not in commit or "qst.final" not in commit:
            continue  # not a load's data commit (schema change, key snapshot, optimize, ...)
        if commit.get("qst.final"):
            break
        pending.add(str(commit.get("qst.batch_id")))
    return pending


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _key_predicate(primary_key: list[str]) -> str:
    # Parenthesized: delta-rs' parser binds ``a IS NOT DISTINCT FROM b AND c`` as ``a ... FROM (b AND c)``.
    return " AND ".join(f"(t.{_quote(c)} IS NOT DISTINCT FROM s.{_quote(c)})" for c in primary_key)


# ------------------------------------------------------------------------------ file statistics

# delta-rs writes timestamp statistics at millisecond precision (the maximum rounded *down*): widen them.
_TIMESTAMP_STATS_SLACK = timedelta(milliseconds=1)
# ... and decimal statistics as JSON floats: widen them by a relative error far above a double's plus one
# unit of the column's scale, and compare them as floats (a monotonic mapping, so the test stays a superset).
_DECIMAL_STATS_RELATIVE = 1e-9
# delta-rs logs a scale-0 decimal beyond 64-bit integers as 2**63-1 (min and max alike!): such a statistic
# bounds nothing.
_DECIMAL_STATS_LIMIT = 9.2e18
# delta-rs truncates string statistics to 64 bytes (a truncated maximum is rounded up, so it stays an upper
# bound); as a second guard a maximum that long is treated as no upper bound, which is always safe.
_STRING_STATS_BYTES = 60


def _stats_kind(dtype: pa.DataType) -> str | None:
    """How far the Delta log's min/max of a column of this type can be trusted (None: not at all)."""
    if pa.types.is_integer(dtype) or pa.types.is_date32(dtype):
        return "exact"
    if pa.types.is_timestamp(dtype):
        return "timestamp"
    if pa.types.is_decimal(dtype):
        return "decimal"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    return None  # floats, binary, booleans, nested: no pruning


def _slack(values: pl.Series, kind: str, dtype: pa.DataType) -> pl.Series | timedelta:
    """How far the log's timestamp or decimal statistics ``values`` can be from the true values."""
    if kind == "timestamp":
        return _TIMESTAMP_STATS_SLACK
    return values.abs() * _DECIMAL_STATS_RELATIVE + 10.0 ** -dtype.scale


def _file_bounds(actions: pl.DataFrame, column: str, dtype: pa.DataType
                 ) -> tuple[pl.Series, pl.Series, pl.Series, pl.Series] | None:
    """Per file of ``column``: (lower bound, upper bound, may hold nulls, a value at most the true maximum);
    a null bound is unbounded. Decimal bounds are floats (compare decimals with them as floats)."""
    kind = _stats_kind(dtype)
    lo_name, hi_name, null_name = f"min.{column}", f"max.{column}", f"null_count.{column}"
    if kind is None or lo_name not in actions.columns or hi_name not in actions.columns:
        return None
    lo, hi = actions.get_column(lo_name), actions.get_column(hi_name)
    if kind == "decimal":  # beyond 64-bit integers delta-rs saturates them: no bound then
        lo, hi = (pl.DataFrame({"v": v.cast(pl.Float64)}).select(
            pl.when(pl.col("v").abs() < _DECIMAL_STATS_LIMIT).then(pl.col("v"))).to_series() for v in (lo, hi))
    if kind == "string":
        hi = pl.DataFrame({"hi": hi}).select(
            pl.when(pl.col("hi").str.len_bytes() < _STRING_STATS_BYTES).then(pl.col("hi"))).to_series()
    floor = hi
    if kind in ("timestamp", "decimal"):
        floor = hi - _slack(hi, kind, dtype)
        lo, hi = lo - _slack(lo, kind, dtype), hi + _slack(hi, kind, dtype)
    if null_name in actions.columns:
        nulls = (actions.get_column(null_name) != 0).fill_null(True)
    else:
        nulls = pl.Series(np.ones(actions.height, dtype=bool))
    return lo, hi, nulls, floor


def _candidate_files(table: DeltaTable, keys: pa.Table) -> list[str]:
    """The files of the snapshot that can hold a row with one of the keys of ``keys`` (null-safe)."""
    uris, actions = _files(table)
    if not uris:
        return []
    keep = np.ones(len(uris), dtype=bool)
    for name in keys.column_names:
        bounds = _file_bounds(actions, name, keys.schema.field(name).type)
        if bounds is None:
            continue
        lo, hi, may_be_null, _ = bounds
        column = pl.from_arrow(keys.column(name))
        assert isinstance(column, pl.Series)
        values = column.drop_nulls()
        if lo.dtype == pl.Float64 and column.dtype != pl.Float64:  # decimal statistics: compare as floats
            values = values.cast(pl.Float64)
        if len(values):  # unknown bounds (null) keep the file
            overlap = (lo <= values.max()).fill_null(True) & (hi >= values.min()).fill_null(True)
        else:
            overlap = pl.Series(np.zeros(len(uris), dtype=bool))
        if column.null_count():
            overlap = overlap | may_be_null
        keep &= overlap.to_numpy()
    return [uri for uri, k in zip(uris, keep.tolist(), strict=True) if k]


# --------------------------------------------------------------------------------------------- types


def _storage_type(dtype: pa.DataType, column: str) -> pa.DataType:
    """The Arrow type Delta stores for an incoming type (raises for types bronze cannot hold as is)."""
    t = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)
            or pa.types.is_fixed_size_binary(t)):
        return pa.binary()
    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise ValueError(f"column {column!r}: naive timestamp; the reader must attach the source zone "
                             "(bronze stores UTC, never timestamp_ntz)")
        return UTC_TS
    if pa.types.is_date(t):
        return pa.date32()
    unsigned = {pa.uint8(): pa.int16(), pa.uint16(): pa.int32(), pa.uint32(): pa.int64(),
                pa.uint64(): pa.decimal128(20, 0), pa.float16(): pa.float32()}
    if t in unsigned:
        return unsigned[t]
    if pa.types.is_decimal(t):
        if t.precision > 38:
            raise ValueError(f"column {column!r}: {t} exceeds Delta's decimal precision 38")
        return pa.decimal128(t.precision, t.scale)
    if t in _INT_RANK or t in (pa.float32(), pa.float64(), pa.bool_()) or pa.types.is_nested(t):
        return t
    raise ValueError(f"column {column!r}: type {t} cannot be stored in bronze; map it in the reader")


def _widens(old: pa.DataType, new: pa.DataType) -> bool:
    """Every value of ``old`` is exactly representable in ``new`` (and they differ)."""
    if old in _INT_RANK and new in _INT_RANK:
        return _INT_RANK[new] > _INT_RANK[old]
    if old == pa.float32() and new == pa.float64():
        return True
    if pa.types.is_decimal(old) and pa.types.is_decimal(new) and old != new:
        return new.scale >= old.scale and new.precision - new.scale >= old.precision - old.scale
    return False


def _plan_schema(path: Path, current: pa.Schema | None, incoming: pa.Schema
                 ) -> tuple[pa.Schema, list[SchemaChange]]:
    """The table schema after this load and the drift to apply; raises SchemaDriftError."""
    reserved = [f.name for f in incoming if f.name in LINEAGE]
    if reserved:
        raise ValueError(f"bronze table {_table_name(path)}: the source stream carries lineage columns "
                         f"{reserved}; those are written by bronze")
    source = [pa.field(f.name, _storage_type(f.type, f.name)) for f in incoming if f.name != FLAGS]
    if current is None:
        return pa.schema([*source, pa.field(FLAGS, pa.string()), *_LINEAGE_FIELDS]), []
    fields = {f.name: f for f in current}
    by_lower = {name.lower(): name for name in fields}
    changes: list[SchemaChange] = []
    problems: list[tuple[str, str | None, str | None, str]] = []
    for f in source:
        old = fields.get(f.name)
        if old is None:
            if f.name.lower() in by_lower:
                problems.append((f.name, None, str(f.type),
                                 f"differs only in case from column {by_lower[f.name.lower()]!r}"))
            else:
                changes.append(SchemaChange(f.name, "added", None, str(f.type)))
                fields[f.name] = f
        elif old.type == f.type or _widens(f.type, old.type):
            continue
        elif _widens(old.type, f.type):
            changes.append(SchemaChange(f.name, "widened", str(old.type), str(f.type)))
            fields[f.name] = f
        else:
            problems.append((f.name, str(old.type), str(f.type), "not a safe widening"))
    names = {f.name for f in source}
    problems += [(name, str(fields[name].type), None, "in the table but missing from the source")
                 for name in fields if name not in names and name not in _RESERVED]
    if problems:
        raise SchemaDriftError(_table_name(path), problems)
    if FLAGS not in fields:
        changes.append(SchemaChange(FLAGS, "added", None, "string"))
        fields[FLAGS] = pa.field(FLAGS, pa.string())
    for lineage in _LINEAGE_FIELDS:  # the lineage types are bronze's (an md5-era row hash was text)
        fields[lineage.name] = lineage
    return pa.schema([pa.field(f.name, f.type) for f in fields.values()]), changes


def _conform(data: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.RecordBatch | pa.Table:
    """``data`` with exactly ``schema``'s columns (absent ones null), safely cast."""
    arrays = []
    for f in schema:
        if f.name in data.schema.names:
            column = data.column(f.name)
            arrays.append(column if column.type == f.type else column.cast(f.type, safe=True))
        else:
            arrays.append(pa.nulls(data.num_rows, f.type))
    maker = pa.RecordBatch.from_arrays if isinstance(data, pa.RecordBatch) else pa.Table.from_arrays
    return maker(arrays, schema=schema)


def _stale_row_hash(table: DeltaTable) -> bool:
    """The table's row hashes were computed by another recipe than :data:`ROW_HASH_VERSION`."""
    return table.metadata().configuration.get(_ROW_HASH_PROPERTY) != ROW_HASH_VERSION


def _apply_schema_changes(path: Path, table: DeltaTable, target: pa.Schema, changes: list[SchemaChange],
                          metadata: dict[str, Any], *, rehash: bool) -> None:
    """Apply drift (added columns, widenings) and, with ``rehash``, recompute every row hash.

    A widening or a rehash is one streaming rewrite of the table (old files stay for time travel until
    vacuum); lineage other than the row hash is kept as it is, so the watermark is unchanged.
    """
    operation = "schema" if changes else "rehash"
    props = CommitProperties(custom_metadata={**metadata, "qst.operation": operation,
                                              "qst.drift": [asdict(c) for c in changes],
                                              "qst.row_hash": ROW_HASH_VERSION})
    if rehash or any(c.change == "widened" for c in changes):
        values = pa.schema([f for f in target if f.name != "_qst_row_hash"])
        hasher = _RowHasher(target)

        def rewritten(batch: pa.RecordBatch) -> pa.RecordBatch:
            conformed = _conform(batch.drop_columns(["_qst_row_hash"]) if rehash else batch,
                                 values if rehash else target)
            if not rehash:
                return conformed
            columns = dict(zip(conformed.schema.names, conformed.columns, strict=True))
            columns["_qst_row_hash"] = hasher(conformed)
            return pa.RecordBatch.from_arrays([columns[f.name] for f in target], schema=target)

        current = _arrow_schema(table)
        batches = (rewritten(b) for b in _read_files(table.file_uris(), current, current.names))
        write_deltalake(str(path), pa.RecordBatchReader.from_batches(target, batches), mode="overwrite",
                        schema_mode="overwrite", commit_properties=props)
    else:
        added = [DeltaField.from_arrow(target.field(c.column)) for c in changes]
        table.alter.add_columns(added, commit_properties=props)
    if rehash:  # recorded after the rows have it: a crash in between only means one more rewrite
        DeltaTable(str(path)).alter.set_table_properties(
            {_ROW_HASH_PROPERTY: ROW_HASH_VERSION}, raise_if_not_exists=False,
            commit_properties=CommitProperties(custom_metadata={**metadata, "qst.operation": "row_hash"}))
        log.info("bronze %s: row hashes recomputed (%s)", _table_name(path), ROW_HASH_VERSION)
    if changes:
        log.info("bronze %s: schema drift applied: %s", _table_name(path),
                 ", ".join(f"{c.column} {c.change} {c.old_type or ''}->{c.new_type}" for c in changes))


# ------------------------------------------------------------------------------------------ row hash
#
# See "The row hash" in the module docstring. numpy does the arithmetic on uint64 arrays, which wraps
# modulo 2**64 as the recipe says; the rare values that need a loop (very long text, decimals beyond
# 64 bits) use Python integers with the same steps.

_M64 = (1 << 64) - 1
_MIX1, _MIX2 = 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53  # murmur3 fmix64
_SEED_BYTES, _SEED_INT, _SEED_FLOAT, _SEED_DECIMAL = (
    0x9E3779B97F4A7C15, 0xD6E8FEB86659FD93, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB)
_CANONICAL_NAN = 0x7FF8000000000000
_WORD_MASKS = np.array([(1 << (8 * r)) - 1 for r in range(8)] + [_M64], dtype=np.uint64)
_VECTOR_MIN_VALUES = 16  # below this many values still being hashed, finish them one by one
_U33 = np.uint64(33)


def _fmix(h: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finalizer, in place (a bijection of 64-bit words)."""
    h ^= h >> _U33
    h *= np.uint64(_MIX1)
    h ^= h >> _U33
    h *= np.uint64(_MIX2)
    h ^= h >> _U33
    return h


def _fmix_int(h: int) -> int:
    h ^= h >> 33
    h = (h * _MIX1) & _M64
    h ^= h >> 33
    h = (h * _MIX2) & _M64
    return h ^ (h >> 33)


def _bytes_hash(arr: pa.Array) -> np.ndarray:
    """``H`` of each value's bytes (string or binary array; null slots hash whatever they hold)."""
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    wide = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    offset_type = np.dtype(np.int64 if wide else np.int32)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type, count=n + 1,
                            offset=arr.offset * offset_type.itemsize).astype(np.int64)
    end, data = int(offsets[-1]), buffers[2]
    if data is not None and data.size >= end + 7:  # Arrow pads its buffers: every 8-byte load stays inside
        source = np.frombuffer(data, dtype=np.uint8)
    else:
        source = np.zeros(end + 8, dtype=np.uint8)
        if data is not None and end:
            source[:end] = np.frombuffer(data, dtype=np.uint8, count=end)
    words = np.ndarray((source.size - 7,), dtype="<u8", buffer=source, strides=(1,))  # a word at each byte
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    h = lengths.astype(np.uint64)
    h ^= np.uint64(_SEED_BYTES)
    _fmix(h)
    shortest = int(lengths.min())
    k = 0
    while k < shortest:  # every value still has bytes: whole arrays, no selection
        w = words[starts + k]
        if k + 8 > shortest:
            w &= _WORD_MASKS[np.minimum(lengths - k, 8)]
        h ^= w
        _fmix(h)
        k += 8
    active = np.flatnonzero(lengths > k)
    while active.size >= _VECTOR_MIN_VALUES:
        remaining = lengths[active] - k
        w = words[starts[active] + k]
        w &= _WORD_MASKS[np.minimum(remaining, 8)]
        w ^= h[active]
        h[active] = _fmix(w)
        active = active[remaining > 8]
        k += 8
    for i in active.tolist():  # the few long values left
        value = source[int(starts[i]) + k:int(starts[i]) + int(lengths[i])].tobytes()
        x = int(h[i])
        for j in range(0, len(value), 8):
            x = _fmix_int(x ^ int.from_bytes(value[j:j + 8], "little"))
        h[i] = x
    return h


def _fixed_values(arr: pa.Array, dtype: np.dtype) -> np.ndarray:
    """The values buffer of a fixed-width array (null slots hold whatever they hold)."""
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _decimal_hash(arr: pa.Array, valid: np.ndarray | None) -> np.ndarray:
    n = len(arr)
    raw = np.frombuffer(arr.buffers()[1], dtype=np.uint64, count=2 * n, offset=arr.offset * 16).reshape(n, 2)
    lo, hi = raw[:, 0].copy(), raw[:, 1].copy()
    scale = np.full(n, arr.type.scale, dtype=np.int64)
    small = hi == (lo.view(np.int64) >> np.int64(63)).view(np.uint64)  # the value fits in 64 bits
    if valid is not None:
        small |= ~valid
    if arr.type.scale > 0:
        u = lo.view(np.int64)
        for _ in range(arr.type.scale):  # drop trailing zeros: (150050, 2) -> (15005, 1)
            strip = (u % 10 == 0) & (scale > 0) & small
            if not strip.any():
                break
            u[strip] //= 10
            scale[strip] -= 1
        hi = np.where(small, (u >> np.int64(63)).view(np.uint64), hi)
    for i in np.flatnonzero(~small).tolist():  # beyond 64 bits: the same steps on Python integers
        value = int(lo[i]) | (int(hi[i]) << 64)
        value -= (1 << 128) if value >> 127 else 0
        s = arr.type.scale
        while s > 0 and value % 10 == 0:
            value //= 10
            s -= 1
        lo[i], hi[i], scale[i] = value & _M64, (value >> 64) & _M64, s
    h = lo
    h ^= np.uint64(_SEED_DECIMAL)
    _fmix(h)
    h ^= hi
    _fmix(h)
    h ^= scale.view(np.uint64)
    return _fmix(h)


def _value_hash(arr: pa.Array, valid: np.ndarray | None) -> np.ndarray:
    """``V`` of each value (see the module docstring); null slots get arbitrary values."""
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _bytes_hash(arr)
    if pa.types.is_decimal128(t):
        return _decimal_hash(arr, valid)
    if pa.types.is_floating(t):
        values = arr.cast(pa.float64()) if t != pa.float64() else arr
        floats = _fixed_values(values, np.dtype(np.float64))
        h = floats.view(np.uint64).copy()
        h[np.isnan(floats)] = _CANONICAL_NAN
        h ^= np.uint64(_SEED_FLOAT)
        return _fmix(h)
    if pa.types.is_boolean(t):
        h = _bits(arr, 1).astype(np.uint64)
    elif pa.types.is_integer(t) or pa.types.is_date32(t) or pa.types.is_timestamp(t):
        sign = "u" if pa.types.is_unsigned_integer(t) else ""
        width = np.dtype(np.int32) if pa.types.is_date32(t) else np.dtype(f"{sign}int{t.bit_width}")
        h = _fixed_values(arr, width).astype(np.int64).view(np.uint64)
    else:  # nested and other rare types: DuckDB's text of the value
        import duckdb

        con = duckdb.connect()
        try:
            con.register("__qst_value", pa.Table.from_arrays([arr], names=["v"]))
            text = con.sql("SELECT CAST(v AS VARCHAR) AS v FROM __qst_value").to_arrow_table().column(0)
        finally:
            con.close()
        return _bytes_hash(text.combine_chunks().cast(pa.large_string()))
    h ^= np.uint64(_SEED_INT)
    return _fmix(h)


def _name_hash(name: str) -> int:
    """``H`` of a column name's UTF-8 bytes."""
    data = name.encode()
    h = _fmix_int(len(data) ^ _SEED_BYTES)
    for j in range(0, len(data), 8):
        h = _fmix_int(h ^ int.from_bytes(data[j:j + 8], "little"))
    return h


class _RowHasher:
    """The row hash of each row's source columns (see the module docstring), as an int64 array."""

    def __init__(self, schema: pa.Schema):
        self.columns = [f.name for f in schema if f.name not in _RESERVED]
        self.names = {c: np.uint64(_name_hash(c)) for c in self.columns}

    def __call__(self, data: pa.Table | pa.RecordBatch) -> pa.Array:
        total = np.zeros(data.num_rows, dtype=np.uint64)
        for name in self.columns:
            column = data.column(name)
            arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            if arr.null_count == len(arr):
                continue
            valid = _bits(arr, 0) if arr.null_count else None
            term = _value_hash(arr, valid)
            term ^= self.names[name]
            _fmix(term)
            if valid is not None:
                term[~valid] = 0
            total += term
        return _from_numpy(total.view(np.int64))


# ------------------------------------------------------------------------------------------- loading


def _chunks(batches: Iterable[pa.RecordBatch], max_rows: int) -> Iterator[tuple[pa.Table, bool]]:
    """Tables of at most ``max_rows`` rows, each with whether it is the stream's last.

    Holds one full chunk back until the next row arrives, so memory is one chunk plus one batch.
    """
    pending: list[pa.RecordBatch] = []
    size = 0
    ready: pa.Table | None = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if ready is not None:
            yield ready, False
            ready = None
        offset = 0
        while offset < batch.num_rows:
            take = min(max_rows - size, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            size += take
            offset += take
            if size == max_rows:
                if ready is not None:
                    yield ready, False
                ready, pending, size = pa.Table.from_batches(pending), [], 0
    if pending:
        if ready is not None:
            yield ready, False
        ready = pa.Table.from_batches(pending)
    if ready is not None:
        yield ready, True


def _duckdb(memory_limit: str, spill_dir: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB database that stays within ``memory_limit``, spilling to ``spill_dir``.

    Join reordering is off: DuckDB cannot estimate the size of an Arrow scan and would build its hash
    table on the table's side; the queries here put the side to build on the right.
    """
    import duckdb  # only when needed (about 16 MB)

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET temp_directory = ?", [spill_dir])
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET disabled_optimizers = 'join_order,build_side_probe_side'")
    return con


class _KeyStore:
    """A key snapshot spooled to a Parquet file next to the table, with a checksum of its keys.

    Memory is one batch while keys are added. :meth:`changes` first compares the snapshot with the
    table's live keys by count and two order-independent 64-bit sums of a hash of each key (one
    streaming pass over the table's key columns): when they agree -- the common night, nothing
    deleted -- there is nothing to flag or un-flag. Otherwise an exact DuckDB semi-join (hash table
    built on the spooled keys, memory-limited, spilling to disk) finds the rows.
    """

    def __init__(self, path: Path, key_schema: pa.Schema):
        self.dir = _scratch_dir(path, "keys")
        self.file = os.path.join(self.dir, "keys.parquet")
        self.schema = key_schema
        self.hasher = _RowHasher(key_schema)
        # plain pages: the file is read at most once, and a dictionary of 8M keys costs a second to build
        self.writer: pq.ParquetWriter | None = pq.ParquetWriter(self.file, key_schema, compression="none",
                                                                use_dictionary=False, write_statistics=False)
        self.checksum = _KeyChecksum()

    def add(self, keys: pa.Table) -> None:
        keys = _conform(keys, self.schema)
        assert self.writer is not None
        self.writer.write_table(keys)
        self.checksum.add(self.hasher(keys))

    def changes(self, table: DeltaTable, primary_key: list[str]) -> pa.Table:
        """Keys to flag (``mark``) and to un-flag (not ``mark``), with how many rows each touches."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        columns = [*primary_key, "_qst_deleted_at"]
        files, schema = table.file_uris(), _arrow_schema(table)
        live, flagged_null_keys = _KeyChecksum(), 0
        for batch in _read_files(files, schema, columns):
            deleted = batch.column("_qst_deleted_at").is_valid()
            if batch.column("_qst_deleted_at").null_count != batch.num_rows:
                null_key = pc.or_(*[batch.column(c).is_null() for c in primary_key]) if len(primary_key) > 1 \
                    else batch.column(primary_key[0]).is_null()
                flagged_null_keys += pc.sum(pc.and_(deleted, null_key)).as_py() or 0
            keys = pa.Table.from_batches([batch]).select(primary_key).filter(pc.invert(deleted))
            live.add(self.hasher(_conform(keys, self.schema)))
        # Equal multisets of keys leave nothing to do: no live key is missing from the snapshot, and no
        # flagged row shares its key with a live one (keys are unique in bronze; null keys excepted).
        if live == self.checksum and not flagged_null_keys:
            return pa.Table.from_arrays([*(pa.nulls(0, f.type) for f in self.schema), pa.nulls(0, pa.bool_()),
                                         pa.nulls(0, pa.int64())], names=[*self.schema.names, "mark", "n_rows"])
        keys = ", ".join(_quote(c) for c in primary_key)
        joined = " AND ".join(f"(b.{_quote(c)} IS NOT DISTINCT FROM p.{_quote(c)})" for c in primary_key)
        con = _duckdb(KEY_SNAPSHOT_MEMORY_LIMIT, self.dir)
        try:
            con.register("__qst_bronze", pa.RecordBatchReader.from_batches(
                pa.schema([schema.field(c) for c in columns]), _read_files(files, schema, columns)))
            spooled = "'" + self.file.replace("'", "''") + "'"
            return con.sql(f"""
                WITH j AS (SELECT b.*, EXISTS (SELECT 1 FROM read_parquet({spooled}) p WHERE {joined}) AS present
                           FROM __qst_bronze b)
                SELECT {keys}, NOT present AS mark, count(*) AS n_rows FROM j
                WHERE present <> (_qst_deleted_at IS NULL)
                GROUP BY ALL
            """).to_arrow_table()
        finally:
            con.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class _KeyChecksum:
    """Count and two order-independent sums of mixed key hashes: equal for equal multisets of keys; for
    different ones only if the 64-bit key hashes collide (about 2**-64 per pair of differing keys)."""

    _SEEDS = (np.uint64(0x2545F4914F6CDD1D), np.uint64(0x9FB21C651E98DF25))

    def __init__(self) -> None:
        self.count = 0
        self.sums = [np.uint64(0), np.uint64(0)]

    def add(self, hashes: pa.Array) -> None:
        values = np.frombuffer(hashes.buffers()[1], dtype=np.uint64, count=len(hashes), offset=hashes.offset * 8)
        self.count += len(values)
        for i, seed in enumerate(self._SEEDS):
            mixed = values ^ seed
            self.sums[i] = np.uint64((int(self.sums[i]) + int(_fmix(mixed).sum(dtype=np.uint64))) & _M64)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _KeyChecksum) and (self.count, self.sums) == (other.count, other.sums)

    __hash__ = None  # type: ignore[assignment]


_NEW, _CHANGED, _UNCHANGED = 0, 1, 2


def _identity(rows: pa.Table, primary_key: list[str]) -> pl.DataFrame:
    """What identifies each row: its key, plus its row hash (``_h``) when the key has a null."""
    any_null = pl.any_horizontal(pl.col(primary_key).is_null())
    hashes = pl.from_arrow(rows.column("_qst_row_hash"))
    return pl.from_arrow(rows.select(primary_key)).with_columns(
        pl.when(any_null).then(hashes).otherwise(None).alias("_h"))


def _last_occurrences(identity: pl.DataFrame) -> np.ndarray | None:
    """Positions of each identity's last occurrence in stream order, or None when all are distinct."""
    kept = identity.with_row_index("_row").unique(subset=identity.columns, keep="last")
    return None if kept.height == identity.height else np.sort(kept["_row"].to_numpy())


def _has_rows(table: DeltaTable) -> bool:
    """Whether the snapshot holds a row (read from the log; a file without a row count counts)."""
    counts = _add_actions(table).get_column("num_records")
    return bool(len(counts)) and (counts.null_count() > 0 or (counts.sum() or 0) > 0)


class _Load:
    """One load into one table (under the lock): hashing, de-duplication, classification, commits.

    Each chunk's rows are classified against the table (a join on the key with only the files whose key
    statistics allow a match, reading their key, ``_qst_row_hash`` and ``_qst_deleted_at`` columns): new
    rows are appended at once; changed rows wait in a buffer of at most ``max_rows`` rows for one MERGE;
    unchanged rows are dropped. MERGE cost in delta-rs grows with the size of its source,
    so feeding it only changed rows is what keeps a nightly re-read cheap. A key already waiting in the
    buffer is buffered again when re-read (the later occurrence wins), even if that version equals the
    table's.

    Commits run on one background thread, in order, while this thread reads and hashes the next chunk
    (delta-rs, numpy, polars and connectorx's reader release the GIL). A chunk is classified only after
    every earlier commit is in, so classification always sees exactly what is committed; at most one
    commit is in flight, so memory is one more chunk at most.
    """

    def __init__(self, path: Path, table: DeltaTable, target: pa.Schema, primary_key: list[str], *,
                 source: str, batch_id: str, extracted_at: datetime, max_rows: int,
                 key_store: _KeyStore | None, timings: dict[str, float]):
        self.path = path
        self.table = table
        self.target = target
        self.primary_key = primary_key
        self.source = source
        self.batch_id = batch_id
        self.extracted_at = extracted_at
        self.max_rows = max_rows
        self.key_store = key_store
        self.hasher = _RowHasher(target)
        self.incoming = pa.schema([f for f in target if f.name not in LINEAGE])
        self.hashed = pa.schema([*self.incoming, target.field("_qst_row_hash")])
        self.pending: list[pa.Table] = []
        self.pending_ids = np.empty(0, dtype=np.uint64)
        self.result = LoadResult(0, 0, 0, 0, None, [], 0.0, timings=timings)
        self.time = _Timer(timings)
        self.final_committed = False
        self.committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bronze-commit")
        self.writer_properties = _append_properties(primary_key)
        self.in_flight: Future[Callable[[], None]] | None = None
        keys_null_free = " AND ".join(f"s.{_quote(c)} IS NOT NULL" for c in primary_key)
        self.join = f"{_key_predicate(primary_key)} AND ({keys_null_free} OR t._qst_row_hash = s._qst_row_hash)"

    def metadata(self, operation: str, **extra: Any) -> CommitProperties:
        return CommitProperties(custom_metadata={
            "qst.operation": operation, "qst.batch_id": self.batch_id, "qst.source": self.source,
            "qst.extracted_at": self.extracted_at.isoformat(), "qst.row_hash": ROW_HASH_VERSION, **extra})

    def committed(self, final: bool) -> None:
        self.table.update_incremental()
        self.result.commits += 1
        self.final_committed = final
        if _after_commit is not None:
            _after_commit(self.result.commits)

    # -- the background commit

    def submit(self, job: Callable[[], Callable[[], None]]) -> None:
        """Run ``job`` (a commit) after the one in flight; what it returns is applied by :meth:`wait`."""
        self.wait()
        self.in_flight = self.committer.submit(job)

    def wait(self) -> None:
        """Until the commit in flight is in (its error, if any, is raised here)."""
        if self.in_flight is not None:
            with self.time("wait_commit"):
                future, self.in_flight = self.in_flight, None
                future.result()()

    # -- reading

    def read(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The stream's batches conformed to the table's source columns, each with its row hashes.

        Time spent waiting for the reader is ``read``; hashing batch by batch keeps its temporaries small
        and spreads it over the read.
        """
        iterator = iter(batches)
        while True:
            with self.time("read"):
                batch = next(iterator, None)
                if batch is not None:
                    batch = self.conform(batch)
            if batch is None:
                return
            if batch.num_rows:
                with self.time("hash"):
                    batch = pa.RecordBatch.from_arrays([*batch.columns, self.hasher(batch)], schema=self.hashed)
                yield batch

    def conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        missing = [n for n in self.incoming.names if n != FLAGS and n not in batch.schema.names]
        if missing:
            raise ValueError(f"bronze table {_table_name(self.path)}: a batch lacks columns {missing} "
                             "declared by the stream's schema")
        return _conform(batch, self.incoming)

    def prepare(self, chunk: pa.Table) -> pa.Table:
        """The chunk with lineage added and repeated identities reduced to their last occurrence."""
        n = chunk.num_rows
        with self.time("dedupe"):
            columns = dict(zip(chunk.column_names, chunk.columns, strict=True))
            columns.update({"_qst_source": _repeat_text(self.source, n), "_qst_batch_id": _repeat_text(self.batch_id, n),
                            "_qst_extracted_at": _repeat_utc(self.extracted_at, n),
                            "_qst_deleted_at": pa.nulls(n, UTC_TS)})
            rows = pa.Table.from_arrays([columns[f.name] for f in self.target], schema=self.target)
            keep = None if self.distinct(rows) else _last_occurrences(_identity(rows, self.primary_key))
            if keep is not None:
                rows = rows.take(_from_numpy(keep))
        self.result.rows_read += n
        self.result.rows_duplicate += n - rows.num_rows
        return rows

    def distinct(self, rows: pa.Table) -> bool:
        """No identity repeats in ``rows`` (cheap: a key column without nulls, or identity hashes)."""
        if len(self.primary_key) == 1 and rows.column(self.primary_key[0]).null_count == 0:
            return pl.from_arrow(rows.column(self.primary_key[0])).n_unique() == rows.num_rows
        # equal identities hash equally, so distinct hashes prove there is nothing to de-duplicate
        return self.ids(rows).n_unique() == rows.num_rows

    def ids(self, rows: pa.Table) -> pl.Series:
        """A 64-bit hash of each row's identity (valid within this process)."""
        return _identity(rows, self.primary_key).hash_rows()

    # -- classification

    def classify(self, rows: pa.Table) -> np.ndarray:
        """_NEW, _CHANGED or _UNCHANGED for each row, against the table as committed.

        Only the files whose key statistics allow a match are read -- their key, ``_qst_row_hash`` and
        ``_qst_deleted_at`` columns, a row group at a time -- and joined with the chunk (polars, hash
        table on the chunk): memory is the chunk's keys plus one row group's.
        """
        status = np.full(rows.num_rows, _NEW, dtype=np.int8)
        files = _candidate_files(self.table, rows.select(self.primary_key))
        if not files:
            return status
        pk = self.primary_key
        probe = pl.from_arrow(rows.select([*pk, "_qst_row_hash"])).with_row_index("__row")
        null_keys = any(rows.column(c).null_count for c in pk)
        found: list[pl.DataFrame] = []
        ranges = {c: r for c in pk if (r := _physical_range(rows.column(c))) is not None}
        for batch in _read_files(files, self.target, [*pk, "_qst_row_hash", "_qst_deleted_at"], ranges=ranges):
            matched = pl.from_arrow(batch).join(probe, on=pk, how="inner", nulls_equal=True, suffix="_s")
            if null_keys:  # a key with a null identifies a row together with its row hash
                matched = matched.filter(pl.all_horizontal(pl.col(pk).is_not_null())
                                         | (pl.col("_qst_row_hash") == pl.col("_qst_row_hash_s")))
            if matched.height:
                found.append(matched.select(
                    "__row", ((pl.col("_qst_row_hash") == pl.col("_qst_row_hash_s"))
                              & pl.col("_qst_deleted_at").is_null()).alias("same")))
        if found:
            same = pl.concat(found).group_by("__row").agg(pl.col("same").any())
            status[same["__row"].to_numpy()] = np.where(same["same"].to_numpy(), _UNCHANGED, _CHANGED)
        return status

    # -- landing

    def land(self, chunk: pa.Table, last: bool) -> None:
        """Commit what ``chunk`` changes; ``last``: the stream ends with it (flush the MERGE buffer)."""
        rows = self.prepare(chunk)  # while the previous chunk's commit is in flight
        if self.key_store is not None:
            with self.time("snapshot_keys"):
                self.key_store.add(rows.select(self.primary_key))
        final = last and self.key_store is None  # a snapshot load ends with flagging absent rows
        self.wait()  # classify against everything committed before
        with self.time("classify"):
            status = self.classify(rows)
            changed = status == _CHANGED
            ids = self.ids(rows).to_numpy() if self.pending_ids.size or changed.any() else None
            if self.pending_ids.size:
                status[(status == _UNCHANGED) & np.isin(ids, self.pending_ids)] = _CHANGED
                changed = status == _CHANGED
        self.result.rows_unchanged += int((status == _UNCHANGED).sum())
        if self.pending and self.pending_ids.size + int(changed.sum()) > self.max_rows:
            self.merge(final=False)  # keep every MERGE within max_rows
        if changed.any():
            self.pending.append(rows.filter(_from_numpy(changed)))
            self.pending_ids = np.concatenate([self.pending_ids, ids[changed]])
        merge = bool(self.pending) and (last or self.pending_ids.size >= self.max_rows)
        is_new = status == _NEW
        new = rows if is_new.all() else rows.filter(_from_numpy(is_new))
        if new.num_rows:
            self.append(new, final=final and not merge)
        if merge:
            self.merge(final=final)

    def append(self, rows: pa.Table, *, final: bool) -> None:
        def job() -> Callable[[], None]:
            with self.time("append"):
                write_deltalake(self.table, rows, mode="append", writer_properties=self.writer_properties,
                                commit_properties=self.metadata("append", **{"qst.final": final,
                                                                             "qst.rows": rows.num_rows}))
                self.committed(final)
            log.info("bronze %s: appended %d new rows", _table_name(self.path), rows.num_rows)
            return lambda: None

        self.result.rows_inserted += rows.num_rows
        self.submit(job)

    def merge(self, *, final: bool) -> None:
        rows = pa.concat_tables(self.pending)
        self.pending, self.pending_ids = [], np.empty(0, dtype=np.uint64)
        keep = _last_occurrences(_identity(rows, self.primary_key))
        if keep is not None:
            self.result.rows_duplicate += rows.num_rows - len(keep)
            rows = rows.take(_from_numpy(keep))

        def job() -> Callable[[], None]:
            with self.time("merge"):
                before = self.table.version()
                metrics = (
                    self.table.merge(rows, predicate=self.join, source_alias="s", target_alias="t",
                                     streamed_exec=True,
                                     commit_properties=self.metadata("merge", **{"qst.final": final,
                                                                                 "qst.rows": rows.num_rows}))
                    .when_matched_update_all(predicate=_ROW_CHANGED)
                    .when_not_matched_insert_all()
                    .execute()
                )
                self.table.update_incremental()
                if self.table.version() != before:
                    self.committed(final)
            inserted, updated = metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"]
            log.info("bronze %s: merged %d changed rows (%d updated, %d inserted)", _table_name(self.path),
                     rows.num_rows, updated, inserted)

            def count() -> None:  # applied on the loading thread
                self.result.rows_inserted += inserted
                self.result.rows_updated += updated
                self.result.rows_unchanged += rows.num_rows - inserted - updated
            return count

        self.submit(job)

    def finish(self) -> None:
        """Mark the load complete if its last commit could not say so (nothing changed at the end)."""
        self.wait()
        if not self.final_committed and _incomplete_loads(self.table):
            empty = pa.Table.from_arrays([pa.nulls(0, f.type) for f in self.target], schema=self.target)
            write_deltalake(self.table, empty, mode="append",
                            commit_properties=self.metadata("complete", **{"qst.final": True}))
            self.committed(True)

    def close(self) -> None:
        """Wait for the commit in flight (never leave one running once the lock is released)."""
        try:
            if self.in_flight is not None:
                futures_wait([self.in_flight])
        finally:
            self.committer.shutdown(wait=True)


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (bronze stores UTC)")
    return moment.astimezone(UTC)


def _load(path: Path, batches: Iterable[pa.RecordBatch], schema: pa.Schema, *, primary_key: list[str],
          source: str, batch_id: str, extracted_at: datetime, max_rows_per_commit: int, snapshot: bool
          ) -> LoadResult:
    started = time.perf_counter()
    path = Path(path)
    extracted_at = _utc(extracted_at, "extracted_at")
    primary_key = list(primary_key)
    if not primary_key or any(c not in schema.names or c in _RESERVED for c in primary_key):
        raise ValueError(f"bronze table {_table_name(path)}: primary key {primary_key} must name source "
                         f"columns of the stream ({schema.names})")
    if max_rows_per_commit < 1:
        raise ValueError("max_rows_per_commit must be at least 1")
    timings: dict[str, float] = {}
    timer = _Timer(timings)
    with _writer_lock(path):
        table = _open(path)
        target, drift = _plan_schema(path, None if table is None else _arrow_schema(table), schema)
        base = {"qst.batch_id": batch_id, "qst.source": source}
        if table is None:
            path.mkdir(parents=True, exist_ok=True)
            table = DeltaTable.create(str(path), target, configuration={_ROW_HASH_PROPERTY: ROW_HASH_VERSION},
                                      raise_if_key_not_exists=False, commit_properties=CommitProperties(custom_metadata={
                                          **base, "qst.operation": "create", "qst.final": False}))
        elif drift or _stale_row_hash(table):
            with timer("schema"):
                _apply_schema_changes(path, table, target, drift, base, rehash=_stale_row_hash(table))
            table = DeltaTable(str(path))
        first_load = not _has_rows(table)
        key_store = _KeyStore(path, pa.schema([target.field(c) for c in primary_key])) if (
            snapshot and not first_load) else None
        load = _Load(path, table, target, primary_key, source=source, batch_id=batch_id,
                     extracted_at=extracted_at, max_rows=max_rows_per_commit, key_store=key_store,
                     timings=timings)
        load.result.drift = drift
        load.result.first_load = first_load
        try:
            for chunk, last in _chunks(load.read(batches), max_rows_per_commit):
                load.land(chunk, last)
            load.wait()
            if key_store is not None:
                with timer("flag"):
                    marked, _ = _flag_absent(path, key_store, primary_key, extracted_at, load.metadata,
                                             max_rows_per_commit, on_commit=load.committed)
                load.result.rows_deleted = marked
            load.finish()
        finally:
            load.close()
            if key_store is not None:
                key_store.close()
        load.result.version = load.table.version()
    load.result.seconds = time.perf_counter() - started
    return load.result


def _flag_absent(path: Path, keys: _KeyStore, primary_key: list[str], at: datetime,
                 metadata: Callable[..., CommitProperties], max_rows: int,
                 on_commit: Callable[[bool], None] | None = None) -> tuple[int, int]:
    """Flag rows whose key is not in ``keys``, un-flag flagged rows whose key is; (flagged, un-flagged)."""
    table = DeltaTable(str(path))
    changes = keys.changes(table, primary_key)
    counts = pl.from_arrow(changes.select(["mark", "n_rows"]))
    assert isinstance(counts, pl.DataFrame)
    flagged = int(counts.filter(pl.col("mark")).get_column("n_rows").sum() or 0)
    unflagged = int(counts.filter(~pl.col("mark")).get_column("n_rows").sum() or 0)
    if changes.num_rows:
        n = changes.num_rows
        flags = pc.if_else(changes.column("mark"), _repeat_utc(at, n), pa.nulls(n, UTC_TS))
        source = pa.Table.from_arrays([*(changes.column(c) for c in primary_key), flags],
                                      names=[*primary_key, "__qst_deleted_at"])
        chunks = list(range(0, source.num_rows, max_rows))
        for i, offset in enumerate(chunks):
            last = i == len(chunks) - 1
            part = source.slice(offset, max_rows)
            (DeltaTable(str(path))
             .merge(part, predicate=_key_predicate(primary_key), source_alias="s", target_alias="t",
                    streamed_exec=True,
                    commit_properties=metadata("mark_deleted", **{"qst.final": last, "qst.at": at.isoformat()}))
             .when_matched_update(updates={"_qst_deleted_at": 's."__qst_deleted_at"'},
                                  predicate="t._qst_deleted_at IS DISTINCT FROM s.\"__qst_deleted_at\"")
             .execute())
            if on_commit is not None:
                on_commit(last)
    log.info("bronze %s: %d rows flagged deleted, %d un-flagged", _table_name(path), flagged, unflagged)
    return flagged, unflagged


# -------------------------------------------------------------------------------------------- public


def upsert_batches(path: Path, batches: Iterable[pa.RecordBatch], schema: pa.Schema, *, primary_key: list[str],
                   source: str, batch_id: str, extracted_at: datetime,
                   max_rows_per_commit: int = DEFAULT_MAX_ROWS_PER_COMMIT) -> LoadResult:
    """Upsert a stream of source rows by primary key (incremental tables); see the module docstring."""
    return _load(path, batches, schema, primary_key=primary_key, source=source, batch_id=batch_id,
                 extracted_at=extracted_at, max_rows_per_commit=max_rows_per_commit, snapshot=False)


def replace_snapshot(path: Path, batches: Iterable[pa.RecordBatch], schema: pa.Schema, *, primary_key: list[str],
                     source: str, batch_id: str, extracted_at: datetime,
                     max_rows_per_commit: int = DEFAULT_MAX_ROWS_PER_COMMIT) -> LoadResult:
    """Make the table's live rows exactly the snapshot (full-snapshot tables).

    Upserts every row as :func:`upsert_batches` does, then flags rows whose key the snapshot lacked
    (``_qst_deleted_at = extracted_at``); nothing is physically removed.
    """
    return _load(path, batches, schema, primary_key=primary_key, source=source, batch_id=batch_id,
                 extracted_at=extracted_at, max_rows_per_commit=max_rows_per_commit, snapshot=True)


def mark_deleted(path: Path, present_keys: Iterable[pa.RecordBatch], *, primary_key: list[str],
                 at: datetime, max_rows_per_commit: int = DEFAULT_MAX_ROWS_PER_COMMIT) -> int:
    """Apply a key snapshot (every primary key now at the source); returns how many rows were flagged.

    Rows whose key is absent get ``_qst_deleted_at = at`` (unless already flagged); flagged rows whose key
    is present again are un-flagged. The keys are spooled to a Parquet file next to the Delta table and
    compared by checksum first, exactly (DuckDB, spilling) only when they differ -- see "Batching and
    memory" in the module docstring -- so memory stays bounded whatever the table size. The time is
    recorded as the table property ``qst.last_key_snapshot`` (:func:`last_key_snapshot`).

    Read the key snapshot *after* the incremental load it follows: then every bronze row was extracted
    before the keys were, and a key missing from them was deleted at the source, not merely inserted
    after the snapshot was taken. Rerunning after a crash recomputes the same difference (idempotent).
    Right after a first load (:attr:`LoadResult.first_load`) there is nothing to find: every row was
    just read; :func:`connectors.extract.load_table` skips it then.
    """
    path = Path(path)
    at = _utc(at, "at")
    with _writer_lock(path):
        table = _open(path)
        if table is None:
            return 0
        schema = _arrow_schema(table)
        missing = [c for c in primary_key if c not in schema.names]
        if missing:
            raise ValueError(f"bronze table {_table_name(path)}: primary key columns {missing} not in the table")
        store = _KeyStore(path, pa.schema([schema.field(c) for c in primary_key]))
        try:
            for batch in present_keys:
                store.add(pa.Table.from_batches([batch]).select(primary_key))

            def metadata(operation: str, **extra: Any) -> CommitProperties:
                return CommitProperties(custom_metadata={"qst.operation": operation, **extra})

            flagged, _ = _flag_absent(path, store, primary_key, at, metadata, max_rows_per_commit)
        finally:
            store.close()
        DeltaTable(str(path)).alter.set_table_properties(
            {_KEY_SNAPSHOT_PROPERTY: at.isoformat()}, raise_if_not_exists=False,
            commit_properties=CommitProperties(custom_metadata={"qst.operation": "key_snapshot",
                                                                "qst.flagged": flagged}))
    return flagged


def _max_from_stats(uris: list[str], actions: pl.DataFrame, column: str, dtype: pa.DataType
                    ) -> tuple[Any, list[str]]:
    """``max(column)`` as far as the log's statistics tell it, and the files still to read for it.

    Integer and date statistics are exact: their maximum is known and only files without statistics
    are read. Timestamp and decimal statistics are approximate: only the files whose maximum can reach
    the highest true maximum are read. Other types: every file is read.
    """
    kind = _stats_kind(dtype)
    bounds = _file_bounds(actions, column, dtype) if kind in ("exact", "timestamp", "decimal") and uris else None
    if bounds is None:
        return None, uris
    _, hi, _, floor = bounds
    nulls_name = f"null_count.{column}"
    all_null = ((actions.get_column(nulls_name) == actions.get_column("num_records")).fill_null(False).to_numpy()
                if nulls_name in actions.columns else np.zeros(len(uris), dtype=bool))
    unknown = hi.is_null().to_numpy() & ~all_null
    if hi.null_count() == len(hi):
        return None, [u for u, k in zip(uris, unknown.tolist(), strict=True) if k]
    if kind == "exact":
        return hi.max(), [u for u, k in zip(uris, unknown.tolist(), strict=True) if k]
    near = (hi >= floor.max()).fill_null(False).to_numpy()  # the files whose maximum can be the highest
    return None, [u for u, k in zip(uris, (near | unknown).tolist(), strict=True) if k]


def watermark(path: Path, cursor: str) -> object | None:
    """``max(cursor)`` over the committed rows, or None without a table or rows.

    Reads the Delta log's statistics and at most the cursor column of the files that can hold the
    maximum -- plus ``_qst_batch_id`` right after an interrupted load, whose rows it leaves out so the
    rerun re-reads them (see "Crash safety" in the module docstring).
    """
    table = _open(Path(path))
    if table is None:
        return None
    schema = _arrow_schema(table)
    if cursor not in schema.names:
        raise KeyError(f"bronze table {_table_name(Path(path))} has no cursor column {cursor!r}")
    dtype = schema.field(cursor).type
    incomplete = _incomplete_loads(table)
    uris, actions = _files(table)
    known, files = (None, uris) if incomplete else _max_from_stats(uris, actions, cursor, dtype)
    maxima = [] if known is None else [known]
    columns = [cursor, "_qst_batch_id"] if incomplete else [cursor]
    for batch in _read_files(files, schema, columns):
        values = pl.from_arrow(batch)
        if incomplete:
            values = values.filter(~pl.col("_qst_batch_id").is_in(sorted(incomplete)).fill_null(False))
        maxima.append(values.get_column(cursor).max())
    found = [m for m in maxima if m is not None]
    return max(found) if found else None


def last_key_snapshot(path: Path) -> datetime | None:
    """When the last key snapshot (:func:`mark_deleted`) was applied, or None."""
    table = _open(Path(path))
    if table is None:
        return None
    value = table.metadata().configuration.get(_KEY_SNAPSHOT_PROPERTY)
    return datetime.fromisoformat(value) if value else None


def table_info(path: Path) -> dict[str, Any]:
    """Version, row counts (live = not flagged deleted), last writing batch and schema of a bronze table.

    Counts come from the Delta log (row and null counts per file); only files without statistics are read.
    """
    path = Path(path)
    table = _open(path)
    if table is None:
        return {"path": str(path), "exists": False, "version": None, "rows": 0, "rows_live": 0,
                "rows_deleted": 0, "last_batch_id": None, "complete": True, "schema": {}}
    schema = _arrow_schema(table)
    uris, actions = _files(table)
    rows = deleted = 0
    unknown: list[str] = []
    counts = actions.get_column("num_records").to_list() if uris else []
    nulls = (actions.get_column("null_count._qst_deleted_at").to_list()
             if uris and "null_count._qst_deleted_at" in actions.columns else [None] * len(uris))
    for uri, n, live in zip(uris, counts, nulls, strict=True):
        if n is None or live is None:
            unknown.append(uri)
        else:
            rows, deleted = rows + n, deleted + n - live
    for batch in _read_files(unknown, schema, ["_qst_deleted_at"]):
        rows, deleted = rows + batch.num_rows, deleted + batch.num_rows - batch.column(0).null_count
    last = next((c for c in _history(table) if "qst.batch_id" in c), {})
    return {
        "path": str(path),
        "exists": True,
        "version": table.version(),
        "rows": rows,
        "rows_live": rows - deleted,
        "rows_deleted": deleted,
        "files": len(uris),
        "last_batch_id": last.get("qst.batch_id"),
        "last_operation": last.get("qst.operation"),
        "last_commit_at": (datetime.fromtimestamp(last["timestamp"] / 1000, UTC).isoformat()
                           if "timestamp" in last else None),
        "complete": not _incomplete_loads(table),
        "last_key_snapshot": snapshot.isoformat() if (snapshot := last_key_snapshot(path)) else None,
        "schema": {f.name: str(f.type) for f in schema},
    }
