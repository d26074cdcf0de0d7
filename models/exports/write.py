"""Writing one planned table: the query with the protections applied in DuckDB (vectorized functions), streamed
into Parquet row groups of a fixed size and RFC 4180 CSV in the bureau's encoding, with each column's
protection recorded in the Parquet field metadata.

Why apart: the files' bytes depend only on this module (fixed row groups, fixed CSV dialect), so a package
is reproducible whatever DuckDB's batch sizes are.

Values safe to open (the last guard: silver cleaned them already, :mod:`models.standardize.safe_text`)
    * Every text value of both files loses its control characters (:func:`~models.standardize.safe_text.clean_controls`).
    * A CSV text cell starting with ``=``, ``+``, ``-``, ``@``, TAB or CR -- what a spreadsheet runs as a formula
      (``=1+1``, ``+cmd|' /C calc'!A0``, a masked phone ``=07**1234``) -- gets a leading single quote, OWASP's
      advice against CSV injection (:func:`spreadsheet_safe`); the package README tells the bureau, the manifest
      counts the cells (``formula_cells_quoted``).  Numbers are numbers, never quoted.  The Parquet file keeps
      the value as it is: it is data, not a sheet.  An Excel writer, if one is added, must apply the same rule.
    * A CSV cell longer than :data:`~models.standardize.safe_text.MAX_FIELD_CHARS` is an error naming the table,
      column and row: the bureau's export fails rather than publish what ``qst verify-export`` rejects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from duckdb.func import FunctionNullHandling, PythonUDFType

from models.exports.entitlements import (
    ColumnRule,
    ExportError,
)
from models.exports.plan import SOURCE_ALIAS, ExportPlan, PlanColumn, quoted
from models.exports.protect import KeyedHasher, protect_arrow
from models.standardize.safe_text import CONTROL_CHARS, MAX_FIELD_CHARS, clean_controls, too_long

#: Rows per Parquet row group (fixed, so the files do not depend on DuckDB's batch sizes).
ROW_GROUP_ROWS = 131_072
#: Rows per batch read from DuckDB.
FETCH_ROWS = 65_536
#: What a spreadsheet runs as a formula when a cell starts with it (OWASP, "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: What is put in front of such a text cell so that it is read as text.
FORMULA_PREFIX = "'"
_FORMULA_RE = r"^[=+\-@\t\r]"  # FORMULA_STARTS as a regular expression


def spreadsheet_safe(col: pl.Expr) -> pl.Expr:
    """Text a spreadsheet shows and never runs: a value starting with one of :data:`FORMULA_STARTS` gets
    :data:`FORMULA_PREFIX` in front; null stays null."""
    return pl.when(col.str.contains(_FORMULA_RE)).then(FORMULA_PREFIX + col).otherwise(col)


def clean_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with the control characters removed from its text columns (the types kept)."""
    columns = list(batch.columns)
    changed = False
    for i, field in enumerate(batch.schema):
        if not (
            pa.types.is_string(field.type)
            or pa.types.is_large_string(field.type)
            or pa.types.is_string_view(field.type)
        ):
            continue
        series = pl.Series("v", columns[i])
        if not series.str.contains(CONTROL_CHARS).any():
            continue
        cleaned = series.to_frame().select(clean_controls(pl.col("v"))).to_series()
        columns[i] = cleaned.to_arrow().cast(field.type)
        changed = True
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema) if changed else batch


# ---------------------------------------------------------------------------------------------------------
# writers


class _ParquetSink:
    """Parquet with row groups of exactly ROW_GROUP_ROWS rows (the last one shorter)."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.schema = schema
        self.writer = pq.ParquetWriter(path, schema, compression="zstd", compression_level=3)
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        while self.pending_rows >= ROW_GROUP_ROWS:
            table = pa.Table.from_batches(self.pending, self.schema)
            self.writer.write_table(table.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
            rest = table.slice(ROW_GROUP_ROWS)
            self.pending = rest.to_batches()
            self.pending_rows = rest.num_rows

    def close(self) -> None:
        if self.pending_rows:
            table = pa.Table.from_batches(self.pending, self.schema)
            self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.writer.close()


class _CsvSink:
    """RFC 4180 CSV (CRLF, header row) in ``utf-8-sig`` (UTF-8 with a BOM, which Excel needs to read UTF-8)
    or ``gb18030`` (what older Chinese Excel and WPS installations expect); text cells made
    :func:`spreadsheet_safe`, none longer than ``MAX_FIELD_CHARS``."""

    def __init__(self, path: Path, schema: pa.Schema, encoding: str, table: str):
        self.table = table
        self.rows = 0  # data rows written so far (for the row number of an error)
        self.quoted = 0  # cells given FORMULA_PREFIX
        self.codec = "utf-8" if encoding == "utf-8-sig" else encoding
        self.file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        if encoding == "utf-8-sig":
            self.file.write("\ufeff".encode())
        self._write(schema.empty_table(), header=True)

    def write(self, batch: pa.RecordBatch) -> None:
        self._write(batch, header=False)

    def _write(self, data: pa.RecordBatch | pa.Table, header: bool) -> None:
        frame = pl.from_arrow(data)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.with_columns(
            _csv_text(name, dtype)
            for name, dtype in frame.schema.items()
            if dtype.is_nested() or dtype == pl.Binary
        )
        strings = [name for name, dtype in frame.schema.items() if dtype == pl.String]
        if strings and frame.height:
            self._check_lengths(frame, strings)
            risky = frame.select(pl.sum_horizontal(pl.col(strings).str.contains(_FORMULA_RE).sum())).item()
            if risky:
                self.quoted += int(risky)
                frame = frame.with_columns(spreadsheet_safe(pl.col(c)).alias(c) for c in strings)
        self.rows += frame.height
        # one column: a null would be a blank line, which spreadsheet and pandas readers skip; write "" instead
        null = '""' if frame.width == 1 else ""
        text = frame.write_csv(include_header=header, line_terminator="\r\n", null_value=null)
        self.file.write(text.encode(self.codec))

    def _check_lengths(self, frame: pl.DataFrame, text: list[str]) -> None:
        flags = frame.select(too_long(pl.col(c)).arg_true().first().alias(c) for c in text).row(0, named=True)
        for column, row in flags.items():
            if row is not None:
                chars = len(frame[column][row])
                raise ExportError(
                    f"table {self.table}, column {column}, data row {self.rows + row + 1} of the CSV: a value of "
                    f"{chars:,} characters, more than the {MAX_FIELD_CHARS:,} a CSV cell may hold (the limit "
                    "silver quarantines at and qst verify-export checks, models/standardize/safe_text.py); "
                    "nothing was published for this bureau"
                )

    def close(self) -> None:
        self.file.close()


def _csv_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A value CSV cannot hold as it is: lists and structs (``VARCHAR[]`` such as ``departments``) as JSON text
    (``["samr","tax"]``), binary as hex; null stays empty."""
    col = pl.col(name)
    if dtype == pl.Binary:
        return col.bin.encode("hex")
    text = pl.struct(col.alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")
    return pl.when(col.is_null()).then(pl.lit(None, pl.String)).otherwise(text).alias(name)


_PROTECTION_TEXT = {
    "keep": ("原样", "as is"),
    "mask_id": ("脱敏：保留前6位和后4位", "masked: first 6 and last 4 characters kept"),
    "mask_mobile": ("脱敏：保留前3位和后4位", "masked: first 3 and last 4 digits kept"),
    "mask_bank_card": ("脱敏：保留前6位和后4位", "masked: first 6 and last 4 digits kept"),
    "mask_name": ("脱敏：保留首字", "masked: first character kept"),
    "hmac": (
        "密钥哈希（HMAC-SHA256，可关联，不可还原）",
        "keyed hash (HMAC-SHA256): joinable, not reversible",
    ),
}


def protection_text_of(rule: ColumnRule) -> tuple[str, str]:
    if rule.protect == "mask":
        first, last = rule.keeps()
        return f"脱敏：保留前{first}位和后{last}位", f"masked: first {first} and last {last} characters kept"
    return _PROTECTION_TEXT[rule.protect]


def _field_meta(col: PlanColumn) -> dict[bytes, bytes]:
    zh, en = protection_text_of(col.rule)
    meta = {b"protection": col.rule.describe().encode(), b"protection_text": f"{zh} / {en}".encode()}
    if col.comment:
        meta[b"description"] = col.comment.encode()
    return meta


def _udf(rule: ColumnRule, hasher: KeyedHasher | None) -> Callable[[pa.Array], pa.Array]:
    """A vectorized DuckDB function applying one column rule (one Arrow chunk at a time)."""

    def protect(values: pa.Array) -> pa.Array:
        return protect_arrow(values, rule, hasher)

    return protect


def write_export_table(
    con: duckdb.DuckDBPyConnection,
    plan: ExportPlan,
    build: Path,
    formats: Sequence[str],
    encoding: str,
    hasher: KeyedHasher | None,
    serial: int,
) -> tuple[int, list[dict[str, Any]]]:
    """Run the plan's query and stream it to the files; (rows, file entries without digests)."""
    udfs: list[str] = []
    items: list[str] = []
    try:
        for j, col in enumerate(plan.columns):
            src = f"{SOURCE_ALIAS}.{quoted(col.source)}"
            if col.rule.protect == "keep":
                items.append(f"{src} AS {quoted(col.output)}")
                continue
            fn = f"__qst_protect_{serial}_{j}"
            con.create_function(
                fn,
                _udf(col.rule, hasher),
                ["VARCHAR"],
                "VARCHAR",
                type=PythonUDFType.ARROW,
                null_handling=FunctionNullHandling.SPECIAL,
            )
            udfs.append(fn)
            items.append(f"{fn}(CAST({src} AS VARCHAR)) AS {quoted(col.output)}")
        where = " AND ".join(plan.where) or "TRUE"
        sql = f"SELECT {', '.join(items)} FROM {quoted(plan.table)} AS {SOURCE_ALIAS} WHERE {where} ORDER BY ALL"
        reader = con.sql(sql, params=plan.params or None).to_arrow_reader(FETCH_ROWS)
        schema = pa.schema(
            [f.with_metadata(_field_meta(c)) for f, c in zip(reader.schema, plan.columns, strict=True)]
        )
        stem = plan.ent.output_name
        sinks: list[tuple[str, _ParquetSink | _CsvSink]] = []
        try:
            if "parquet" in formats:
                sinks.append((f"{stem}.parquet", _ParquetSink(build / f"{stem}.parquet", schema)))
            if "csv" in formats:
                sinks.append((f"{stem}.csv", _CsvSink(build / f"{stem}.csv", schema, encoding, plan.table)))
            rows = 0
            for batch in reader:
                batch = clean_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
                rows += batch.num_rows
                for _, sink in sinks:
                    sink.write(batch)
        finally:
            for _, sink in sinks:
                sink.close()
    finally:
        for fn in udfs:
            with contextlib.suppress(Exception):
                con.remove_function(fn)
    written = pq.read_schema(build / f"{stem}.parquet") if "parquet" in formats else schema
    described = [{"name": f.name, "type": str(f.type)} for f in written]
    entries = []
    for name, sink in sinks:
        entry: dict[str, Any] = {
            "path": name,
            "table": stem,
            "format": name.rsplit(".", 1)[1],
            "rows": rows,
            "schema": described,
        }
        if isinstance(sink, _CsvSink):
            entry["encoding"] = encoding
            entry["formula_cells_quoted"] = sink.quoted
        entries.append(entry)
    return rows, entries
