"""Read one legacy source table as a stream of Arrow record batches, with full type fidelity.

:func:`open_table` reflects the source table (SQLAlchemy inspector), decides the bronze type of every
column (:mod:`connectors.types`, the one place for the type rules), builds one ``SELECT`` with every
identifier validated and quoted, and returns a :class:`TableStream`: the bronze schema (output column names,
final types, plus ``_qst_flags``) and a lazy iterator of record batches of at most ``batch_rows`` rows.
Nothing is fetched before the iterator is consumed and the whole table is never in memory.

Readers (``reader`` of the stream)
    ``engine="auto"`` uses the fast Arrow-native reader of the dialect (:data:`FAST_READERS`) and
    SQLAlchemy for every other dialect; ``"fast"`` insists on the native reader, ``"sqlalchemy"`` forces
    the universal fallback (a server-side streaming cursor, ``stream_results`` + ``yield_per``, whose rows
    are turned into Arrow arrays).  Both produce identical batches: they send the same SQL and feed the same
    conversion (:func:`connectors.conversion.coerce`).

    Measured on this 2-core machine (shared with other work, so figures vary between runs): a 15-column
    table of 200k rows (ints, Chinese text, DECIMAL(14,2)/(18,4), DATETIME, DATE, BOOLEAN, DOUBLE), best
    of 3, whole pipeline including the conversion to bronze types (script in the issue report):

    * **postgresql -> connectorx** ``arrow_stream``: 255k-530k rows/s, against ADBC 229k-324k (it returns
      NUMERIC as text that must be parsed, and stops streaming -- one batch holding every row -- as soon as
      a parameter is bound) and SQLAlchemy 63k-109k.  2M rows: 394k rows/s at 327 MB peak RSS (294 MB
      for 200k), so it streams.
    * **mysql/mariadb -> connectorx** ``arrow_stream``: 285k-396k rows/s (2M rows: 316k rows/s, 325 MB
      peak RSS), SQLAlchemy 43k-54k.  The only Arrow-native MySQL reader installed.
    * **sqlite -> ADBC** (adbc-driver-sqlite): 247k-339k rows/s, against connectorx 247k-273k on the same
      sanitized query with more memory, and SQLAlchemy 52k-100k.

    ``since`` is a bound parameter on the SQLAlchemy path; connectorx and streaming ADBC cannot bind, so
    there it is rendered from the validated ``datetime``/``date``/``int`` (digits and separators only),
    never from user text.

Dialect-specific SQL (the same for every reader of a dialect)
    * MySQL/MariaDB: DATE/DATETIME/TIMESTAMP/TIME as ``CAST(c AS CHAR)`` (zero dates survive and are
      flagged), the session ``time_zone`` is ``+00:00`` (TIMESTAMP columns come back as UTC), a latin1
      column to repair as ``CAST(c AS BINARY)`` -- the raw GBK bytes, whatever the connection charset.
    * PostgreSQL: types without an Arrow equivalent (time, interval, json, uuid, arrays, unconstrained
      numeric...) as ``CAST(c AS TEXT)``.
    * SQLite: every column becomes a never-null expression of one storage class plus its storage class
      (``IFNULL(CAST(c AS INTEGER), 0), unicode(typeof(c))``), so a value whose storage class does not fit
      the declared affinity is detected (null + ``bad_value``) instead of crashing a reader, and a first
      batch of nulls cannot mislead a reader's type inference.  Text travels as its bytes
      (``CAST(c AS BLOB)``): SQLite never checks UTF-8, and a legacy application may have written GBK into
      a TEXT column; such a value is kept as its (reversible) latin1 reading and flagged ``bad_encoding``,
      or repaired when the column has ``repair: gbk_in_latin1``.

``_qst_flags``
    Null when the row is clean, otherwise ``kind:column`` entries joined with ``;`` in column order, e.g.
    ``zero_date:HZRQ;bad_value:CBRS``, where ``column`` is the *output* (bronze) column name whose value was
    set to null (or, for ``bad_encoding``, kept unrepaired).  Kinds: see :mod:`connectors.types`.

Errors
    :class:`SourceReadError` for a connection that fails, a missing table or column, a hostile identifier
    (rejected before any SQL runs) or a failure while streaming.  Messages name the department, the table
    (and column) and the cause, and never contain the URL or the password.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import pyarrow as pa

from .config_schema import Defaults, DepartmentConfig, TableConfig
from .identifiers_sql import quote_identifier
from .reflection import (
    FLAGS_COLUMN,
    ReadContext,
    SourceReadError,
    bronze_schema,
    dept_key,
    natural_column,
    plan_columns,
    reflect,
    resolve_secret,
    validate_names,
)
from .transports import (
    MYSQL,
    SQLITE_VALUE,
    SQLITE_WIRE_TYPES,
    arrow_transport,
    sa_transport,
    to_bronze,
)
from .types import SourceColumn

__all__ = [
    "FAST_READERS",
    "FLAGS_COLUMN",
    "SourceColumn",
    "SourceReadError",
    "TableStream",
    "cursor_problem",
    "open_table",
    "planned_cursor",
    "source_columns",
]


# dialect (SQLAlchemy backend name) -> Arrow-native reader used by engine="auto"/"fast"; see the docstring
FAST_READERS: dict[str, str] = {
    "postgresql": "connectorx",
    "mysql": "connectorx",
    "mariadb": "connectorx",
    "sqlite": "adbc",
}

_SAFE_LITERAL = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?)?(\+00:00)?\Z"
)


@dataclass
class TableStream:
    """A source table as a stream of Arrow record batches."""

    schema: pa.Schema  # bronze schema: output column names, final types, plus "_qst_flags" (string, nullable)
    batches: Iterator[pa.RecordBatch]  # each batch conforms exactly to schema; at most batch_rows rows
    reader: str  # "connectorx" | "adbc" | "sqlalchemy"
    query: str  # the SQL sent (identifiers quoted; no secrets)


# --------------------------------------------------------------------------------------------------
# SQL


def _select_list(plan: Sequence[SourceColumn], backend: str) -> tuple[list[str], str | None]:
    """The SELECT expressions, and (SQLite) the prefix of the typeof() status aliases."""
    exprs: list[str] = []
    status_prefix = None
    if backend == "sqlite":
        status_prefix = "_qst_t"
        while any(c.name.casefold().startswith(status_prefix.casefold()) for c in plan):
            status_prefix = "_" + status_prefix
    for i, col in enumerate(plan):
        q = quote_identifier(col.name, backend, what="column name")
        wire = col.choice.wire
        if backend == "sqlite":
            exprs.append(f"{SQLITE_VALUE[wire].format(q=q)} AS {q}")
            exprs.append(f'unicode(typeof({q})) AS "{status_prefix}{i}"')
        elif backend in MYSQL:
            cast = {"text": "CHAR", "bytes": "BINARY", "unsigned": "UNSIGNED"}.get(wire)
            exprs.append(f"CAST({q} AS {cast}) AS {q}" if cast else q)
        elif backend == "postgresql":
            exprs.append(f"CAST({q} AS TEXT) AS {q}" if wire == "text" else q)
        else:
            exprs.append(q)
    return exprs, status_prefix


def _check_since_type(table: TableConfig, since: object) -> None:
    if table.mode != "incremental" or not table.cursor:
        raise ValueError(f"table {table.name!r} has no cursor (mode {table.mode!r}); since must be None")
    if table.cursor_kind == "id":
        integral = isinstance(since, Decimal) and since.is_finite() and since == since.to_integral_value()
        if not integral and (isinstance(since, bool) or not isinstance(since, int)):
            raise ValueError(
                f"since must be an int for the id cursor {table.cursor!r} of table {table.name!r}, "
                f"got {type(since).__name__}"
            )
    elif isinstance(since, dt.datetime):
        if since.tzinfo is None or since.utcoffset() is None:
            raise ValueError(
                f"since must be a timezone-aware datetime (UTC) for the timestamp cursor "
                f"{table.cursor!r} of table {table.name!r}, got a naive datetime"
            )
    elif not isinstance(since, dt.date):
        raise ValueError(
            f"since must be a timezone-aware datetime (UTC), or a date, for the timestamp cursor "
            f"{table.cursor!r} of table {table.name!r}, got {type(since).__name__} {since!r:.40}"
        )


_CURSOR_KINDS = {"id": ("int64", "decimal"), "timestamp": ("timestamp", "date", "string")}
# what bronze must store for the watermark arithmetic (max cursor minus lookback) to be possible
_STORED_CURSOR_KINDS = {"id": ("int64", "decimal"), "timestamp": ("timestamp", "date")}


def cursor_problem(table: TableConfig, plan: Sequence[SourceColumn], natural: SourceColumn) -> str | None:
    """Why the cursor of an incremental table cannot work, in words, or None when it can.

    Checked on every read, before a row is fetched, because the failure it prevents comes a night
    later: bronze stores what the reader delivers, and the next night's watermark -- ``max(cursor)`` in
    bronze minus the lookback -- is arithmetic on that stored value. A TEXT column of timestamps
    (SQLite sources often have them) would land as text and the second night could not compute a
    watermark. ``plan`` is the planned columns (configured ``type`` applied), ``natural`` the cursor
    with its declared source type only (what the ``WHERE cursor >= since`` compares against)."""
    if table.mode != "incremental" or not table.cursor:
        return None
    kind = table.cursor_kind or "timestamp"
    planned = next((c for c in plan if c.name == table.cursor), None)
    if planned is None:  # a read of other columns only (a key snapshot): the main read checks it
        return None
    source = natural.choice.kind
    if source not in _CURSOR_KINDS[kind]:
        if kind == "id":
            return (
                f"the id cursor is {natural.sql_type} in the source; an id cursor must be an integer "
                "column (a text column compares as text: '10' < '9'). Use an integer column, or "
                "cursor_kind: timestamp with a date/time column, or mode: snapshot"
            )
        return (
            f"the timestamp cursor is {natural.sql_type} in the source; a timestamp cursor must be a "
            "date/time column or text holding 'YYYY-MM-DD[ HH:MM[:SS]]'"
        )
    if planned.choice.kind in _STORED_CURSOR_KINDS[kind]:
        return None
    name = table.cursor
    if kind == "id":
        return (
            f"the id cursor would be stored in bronze as {planned.choice.kind} "
            f"({planned.rule}), so no watermark could be computed from it; remove its configured "
            f"type or declare it as an integer: columns: {{{name}: {{type: int64}}}}"
        )
    return (
        f"the timestamp cursor is {natural.sql_type} in the source and would be stored in bronze as "
        f"{planned.choice.kind} ({planned.rule}), so the next night could not compute its watermark "
        f"(the latest cursor minus the lookback). Declare how to parse it in sources.yaml: "
        f"columns: {{{name}: {{type: timestamp}}}} for text 'YYYY-MM-DD HH:MM[:SS]' (read in "
        f"source_timezone), or {{type: date}} for 'YYYY-MM-DD'"
    )


def _since_value(
    ctx: ReadContext, since: object, cursor: SourceColumn, zone: dt.tzinfo
) -> dt.date | dt.datetime | int:
    """``since`` in the terms of the source column: an int, the source's local wall-clock time (naive),
    an aware UTC instant for zoned columns, or a local calendar date for DATE columns."""
    t = ctx.table
    kind = cursor.choice.kind
    allowed = _CURSOR_KINDS[t.cursor_kind or "timestamp"]
    if kind not in allowed:
        raise ctx.error(
            f"the {t.cursor_kind} cursor is declared {cursor.sql_type} in the source; a "
            f"{t.cursor_kind} cursor needs one of {', '.join(allowed)}",
            column=t.cursor,
        )
    if t.cursor_kind == "id":
        assert isinstance(since, int | Decimal)  # _check_since_type: an int or an integral Decimal
        return int(since)
    if isinstance(since, dt.datetime):
        local = since.astimezone(zone).replace(tzinfo=None)  # the source's local wall-clock time
    else:  # a calendar date: its local midnight
        assert isinstance(since, dt.date)
        local = dt.datetime.combine(since, dt.time())
    if kind == "date":
        return local.date()
    if cursor.choice.zoned:
        return (since if isinstance(since, dt.datetime) else local.replace(tzinfo=zone)).astimezone(dt.UTC)
    return local


def _since_text(value: dt.date | dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        timespec = "microseconds" if value.microsecond else "seconds"
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            return value.replace(tzinfo=None).isoformat(sep=" ", timespec=timespec) + "+00:00"
        return value.isoformat(sep=" ", timespec=timespec)
    return value.isoformat()


def _since_literal(value: dt.date | dt.datetime | int, backend: str, cursor: SourceColumn) -> str:
    """A SQL literal rendered from a validated datetime/date/int (never from text)."""
    if isinstance(value, int):
        return str(int(value))
    text = _since_text(value)
    if not _SAFE_LITERAL.match(text):  # defence in depth: only digits and separators
        raise ValueError("since could not be rendered safely")
    if (
        backend == "postgresql"
        and cursor.choice.kind in ("timestamp", "date")
        and cursor.choice.wire == "native"
    ):
        if isinstance(value, dt.datetime):
            keyword = "TIMESTAMP WITH TIME ZONE" if value.tzinfo is not None else "TIMESTAMP"
        else:
            keyword = "DATE"
        return f"{keyword} '{text}'"
    if (
        isinstance(value, dt.datetime) and value.tzinfo is not None
    ):  # MySQL TIMESTAMP: session time_zone is UTC
        text = text.removesuffix("+00:00")
    return f"'{text}'"


def _since_param(value: dt.date | dt.datetime | int, backend: str) -> object:
    if isinstance(value, int):
        return value
    if backend == "sqlite":  # compared as text, in the format SQLite stores
        return _since_text(value)
    if backend in MYSQL and isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


# --------------------------------------------------------------------------------------------------
# public API


def source_columns(
    department: DepartmentConfig, table: TableConfig, environ: Mapping[str, str] | None = None
) -> list[SourceColumn]:
    """Every column of the source table as reflected (name, declared SQL type, nullable) with the bronze
    Arrow type chosen for it (configured ``type``/``rename``/``repair`` applied).  Raises
    :class:`SourceReadError` like :func:`open_table`."""
    ctx = ReadContext(department, table, dept_key(department))
    validate_names(ctx, None)
    secret = resolve_secret(ctx, environ)
    reflected = reflect(ctx, secret)
    return plan_columns(ctx, reflected, None)


def planned_cursor(
    department: DepartmentConfig, table: TableConfig, environ: Mapping[str, str] | None = None
) -> tuple[SourceColumn, str | None]:
    """The cursor column of an incremental table as bronze would store it (configured ``type`` applied),
    and why it cannot work (:func:`cursor_problem`) or None.  Reflects the source like :func:`open_table`."""
    if table.mode != "incremental" or not table.cursor:
        raise ValueError(f"table {table.name!r} has no cursor (mode {table.mode!r})")
    ctx = ReadContext(department, table, dept_key(department))
    validate_names(ctx, None)
    reflected = reflect(ctx, resolve_secret(ctx, environ))
    plan = plan_columns(ctx, reflected, [table.cursor])
    return plan[0], cursor_problem(table, plan, natural_column(reflected, table.cursor))


def open_table(
    department: DepartmentConfig,
    table: TableConfig,
    defaults: Defaults,
    *,
    since: object | None = None,
    columns: list[str] | None = None,
    engine: Literal["auto", "fast", "sqlalchemy"] = "auto",
    environ: Mapping[str, str] | None = None,
) -> TableStream:
    """Open one source table for reading as Arrow record batches.

    ``since``: read only rows whose cursor is ``>= since`` -- for a timestamp cursor a timezone-aware
    datetime (converted to the source's local wall-clock time, or kept as an instant for zoned columns) or
    a date (a local calendar day: from its midnight), for an id cursor an int (or an integral Decimal, as
    a BIGINT UNSIGNED watermark comes back from bronze); None reads everything.  ``columns``: only these *source* columns, in this order
    (e.g. the primary key for a key snapshot).  ``engine``: see the module docstring.  ``environ``: where
    ``url_env`` is looked up (default ``os.environ``).

    The table is reflected now (so a missing table or column, or an unreachable server, raises
    :class:`SourceReadError` here); rows are fetched only while ``batches`` is iterated.
    """
    if engine not in ("auto", "fast", "sqlalchemy"):
        raise ValueError(f"engine must be 'auto', 'fast' or 'sqlalchemy', not {engine!r}")
    ctx = ReadContext(department, table, dept_key(department))
    validate_names(ctx, columns)
    if columns is not None and not columns:
        raise ValueError("columns must name at least one source column (or be None for all)")
    if since is not None:
        _check_since_type(table, since)
    secret = resolve_secret(ctx, environ)
    backend = secret.url.get_backend_name()
    if engine == "sqlalchemy":
        reader = "sqlalchemy"
    elif backend in FAST_READERS:
        reader = FAST_READERS[backend]
    elif engine == "fast":
        raise ValueError(
            f"no fast reader for the {backend} dialect (have: {', '.join(sorted(FAST_READERS))}); "
            "use engine='auto' or 'sqlalchemy'"
        )
    else:
        reader = "sqlalchemy"

    reflected = reflect(ctx, secret)
    plan = plan_columns(ctx, reflected, columns)
    if table.mode == "incremental" and table.cursor:
        problem = cursor_problem(table, plan, natural_column(reflected, table.cursor))
        if problem is not None:
            raise ctx.error(f"refused before reading: {problem}", column=table.cursor)
    schema = bronze_schema(plan)
    zone = department.effective_timezone(defaults)
    batch_rows = table.effective_batch_rows(defaults)

    exprs, _status = _select_list(plan, backend)
    sql = f"SELECT {', '.join(exprs)} FROM {table.qualified_source(backend)}"
    params: dict[str, object] = {}
    if since is not None:
        assert table.cursor is not None  # _check_since_type refused a table without one
        cursor_col = natural_column(reflected, table.cursor)
        value = _since_value(ctx, since, cursor_col, zone)
        cursor_q = quote_identifier(table.cursor, backend, what="cursor column")
        if reader == "sqlalchemy":
            sql += f" WHERE {cursor_q} >= :qst_since"
            params["qst_since"] = _since_param(value, backend)
        else:
            sql += f" WHERE {cursor_q} >= {_since_literal(value, backend, cursor_col)}"

    wire_types: list[pa.DataType | None] = []
    for col in plan:
        if backend == "sqlite":
            wire_types += [SQLITE_WIRE_TYPES[col.choice.wire], pa.int64()]
        else:
            wire_types.append(None)

    def batches() -> Iterator[pa.RecordBatch]:
        if reader == "sqlalchemy":
            transport = sa_transport(secret, sql, params, batch_rows, wire_types)
        else:
            transport = arrow_transport(reader, secret, sql, batch_rows)
        failure: SourceReadError | None = None
        try:
            for arrays, masks in transport:
                yield to_bronze(arrays, masks, plan, schema, backend, zone.key)
        except GeneratorExit:
            raise
        except BaseException as exc:  # connectorx panics are BaseException (pyo3 PanicException)
            if isinstance(exc, (KeyboardInterrupt, SystemExit, SourceReadError)):
                raise
            failure = ctx.error(f"reading with {reader} failed: {ctx.cause(exc)}")
        finally:
            transport.close()
        if failure is not None:
            raise failure  # outside the except block: the driver's exception is not chained

    return TableStream(schema=schema, batches=batches(), reader=reader, query=ctx.scrub(sql))
