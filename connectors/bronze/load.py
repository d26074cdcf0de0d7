"""Loading a bronze table: the public operations, each under the table's writer lock.

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
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, write_deltalake

from lake.delta import arrow_schema, delta_table, open_delta
from lake.storage import Location, as_location, local_side, storage_options

from ..conversion import coerce
from ..types import TypeChoice
from .columns import FLAGS, RESERVED
from .deltafiles import commit_history, incomplete_loads, live_files, max_from_stats, read_files, table_name
from .keys import KEY_SNAPSHOT_PROPERTY, KeyStore, flag_absent
from .merge import ChunkedLoad, LoadResult, Timer, chunks, has_rows
from .rowhash import ROW_HASH_VERSION, RowHasher
from .schema import ROW_HASH_PROPERTY, apply_schema_changes, plan_schema, stale_row_hash

log = logging.getLogger(__name__)


DEFAULT_MAX_ROWS_PER_COMMIT = 500_000


@contextmanager
def _writer_lock(table: Location) -> Iterator[None]:
    """Exclusive per-table writer lock (``<path>.lock``, on the local side of an object-store table), released
    by the kernel if the process dies."""
    path = local_side(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f"{path.name}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (bronze stores UTC)")
    return moment.astimezone(UTC)


def _load(
    path: Location,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    *,
    primary_key: list[str],
    source: str,
    batch_id: str,
    extracted_at: datetime,
    max_rows_per_commit: int,
    snapshot: bool,
) -> LoadResult:
    started = time.perf_counter()
    path = as_location(path)
    extracted_at = _utc(extracted_at, "extracted_at")
    primary_key = list(primary_key)
    if not primary_key or any(c not in schema.names or c in RESERVED for c in primary_key):
        raise ValueError(
            f"bronze table {table_name(path)}: primary key {primary_key} must name source "
            f"columns of the stream ({schema.names})"
        )
    if max_rows_per_commit < 1:
        raise ValueError("max_rows_per_commit must be at least 1")
    timings: dict[str, float] = {}
    timer = Timer(timings)
    with _writer_lock(path):
        table = open_delta(path)
        target, drift = plan_schema(path, None if table is None else arrow_schema(table), schema)
        base = {"qst.batch_id": batch_id, "qst.source": source}
        if table is None:
            if isinstance(path, Path):
                path.mkdir(parents=True, exist_ok=True)
            table = DeltaTable.create(
                str(path),
                target,
                storage_options=storage_options(path),
                configuration={ROW_HASH_PROPERTY: ROW_HASH_VERSION},
                raise_if_key_not_exists=False,
                commit_properties=CommitProperties(
                    custom_metadata={**base, "qst.operation": "create", "qst.final": False}
                ),
            )
        elif drift or stale_row_hash(table):
            with timer("schema"):
                apply_schema_changes(path, table, target, drift, base, rehash=stale_row_hash(table))
            table = delta_table(path)
        first_load = not has_rows(table)
        key_store = (
            KeyStore(path, pa.schema([target.field(c) for c in primary_key]))
            if (snapshot and not first_load)
            else None
        )
        load = ChunkedLoad(
            path,
            table,
            target,
            primary_key,
            source=source,
            batch_id=batch_id,
            extracted_at=extracted_at,
            max_rows=max_rows_per_commit,
            key_store=key_store,
            timings=timings,
        )
        load.result.drift = drift
        load.result.first_load = first_load
        try:
            for chunk, last in chunks(load.read(batches), max_rows_per_commit):
                load.land(chunk, last)
            load.wait()
            if key_store is not None:
                with timer("flag"):
                    marked, _ = flag_absent(
                        path,
                        key_store,
                        primary_key,
                        extracted_at,
                        load.metadata,
                        max_rows_per_commit,
                        on_commit=load.committed,
                        batch_id=batch_id,
                    )
                load.result.rows_deleted = marked
            load.finish()
        finally:
            load.close()
            if key_store is not None:
                key_store.close()
        load.result.version = load.table.version()
    load.result.seconds = time.perf_counter() - started
    return load.result


def upsert_batches(
    path: Location,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    *,
    primary_key: list[str],
    source: str,
    batch_id: str,
    extracted_at: datetime,
    max_rows_per_commit: int = DEFAULT_MAX_ROWS_PER_COMMIT,
) -> LoadResult:
    """Upsert a stream of source rows by primary key (incremental tables); see the module docstring."""
    return _load(
        path,
        batches,
        schema,
        primary_key=primary_key,
        source=source,
        batch_id=batch_id,
        extracted_at=extracted_at,
        max_rows_per_commit=max_rows_per_commit,
        snapshot=False,
    )


def replace_snapshot(
    path: Location,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    *,
    primary_key: list[str],
    source: str,
    batch_id: str,
    extracted_at: datetime,
    max_rows_per_commit: int = DEFAULT_MAX_ROWS_PER_COMMIT,
) -> LoadResult:
    """Make the table's live rows exactly the snapshot (full-snapshot tables).

    Upserts every row as :func:`upsert_batches` does, then flags rows whose key the snapshot lacked
    (``_qst_deleted_at = extracted_at``); nothing is physically removed.
    """
    return _load(
        path,
        batches,
        schema,
        primary_key=primary_key,
        source=source,
        batch_id=batch_id,
        extracted_at=extracted_at,
        max_rows_per_commit=max_rows_per_commit,
        snapshot=True,
    )


def mark_deleted(
    path: Location,
    present_keys: Iterable[pa.RecordBatch],
    *,
    primary_key: list[str],
    at: datetime,
    max_rows_per_commit: int = DEFAULT_MAX_ROWS_PER_COMMIT,
    batch_id: str | None = None,
) -> int:
    """Apply a key snapshot (every primary key now at the source); returns how many rows were flagged.
    With ``batch_id`` (the load the snapshot follows), the rows it flags or un-flags take it as their
    ``_qst_batch_id`` and its commits record it, as every other write of a row does.

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
    path = as_location(path)
    at = _utc(at, "at")
    with _writer_lock(path):
        table = open_delta(path)
        if table is None:
            return 0
        schema = arrow_schema(table)
        missing = [c for c in primary_key if c not in schema.names]
        if missing:
            raise ValueError(
                f"bronze table {table_name(path)}: primary key columns {missing} not in the table"
            )
        store = KeyStore(path, pa.schema([schema.field(c) for c in primary_key]))
        try:
            for batch in present_keys:
                store.add(pa.Table.from_batches([batch]).select(primary_key))

            batch = {} if batch_id is None else {"qst.batch_id": batch_id}

            def metadata(operation: str, **extra: Any) -> CommitProperties:
                return CommitProperties(custom_metadata={"qst.operation": operation, **batch, **extra})

            flagged, _ = flag_absent(
                path, store, primary_key, at, metadata, max_rows_per_commit, batch_id=batch_id
            )
        finally:
            store.close()
        delta_table(path).alter.set_table_properties(
            {KEY_SNAPSHOT_PROPERTY: at.isoformat()},
            raise_if_not_exists=False,
            commit_properties=CommitProperties(
                custom_metadata={"qst.operation": "key_snapshot", "qst.flagged": flagged}
            ),
        )
    return flagged


def watermark(path: Location, cursor: str) -> object | None:
    """``max(cursor)`` over the committed rows, or None without a table or rows.

    Reads the Delta log's statistics and at most the cursor column of the files that can hold the
    maximum -- plus ``_qst_batch_id`` right after an interrupted load, whose rows it leaves out so the
    rerun re-reads them (see "Crash safety" in the module docstring).
    """
    table = open_delta(as_location(path))
    if table is None:
        return None
    schema = arrow_schema(table)
    if cursor not in schema.names:
        raise KeyError(f"bronze table {table_name(as_location(path))} has no cursor column {cursor!r}")
    dtype = schema.field(cursor).type
    incomplete = incomplete_loads(table)
    uris, actions = live_files(table)
    known, files = (None, uris) if incomplete else max_from_stats(uris, actions, cursor, dtype)
    maxima = [] if known is None else [known]
    columns = [cursor, "_qst_batch_id"] if incomplete else [cursor]
    for batch in read_files(files, schema, columns):
        values = pl.from_arrow(batch)
        assert isinstance(values, pl.DataFrame)  # from a record batch
        if incomplete:
            values = values.filter(~pl.col("_qst_batch_id").is_in(sorted(incomplete)).fill_null(False))
        maxima.append(values.get_column(cursor).max())
    found = [m for m in maxima if m is not None]
    return max(found) if found else None


def last_key_snapshot(path: Location) -> datetime | None:
    """When the last key snapshot (:func:`mark_deleted`) was applied, or None."""
    table = open_delta(as_location(path))
    if table is None:
        return None
    value = table.metadata().configuration.get(KEY_SNAPSHOT_PROPERTY)
    return datetime.fromisoformat(value) if value else None


def table_info(path: Location) -> dict[str, Any]:
    """Version, row counts (live = not flagged deleted), last writing batch and schema of a bronze table.

    Counts come from the Delta log (row and null counts per file); only files without statistics are read.
    """
    path = as_location(path)
    table = open_delta(path)
    if table is None:
        return {
            "path": str(path),
            "exists": False,
            "version": None,
            "rows": 0,
            "rows_live": 0,
            "rows_deleted": 0,
            "last_batch_id": None,
            "complete": True,
            "schema": {},
        }
    schema = arrow_schema(table)
    uris, actions = live_files(table)
    rows = deleted = 0
    unknown: list[str] = []
    counts = actions.get_column("num_records").to_list() if uris else []
    nulls = (
        actions.get_column("null_count._qst_deleted_at").to_list()
        if uris and "null_count._qst_deleted_at" in actions.columns
        else [None] * len(uris)
    )
    for uri, n, live in zip(uris, counts, nulls, strict=True):
        if n is None or live is None:
            unknown.append(uri)
        else:
            rows, deleted = rows + n, deleted + n - live
    for batch in read_files(unknown, schema, ["_qst_deleted_at"]):
        rows, deleted = rows + batch.num_rows, deleted + batch.num_rows - batch.column(0).null_count
    last = next((c for c in commit_history(table) if "qst.batch_id" in c), {})
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
        "last_commit_at": (
            datetime.fromtimestamp(last["timestamp"] / 1000, UTC).isoformat() if "timestamp" in last else None
        ),
        "complete": not incomplete_loads(table),
        "last_key_snapshot": snapshot.isoformat() if (snapshot := last_key_snapshot(path)) else None,
        "schema": {f.name: str(f.type) for f in schema},
    }


def stored_type(path: Location, column: str) -> pa.DataType | None:
    """The Arrow type bronze stores ``column`` as (from the Delta schema, no data read), or None when
    there is no table or no such column."""
    table = open_delta(as_location(path))
    if table is None:
        return None
    schema = arrow_schema(table)
    return schema.field(column).type if column in schema.names else None


def _add_flags(flags: pa.Array, added: list[tuple[str, pa.Array]], column: str) -> pa.Array:
    for kind, mask in added:
        entry = pa.scalar(f"{kind}:{column}", pa.string())
        joined = pc.binary_join_element_wise(flags, entry, ";")
        flags = pc.if_else(mask, pc.coalesce(joined, entry), flags)
    return flags


def recast_text_column(path: Location, column: str, choice: TypeChoice, *, zone: str) -> int:
    """Convert a bronze column stored as text into ``choice.arrow_type`` (a date or timestamp), in place
    and without losing a row; returns the number of rows rewritten (0 when already converted).

    Why: a cursor loaded as text before its ``type`` was declared in ``sources.yaml`` leaves bronze --
    the system of record, holding rows since deleted at the source and their lineage -- with the wrong
    type, and a load refuses that drift. Re-reading the source cannot rebuild it (deleted rows, first
    extraction times), so the stored text is converted instead, by the reader's own rule
    (:func:`connectors.conversion.coerce`: ``zone`` is the department's ``source_timezone``), so the next
    night reads the same values back. A value that does not parse becomes null and its row is flagged
    ``bad_date:<column>`` exactly as the reader would. Every row hash is recomputed (the values changed
    type), so rows re-read in the lookback window compare unchanged; every other lineage column is kept.
    One overwrite commit under the writer lock: a crash leaves the table as it was.
    """
    path = as_location(path)
    if choice.kind not in ("date", "timestamp"):
        raise ValueError(f"can only recast text into a date or timestamp, not {choice.kind}")
    with _writer_lock(path):
        table = open_delta(path)
        if table is None:
            raise ValueError(f"bronze table {table_name(path)} does not exist")
        current = arrow_schema(table)
        if column not in current.names:
            raise ValueError(f"bronze table {table_name(path)} has no column {column!r}")
        old = current.field(column).type
        if old == choice.arrow_type:
            return 0
        if not (pa.types.is_string(old) or pa.types.is_large_string(old)):
            raise ValueError(
                f"bronze table {table_name(path)}: column {column!r} is stored as {old}, not text; "
                "only text is recast"
            )
        target = pa.schema([pa.field(f.name, choice.arrow_type) if f.name == column else f for f in current])
        hasher = RowHasher(target)
        expected = table_info(path)["rows"]
        written = 0

        def rewritten(batch: pa.RecordBatch) -> pa.RecordBatch:
            nonlocal written
            coerced = coerce(batch.column(column), choice, zone=zone)
            columns = dict(zip(batch.schema.names, batch.columns, strict=True))
            columns[column] = coerced.values
            columns[FLAGS] = _add_flags(columns[FLAGS].cast(pa.string()), coerced.flags, column)
            interim = pa.RecordBatch.from_arrays([columns[f.name] for f in target], schema=target)
            columns["_qst_row_hash"] = hasher(interim)
            written += batch.num_rows
            return pa.RecordBatch.from_arrays([columns[f.name] for f in target], schema=target)

        batches = (rewritten(b) for b in read_files(table.file_uris(), current, current.names))
        write_deltalake(
            str(path),
            pa.RecordBatchReader.from_batches(target, batches),
            storage_options=storage_options(path),
            mode="overwrite",
            schema_mode="overwrite",
            commit_properties=CommitProperties(
                custom_metadata={
                    "qst.operation": "recast",
                    "qst.column": column,
                    "qst.drift": [
                        {"column": column, "old_type": str(old), "new_type": str(choice.arrow_type)}
                    ],
                }
            ),
        )
        after = table_info(path)["rows"]
        if written != expected or after != expected:  # never expected: a bug, said loudly
            raise RuntimeError(
                f"bronze table {table_name(path)}: recast of {column!r} wrote {written} rows and holds "
                f"{after}, but the table had {expected}"
            )
    log.info("bronze %s: %s recast from %s to %s", table_name(path), column, old, choice.arrow_type)
    return written
