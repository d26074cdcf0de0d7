"""Committing one load's stream: cutting it into chunks, classifying each chunk against the committed table
(new, changed, unchanged) and committing it as an append or a MERGE.

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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from deltalake import ColumnProperties, CommitProperties, DeltaTable, WriterProperties, write_deltalake

from lake.storage import Location

from .columns import FLAGS, LINEAGE, UTC_TS, repeat_text, repeat_utc
from .deltafiles import (
    add_actions,
    candidate_files,
    conform,
    incomplete_loads,
    key_predicate,
    physical_range,
    quote_name,
    read_files,
    table_name,
)
from .keys import KeyStore
from .rowhash import ROW_HASH_VERSION, RowHasher, from_numpy
from .schema import SchemaChange

log = logging.getLogger(__name__)


_ROW_CHANGED = "t._qst_row_hash <> s._qst_row_hash OR t._qst_deleted_at IS NOT NULL"


def _append_properties(primary_key: list[str]) -> WriterProperties:
    """How appends are written (measured on 500k-row chunks of a 7-column table, see the module docstring).

    Row groups of 64k rows let delta-rs flush as it goes (40-60 MB less peak memory than one row group
    per file). A key or a 64-bit hash never repeats within a file, so no dictionary for them, and a
    dictionary page limit of 128 KB makes other many-valued columns fall back to plain encoding early:
    together about a quarter less CPU than the defaults, for files no larger.
    """
    plain = ColumnProperties(dictionary_enabled=False)
    return WriterProperties(
        compression="SNAPPY",
        max_row_group_size=65_536,
        dictionary_page_size_limit=131_072,
        column_properties=dict.fromkeys(["_qst_row_hash", *primary_key], plain),
    )


# Test seam: called with the load's commit count after each commit (the crash tests pause here).
_after_commit: Callable[[int], None] | None = None


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


class Timer:
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


def chunks(batches: Iterable[pa.RecordBatch], max_rows: int) -> Iterator[tuple[pa.Table, bool]]:
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


_NEW, _CHANGED, _UNCHANGED = 0, 1, 2


def _identity(rows: pa.Table, primary_key: list[str]) -> pl.DataFrame:
    """What identifies each row: its key, plus its row hash (``_h``) when the key has a null."""
    any_null = pl.any_horizontal(pl.col(primary_key).is_null())
    hashes = pl.from_arrow(rows.column("_qst_row_hash"))
    keys = pl.from_arrow(rows.select(primary_key))
    assert isinstance(hashes, pl.Series) and isinstance(keys, pl.DataFrame)  # a column, a table
    return keys.with_columns(pl.when(any_null).then(hashes).otherwise(None).alias("_h"))


def _last_occurrences(identity: pl.DataFrame) -> np.ndarray | None:
    """Positions of each identity's last occurrence in stream order, or None when all are distinct."""
    kept = identity.with_row_index("_row").unique(subset=identity.columns, keep="last")
    return None if kept.height == identity.height else np.sort(kept["_row"].to_numpy())


def has_rows(table: DeltaTable) -> bool:
    """Whether the snapshot holds a row (read from the log; a file without a row count counts)."""
    counts = add_actions(table).get_column("num_records")
    return bool(len(counts)) and (counts.null_count() > 0 or (counts.sum() or 0) > 0)


class ChunkedLoad:
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

    def __init__(
        self,
        path: Location,
        table: DeltaTable,
        target: pa.Schema,
        primary_key: list[str],
        *,
        source: str,
        batch_id: str,
        extracted_at: datetime,
        max_rows: int,
        key_store: KeyStore | None,
        timings: dict[str, float],
    ):
        self.path = path
        self.table = table
        self.target = target
        self.primary_key = primary_key
        self.source = source
        self.batch_id = batch_id
        self.extracted_at = extracted_at
        self.max_rows = max_rows
        self.key_store = key_store
        self.hasher = RowHasher(target)
        self.incoming = pa.schema([f for f in target if f.name not in LINEAGE])
        self.hashed = pa.schema([*self.incoming, target.field("_qst_row_hash")])
        self.pending: list[pa.Table] = []
        self.pending_ids = np.empty(0, dtype=np.uint64)
        self.result = LoadResult(0, 0, 0, 0, None, [], 0.0, timings=timings)
        self.time = Timer(timings)
        self.final_committed = False
        self.committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bronze-commit")
        self.writer_properties = _append_properties(primary_key)
        self.in_flight: Future[Callable[[], None]] | None = None
        keys_null_free = " AND ".join(f"s.{quote_name(c)} IS NOT NULL" for c in primary_key)
        self.join = (
            f"{key_predicate(primary_key)} AND ({keys_null_free} OR t._qst_row_hash = s._qst_row_hash)"
        )

    def metadata(self, operation: str, **extra: Any) -> CommitProperties:
        return CommitProperties(
            custom_metadata={
                "qst.operation": operation,
                "qst.batch_id": self.batch_id,
                "qst.source": self.source,
                "qst.extracted_at": self.extracted_at.isoformat(),
                "qst.row_hash": ROW_HASH_VERSION,
                **extra,
            }
        )

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
                    batch = pa.RecordBatch.from_arrays(
                        [*batch.columns, self.hasher(batch)], schema=self.hashed
                    )
                yield batch

    def conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        missing = [n for n in self.incoming.names if n != FLAGS and n not in batch.schema.names]
        if missing:
            raise ValueError(
                f"bronze table {table_name(self.path)}: a batch lacks columns {missing} "
                "declared by the stream's schema"
            )
        return conform(batch, self.incoming)

    def prepare(self, chunk: pa.Table) -> pa.Table:
        """The chunk with lineage added and repeated identities reduced to their last occurrence."""
        n = chunk.num_rows
        with self.time("dedupe"):
            columns = dict(zip(chunk.column_names, chunk.columns, strict=True))
            columns.update(
                {
                    "_qst_source": repeat_text(self.source, n),
                    "_qst_batch_id": repeat_text(self.batch_id, n),
                    "_qst_extracted_at": repeat_utc(self.extracted_at, n),
                    "_qst_deleted_at": pa.nulls(n, UTC_TS),
                }
            )
            rows = pa.Table.from_arrays([columns[f.name] for f in self.target], schema=self.target)
            keep = None if self.distinct(rows) else _last_occurrences(_identity(rows, self.primary_key))
            if keep is not None:
                rows = rows.take(from_numpy(keep))
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
        files = candidate_files(self.table, rows.select(self.primary_key))
        if not files:
            return status
        pk = self.primary_key
        probe_rows = pl.from_arrow(rows.select([*pk, "_qst_row_hash"]))
        assert isinstance(probe_rows, pl.DataFrame)  # from a table
        probe = probe_rows.with_row_index("__row")
        null_keys = any(rows.column(c).null_count for c in pk)
        found: list[pl.DataFrame] = []
        ranges = {c: r for c in pk if (r := physical_range(rows.column(c))) is not None}
        for batch in read_files(files, self.target, [*pk, "_qst_row_hash", "_qst_deleted_at"], ranges=ranges):
            stored = pl.from_arrow(batch)
            assert isinstance(stored, pl.DataFrame)  # from a record batch
            matched = stored.join(probe, on=pk, how="inner", nulls_equal=True, suffix="_s")
            if null_keys:  # a key with a null identifies a row together with its row hash
                matched = matched.filter(
                    pl.all_horizontal(pl.col(pk).is_not_null())
                    | (pl.col("_qst_row_hash") == pl.col("_qst_row_hash_s"))
                )
            if matched.height:
                found.append(
                    matched.select(
                        "__row",
                        (
                            (pl.col("_qst_row_hash") == pl.col("_qst_row_hash_s"))
                            & pl.col("_qst_deleted_at").is_null()
                        ).alias("same"),
                    )
                )
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
                assert ids is not None  # computed whenever ids are pending
                status[(status == _UNCHANGED) & np.isin(ids, self.pending_ids)] = _CHANGED
                changed = status == _CHANGED
        self.result.rows_unchanged += int((status == _UNCHANGED).sum())
        if self.pending and self.pending_ids.size + int(changed.sum()) > self.max_rows:
            self.merge(final=False)  # keep every MERGE within max_rows
        if changed.any():
            assert ids is not None  # computed whenever a row changed
            self.pending.append(rows.filter(from_numpy(changed)))
            self.pending_ids = np.concatenate([self.pending_ids, ids[changed]])
        merge = bool(self.pending) and (last or self.pending_ids.size >= self.max_rows)
        is_new = status == _NEW
        new = rows if is_new.all() else rows.filter(from_numpy(is_new))
        if new.num_rows:
            self.append(new, final=final and not merge)
        if merge:
            self.merge(final=final)

    def append(self, rows: pa.Table, *, final: bool) -> None:
        def job() -> Callable[[], None]:
            with self.time("append"):
                write_deltalake(
                    self.table,
                    rows,
                    mode="append",
                    writer_properties=self.writer_properties,
                    commit_properties=self.metadata(
                        "append", **{"qst.final": final, "qst.rows": rows.num_rows}
                    ),
                )
                self.committed(final)
            log.info("bronze %s: appended %d new rows", table_name(self.path), rows.num_rows)
            return lambda: None

        self.result.rows_inserted += rows.num_rows
        self.submit(job)

    def merge(self, *, final: bool) -> None:
        rows = pa.concat_tables(self.pending)
        self.pending, self.pending_ids = [], np.empty(0, dtype=np.uint64)
        keep = _last_occurrences(_identity(rows, self.primary_key))
        if keep is not None:
            self.result.rows_duplicate += rows.num_rows - len(keep)
            rows = rows.take(from_numpy(keep))

        def job() -> Callable[[], None]:
            with self.time("merge"):
                before = self.table.version()
                metrics = (
                    self.table.merge(
                        rows,
                        predicate=self.join,
                        source_alias="s",
                        target_alias="t",
                        streamed_exec=True,
                        commit_properties=self.metadata(
                            "merge", **{"qst.final": final, "qst.rows": rows.num_rows}
                        ),
                    )
                    .when_matched_update_all(predicate=_ROW_CHANGED)
                    .when_not_matched_insert_all()
                    .execute()
                )
                self.table.update_incremental()
                if self.table.version() != before:
                    self.committed(final)
            inserted, updated = metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"]
            log.info(
                "bronze %s: merged %d changed rows (%d updated, %d inserted)",
                table_name(self.path),
                rows.num_rows,
                updated,
                inserted,
            )

            def count() -> None:  # applied on the loading thread
                self.result.rows_inserted += inserted
                self.result.rows_updated += updated
                self.result.rows_unchanged += rows.num_rows - inserted - updated

            return count

        self.submit(job)

    def finish(self) -> None:
        """Mark the load complete if its last commit could not say so (nothing changed at the end)."""
        self.wait()
        if not self.final_committed and incomplete_loads(self.table):
            empty = pa.Table.from_arrays([pa.nulls(0, f.type) for f in self.target], schema=self.target)
            write_deltalake(
                self.table,
                empty,
                mode="append",
                commit_properties=self.metadata("complete", **{"qst.final": True}),
            )
            self.committed(True)

    def close(self) -> None:
        """Wait for the commit in flight (never leave one running once the lock is released)."""
        try:
            if self.in_flight is not None:
                futures_wait([self.in_flight])
        finally:
            self.committer.shutdown(wait=True)
