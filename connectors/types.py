"""The one place that decides how a legacy source column lands in bronze: SQL type -> Arrow type, and the
rules of the conversion of what a driver returns into that type (done by :mod:`connectors.conversion`).

Every reader (connectorx, ADBC, SQLAlchemy) goes through :func:`choose_type` (which Arrow type, and how the
value travels over the wire) and :func:`connectors.conversion.coerce` (raw Arrow values -> the bronze type, plus which values did
not fit).  No reader converts a value on its own, so the fast path and the fallback give identical bronze.

Rules (declared type -> bronze Arrow type)
==========================================
============================================  ====================================================================
source type                                   bronze
============================================  ====================================================================
CHAR, VARCHAR, TEXT, CLOB, ENUM, SET          ``large_string`` -- byte-exact UTF-8, including characters outside
                                              GBK (𠮷 䶮).  PostgreSQL ``char(n)`` keeps its padding.
TINYINT..BIGINT, SMALLINT, INTEGER, YEAR,     ``int64`` (every signed integer, whatever its width: one type per
MySQL unsigned up to INT UNSIGNED, BIT        bronze column however the source declares it; never loses a value)
MySQL BIGINT UNSIGNED                         ``decimal128(20, 0)`` -- *always*, whatever the values.  A type that
                                              depended on the data would change between nights and between
                                              batches; decimal(20,0) holds 0..2^64-1 exactly.  Configure
                                              ``type: int64`` to get int64 (values above 2^63-1 then become
                                              null with ``bad_value``).
DECIMAL/NUMERIC(p,s), 1<=p<=38, 0<=s<=p       ``decimal128(p, s)`` exactly as declared (connectorx's widening to
                                              decimal(38,10) is cast back; declarations with more than 18
                                              integer digits or 10 decimals, which its 28-digit decimals cannot
                                              carry, travel as text and are parsed exactly).
DECIMAL/NUMERIC without (p,s), p > 38,        ``large_string``: the exact text of the number (no Arrow decimal
negative scale                                can hold every value); configure ``type: "decimal(p,s)"`` to convert.
REAL, FLOAT, DOUBLE                           ``float64`` (MySQL FLOAT widens exactly)
BOOLEAN                                       ``bool`` (MySQL BOOLEAN is TINYINT(1) and stays ``int64``)
DATE                                          ``date32``
DATETIME, TIMESTAMP (no zone)                 ``timestamp[us, tz=UTC]``: the wall-clock value is interpreted in the
                                              department's ``source_timezone`` (default Asia/Shanghai); an
                                              ambiguous or skipped local time (China used DST 1986-1991) takes
                                              the earliest instant.
TIMESTAMP WITH TIME ZONE, MySQL TIMESTAMP     ``timestamp[us, tz=UTC]``, the same instant.  MySQL TIMESTAMP
                                              stores UTC; readers set the session ``time_zone`` to ``+00:00``.
TIME, INTERVAL, JSON, UUID, arrays, others    ``large_string``: the database's own text rendering (no Delta type).
BLOB, BYTEA, BINARY, VARBINARY                ``large_binary``
============================================  ====================================================================

Values that do not fit never stop a read and never drop a row: the value becomes null and the row's
``_qst_flags`` names the column (:data:`ZERO_DATE`, :data:`BAD_DATE`, :data:`BAD_VALUE`, :data:`BAD_ENCODING`):

* **zero dates** -- MySQL ``0000-00-00`` / ``0000-00-00 00:00:00`` and any date with a zero year, month or day,
  in any database -> ``zero_date:<column>``;
* **unparseable date text** (SQLite DATE/DATETIME holding ``20240101``, ``2019年3月1日``, ``garbage``, or an
  impossible date such as ``2024-02-30``) -> ``bad_date:<column>``.  Accepted: ISO ``YYYY-MM-DD`` for dates,
  ``YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]]`` for timestamps;
* **SQLite's loose types** follow the declared type affinity: a value whose storage class does not fit it
  (text in an INTEGER column, a real 1.5 in an INTEGER column, a blob in a TEXT column...) or a number that
  does not fit DECIMAL(p,s) exactly (``12.345`` in DECIMAL(14,2), more than p digits) -> ``bad_value``.
  SQLite keeps DECIMAL values as REAL: they are converted through their 15-significant-digit text (what
  SQLite itself prints, DBL_DIG digits, the precision a double reliably holds), so ``12.3`` -> ``12.30``;
* a configured ``type`` the value cannot be converted to (``'500万元'`` as ``decimal(18,4)``) -> ``bad_value``;
* **text that is not UTF-8** (a SQLite TEXT value holding GBK bytes, a BLOB configured as ``string``) is
  kept as its latin1 reading -- lossless, and what the GBK repair starts from -- and flagged
  ``bad_encoding``, as is a ``repair: gbk_in_latin1`` value that is not valid GB18030 (kept as it is).

GBK-in-latin1 repair (:mod:`connectors.encoding`): on MySQL/MariaDB a column whose character set is not a
Unicode one (latin1, the usual case) is read as its raw bytes (``CAST(c AS BINARY)``) and decoded as
GB18030; elsewhere (SQLite, PostgreSQL, MySQL utf8 columns) the text is the latin1 reading of those bytes
and is re-encoded before decoding.

Configured ``type`` overrides convert from whatever the source holds: text is parsed (the formats above,
``true/false/1/0`` for bool), numbers and dates are rendered as text for ``string``, a timestamp becomes its
local date for ``date``, a date becomes local midnight for ``timestamp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
import sqlalchemy.types as sat
from sqlalchemy.dialects import mysql, postgresql

from .config_values import ColumnType

__all__ = [
    "BAD_DATE",
    "BAD_ENCODING",
    "BAD_VALUE",
    "BINARY",
    "STRING",
    "TIMESTAMP_UTC",
    "ZERO_DATE",
    "TypeChoice",
    "arrow_type_of",
    "choose_type",
    "sqlite_affinity",
]

ZERO_DATE = "zero_date"
BAD_DATE = "bad_date"
BAD_VALUE = "bad_value"
BAD_ENCODING = "bad_encoding"

STRING = pa.large_string()
BINARY = pa.large_binary()
TIMESTAMP_UTC = pa.timestamp("us", tz="UTC")
UNSIGNED_BIGINT = pa.decimal128(20, 0)

Kind = Literal["string", "int64", "float64", "bool", "date", "timestamp", "decimal", "binary"]

# How a value travels from the database to the reader (readers.py renders these per dialect):
#   native       the column as it is
#   text         the database renders it as text (CAST(c AS TEXT) / CAST(c AS CHAR))
#   bytes        MySQL: the raw bytes of a latin1 column (CAST(c AS BINARY)), for the GBK repair
#   unsigned     MySQL BIT: CAST(c AS UNSIGNED)
#   sqlite_*     SQLite: a sanitized expression of one storage class plus the value's typeof() code,
#                so that loose values can be detected (see readers.py)
Wire = Literal[
    "native", "text", "bytes", "unsigned", "sqlite_int", "sqlite_real", "sqlite_text", "sqlite_blob"
]

# connectorx returns every DECIMAL as decimal128(38, 10), going through rust_decimal (28 significant digits):
# a value travels natively only when its integer digits plus 10 decimals fit 28 digits
_CX_DECIMAL_INT_DIGITS = 18
_CX_DECIMAL_SCALE = 10


@dataclass(frozen=True)
class TypeChoice:
    """What bronze makes of one source column."""

    kind: Kind
    arrow_type: pa.DataType
    wire: Wire = "native"
    zoned: bool = False  # timestamp source values are instants (tz-aware), not local wall-clock times
    rule: str = ""  # why, in words (shown by source_columns)
    source_kind: Kind | None = None  # the declared type's own kind when a configured type overrides it


@dataclass(frozen=True)
class SourceColumn:
    """One column of a source table as reflected, and what bronze makes of it."""

    name: str  # source column name, as the catalog spells it
    sql_type: str  # declared type as the source reports it, e.g. "DECIMAL(14, 2)", "INTEGER UNSIGNED"
    nullable: bool
    arrow_type: pa.DataType  # bronze type (configured overrides applied)
    output_name: str  # bronze column name (configured rename applied)
    rule: str  # why that type
    repair: str | None = None  # "gbk_in_latin1" when configured
    choice: TypeChoice = field(repr=False, compare=False, kw_only=True)


def arrow_type_of(kind: Kind, precision: int | None = None, scale: int | None = None) -> pa.DataType:
    if kind == "decimal":
        assert precision is not None and scale is not None
        return pa.decimal128(precision, scale)
    return {
        "string": STRING,
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": TIMESTAMP_UTC,
        "binary": BINARY,
    }[kind]


def _dialect(dialect: str) -> str:
    d = dialect.split("+", 1)[0].lower()
    return "mysql" if d == "mariadb" else d


def sqlite_affinity(sa_type: sat.TypeEngine) -> str:
    """SQLite type affinity (INTEGER, REAL, NUMERIC, TEXT, BLOB) of a reflected SQLite column type.

    SQLAlchemy's SQLite reflection already applies SQLite's affinity rules to unknown type names
    (``NUMBER(10)`` -> NUMERIC, ``VARCHAR2`` -> TEXT ...); an empty declaration reflects as NullType (BLOB).
    """
    if isinstance(sa_type, sat.Integer):
        return "INTEGER"
    if isinstance(sa_type, sat.Float):
        return "REAL"
    if isinstance(sa_type, (sat.String, sat.Enum)):
        return "TEXT"
    if isinstance(sa_type, (sat._Binary, sat.NullType)):
        return "BLOB"
    return "NUMERIC"  # NUMERIC, DECIMAL, BOOLEAN, DATE, DATETIME, TIME...


def _decimal_choice(precision: int | None, scale: int | None, what: str) -> TypeChoice:
    if precision is None:
        return TypeChoice("string", STRING, "text", rule=f"{what} without precision -> exact text")
    s = scale or 0
    if not (1 <= precision <= 38 and 0 <= s <= precision):
        return TypeChoice(
            "string", STRING, "text", rule=f"{what}({precision},{s}) beyond decimal128 -> exact text"
        )
    fits_cx = precision - s <= _CX_DECIMAL_INT_DIGITS and s <= _CX_DECIMAL_SCALE
    return TypeChoice(
        "decimal",
        pa.decimal128(precision, s),
        "native" if fits_cx else "text",
        rule=f"{what}({precision},{s}) -> decimal128({precision},{s})",
    )


def _natural_sqlite(sa_type: sat.TypeEngine) -> TypeChoice:
    aff = sqlite_affinity(sa_type)
    if isinstance(sa_type, sat.Integer):
        return TypeChoice("int64", pa.int64(), "sqlite_int", rule="SQLite INTEGER affinity -> int64")
    if isinstance(sa_type, sat.Float):
        return TypeChoice("float64", pa.float64(), "sqlite_real", rule="SQLite REAL affinity -> float64")
    if isinstance(sa_type, sat.Boolean):
        return TypeChoice("bool", pa.bool_(), "sqlite_text", rule="SQLite BOOLEAN (0/1) -> bool")
    if isinstance(sa_type, sat.DateTime):
        return TypeChoice(
            "timestamp",
            TIMESTAMP_UTC,
            "sqlite_text",
            rule="SQLite DATETIME text, local time in source_timezone -> timestamp UTC",
        )
    if isinstance(sa_type, sat.Date):
        return TypeChoice("date", pa.date32(), "sqlite_text", rule="SQLite DATE text -> date32")
    if isinstance(sa_type, sat.Numeric):
        choice = _decimal_choice(sa_type.precision, sa_type.scale, "SQLite DECIMAL")
        return TypeChoice(choice.kind, choice.arrow_type, "sqlite_text", rule=choice.rule)
    if isinstance(sa_type, sat._Binary):
        return TypeChoice("binary", BINARY, "sqlite_blob", rule="SQLite BLOB -> large_binary")
    return TypeChoice("string", STRING, "sqlite_text", rule=f"SQLite {aff} affinity -> large_string")


def _natural(sa_type: sat.TypeEngine, dialect: str) -> TypeChoice:
    d = _dialect(dialect)
    if d == "sqlite":
        return _natural_sqlite(sa_type)
    choice = _natural_server(sa_type, d)
    if choice.wire == "text" and d not in ("postgresql", "mysql"):
        # other dialects get no dialect-specific SQL: the driver's value is rendered as text in Python
        choice = TypeChoice(choice.kind, choice.arrow_type, "native", zoned=choice.zoned, rule=choice.rule)
    return choice


def _natural_server(sa_type: sat.TypeEngine, d: str) -> TypeChoice:
    text_wire: Wire = "text" if d in ("postgresql", "mysql") else "native"
    name = type(sa_type).__name__
    if isinstance(sa_type, sat.NullType):
        return TypeChoice("string", STRING, text_wire, rule="unknown type -> text")
    if d == "mysql" and isinstance(sa_type, mysql.BIT):
        return TypeChoice("int64", pa.int64(), "unsigned", rule="MySQL BIT -> int64")
    if isinstance(sa_type, sat.Boolean):
        return TypeChoice("bool", pa.bool_(), rule="BOOLEAN -> bool")
    if d == "mysql" and isinstance(sa_type, mysql.YEAR):
        return TypeChoice("int64", pa.int64(), rule="MySQL YEAR -> int64")
    if isinstance(sa_type, sat.Integer):
        unsigned = bool(getattr(sa_type, "unsigned", False))
        if unsigned and isinstance(sa_type, sat.BigInteger):
            return TypeChoice(
                "decimal", UNSIGNED_BIGINT, rule="BIGINT UNSIGNED -> decimal128(20,0) (0..2^64-1)"
            )
        return TypeChoice("int64", pa.int64(), rule=f"{name}{' UNSIGNED' if unsigned else ''} -> int64")
    if isinstance(sa_type, sat.Float):
        return TypeChoice("float64", pa.float64(), rule=f"{name} -> float64")
    if isinstance(sa_type, sat.Numeric):
        return _decimal_choice(sa_type.precision, sa_type.scale, name)
    if isinstance(sa_type, sat.DateTime):
        zoned = bool(getattr(sa_type, "timezone", False)) or (
            d == "mysql" and isinstance(sa_type, mysql.TIMESTAMP)
        )
        wire: Wire = "text" if d == "mysql" else "native"  # MySQL: zero dates break every driver
        rule = (
            f"{name} (an instant) -> timestamp UTC"
            if zoned
            else f"{name} (local time in source_timezone) -> timestamp UTC"
        )
        return TypeChoice("timestamp", TIMESTAMP_UTC, wire, zoned=zoned, rule=rule)
    if isinstance(sa_type, sat.Date):
        return TypeChoice("date", pa.date32(), "text" if d == "mysql" else "native", rule=f"{name} -> date32")
    if isinstance(sa_type, sat._Binary):
        return TypeChoice("binary", BINARY, rule=f"{name} -> large_binary")
    if isinstance(sa_type, sat.Enum):
        return TypeChoice("string", STRING, text_wire, rule=f"{name} -> text")
    if (
        isinstance(sa_type, sat.String)
        and (d != "postgresql" or isinstance(sa_type, (sat.VARCHAR, sat.CHAR, sat.TEXT)))
        and not isinstance(sa_type, (mysql.SET, postgresql.CITEXT))
    ):
        return TypeChoice("string", STRING, rule=f"{name} -> large_string")
    return TypeChoice("string", STRING, text_wire, rule=f"{name} -> text rendering")


def choose_type(
    sa_type: sat.TypeEngine,
    dialect: str,
    *,
    override: ColumnType | None = None,
    repair: bool = False,
    charset: str | None = None,
) -> TypeChoice:
    """The bronze type of a column declared ``sa_type`` in ``dialect``, with the configured ``type``
    override and ``repair`` applied.  ``charset`` is the MySQL column character set (for the repair)."""
    d = _dialect(dialect)
    natural = _natural(sa_type, d)
    choice = natural
    if override is not None:
        kind: Kind = override.kind
        target = arrow_type_of(kind, override.precision, override.scale)
        if d == "sqlite":
            wire = _sqlite_wire_for(kind, natural)
        elif (
            kind == "string"
            and natural.wire == "native"
            and natural.kind not in ("string", "binary")
            and d in ("postgresql", "mysql")
        ):
            wire = "text"  # the database's own rendering of the value
        else:
            wire = natural.wire
        choice = TypeChoice(
            kind,
            target,
            wire,
            zoned=natural.zoned,
            rule=f"configured type {override} (source: {natural.rule})",
            source_kind=natural.kind,
        )
    if repair:
        cs = (charset or "").lower()
        if d == "mysql" and not cs.startswith(("utf8", "utf16", "utf32", "ucs2")):
            # latin1 (or gbk, ascii...) really holds the legacy bytes: fetch them, whatever the connection
            # charset; a binary column already is bytes
            wire = "native" if cs == "binary" else "bytes"
        elif d == "sqlite":
            wire = "sqlite_blob" if choice.wire == "sqlite_blob" else "sqlite_text"
        else:
            wire = choice.wire  # text holding the latin1 reading of the bytes (mojibake)
        choice = TypeChoice(
            choice.kind if override is not None else "string",
            choice.arrow_type if override is not None else STRING,
            wire,
            zoned=choice.zoned,
            rule=f"{choice.rule}; GBK-in-latin1 repair",
            source_kind=choice.source_kind,
        )
    return choice


def _sqlite_wire_for(kind: Kind, natural: TypeChoice) -> Wire:
    if kind == "int64" and natural.wire == "sqlite_int":
        return "sqlite_int"
    if kind == "float64" and natural.wire in ("sqlite_int", "sqlite_real"):
        return "sqlite_real"
    if kind == "binary":
        return "sqlite_blob"
    return "sqlite_text"
