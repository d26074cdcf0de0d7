"""Key snapshots: which keys no longer exist at the source, and flagging their rows deleted.

Key snapshots (:func:`mark_deleted`, and the end of :func:`replace_snapshot`) spool the snapshot's keys
to a Parquet file next to the table while summing a hash of each; one pass over the table's key columns
sums its live keys the same way. Equal counts and sums -- the usual night, nothing deleted -- mean there
is nothing to flag (a difference goes unseen only if the 64-bit hashes of a key that left and one that
came collide: about 2**-64 per such pair); otherwise an exact DuckDB semi-join (memory-limited to
:data:`KEY_SNAPSHOT_MEMORY_LIMIT`, spilling to disk) finds the rows.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable

from lake.delta import arrow_schema, delta_table
from lake.storage import Location, local_side

if TYPE_CHECKING:
    import duckdb
from .columns import UTC_TS, repeat_text, repeat_utc
from .deltafiles import conform, key_predicate, quote_name, read_files, table_name
from .rowhash import M64, RowHasher, fmix

log = logging.getLogger(__name__)


KEY_SNAPSHOT_MEMORY_LIMIT = "128MB"  # DuckDB's budget for a key snapshot; it spills to disk beyond


KEY_SNAPSHOT_PROPERTY = "qst.last_key_snapshot"


def _scratch_dir(table: Location, kind: str) -> str:
    """A fresh folder next to the table (on its local side, for an object-store table) for spooled keys and
    DuckDB's spill files (under the writer lock)."""
    path = local_side(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.{kind}-*"):  # left by a killed run (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f".{path.name}.{kind}-", dir=path.parent)


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


class KeyStore:
    """A key snapshot spooled to a Parquet file next to the table, with a checksum of its keys.

    Memory is one batch while keys are added. :meth:`changes` first compares the snapshot with the
    table's live keys by count and two order-independent 64-bit sums of a hash of each key (one
    streaming pass over the table's key columns): when they agree -- the common night, nothing
    deleted -- there is nothing to flag or un-flag. Otherwise an exact DuckDB semi-join (hash table
    built on the spooled keys, memory-limited, spilling to disk) finds the rows.
    """

    def __init__(self, path: Location, key_schema: pa.Schema):
        self.dir = _scratch_dir(path, "keys")
        self.file = os.path.join(self.dir, "keys.parquet")
        self.schema = key_schema
        self.hasher = RowHasher(key_schema)
        # plain pages: the file is read at most once, and a dictionary of 8M keys costs a second to build
        self.writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self.file, key_schema, compression="none", use_dictionary=False, write_statistics=False
        )
        self.checksum = _KeyChecksum()

    def add(self, keys: pa.Table) -> None:
        keys = conform(keys, self.schema)
        assert self.writer is not None
        self.writer.write_table(keys)
        self.checksum.add(self.hasher(keys))

    def changes(self, table: DeltaTable, primary_key: list[str]) -> pa.Table:
        """Keys to flag (``mark``) and to un-flag (not ``mark``), with how many rows each touches."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        columns = [*primary_key, "_qst_deleted_at"]
        files, schema = table.file_uris(), arrow_schema(table)
        live, flagged_null_keys = _KeyChecksum(), 0
        for batch in read_files(files, schema, columns):
            deleted = batch.column("_qst_deleted_at").is_valid()
            if batch.column("_qst_deleted_at").null_count != batch.num_rows:
                null_key = (
                    pc.or_(*[batch.column(c).is_null() for c in primary_key])
                    if len(primary_key) > 1
                    else batch.column(primary_key[0]).is_null()
                )
                flagged_null_keys += pc.sum(pc.and_(deleted, null_key)).as_py() or 0
            keys = pa.Table.from_batches([batch]).select(primary_key).filter(pc.invert(deleted))
            live.add(self.hasher(conform(keys, self.schema)))
        # Equal multisets of keys leave nothing to do: no live key is missing from the snapshot, and no
        # flagged row shares its key with a live one (keys are unique in bronze; null keys excepted).
        if live == self.checksum and not flagged_null_keys:
            return pa.Table.from_arrays(
                [
                    *(pa.nulls(0, f.type) for f in self.schema),
                    pa.nulls(0, pa.bool_()),
                    pa.nulls(0, pa.int64()),
                ],
                names=[*self.schema.names, "mark", "n_rows"],
            )
        keys = ", ".join(quote_name(c) for c in primary_key)
        joined = " AND ".join(
            f"(b.{quote_name(c)} IS NOT DISTINCT FROM p.{quote_name(c)})" for c in primary_key
        )
        con = _duckdb(KEY_SNAPSHOT_MEMORY_LIMIT, self.dir)
        try:
            con.register(
                "__qst_bronze",
                pa.RecordBatchReader.from_batches(
                    pa.schema([schema.field(c) for c in columns]), read_files(files, schema, columns)
                ),
            )
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
        values = np.frombuffer(
            hashes.buffers()[1], dtype=np.uint64, count=len(hashes), offset=hashes.offset * 8
        )
        self.count += len(values)
        for i, seed in enumerate(self._SEEDS):
            mixed = values ^ seed
            self.sums[i] = np.uint64((int(self.sums[i]) + int(fmix(mixed).sum(dtype=np.uint64))) & M64)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _KeyChecksum) and (self.count, self.sums) == (other.count, other.sums)

    # no __hash__: a class that defines __eq__ alone is unhashable (Python sets __hash__ to None)


def flag_absent(
    path: Location,
    keys: KeyStore,
    primary_key: list[str],
    at: datetime,
    metadata: Callable[..., CommitProperties],
    max_rows: int,
    on_commit: Callable[[bool], None] | None = None,
    batch_id: str | None = None,
) -> tuple[int, int]:
    """Flag rows whose key is not in ``keys``, un-flag flagged rows whose key is; (flagged, un-flagged).

    With ``batch_id``, a row flagged or un-flagged also takes it as its ``_qst_batch_id``: the load that last
    wrote this version of the row (columns.py), which is how silver finds the rows a night changed
    (models/staging_changes.py)."""
    table = delta_table(path)
    changes = keys.changes(table, primary_key)
    counts = pl.from_arrow(changes.select(["mark", "n_rows"]))
    assert isinstance(counts, pl.DataFrame)
    flagged = int(counts.filter(pl.col("mark")).get_column("n_rows").sum() or 0)
    unflagged = int(counts.filter(~pl.col("mark")).get_column("n_rows").sum() or 0)
    if changes.num_rows:
        n = changes.num_rows
        flags = pc.if_else(changes.column("mark"), repeat_utc(at, n), pa.nulls(n, UTC_TS))
        source = pa.Table.from_arrays(
            [*(changes.column(c) for c in primary_key), flags], names=[*primary_key, "__qst_deleted_at"]
        )
        updates = {"_qst_deleted_at": 's."__qst_deleted_at"'}
        if batch_id is not None:
            source = source.append_column("__qst_batch_id", repeat_text(batch_id, n))
            updates["_qst_batch_id"] = 's."__qst_batch_id"'
        chunks = list(range(0, source.num_rows, max_rows))
        for i, offset in enumerate(chunks):
            last = i == len(chunks) - 1
            part = source.slice(offset, max_rows)
            (
                delta_table(path)
                .merge(
                    part,
                    predicate=key_predicate(primary_key),
                    source_alias="s",
                    target_alias="t",
                    streamed_exec=True,
                    commit_properties=metadata(
                        "mark_deleted", **{"qst.final": last, "qst.at": at.isoformat()}
                    ),
                )
                .when_matched_update(
                    updates=updates,
                    predicate='t._qst_deleted_at IS DISTINCT FROM s."__qst_deleted_at"',
                )
                .execute()
            )
            if on_commit is not None:
                on_commit(last)
    log.info("bronze %s: %d rows flagged deleted, %d un-flagged", table_name(path), flagged, unflagged)
    return flagged, unflagged
