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
``_qst_row_hash``     hash of the row's source values (below)
``_qst_deleted_at``   null while the row exists at the source; when a key snapshot or a full snapshot
                      no longer saw the key. Rows are never physically deleted.

The row hash
============
``md5`` (hex) of a canonical text of the row's *source* columns (never ``_qst_flags`` or lineage),
computed vectorized by DuckDB. Each non-null value contributes ``<n>:<name><b>:<text>`` (``n`` the name's
length in characters, ``b`` the text's length in UTF-8 bytes), columns sorted by name; null values
contribute nothing. The text is defined here, not by a library's display format: integers and dates in
decimal/ISO form, decimals without trailing zeros, timestamps as microseconds since the epoch, binary as
hex, strings as they are -- the same on every machine and version (a test pins the recipe against
``hashlib``); floats use the shortest round-trip text of their float64 value. The hash does not change
when columns are reordered, when a column is added (its nulls contribute nothing), or when a type is
widened (int32->int64, decimal(10,2)->decimal(12,4), float32->float64). It only decides whether a
re-read row is rewritten, so if the recipe ever changed (:data:`ROW_HASH_VERSION`, recorded in every
commit) the cost would be one rewrite of each re-read row, never a lost or doubled one.

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
de-duplicated and classified against the committed table by a DuckDB join that reads only the key,
``_qst_row_hash`` and ``_qst_deleted_at`` columns: *new* rows are appended at once (a plain append,
the fast path), *unchanged* rows are dropped, *changed* rows wait in a buffer flushed by one MERGE
whenever it would exceed ``max_rows_per_commit`` rows and at the end. Memory is about one chunk, the
buffer and one incoming batch, whatever the table size.

On a first load (the table empty when the load began) even the classification is skipped: a chunk is
appended as long as its keys are disjoint from every key appended earlier in the same load, checked on
64-bit key hashes in a sorted array (8 bytes per row, at most :data:`APPEND_KEY_LIMIT` keys). A possible
repeat (or a hash collision) switches the rest of the load to classification, which is always correct.

Crash safety: state is derived from committed data
===================================================
Each data commit records in its commit info ``qst.batch_id`` and ``qst.final`` -- true only on the load's
last commit (or on an empty marker commit when the last chunk changed nothing). :func:`watermark` reads:

* normally (the newest load commit is final): ``max(cursor)`` over all rows, reading only that column;
* after an interrupted load: ``max(cursor)`` over rows *not* written by the loads that have no final
  commit (their ``_qst_batch_id``), which is at most the watermark the interrupted load started from.

Why a rerun converges to exactly the source, wherever ``kill -9`` lands:

1. Every Delta commit is atomic, so the table is always the state after some whole commit of a load.
2. A completed load ended with a final commit and had committed every row it read; the incremental
   reader read everything past the previous watermark, so all rows up to ``max(cursor)`` are in.
3. An interrupted load only touched rows whose cursor lies past the watermark it started from; the
   watermark skips those rows, so the rerun re-reads everything the interrupted load did or missed,
   *in whatever order* the reader streams rows (no ordering contract is needed).
4. Re-read rows are classified by key against what is committed (under the lock, so exactly): an
   unchanged row is left alone, a changed one replaced by MERGE, only an absent key appended -- never
   doubled. The first-load shortcut needs the table empty when the load began; after a crash it is
   not, so the rerun classifies.
5. Schema changes are committed before any data and are idempotent (a rerun finds them applied); a
   snapshot load flags absent rows only after all its rows are in, so a rerun of it re-flags correctly.

Concurrency
===========
Two writers committing to one Delta table fail (``CommitFailedError``). Every write here
(:func:`upsert_batches`, :func:`replace_snapshot`, :func:`mark_deleted`) holds an exclusive ``fcntl.flock``
on ``<path>.lock`` for its whole duration, so writers of one table -- threads or processes on this
machine -- run one after another, and a load's "was the table empty" decision cannot be invalidated
midway. The kernel releases the lock when a process dies, so a crash never leaves a stale lock. The lock
is local: writers on several machines sharing the lake need an external lock. Readers need no lock.

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
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake import Field as DeltaField

__all__ = [
    "APPEND_KEY_LIMIT",
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
    "replace_snapshot",
    "table_info",
    "upsert_batches",
    "watermark",
]

log = logging.getLogger(__name__)

LINEAGE = ("_qst_source", "_qst_batch_id", "_qst_extracted_at", "_qst_row_hash", "_qst_deleted_at")
FLAGS = "_qst_flags"
DEFAULT_MAX_ROWS_PER_COMMIT = 500_000
APPEND_KEY_LIMIT = 16_000_000
ROW_HASH_VERSION = "md5-canonical-v1"
KEY_SNAPSHOT_MEMORY_LIMIT = "512MB"

UTC_TS = pa.timestamp("us", tz="UTC")
_LINEAGE_FIELDS = [
    pa.field("_qst_source", pa.string()),
    pa.field("_qst_batch_id", pa.string()),
    pa.field("_qst_extracted_at", UTC_TS),
    pa.field("_qst_row_hash", pa.string()),
    pa.field("_qst_deleted_at", UTC_TS),
]
_RESERVED = frozenset((*LINEAGE, FLAGS))
_KEY_SNAPSHOT_PROPERTY = "qst.last_key_snapshot"
_INT_RANK = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 3, pa.int64(): 4}
_ROW_CHANGED = "t._qst_row_hash <> s._qst_row_hash OR t._qst_deleted_at IS NOT NULL"

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


class SchemaDriftError(Exception):
    """The source's schema changed in a way bronze does not follow by itself; nothing was written."""

    def __init__(self, table: str, problems: list[tuple[str, str | None, str | None, str]]):
        self.table = table
        self.problems = problems  # (column, old type, new type, why)
        details = "; ".join(f"column {col!r}: {old or '-'} -> {new or '-'} ({why})"
                            for col, old, new, why in problems)
        super().__init__(f"bronze table {table}: schema drift refused, nothing written: {details}")


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


# --------------------------------------------------------------------------------------- delta access


def _open(path: Path) -> DeltaTable | None:
    return DeltaTable(str(path)) if DeltaTable.is_deltatable(str(path)) else None


def _arrow_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def _dataset(table: DeltaTable) -> pds.Dataset:
    # A plain Parquet dataset over the snapshot's files (delta-rs writes no deletion vectors and no
    # column mapping); files older than an added column read it as null. pyarrow's own local filesystem
    # also avoids an abort at interpreter exit seen with delta-rs' Python filesystem handler.
    return pds.dataset(table.file_uris(), schema=_arrow_schema(table), format="parquet")


def read_dataset(path: Path) -> pds.Dataset | None:
    """The committed table as a pyarrow dataset (None when there is no table yet) — how other modules
    read bronze (DuckDB registers it; DESIGN.md: no delta extension offline)."""
    table = _open(path)
    return None if table is None else _dataset(table)


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


def _apply_schema_changes(path: Path, table: DeltaTable, target: pa.Schema, changes: list[SchemaChange],
                          metadata: dict[str, Any]) -> None:
    props = CommitProperties(custom_metadata={**metadata, "qst.operation": "schema",
                                              "qst.drift": [asdict(c) for c in changes]})
    if any(c.change == "widened" for c in changes):
        # One streaming rewrite into the wider types; old files stay for time travel until vacuum.
        batches = (_conform(b, target) for b in _dataset(table).to_batches())
        write_deltalake(str(path), pa.RecordBatchReader.from_batches(target, batches), mode="overwrite",
                        schema_mode="overwrite", commit_properties=props)
    else:
        added = [DeltaField.from_arrow(target.field(c.column)) for c in changes]
        table.alter.add_columns(added, commit_properties=props)
    log.info("bronze %s: schema drift applied: %s", _table_name(path),
             ", ".join(f"{c.column} {c.change} {c.old_type or ''}->{c.new_type}" for c in changes))


# ------------------------------------------------------------------------------------------ row hash


def _text_sql(name: str, dtype: pa.DataType) -> str:
    col = _quote(name)
    if pa.types.is_string(dtype):
        return col
    if pa.types.is_binary(dtype):
        return f"hex({col})"
    if pa.types.is_timestamp(dtype):
        return f"CAST(epoch_us({col}) AS VARCHAR)"
    if pa.types.is_floating(dtype):
        return f"CAST(CAST({col} AS DOUBLE) AS VARCHAR)"
    if pa.types.is_decimal(dtype) and dtype.scale > 0:
        return f"rtrim(rtrim(CAST({col} AS VARCHAR), '0'), '.')"
    return f"CAST({col} AS VARCHAR)"


class _RowHasher:
    """``md5`` of the canonical text of each row's source columns (see the module docstring)."""

    def __init__(self, schema: pa.Schema):
        self.columns = [f.name for f in schema if f.name not in _RESERVED]
        parts = []
        for f in sorted((schema.field(c) for c in self.columns), key=lambda f: f.name):
            tag = f"{len(f.name)}:{f.name}".replace("'", "''")
            text = _text_sql(f.name, f.type)
            parts.append(f"coalesce('{tag}' || strlen({text}) || ':' || {text}, '')")
        self.sql = f"SELECT md5(concat({', '.join(parts)})) AS h FROM __qst_rows"
        self.con = duckdb.connect()  # insertion order is preserved (DuckDB's default)

    def __call__(self, table: pa.Table) -> pa.Array:
        self.con.register("__qst_rows", table.select(self.columns))
        try:
            return self.con.sql(self.sql).to_arrow_table().column(0).combine_chunks().cast(pa.string())
        finally:
            self.con.unregister("__qst_rows")

    def close(self) -> None:
        self.con.close()


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


class _KeyLedger:
    """64-bit hashes of the keys appended in this load, to prove an append cannot double a key."""

    def __init__(self) -> None:
        self.seen = np.empty(0, dtype=np.uint64)

    def add_if_new(self, hashes: np.ndarray) -> bool:
        if self.seen.size + hashes.size > APPEND_KEY_LIMIT:
            return False
        new = np.sort(hashes)
        if self.seen.size:
            at = np.minimum(np.searchsorted(self.seen, new), self.seen.size - 1)
            if bool((self.seen[at] == new).any()):
                return False
        self.seen = np.sort(np.concatenate([self.seen, new]), kind="stable")  # merges two sorted runs
        return True


class _KeyStore:
    """A disk-backed DuckDB table of keys (a key snapshot), so its size is not bounded by memory."""

    def __init__(self, path: Path, key_schema: pa.Schema):
        for stale in path.parent.glob(f".{path.name}.keys-*"):  # left by a killed run (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        self.dir = tempfile.mkdtemp(prefix=f".{path.name}.keys-", dir=path.parent)
        self.con = duckdb.connect(os.path.join(self.dir, "keys.duckdb"))
        self.con.execute(f"SET memory_limit = '{KEY_SNAPSHOT_MEMORY_LIMIT}'")
        self.con.execute("SET temp_directory = ?", [self.dir])
        self.con.execute("SET preserve_insertion_order = false")
        self.schema = key_schema
        self._run("CREATE TABLE present AS SELECT * FROM __qst_in", key_schema.empty_table())

    def _run(self, sql: str, data: pa.Table | pds.Dataset) -> pa.Table | None:
        """Run ``sql`` with ``data`` visible as ``__qst_in``; a query's result comes back as Arrow."""
        self.con.register("__qst_in", data)
        try:
            relation = self.con.sql(sql)
            return None if relation is None else relation.to_arrow_table()
        finally:
            self.con.unregister("__qst_in")

    def add(self, keys: pa.Table) -> None:
        self._run("INSERT INTO present SELECT * FROM __qst_in", _conform(keys, self.schema))

    def changes(self, table: DeltaTable, primary_key: list[str]) -> pa.Table:
        """Keys to flag (``mark``) and to un-flag (not ``mark``), with how many rows each touches."""
        keys = ", ".join(_quote(c) for c in primary_key)
        joined = " AND ".join(f"(b.{_quote(c)} IS NOT DISTINCT FROM p.{_quote(c)})" for c in primary_key)
        sql = f"""
            WITH p AS (SELECT DISTINCT {keys} FROM present),
                 b AS (SELECT {keys}, _qst_deleted_at FROM __qst_in),
                 j AS (SELECT b.*, EXISTS (SELECT 1 FROM p WHERE {joined}) AS present FROM b)
            SELECT {keys}, NOT present AS mark, count(*) AS n_rows FROM j
            WHERE present <> (_qst_deleted_at IS NULL)
            GROUP BY ALL
        """
        return self._run(sql, _dataset(table))

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.dir, ignore_errors=True)


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


class _Load:
    """One load into one table (under the lock): hashing, de-duplication, classification, commits.

    Each chunk's rows are classified against the table (DuckDB join on the key, reading only the key,
    ``_qst_row_hash`` and ``_qst_deleted_at`` columns): new rows are appended at once; changed rows wait in
    a buffer of at most ``max_rows`` rows for one MERGE; unchanged rows are dropped. MERGE cost in
    delta-rs grows with the size of its source, so feeding it only changed rows is what keeps a nightly
    re-read cheap. A key already waiting in the buffer is buffered again when re-read (the later
    occurrence wins), even if that version equals the table's.
    """

    def __init__(self, path: Path, target: pa.Schema, primary_key: list[str], *, source: str,
                 batch_id: str, extracted_at: datetime, max_rows: int, append: bool,
                 key_store: _KeyStore | None):
        self.path = path
        self.target = target
        self.primary_key = primary_key
        self.source = source
        self.batch_id = batch_id
        self.extracted_at = extracted_at
        self.max_rows = max_rows
        self.ledger = _KeyLedger() if append else None
        self.key_store = key_store
        self.hasher = _RowHasher(target)
        self.incoming = pa.schema([f for f in target if f.name not in LINEAGE])
        self.pending: list[pa.Table] = []
        self.pending_ids = np.empty(0, dtype=np.uint64)
        self.result = LoadResult(0, 0, 0, 0, None, [], 0.0)
        self.final_committed = False
        keys_null_free = " AND ".join(f"s.{_quote(c)} IS NOT NULL" for c in primary_key)
        self.join = f"{_key_predicate(primary_key)} AND ({keys_null_free} OR t._qst_row_hash = s._qst_row_hash)"

    def metadata(self, operation: str, **extra: Any) -> CommitProperties:
        return CommitProperties(custom_metadata={
            "qst.operation": operation, "qst.batch_id": self.batch_id, "qst.source": self.source,
            "qst.extracted_at": self.extracted_at.isoformat(), "qst.row_hash": ROW_HASH_VERSION, **extra})

    def committed(self, final: bool) -> None:
        self.result.commits += 1
        self.final_committed = final
        if _after_commit is not None:
            _after_commit(self.result.commits)

    def conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        missing = [n for n in self.incoming.names if n != FLAGS and n not in batch.schema.names]
        if missing:
            raise ValueError(f"bronze table {_table_name(self.path)}: a batch lacks columns {missing} "
                             "declared by the stream's schema")
        return _conform(batch, self.incoming)

    def prepare(self, chunk: pa.Table) -> tuple[pa.Table, np.ndarray]:
        """Lineage added, repeated identities reduced to their last occurrence; and identity hashes."""
        n = chunk.num_rows
        columns = dict(zip(chunk.column_names, chunk.columns, strict=True))
        columns.update({"_qst_source": pa.repeat(self.source, n), "_qst_batch_id": pa.repeat(self.batch_id, n),
                        "_qst_extracted_at": pa.repeat(pa.scalar(self.extracted_at, UTC_TS), n),
                        "_qst_row_hash": self.hasher(chunk), "_qst_deleted_at": pa.nulls(n, UTC_TS)})
        rows = pa.Table.from_arrays([columns[f.name] for f in self.target], schema=self.target)
        identity = _identity(rows, self.primary_key)
        keep = _last_occurrences(identity)
        if keep is not None:
            rows, identity = rows.take(keep), identity[keep]
        self.result.rows_read += n
        self.result.rows_duplicate += n - rows.num_rows
        return rows, identity.hash_rows().to_numpy()

    def classify(self, rows: pa.Table) -> np.ndarray:
        """_NEW, _CHANGED or _UNCHANGED for each row, against the table as committed."""
        probe = rows.select([*self.primary_key, "_qst_row_hash"]).append_column(
            "__row", pa.array(np.arange(rows.num_rows)))
        columns = ", ".join(_quote(c) for c in [*self.primary_key, "_qst_row_hash", "_qst_deleted_at"])
        sql = f"""
            SELECT s.__row, bool_or(t._qst_row_hash = s._qst_row_hash AND t._qst_deleted_at IS NULL) AS same
            FROM __qst_probe s JOIN (SELECT {columns} FROM __qst_table) t ON {self.join}
            GROUP BY s.__row
        """
        con = self.hasher.con
        con.register("__qst_probe", probe)
        con.register("__qst_table", _dataset(DeltaTable(str(self.path))))
        try:
            found = con.sql(sql).to_arrow_table()
        finally:
            con.unregister("__qst_probe")
            con.unregister("__qst_table")
        status = np.full(rows.num_rows, _NEW, dtype=np.int8)
        same = found.column("same").to_numpy(zero_copy_only=False).astype(bool)
        status[found.column("__row").to_numpy()] = np.where(same, _UNCHANGED, _CHANGED)
        return status

    def land(self, chunk: pa.Table, last: bool) -> None:
        """Commit what ``chunk`` changes; ``last``: the stream ends with it (flush the MERGE buffer)."""
        rows, ids = self.prepare(chunk)
        if self.key_store is not None:
            self.key_store.add(rows.select(self.primary_key))
        final = last and self.key_store is None  # a snapshot load ends with flagging absent rows
        if self.ledger is not None:
            if self.ledger.add_if_new(ids):
                self.append(rows, final=final)
                return
            self.ledger = None  # a key may repeat: classify against the table from here on
        status = self.classify(rows)
        if self.pending_ids.size:
            status[(status == _UNCHANGED) & np.isin(ids, self.pending_ids)] = _CHANGED
        self.result.rows_unchanged += int((status == _UNCHANGED).sum())
        changed = status == _CHANGED
        if self.pending and self.pending_ids.size + int(changed.sum()) > self.max_rows:
            self.merge(final=False)  # keep every MERGE within max_rows
        if changed.any():
            self.pending.append(rows.filter(pa.array(changed)))
            self.pending_ids = np.concatenate([self.pending_ids, ids[changed]])
        merge = bool(self.pending) and (last or self.pending_ids.size >= self.max_rows)
        new = rows.filter(pa.array(status == _NEW))
        if new.num_rows:
            self.append(new, final=final and not merge)
        if merge:
            self.merge(final=final)

    def append(self, rows: pa.Table, *, final: bool) -> None:
        write_deltalake(str(self.path), rows, mode="append",
                        commit_properties=self.metadata("append", **{"qst.final": final, "qst.rows": rows.num_rows}))
        self.result.rows_inserted += rows.num_rows
        self.committed(final)
        log.info("bronze %s: appended %d new rows", _table_name(self.path), rows.num_rows)

    def merge(self, *, final: bool) -> None:
        rows = pa.concat_tables(self.pending)
        self.pending, self.pending_ids = [], np.empty(0, dtype=np.uint64)
        keep = _last_occurrences(_identity(rows, self.primary_key))
        if keep is not None:
            self.result.rows_duplicate += rows.num_rows - len(keep)
            rows = rows.take(keep)
        table = DeltaTable(str(self.path))
        before = table.version()
        metrics = (
            table.merge(rows, predicate=self.join, source_alias="s", target_alias="t", streamed_exec=True,
                        commit_properties=self.metadata("merge", **{"qst.final": final, "qst.rows": rows.num_rows}))
            .when_matched_update_all(predicate=_ROW_CHANGED)
            .when_not_matched_insert_all()
            .execute()
        )
        inserted, updated = metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"]
        self.result.rows_inserted += inserted
        self.result.rows_updated += updated
        self.result.rows_unchanged += rows.num_rows - inserted - updated
        if DeltaTable(str(self.path)).version() != before:
            self.committed(final)
        log.info("bronze %s: merged %d changed rows (%d updated, %d inserted)", _table_name(self.path),
                 rows.num_rows, updated, inserted)

    def finish(self) -> None:
        """Mark the load complete if its last commit could not say so (nothing changed at the end)."""
        if not self.final_committed and _incomplete_loads(DeltaTable(str(self.path))):
            write_deltalake(str(self.path), self.target.empty_table(), mode="append",
                            commit_properties=self.metadata("complete", **{"qst.final": True}))
            self.committed(True)

    def close(self) -> None:
        self.hasher.close()


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
    with _writer_lock(path):
        table = _open(path)
        target, drift = _plan_schema(path, None if table is None else _arrow_schema(table), schema)
        base = {"qst.batch_id": batch_id, "qst.source": source}
        if table is None:
            path.mkdir(parents=True, exist_ok=True)
            table = DeltaTable.create(str(path), target, commit_properties=CommitProperties(
                custom_metadata={**base, "qst.operation": "create", "qst.final": False}))
        elif drift:
            _apply_schema_changes(path, table, target, drift, base)
            table = DeltaTable(str(path))
        empty = not table.file_uris()
        key_store = _KeyStore(path, target.empty_table().select(primary_key).schema) if (
            snapshot and not empty) else None
        load = _Load(path, target, primary_key, source=source, batch_id=batch_id, extracted_at=extracted_at,
                     max_rows=max_rows_per_commit, append=empty, key_store=key_store)
        load.result.drift = drift
        try:
            for chunk, last in _chunks((load.conform(b) for b in batches), max_rows_per_commit):
                load.land(chunk, last)
            if key_store is not None:
                marked, _ = _flag_absent(path, key_store, primary_key, extracted_at, load.metadata,
                                         max_rows_per_commit, on_commit=load.committed)
                load.result.rows_deleted = marked
            load.finish()
        finally:
            load.close()
            if key_store is not None:
                key_store.close()
        load.result.version = DeltaTable(str(path)).version()
    load.result.seconds = time.perf_counter() - started
    return load.result


def _flag_absent(path: Path, keys: _KeyStore, primary_key: list[str], at: datetime,
                 metadata: Callable[..., CommitProperties], max_rows: int,
                 on_commit: Callable[[bool], None] | None = None) -> tuple[int, int]:
    """Flag rows whose key is not in ``keys``, un-flag flagged rows whose key is; (flagged, un-flagged)."""
    table = DeltaTable(str(path))
    changes = keys.changes(table, primary_key)
    mark = changes.column("mark")
    n_rows = changes.column("n_rows")
    flagged = int(pc.sum(pc.if_else(mark, n_rows, 0)).as_py() or 0)
    unflagged = int(pc.sum(pc.if_else(mark, 0, n_rows)).as_py() or 0)
    if changes.num_rows:
        source = pa.table({**{c: changes.column(c) for c in primary_key},
                           "__qst_deleted_at": pc.if_else(mark, pa.scalar(at, UTC_TS), pa.scalar(None, UTC_TS))})
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
    is present again are un-flagged. The keys are spooled to a disk-backed DuckDB table next to the
    Delta table, so memory stays bounded whatever the table size. The time is recorded as the table
    property ``qst.last_key_snapshot`` (:func:`last_key_snapshot`).

    Read the key snapshot *after* the incremental load it follows: then every bronze row was extracted
    before the keys were, and a key missing from them was deleted at the source, not merely inserted
    after the snapshot was taken. Rerunning after a crash recomputes the same difference (idempotent).
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


def watermark(path: Path, cursor: str) -> object | None:
    """``max(cursor)`` over the committed rows, or None without a table or rows.

    Reads only the cursor column -- plus ``_qst_batch_id`` right after an interrupted load, whose rows it
    leaves out so the rerun re-reads them (see "Crash safety" in the module docstring).
    """
    table = _open(Path(path))
    if table is None:
        return None
    dataset = _dataset(table)
    if cursor not in dataset.schema.names:
        raise KeyError(f"bronze table {_table_name(Path(path))} has no cursor column {cursor!r}")
    incomplete = _incomplete_loads(table)
    row_filter = ~pc.field("_qst_batch_id").isin(sorted(incomplete)) if incomplete else None
    maxima = [pc.max(b.column(0)) for b in dataset.to_batches(columns=[cursor], filter=row_filter)]
    best = pc.max(pa.array([m.as_py() for m in maxima], type=dataset.schema.field(cursor).type))
    return best.as_py()


def last_key_snapshot(path: Path) -> datetime | None:
    """When the last key snapshot (:func:`mark_deleted`) was applied, or None."""
    table = _open(Path(path))
    if table is None:
        return None
    value = table.metadata().configuration.get(_KEY_SNAPSHOT_PROPERTY)
    return datetime.fromisoformat(value) if value else None


def table_info(path: Path) -> dict[str, Any]:
    """Version, row counts (live = not flagged deleted), last writing batch and schema of a bronze table."""
    path = Path(path)
    table = _open(path)
    if table is None:
        return {"path": str(path), "exists": False, "version": None, "rows": 0, "rows_live": 0,
                "rows_deleted": 0, "last_batch_id": None, "complete": True, "schema": {}}
    dataset = _dataset(table)
    rows = dataset.count_rows()
    deleted = dataset.count_rows(filter=pc.field("_qst_deleted_at").is_valid())
    last = next((c for c in _history(table) if "qst.batch_id" in c), {})
    return {
        "path": str(path),
        "exists": True,
        "version": table.version(),
        "rows": rows,
        "rows_live": rows - deleted,
        "rows_deleted": deleted,
        "files": len(table.file_uris()),
        "last_batch_id": last.get("qst.batch_id"),
        "last_operation": last.get("qst.operation"),
        "last_commit_at": (datetime.fromtimestamp(last["timestamp"] / 1000, UTC).isoformat()
                           if "timestamp" in last else None),
        "complete": not _incomplete_loads(table),
        "last_key_snapshot": snapshot.isoformat() if (snapshot := last_key_snapshot(path)) else None,
        "schema": {f.name: str(f.type) for f in dataset.schema},
    }
