"""Schema drift of a bronze table: what a load may change in the table's schema, and how.

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

import logging
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake import Field as DeltaField

from lake.delta import arrow_schema, delta_table
from lake.storage import Location, storage_options

from .columns import FLAGS, LINEAGE, LINEAGE_FIELDS, RESERVED, UTC_TS
from .deltafiles import conform, read_files, table_name
from .rowhash import ROW_HASH_VERSION, RowHasher

log = logging.getLogger(__name__)


ROW_HASH_PROPERTY = "qst.row_hash"


_INT_RANK = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 3, pa.int64(): 4}


@dataclass
class SchemaChange:
    column: str
    change: Literal["added", "widened"]
    old_type: str | None
    new_type: str


class SchemaDriftError(Exception):
    """The source's schema changed in a way bronze does not follow by itself; nothing was written."""

    def __init__(self, table: str, problems: list[tuple[str, str | None, str | None, str]]):
        self.table = table
        self.problems = problems  # (column, old type, new type, why)
        details = "; ".join(
            f"column {col!r}: {old or '-'} -> {new or '-'} ({why})" for col, old, new, why in problems
        )
        super().__init__(f"bronze table {table}: schema drift refused, nothing written: {details}")


def _storage_type(dtype: pa.DataType, column: str) -> pa.DataType:
    """The Arrow type Delta stores for an incoming type (raises for types bronze cannot hold as is)."""
    t = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    ):
        return pa.binary()
    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise ValueError(
                f"column {column!r}: naive timestamp; the reader must attach the source zone "
                "(bronze stores UTC, never timestamp_ntz)"
            )
        return UTC_TS
    if pa.types.is_date(t):
        return pa.date32()
    unsigned = {
        pa.uint8(): pa.int16(),
        pa.uint16(): pa.int32(),
        pa.uint32(): pa.int64(),
        pa.uint64(): pa.decimal128(20, 0),
        pa.float16(): pa.float32(),
    }
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


def plan_schema(
    path: Location, current: pa.Schema | None, incoming: pa.Schema
) -> tuple[pa.Schema, list[SchemaChange]]:
    """The table schema after this load and the drift to apply; raises SchemaDriftError."""
    reserved = [f.name for f in incoming if f.name in LINEAGE]
    if reserved:
        raise ValueError(
            f"bronze table {table_name(path)}: the source stream carries lineage columns "
            f"{reserved}; those are written by bronze"
        )
    source = [pa.field(f.name, _storage_type(f.type, f.name)) for f in incoming if f.name != FLAGS]
    if current is None:
        return pa.schema([*source, pa.field(FLAGS, pa.string()), *LINEAGE_FIELDS]), []
    fields = {f.name: f for f in current}
    by_lower = {name.lower(): name for name in fields}
    changes: list[SchemaChange] = []
    problems: list[tuple[str, str | None, str | None, str]] = []
    for f in source:
        old = fields.get(f.name)
        if old is None:
            if f.name.lower() in by_lower:
                problems.append(
                    (
                        f.name,
                        None,
                        str(f.type),
                        f"differs only in case from column {by_lower[f.name.lower()]!r}",
                    )
                )
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
    problems += [
        (name, str(fields[name].type), None, "in the table but missing from the source")
        for name in fields
        if name not in names and name not in RESERVED
    ]
    if problems:
        raise SchemaDriftError(table_name(path), problems)
    if FLAGS not in fields:
        changes.append(SchemaChange(FLAGS, "added", None, "string"))
        fields[FLAGS] = pa.field(FLAGS, pa.string())
    for lineage in LINEAGE_FIELDS:  # the lineage types are bronze's (an md5-era row hash was text)
        fields[lineage.name] = lineage
    return pa.schema([pa.field(f.name, f.type) for f in fields.values()]), changes


def stale_row_hash(table: DeltaTable) -> bool:
    """The table's row hashes were computed by another recipe than :data:`ROW_HASH_VERSION`."""
    return table.metadata().configuration.get(ROW_HASH_PROPERTY) != ROW_HASH_VERSION


def apply_schema_changes(
    path: Location,
    table: DeltaTable,
    target: pa.Schema,
    changes: list[SchemaChange],
    metadata: dict[str, Any],
    *,
    rehash: bool,
) -> None:
    """Apply drift (added columns, widenings) and, with ``rehash``, recompute every row hash.

    A widening or a rehash is one streaming rewrite of the table (old files stay for time travel until
    vacuum); lineage other than the row hash is kept as it is, so the watermark is unchanged.
    """
    operation = "schema" if changes else "rehash"
    props = CommitProperties(
        custom_metadata={
            **metadata,
            "qst.operation": operation,
            "qst.drift": [asdict(c) for c in changes],
            "qst.row_hash": ROW_HASH_VERSION,
        }
    )
    if rehash or any(c.change == "widened" for c in changes):
        values = pa.schema([f for f in target if f.name != "_qst_row_hash"])
        hasher = RowHasher(target)

        def rewritten(batch: pa.RecordBatch) -> pa.RecordBatch:
            conformed = conform(
                batch.drop_columns(["_qst_row_hash"]) if rehash else batch, values if rehash else target
            )
            if not rehash:
                return conformed
            columns = dict(zip(conformed.schema.names, conformed.columns, strict=True))
            columns["_qst_row_hash"] = hasher(conformed)
            return pa.RecordBatch.from_arrays([columns[f.name] for f in target], schema=target)

        current = arrow_schema(table)
        batches = (rewritten(b) for b in read_files(table.file_uris(), current, current.names))
        write_deltalake(
            str(path),
            pa.RecordBatchReader.from_batches(target, batches),
            storage_options=storage_options(path),
            mode="overwrite",
            schema_mode="overwrite",
            commit_properties=props,
        )
    else:
        added = [DeltaField.from_arrow(target.field(c.column)) for c in changes]
        table.alter.add_columns(added, commit_properties=props)
    if rehash:  # recorded after the rows have it: a crash in between only means one more rewrite
        delta_table(path).alter.set_table_properties(
            {ROW_HASH_PROPERTY: ROW_HASH_VERSION},
            raise_if_not_exists=False,
            commit_properties=CommitProperties(custom_metadata={**metadata, "qst.operation": "row_hash"}),
        )
        log.info("bronze %s: row hashes recomputed (%s)", table_name(path), ROW_HASH_VERSION)
    if changes:
        log.info(
            "bronze %s: schema drift applied: %s",
            table_name(path),
            ", ".join(f"{c.column} {c.change} {c.old_type or ''}->{c.new_type}" for c in changes),
        )
