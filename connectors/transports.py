"""How a source table's rows travel from its database to Arrow, and become a bronze batch.

Three transports, chosen by :mod:`connectors.readers`: connectorx (PostgreSQL, MySQL/MariaDB) and ADBC
(SQLite) hand over Arrow arrays without a Python object per value; SQLAlchemy is the slow path that always
works. Each yields lists of raw Arrow arrays (one per SELECT expression) plus the masks of values the wire
could not carry; :func:`to_bronze` decodes, repairs and types them (:mod:`connectors.conversion`) and records
every problem in ``_qst_flags`` instead of failing the load. The database URL lives in a :class:`Secret`
so that it never reaches a repr, a log line or an error message.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from .conversion import coerce
from .encoding import decode_utf8_arrow, repair_gbk_in_latin1_arrow
from .types import BAD_ENCODING, BAD_VALUE, STRING, SourceColumn

MYSQL = ("mysql", "mariadb")
# SQLite: unicode(typeof(c)) -- the first letter of the storage class -- and the classes each wire accepts
_SQLITE_NULL, _SQLITE_INT, _SQLITE_REAL, _SQLITE_TEXT, _SQLITE_BLOB = (ord(c) for c in "nirtb")
_SQLITE_ACCEPTS = {
    "sqlite_int": (_SQLITE_INT,),
    "sqlite_real": (_SQLITE_INT, _SQLITE_REAL),
    "sqlite_text": (_SQLITE_INT, _SQLITE_REAL, _SQLITE_TEXT),
    "sqlite_blob": (_SQLITE_TEXT, _SQLITE_BLOB),
}
# never-null expressions of one storage class (ADBC and connectorx infer a column's type from its first
# rows: a first batch of nulls, or a text among integers, would break them); the value of a row whose
# storage class the wire does not accept is discarded using the typeof() code
SQLITE_VALUE = {
    "sqlite_int": "IFNULL(CAST({q} AS INTEGER), 0)",
    "sqlite_real": "IFNULL(CAST({q} AS REAL), 0.0)",
    "sqlite_text": "IFNULL(CAST({q} AS BLOB), X'')",  # text as its bytes: SQLite does not check UTF-8
    "sqlite_blob": "IFNULL(CAST({q} AS BLOB), X'')",
}
SQLITE_WIRE_TYPES = {
    "sqlite_int": pa.int64(),
    "sqlite_real": pa.float64(),
    "sqlite_text": pa.large_binary(),
    "sqlite_blob": pa.large_binary(),
}


# --------------------------------------------------------------------------------------------------
# connection details (never printed)


class Secret:
    """A database URL that never shows itself in a repr or an error."""

    __slots__ = ("url",)

    def __init__(self, url: sa.URL):
        self.url = url

    def __repr__(self) -> str:
        return "<url hidden>"

    def needles(self) -> list[str]:
        """Every spelling of the URL or password that must never reach a message."""
        u = self.url
        out = [u.render_as_string(hide_password=False), str(u)]
        for driver in ("postgresql", "mysql"):
            out.append(u.set(drivername=driver).render_as_string(hide_password=False))
        if u.password:
            pw = str(u.password)
            out += [pw, quote(pw, safe=""), quote(pw)]
        return sorted({s for s in out if s}, key=len, reverse=True)


def engine_for(secret: Secret) -> sa.Engine:
    url = secret.url
    if url.get_backend_name() == "sqlite":
        # read-only: never create, never write the legacy file
        path = Path(url.database or "").absolute()
        url = url.set(database=f"file:{quote(str(path))}?mode=ro", query={"uri": "true"})
    return sa.create_engine(url, poolclass=NullPool)


# --------------------------------------------------------------------------------------------------
# transports: each yields lists of raw Arrow arrays (one per SELECT expression) plus bad masks


def _cx_url(secret: Secret) -> str:
    u = secret.url
    backend = u.get_backend_name()
    if backend == "sqlite":
        return "sqlite://" + quote(str(Path(u.database or "").absolute()))
    if backend in MYSQL:  # SQLAlchemy's charset option means nothing to connectorx (it speaks utf8mb4)
        query = {k: v for k, v in u.query.items() if k != "charset"}
        return u.set(drivername="mysql", query=query).render_as_string(hide_password=False)
    return u.set(drivername="postgresql").render_as_string(
        hide_password=False
    )  # libpq options (sslmode) kept


def _cx_batches(secret: Secret, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import connectorx as cx

    backend = secret.url.get_backend_name()
    pre = ["SET time_zone = '+00:00'"] if backend in MYSQL else None
    reader = cx.read_sql(
        _cx_url(secret), sql, return_type="arrow_stream", batch_size=batch_rows, pre_execution_query=pre
    )
    try:
        yield from reader
    finally:
        reader.close()


def _adbc_batches(secret: Secret, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    u = secret.url
    backend = u.get_backend_name()
    if backend == "postgresql":
        import adbc_driver_postgresql.dbapi as adbc

        conn = adbc.connect(u.set(drivername="postgresql").render_as_string(hide_password=False))
    elif backend == "sqlite":
        import adbc_driver_sqlite.dbapi as adbc

        path = Path(u.database or "").absolute()
        conn = adbc.connect(f"file:{quote(str(path))}?mode=ro")
    else:
        raise ValueError(f"no ADBC driver for {backend}")
    try:
        cur = conn.cursor()
        try:
            if backend == "sqlite":
                cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
            cur.execute(sql)
            reader = cur.fetch_record_batch()
            try:
                yield from reader
            finally:
                reader.close()
        finally:
            cur.close()
    finally:
        conn.close()


def arrow_transport(
    kind: str, secret: Secret, sql: str, batch_rows: int
) -> Generator[tuple[list[pa.Array], list[pa.Array | None]]]:
    source = (
        _cx_batches(secret, sql, batch_rows)
        if kind == "connectorx"
        else _adbc_batches(secret, sql, batch_rows)
    )
    for batch in source:
        if batch.num_rows == 0:
            continue
        for start in range(0, batch.num_rows, batch_rows):
            part = batch.slice(start, batch_rows)
            yield list(part.columns), [None] * part.num_columns


def sa_transport(
    secret: Secret, sql: str, params: dict, batch_rows: int, wire_types: list[pa.DataType | None]
) -> Generator[tuple[list[pa.Array], list[pa.Array | None]]]:
    engine = engine_for(secret)
    backend = secret.url.get_backend_name()
    try:
        with engine.connect().execution_options(stream_results=True, yield_per=batch_rows) as conn:
            if backend in MYSQL:
                conn.exec_driver_sql("SET time_zone = '+00:00'")
            result = conn.execute(sa.text(sql), params)
            try:
                for rows in result.partitions(batch_rows):
                    if not rows:
                        continue
                    columns = list(zip(*rows, strict=True))
                    arrays, masks = [], []
                    for values, wire_type in zip(columns, wire_types, strict=True):
                        arr, bad = python_values_to_arrow(values, wire_type)
                        arrays.append(arr)
                        masks.append(bad)
                    yield arrays, masks
            finally:
                result.close()
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------------
# raw arrays -> bronze batch


def _flags_array(n: int, entries: list[tuple[str, pa.Array]]) -> pa.Array:
    entries = [(label, m) for label, m in entries if m is not None]
    if not entries:
        return pa.nulls(n, STRING)
    masks = [np.asarray(m.to_numpy(zero_copy_only=False), dtype=bool) for _, m in entries]
    any_flag = np.logical_or.reduce(masks)
    if not any_flag.any():
        return pa.nulls(n, STRING)
    out: list[str | None] = [None] * n
    labels = [label for label, _ in entries]
    for i in np.flatnonzero(any_flag):
        out[i] = ";".join(label for label, m in zip(labels, masks, strict=True) if m[i])
    return pa.array(out, STRING)


def to_bronze(
    arrays: list[pa.Array],
    masks: list[pa.Array | None],
    plan: Sequence[SourceColumn],
    schema: pa.Schema,
    backend: str,
    zone: str,
) -> pa.RecordBatch:
    n = len(arrays[0])
    out: list[pa.Array] = []
    flags: list[tuple[str, pa.Array]] = []
    i = 0
    for col in plan:
        raw, pre_bad = arrays[i], masks[i]
        i += 1
        if isinstance(raw, pa.ChunkedArray):
            raw = raw.combine_chunks()
        label = col.output_name
        if backend == "sqlite":
            status = arrays[i]
            i += 1
            status = pc.cast(status, pa.int64())
            accepted = _mask(pc.is_in(status, pa.array(_SQLITE_ACCEPTS[col.choice.wire], pa.int64())))
            raw = pc.if_else(accepted, raw, pa.scalar(None, raw.type))
            loose = pc.and_(pc.not_equal(status, _SQLITE_NULL), pc.invert(accepted))
            if pc.any(loose).as_py():
                flags.append((f"{BAD_VALUE}:{label}", loose))
        if pre_bad is not None:
            flags.append((f"{BAD_VALUE}:{label}", pre_bad))
        not_utf8 = None
        if col.choice.wire == "sqlite_text":  # text travels as bytes: SQLite never checked they are UTF-8
            raw, not_utf8 = decode_utf8_arrow(raw)
        if col.repair is not None:
            raw, bad_enc = repair_gbk_in_latin1_arrow(raw)
            if pc.any(bad_enc).as_py():
                flags.append((f"{BAD_ENCODING}:{label}", bad_enc))
        elif not_utf8 is not None:
            flags.append((f"{BAD_ENCODING}:{label}", not_utf8))
        coerced = coerce(raw, col.choice, zone=zone)
        for kind, mask in coerced.flags:
            flags.append((f"{kind}:{label}", mask))
        out.append(coerced.values)
    out.append(_flags_array(n, flags))
    return pa.RecordBatch.from_arrays(out, schema=schema)


def _mask(arr: pa.Array) -> pa.Array:
    return pc.fill_null(arr, False)


# --------------------------------------------------------------------------------------------------
# Python values (SQLAlchemy / DB-API rows) -> raw Arrow


def _canonical_text(v: object) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if not math.isfinite(v) else format(v, ".15g")
    if isinstance(v, (int, decimal.Decimal)):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, default=str)
    return str(v)


def python_values_to_arrow(
    values: Sequence[object], wire_type: pa.DataType | None = None
) -> tuple[pa.Array, pa.Array | None]:
    """Python values of one column (as a DB-API driver returns them) -> a raw Arrow array for :func:`coerce`.

    With ``wire_type`` the values are expected to be of that type (SQLite's sanitized wires).  Otherwise the
    type is inferred; a column whose values do not share one type (SQLite's loose typing seen through a
    plain SELECT, huge integers...) becomes text, each value rendered canonically; undecodable bytes are
    returned as null with a bad mask.
    """
    if wire_type is not None:
        try:
            return pa.array(values, type=wire_type), None
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            pass
    else:
        try:
            arr = pa.array(values)
            if not (
                pa.types.is_struct(arr.type)
                or pa.types.is_list(arr.type)
                or pa.types.is_large_list(arr.type)
                or pa.types.is_duration(arr.type)
                or pa.types.is_map(arr.type)
            ):
                return arr, None
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError):
            pass
    texts: list[str | None] = []
    bad: list[bool] = []
    for v in values:
        if v is None:
            texts.append(None)
            bad.append(False)
            continue
        s = _canonical_text(v)
        texts.append(s)
        bad.append(s is None)
    mask = pa.array(bad, pa.bool_()) if any(bad) else None
    return pa.array(texts, STRING), mask
