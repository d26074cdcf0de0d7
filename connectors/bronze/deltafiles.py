"""What bronze reads of its Delta tables without materializing them: the live files and their per-file
statistics (to pick the files that can hold a key, or the maximum of a cursor), the commit history (which
loads finished), and the Parquet files themselves, a row group at a time.

Statistics are only ever used to *skip* a file or a row group when that is exact: the bounds used
contain every value of the file (see the comments on each widening below); a file without statistics is
always read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from lake.storage import Location, arrow_files

from .columns import UTC_TS


def table_name(path: Location) -> str:
    return f"{path.parent.name}/{path.name}"


def read_files(
    files: list[str],
    schema: pa.Schema,
    columns: list[str],
    batch_rows: int = 262_144,
    ranges: dict[str, tuple[int, int]] | None = None,
) -> Iterator[pa.RecordBatch]:
    """``columns`` of the rows of ``files`` (Parquet files of a table of ``schema``), a batch at a time.

    pyarrow.parquet reads a row group at a time (the loading path stays clear of pyarrow.dataset, which
    imports pandas); a column a file predates reads as null. ``ranges``: skip the row groups whose
    Parquet statistics (exact for integer columns) put a column's values outside ``(low, high)``, given
    as the column's physical integers -- a filter that may let other rows through.
    """
    wanted = pa.schema([schema.field(c) for c in columns])
    paths, filesystem = arrow_files(files)
    for file in paths:
        parquet = pq.ParquetFile(file, filesystem=filesystem)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        groups = _row_groups(parquet, ranges) if ranges else None
        if groups == []:
            continue
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=present, row_groups=groups):
            yield conform(batch, wanted)


def _row_groups(parquet: pq.ParquetFile, ranges: dict[str, tuple[int, int]]) -> list[int] | None:
    """The row groups of ``parquet`` whose integer statistics overlap ``ranges`` (None: all of them)."""
    metadata = parquet.metadata
    leaves = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    checks = [
        (leaves[name], low, high)
        for name, (low, high) in ranges.items()
        if name in leaves and metadata.schema.column(leaves[name]).physical_type in ("INT32", "INT64")
    ]
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


def physical_range(column: pa.ChunkedArray | pa.Array) -> tuple[int, int] | None:
    """(min, max) of an integer, date or microsecond timestamp column as Parquet stores it (None: not one,
    or a null in it, or empty)."""
    t = column.type
    if (
        column.null_count
        or not len(column)
        or not (pa.types.is_integer(t) or pa.types.is_date32(t) or t == UTC_TS)
    ):
        return None
    values = pl.from_arrow(column)
    assert isinstance(values, pl.Series)
    if not pa.types.is_integer(t):
        values = values.to_physical()
    low, high = values.min(), values.max()
    assert isinstance(low, int) and isinstance(high, int)  # physical integers, no null (above)
    return low, high


def add_actions(table: DeltaTable) -> pl.DataFrame:
    """The snapshot's add actions, statistics flattened (``num_records``, ``min.<column>``, ...)."""
    actions = pl.from_arrow(
        table.get_add_actions(flatten=True)
    )  # an Arrow stream: polars reads it as a struct
    return actions.struct.unnest() if isinstance(actions, pl.Series) else actions


def live_files(table: DeltaTable) -> tuple[list[str], pl.DataFrame]:
    """The snapshot's file URIs and their add actions (statistics flattened), row for row."""
    uris = table.file_uris()
    actions = add_actions(table)
    paths = [unquote(p) for p in actions.get_column("path").to_list()] if actions.height else []
    if len(paths) == len(uris) and all(uri.endswith(p) for uri, p in zip(uris, paths, strict=True)):
        return uris, actions
    row = {p: i for i, p in enumerate(paths)}  # not in the same order: match them by relative path
    base = urlparse(table.table_uri)  # a local table's files are paths, an object store's are URIs
    root = (unquote(base.path) if base.scheme in ("", "file") else table.table_uri).rstrip("/") + "/"
    order = [row.get(uri[len(root) :]) if uri.startswith(root) else None for uri in uris]
    positions = [i for i in order if i is not None]
    if len(paths) != len(uris) or len(positions) != len(order):
        raise RuntimeError("bronze: the Delta log's add actions do not match its file list")
    return uris, actions[positions]


def commit_history(table: DeltaTable) -> Iterator[dict[str, Any]]:
    """Commit infos, newest first, read a page at a time (usually only the newest few are needed)."""
    seen = 0
    for limit in (16, 256, None):
        page = table.history(limit)
        yield from page[seen:]
        if limit is None or len(page) < limit:
            return
        seen = len(page)


def incomplete_loads(table: DeltaTable) -> set[str]:
    """Batch ids of the loads committed after the newest final load commit (interrupted loads)."""
    pending: set[str] = set()
    for commit in commit_history(table):
        if "qst.batch_id" not in commit or "qst.final" not in commit:
            continue  # not a load's data commit (schema change, key snapshot, optimize, ...)
        if commit.get("qst.final"):
            break
        pending.add(str(commit.get("qst.batch_id")))
    return pending


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def key_predicate(primary_key: list[str]) -> str:
    # Parenthesized: delta-rs' parser binds ``a IS NOT DISTINCT FROM b AND c`` as ``a ... FROM (b AND c)``.
    return " AND ".join(f"(t.{quote_name(c)} IS NOT DISTINCT FROM s.{quote_name(c)})" for c in primary_key)


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


def stats_kind(dtype: pa.DataType) -> str | None:
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
    return values.abs() * _DECIMAL_STATS_RELATIVE + 10.0**-dtype.scale


def file_bounds(
    actions: pl.DataFrame, column: str, dtype: pa.DataType
) -> tuple[pl.Series, pl.Series, pl.Series, pl.Series] | None:
    """Per file of ``column``: (lower bound, upper bound, may hold nulls, a value at most the true maximum);
    a null bound is unbounded. Decimal bounds are floats (compare decimals with them as floats)."""
    kind = stats_kind(dtype)
    lo_name, hi_name, null_name = f"min.{column}", f"max.{column}", f"null_count.{column}"
    if kind is None or lo_name not in actions.columns or hi_name not in actions.columns:
        return None
    lo, hi = actions.get_column(lo_name), actions.get_column(hi_name)
    if kind == "decimal":  # beyond 64-bit integers delta-rs saturates them: no bound then
        lo, hi = (
            pl.DataFrame({"v": v.cast(pl.Float64)})
            .select(pl.when(pl.col("v").abs() < _DECIMAL_STATS_LIMIT).then(pl.col("v")))
            .to_series()
            for v in (lo, hi)
        )
    if kind == "string":
        hi = (
            pl.DataFrame({"hi": hi})
            .select(pl.when(pl.col("hi").str.len_bytes() < _STRING_STATS_BYTES).then(pl.col("hi")))
            .to_series()
        )
    floor = hi
    if kind in ("timestamp", "decimal"):
        floor = hi - _slack(hi, kind, dtype)
        lo, hi = lo - _slack(lo, kind, dtype), hi + _slack(hi, kind, dtype)
    if null_name in actions.columns:
        nulls = (actions.get_column(null_name) != 0).fill_null(True)
    else:
        nulls = pl.Series(np.ones(actions.height, dtype=bool))
    return lo, hi, nulls, floor


def candidate_files(table: DeltaTable, keys: pa.Table) -> list[str]:
    """The files of the snapshot that can hold a row with one of the keys of ``keys`` (null-safe)."""
    uris, actions = live_files(table)
    if not uris:
        return []
    keep = np.ones(len(uris), dtype=bool)
    for name in keys.column_names:
        bounds = file_bounds(actions, name, keys.schema.field(name).type)
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


def conform(data: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.RecordBatch | pa.Table:
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


def max_from_stats(
    uris: list[str], actions: pl.DataFrame, column: str, dtype: pa.DataType
) -> tuple[Any, list[str]]:
    """``max(column)`` as far as the log's statistics tell it, and the files still to read for it.

    Integer and date statistics are exact: their maximum is known and only files without statistics
    are read. Timestamp and decimal statistics are approximate: only the files whose maximum can reach
    the highest true maximum are read. Other types: every file is read.
    """
    kind = stats_kind(dtype)
    bounds = (
        file_bounds(actions, column, dtype) if kind in ("exact", "timestamp", "decimal") and uris else None
    )
    if bounds is None:
        return None, uris
    _, hi, _, floor = bounds
    nulls_name = f"null_count.{column}"
    all_null = (
        (actions.get_column(nulls_name) == actions.get_column("num_records")).fill_null(False).to_numpy()
        if nulls_name in actions.columns
        else np.zeros(len(uris), dtype=bool)
    )
    unknown = hi.is_null().to_numpy() & ~all_null
    if hi.null_count() == len(hi):
        return None, [u for u, k in zip(uris, unknown.tolist(), strict=True) if k]
    if kind == "exact":
        return hi.max(), [u for u, k in zip(uris, unknown.tolist(), strict=True) if k]
    near = (hi >= floor.max()).fill_null(False).to_numpy()  # the files whose maximum can be the highest
    return None, [u for u, k in zip(uris, (near | unknown).tolist(), strict=True) if k]
