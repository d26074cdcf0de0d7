"""``sources.yaml``: the configuration that onboards legacy department databases.

This docstring is the reference for the format.  A data engineer onboards a department (委办局) by
writing a few lines of YAML -- no code change.  Everything in the file is validated when it is loaded;
every problem is reported at once, each with the file, line and column of the offending key and its
dotted path, for example::

    sources.yaml:14:9: departments.samr.tables[0].cursor: required when mode is 'incremental'

Example
=======

.. code-block:: yaml

    version: 1
    defaults:                          # optional, every key optional
      source_timezone: Asia/Shanghai   # zone of naive timestamps in the sources
      lookback: 3d                     # re-read window for late rows on timestamp cursors
      batch_rows: 100000               # rows per Arrow record batch
      max_concurrent_reads: 2          # parallel reads against one source database
    departments:
      samr:
        title: 市场监管局 market regulation (SAMR)
        connection:
          sqlite: estate/samr.sqlite   # or: url_env: QST_SAMR_URL
        max_concurrent_reads: 1
        tables:
          - name: T_SCZT_DJXX
            asset: registrations
            primary_key: [ZTID]
            mode: incremental
            cursor: GXSJ
            cursor_kind: timestamp
            key_snapshot_every_days: 7
            columns:
              ZCZB: {rename: registered_capital_text, type: "decimal(18,4)"}
              DWMC: {repair: gbk_in_latin1}
          - name: T_JYYC_ML
            primary_key: [TYSHXYDM, LRRQ]
            mode: snapshot
        files:
          - name: street_rosters
            folder: drops/streets
            pattern: "*.csv"
            format: csv
            encoding: auto
            header_rows: 2

Top level
=========
``version`` (required)
    Always ``1``.  A later, incompatible format will use another number.
``defaults`` (optional mapping)
    Values used wherever a department or table does not set its own.
``departments`` (required mapping, at least one entry)
    Department key -> department.  The key is a slug ``[a-z][a-z0-9_]*`` (at most 63 characters);
    it names the department's assets and its Dagster pool, so it must never change once data has
    been loaded.

``defaults``
============
``source_timezone`` (default ``Asia/Shanghai``)
    IANA zone name (checked with :mod:`zoneinfo`) in which the sources write *naive* timestamps.
    Bronze stores timestamps in UTC; this says how to interpret the naive ones.
``lookback`` (default ``3d``)
    ``<int>d`` (days) or ``<int>h`` (hours), e.g. ``3d``, ``12h``, ``0d``.  On an incremental table with
    a *timestamp* cursor, each run re-reads rows whose cursor is at most this much older than the
    committed watermark, so late-arriving rows are not missed (re-read rows are merged on the primary
    key, so nothing is doubled).
``batch_rows`` (default ``100000``, 1..10,000,000)
    Rows per Arrow record batch while extracting; bounds the memory of a read.
``max_concurrent_reads`` (default ``2``, 1..64)
    How many tables of one department may be read at the same time.

Department
==========
``title`` (optional)
    Human-readable name shown in the UI; Chinese welcome.
``connection`` (required when the department has tables; a department of file drops only has none)
-- exactly one of
    ``sqlite: <path>``
        An embedded SQLite file.  A relative path is relative to the folder of the YAML file and is
        resolved to an absolute path when the file is loaded.
    ``url_env: <NAME>``
        The name of an environment variable holding a SQLAlchemy URL, e.g.
        ``postgresql+psycopg://user:password@host:5432/db``.  The URL (with its password) never sits in
        the file: a ``url`` or ``password`` key is rejected.  The variable is read only when the
        connection is needed (:meth:`DepartmentConfig.resolve_url`), not at load time.
``source_timezone``, ``max_concurrent_reads`` (optional)
    Override the defaults for this department.
``tables`` (list), ``files`` (list)
    At least one table or one file drop in total.

Table (an item of ``tables``)
=============================
``name`` (required)
    Source table name, spelled exactly as the source catalog stores it (quoted names are
    case-sensitive in PostgreSQL and Oracle).
``schema`` (optional)
    Source schema (owner in Oracle).  Omit or ``null`` for the connection's default.
``asset`` (optional)
    Short snake_case name (``[a-z][a-z0-9_]*``) of the bronze table/asset.  Defaults to ``name``
    lowercased; it must be set explicitly when that does not give a snake_case name (e.g. a Chinese
    table name).  Asset names are unique within a department, across tables *and* file drops.
``primary_key`` (required)
    Non-empty list of source column names that identify a row; no repeats.
``mode`` (required)
    ``incremental``: read only rows whose ``cursor`` moved past the watermark committed in bronze.
    ``snapshot``: read the whole table every run.
``cursor`` (required when incremental, not allowed with snapshot)
    Source column that increases whenever a row is inserted or updated.
``cursor_kind`` (incremental only, default ``timestamp``)
    ``timestamp`` (a date/time column, naive ones interpreted in ``source_timezone``) or ``id``
    (an increasing integer; no lookback applies).
``lookback`` (optional; incremental tables with a timestamp cursor only)
    Overrides ``defaults.lookback`` for this table.
``batch_rows`` (optional)
    Overrides ``defaults.batch_rows`` for this table (e.g. smaller for wide text tables).
``key_snapshot_every_days`` (incremental only, default ``1``, 1..366; ``None`` on snapshot tables)
    Every this many days the primary keys of the whole source table are read to detect rows deleted
    at the source (an incremental cursor cannot see deletions).
``columns`` (optional mapping)
    Source column name -> settings; columns not listed are loaded as they are.  Each entry has at
    least one of:

    ``rename``
        Target column name in bronze (a valid identifier).  Output names must stay unique
        (case-insensitively, as Delta Lake compares them) among the table's configured columns,
        its primary key and its cursor.
    ``type``
        Declared type, overriding what the source reports: ``string``, ``int64``, ``float64``,
        ``bool``, ``date``, ``timestamp`` or ``decimal(p,s)`` with 1 <= p <= 38 and 0 <= s <= p.
        Quote decimals inside ``{...}``: ``{type: "decimal(18,4)"}`` (the comma splits a flow mapping).
    ``repair``
        ``gbk_in_latin1``: the column holds GBK bytes stored in a latin1 column (mojibake); decode it.

``primary_key``, ``cursor`` and the keys of ``columns`` always use *source* column names.

File drop (an item of ``files``)
================================
``name`` (required)
    snake_case asset name, unique within the department.
``folder`` (required)
    Folder where the files arrive; relative to the YAML file's folder, resolved to an absolute path.
    The folder does not need to exist when the configuration is loaded.
``pattern`` (required)
    Glob matched inside ``folder``, e.g. ``"*.csv"`` or ``"**/*.xlsx"`` (quote it: ``*`` starts a YAML
    alias).  Absolute patterns and ``..`` are rejected.
``format`` (required)
    ``csv`` or ``excel``.
``encoding`` (csv only, default ``auto``)
    ``auto`` (detect UTF-8 / GB18030), ``gbk``, ``gb18030`` or ``utf-8``.
``header_rows`` (default ``0``, 0..1000)
    Rows to skip before the real header row (titles, merged header rows).
``sheet`` (excel only, optional)
    Sheet name, or 0-based sheet index; default the first sheet.

Identifiers
===========
Table, schema and column names (and ``rename`` targets) are validated by
:func:`connectors.identifiers_sql.validate_identifier`: 1..63 characters, letters of any script
(``统一社会信用代码`` is fine), digits and ``_``, not starting with a digit.  Quotes, spaces, dots,
dashes, semicolons and control characters are rejected, so a name such as ``"x; DROP TABLE y"`` is an
error at load time.  Readers quote every name with :func:`connectors.identifiers_sql.quote_identifier`.

YAML notes
==========
* Duplicate keys are errors (plain YAML silently keeps the last one).
* YAML 1.1 reads unquoted ``NO``, ``ON``, ``Y``, ``off``... as booleans and ``2019`` as a number;
  quote such names: ``primary_key: ["NO"]``.  The error message says so when it happens.
* The file must be UTF-8.  Anchors, aliases and ``<<`` merge keys work as usual.

Python API
==========
* :func:`load_sources` (path), :func:`sources_from_yaml` (text), :func:`sources_from_dict` (parsed data)
  return a :class:`SourcesConfig`; any problem raises :class:`ConfigError`, whose ``.issues`` lists
  :class:`ConfigIssue` entries (origin, line, column, path, message).
* :meth:`SourcesConfig.table`, :meth:`SourcesConfig.department`, :meth:`SourcesConfig.iter_tables`,
  :meth:`SourcesConfig.iter_files`.
* :meth:`DepartmentConfig.resolve_url` (reads the environment, never puts the URL in an error),
  :meth:`DepartmentConfig.effective_timezone`, :meth:`DepartmentConfig.effective_max_concurrent_reads`.
* :meth:`TableConfig.effective_lookback`, :meth:`TableConfig.effective_batch_rows`,
  :meth:`TableConfig.output_name`, :meth:`TableConfig.qualified_source`.
* :func:`redact_url` for logging a URL; :func:`schema_json` for the JSON schema of the format.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import make_url

from .identifiers_sql import MAX_IDENTIFIER_LENGTH, qualified_name, validate_identifier

__all__ = [
    "SUPPORTED_VERSION",
    "ColumnConfig",
    "ColumnType",
    "ConfigError",
    "ConfigIssue",
    "ConnectionConfig",
    "Defaults",
    "DepartmentConfig",
    "FileDropConfig",
    "SourcesConfig",
    "StrictSafeLoader",
    "TableConfig",
    "json_schema",
    "load_sources",
    "load_yaml_model",
    "parse_column_type",
    "parse_lookback",
    "redact_url",
    "schema_json",
    "sources_from_dict",
    "sources_from_yaml",
]

SUPPORTED_VERSION = 1

_SLUG_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_ENV_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LOOKBACK_RE = re.compile(r"([0-9]{1,5})([dh])\Z")
_DECIMAL_RE = re.compile(r"decimal\(\s*([0-9]{1,3})\s*,\s*([0-9]{1,3})\s*\)\Z")
SIMPLE_TYPES = ("string", "int64", "float64", "bool", "date", "timestamp")
REPAIRS = ("gbk_in_latin1",)

# --------------------------------------------------------------------------------------------------
# errors


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration: where it is and what is wrong."""

    origin: str  # the file name (or "<dict>")
    line: int | None  # 1-based, None when unknown
    column: int | None  # 1-based
    path: str  # dotted key path, e.g. "departments.samr.tables[0].cursor"; "" for the whole file
    message: str

    @property
    def where(self) -> str:
        if self.line is None:
            return self.origin
        if self.column is None:
            return f"{self.origin}:{self.line}"
        return f"{self.origin}:{self.line}:{self.column}"

    def __str__(self) -> str:
        return f"{self.where}: {self.path}: {self.message}" if self.path else f"{self.where}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid.  ``issues`` holds every problem found, in file order.

    Messages never contain a database URL or the value of an environment variable.
    """

    def __init__(self, issues: Sequence[ConfigIssue] | ConfigIssue | str):
        if isinstance(issues, str):
            issues = [ConfigIssue("<config>", None, None, "", issues)]
        elif isinstance(issues, ConfigIssue):
            issues = [issues]
        self.issues: list[ConfigIssue] = list(issues)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.issues) == 1:
            return str(self.issues[0])
        origins = sorted({i.origin for i in self.issues})
        head = f"{len(self.issues)} problems in {', '.join(origins)}:"
        return "\n".join([head, *(f"  {i}" for i in self.issues)])


# --------------------------------------------------------------------------------------------------
# value types and their validators (ValueError messages become ConfigIssue messages)


def _identifier(what: str):
    def check(value: str) -> str:
        return validate_identifier(value, what)

    return AfterValidator(check)


def _slug(what: str):
    def check(value: str) -> str:
        if not _SLUG_RE.match(value) or len(value) > MAX_IDENTIFIER_LENGTH:
            raise ValueError(
                f"{what} {value!r} must be snake_case: a lowercase ASCII letter, then lowercase letters, "
                f"digits or '_' (at most {MAX_IDENTIFIER_LENGTH} characters)"
            )
        return value

    return AfterValidator(check)


_IDENT_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_IDENTIFIER_LENGTH,
        "description": "SQL identifier: letters of any script, digits and '_', not starting with a digit",
    }
)
_SLUG_SCHEMA = WithJsonSchema(
    {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "maxLength": MAX_IDENTIFIER_LENGTH}
)

TableName = Annotated[str, _identifier("table name"), _IDENT_SCHEMA]
SchemaName = Annotated[str, _identifier("schema name"), _IDENT_SCHEMA]
ColumnName = Annotated[str, _identifier("column name"), _IDENT_SCHEMA]
RenameTarget = Annotated[str, _identifier("rename target"), _IDENT_SCHEMA]
DepartmentKey = Annotated[str, _slug("department key"), _SLUG_SCHEMA]
AssetName = Annotated[str, _slug("asset name"), _SLUG_SCHEMA]
FileDropName = Annotated[str, _slug("file drop name"), _SLUG_SCHEMA]


def parse_lookback(text: str) -> timedelta:
    """``"3d"`` -> 3 days, ``"12h"`` -> 12 hours.  Raises ValueError otherwise."""
    m = _LOOKBACK_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"lookback {text!r} must be '<int>d' (days) or '<int>h' (hours), e.g. '3d' or '12h'")
    n = int(m.group(1))
    return timedelta(days=n) if m.group(2) == "d" else timedelta(hours=n)


def _check_lookback(value: str) -> str:
    parse_lookback(value)
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as 'Asia/Shanghai' or 'UTC'"
        ) from None
    return value


class ColumnType(NamedTuple):
    """A parsed column ``type``: ``kind`` is one of SIMPLE_TYPES or ``"decimal"``."""

    kind: str
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.kind == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.kind


def parse_column_type(text: str) -> ColumnType:
    """Parse a column ``type`` string (case-insensitive).  Raises ValueError when not allowed."""
    allowed = "string, int64, float64, bool, date, timestamp or decimal(p,s)"
    if not isinstance(text, str):
        raise ValueError(f"column type must be text: {allowed}")  # noqa: TRY004 - pydantic needs ValueError
    t = text.strip().lower()
    if t in SIMPLE_TYPES:
        return ColumnType(t)
    m = _DECIMAL_RE.match(t)
    if m is not None:
        p, s = int(m.group(1)), int(m.group(2))
        if not 1 <= p <= 38:
            raise ValueError(f"column type {text!r}: decimal precision must be between 1 and 38")
        if not 0 <= s <= p:
            raise ValueError(f"column type {text!r}: decimal scale must be between 0 and the precision ({p})")
        return ColumnType("decimal", p, s)
    hint = ""
    if t.startswith("decimal(") and not t.endswith(")"):
        hint = ' (inside {...} quote it: type: "decimal(18,4)", the comma splits a flow mapping)'
    raise ValueError(f"column type {text!r} is not one of {allowed}{hint}")


def _normalize_column_type(value: str) -> str:
    return str(parse_column_type(value))


Lookback = Annotated[
    str, AfterValidator(_check_lookback), WithJsonSchema({"type": "string", "pattern": "^[0-9]{1,5}[dh]$"})
]
TimeZoneName = Annotated[
    str,
    AfterValidator(_check_timezone),
    WithJsonSchema({"type": "string", "description": "IANA time zone name, e.g. Asia/Shanghai"}),
]
ColumnTypeName = Annotated[
    str,
    AfterValidator(_normalize_column_type),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(string|int64|float64|bool|date|timestamp|decimal\([0-9]+,[0-9]+\))$",
        }
    ),
]
StrictInt = Annotated[int, Strict()]


def _check_sheet(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("sheet must be a sheet name or a 0-based sheet index")  # noqa: TRY004 - for pydantic
    if isinstance(value, int) and value < 0:
        raise ValueError("sheet index must be >= 0")
    if isinstance(value, str) and not value.strip():
        raise ValueError("sheet name must not be empty")
    return value


SheetRef = Annotated[
    Any,
    AfterValidator(_check_sheet),
    WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 0}]}),
]


def _rules_error(issues: list[tuple[tuple, str, tuple | None]]) -> PydanticCustomError:
    """Several cross-field problems of one model, each with the key (relative to the model) it concerns
    and optionally the key whose position the message should point at."""
    return PydanticCustomError(
        "qst_rules", "{summary}", {"summary": "; ".join(m for _, m, _ in issues), "issues": issues}
    )


def _resolve_path(value: Any, info: ValidationInfo, what: str) -> Path:
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ValueError(f"{what} must be a non-empty path")
    text = str(value)
    if "://" in text:
        # never echo it: it may be a URL with a password in it
        raise ValueError(
            f"{what} must be a file path, not a URL (value not shown); "
            "to connect to a database server use url_env"
        )
    if "\x00" in text:
        raise ValueError(f"{what} must not contain NUL characters")
    base = None
    if isinstance(info.context, Mapping):
        base = info.context.get("base_dir")
    base_dir = Path(base) if base is not None else Path.cwd()
    return (base_dir / Path(text)).resolve()


# --------------------------------------------------------------------------------------------------
# models


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Model):
    """Values used where a department or table sets none."""

    source_timezone: TimeZoneName = "Asia/Shanghai"
    lookback: Lookback = "3d"
    batch_rows: Annotated[StrictInt, Field(ge=1, le=10_000_000)] = 100_000
    max_concurrent_reads: Annotated[StrictInt, Field(ge=1, le=64)] = 2

    @property
    def lookback_delta(self) -> timedelta:
        return parse_lookback(self.lookback)

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.source_timezone)


class ConnectionConfig(_Model):
    """Exactly one of ``sqlite`` (a file path) or ``url_env`` (name of an env var holding the URL)."""

    sqlite: Path | None = None
    url_env: str | None = None

    @field_validator("sqlite", mode="before")
    @classmethod
    def _sqlite_path(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        return _resolve_path(value, info, "sqlite")

    @field_validator("url_env", mode="before")
    @classmethod
    def _env_name(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str) or not _ENV_VAR_RE.match(value):
            # never echo the value: people paste the URL itself here
            raise ValueError(
                "url_env must be the NAME of an environment variable (letters, digits, '_'), "
                "e.g. QST_SAMR_URL, not the URL itself (value not shown)"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ConnectionConfig:
        if (self.sqlite is None) == (self.url_env is None):
            raise PydanticCustomError(
                "qst_rules",
                "give exactly one of 'sqlite' (a file path) or 'url_env' (name of an environment "
                "variable holding the SQLAlchemy URL)",
            )
        return self

    @property
    def kind(self) -> Literal["sqlite", "url_env"]:
        return "sqlite" if self.sqlite is not None else "url_env"


class ColumnConfig(_Model):
    """Settings for one source column."""

    rename: RenameTarget | None = None
    type: ColumnTypeName | None = None
    repair: Literal["gbk_in_latin1"] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> ColumnConfig:
        if self.rename is None and self.type is None and self.repair is None:
            raise PydanticCustomError("qst_rules", "give at least one of 'rename', 'type' or 'repair'")
        return self

    @property
    def parsed_type(self) -> ColumnType | None:
        return None if self.type is None else parse_column_type(self.type)


class TableConfig(_Model):
    """One source table."""

    name: TableName
    source_schema: SchemaName | None = Field(default=None, alias="schema")
    asset: AssetName | None = None  # always set after validation (defaults to name.lower())
    primary_key: Annotated[list[ColumnName], Field(min_length=1)]
    mode: Literal["incremental", "snapshot"]
    cursor: ColumnName | None = None
    cursor_kind: Literal["timestamp", "id"] | None = None  # "timestamp" by default when incremental
    lookback: Lookback | None = None
    batch_rows: Annotated[StrictInt, Field(ge=1, le=10_000_000)] | None = None
    # 1 by default when incremental; None for snapshot tables
    key_snapshot_every_days: Annotated[StrictInt, Field(ge=1, le=366)] | None = None
    columns: dict[ColumnName, ColumnConfig] = Field(default_factory=dict)

    @field_validator("columns", mode="before")
    @classmethod
    def _null_columns(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        name = data.get("name")
        if data.get("asset") is None and isinstance(name, str) and _SLUG_RE.match(name.lower()):
            data["asset"] = name.lower()
        if data.get("mode") == "incremental":
            if data.get("cursor_kind") is None:
                data["cursor_kind"] = "timestamp"
            if data.get("key_snapshot_every_days") is None:
                data["key_snapshot_every_days"] = 1
        return data

    @model_validator(mode="after")
    def _rules(self) -> TableConfig:
        issues: list[tuple[tuple, str, tuple | None]] = []
        if self.asset is None:
            issues.append(
                (
                    ("asset",),
                    (
                        f"table name {self.name!r} does not give a snake_case asset name when lowercased; "
                        "set 'asset' explicitly"
                    ),
                    ("name",),
                )
            )
        if self.mode == "incremental":
            if self.cursor is None:
                issues.append((("cursor",), "required when mode is 'incremental'", ("mode",)))
            if self.cursor_kind == "id" and self.lookback is not None:
                issues.append(
                    (("lookback",), "only applies to timestamp cursors (cursor_kind is 'id')", None)
                )
        else:
            for key in ("cursor", "cursor_kind", "lookback"):
                if getattr(self, key) is not None:
                    issues.append(
                        ((key,), "not allowed when mode is 'snapshot' (the table is read in full)", None)
                    )
            if self.key_snapshot_every_days is not None:
                issues.append(
                    (
                        ("key_snapshot_every_days",),
                        "not allowed when mode is 'snapshot' (every run already sees deletions)",
                        None,
                    )
                )
        seen: dict[str, int] = {}
        for i, col in enumerate(self.primary_key):
            if col in seen:
                issues.append((("primary_key", i), f"column {col!r} is listed twice", None))
            seen.setdefault(col, i)
        # output column names must stay unique (Delta compares column names case-insensitively)
        known = list(
            dict.fromkeys([*self.primary_key, *([self.cursor] if self.cursor else []), *self.columns])
        )
        produced: dict[str, str] = {}
        for src in known:
            out = self.output_name(src)
            folded = out.casefold()
            if folded in produced and produced[folded] != src:
                other = produced[folded]
                renamed = src if self.columns.get(src) and self.columns[src].rename else other
                issues.append(
                    (
                        ("columns", renamed, "rename"),
                        f"output column {out!r} would be produced by both {other!r} and {src!r}",
                        None,
                    )
                )
            produced.setdefault(folded, src)
        if issues:
            raise _rules_error(issues)
        return self

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def is_incremental(self) -> bool:
        return self.mode == "incremental"

    def output_name(self, source_column: str) -> str:
        """Name of ``source_column`` in bronze (its ``rename`` or itself)."""
        col = self.columns.get(source_column)
        return col.rename if col is not None and col.rename else source_column

    def effective_lookback(self, defaults: Defaults) -> timedelta | None:
        """Re-read window for late rows; None for snapshot tables and id cursors."""
        if self.mode != "incremental" or self.cursor_kind != "timestamp":
            return None
        return parse_lookback(self.lookback or defaults.lookback)

    def effective_batch_rows(self, defaults: Defaults) -> int:
        return self.batch_rows if self.batch_rows is not None else defaults.batch_rows

    def qualified_source(self, dialect: str) -> str:
        """Quoted ``schema.table`` (or ``table``) for SQL text in ``dialect``."""
        return qualified_name(self.source_schema, self.name, dialect)


class FileDropConfig(_Model):
    """A folder where a department drops CSV or Excel files."""

    name: FileDropName
    folder: Path
    pattern: str
    format: Literal["csv", "excel"]
    encoding: Literal["auto", "gbk", "gb18030", "utf-8"] = "auto"
    header_rows: Annotated[StrictInt, Field(ge=0, le=1000)] = 0
    sheet: SheetRef | None = None

    @field_validator("folder", mode="before")
    @classmethod
    def _folder_path(cls, value: Any, info: ValidationInfo) -> Any:
        return _resolve_path(value, info, "folder")

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("pattern must not be empty; e.g. '*.csv'")
        parts = re.split(r"[\\/]", value)
        if value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", value) or ".." in parts or "\x00" in value:
            raise ValueError(f"pattern {value!r} must stay inside the folder (no absolute path, no '..')")
        return value

    @model_validator(mode="after")
    def _rules(self) -> FileDropConfig:
        issues: list[tuple[tuple, str, tuple | None]] = []
        if self.format == "excel" and "encoding" in self.model_fields_set and self.encoding != "auto":
            issues.append((("encoding",), "applies to csv files only", None))
        if self.format == "csv" and self.sheet is not None:
            issues.append((("sheet",), "applies to excel files only", None))
        if issues:
            raise _rules_error(issues)
        return self


class DepartmentConfig(_Model):
    """One department (委办局): its connection, tables and file drops."""

    title: str | None = None
    connection: ConnectionConfig | None = None
    source_timezone: TimeZoneName | None = None
    max_concurrent_reads: Annotated[StrictInt, Field(ge=1, le=64)] | None = None
    tables: list[TableConfig] = Field(default_factory=list)
    files: list[FileDropConfig] = Field(default_factory=list)

    _key: str = PrivateAttr(default="")
    _origin: str = PrivateAttr(default="<config>")
    _url_env_at: tuple[int | None, int | None] = PrivateAttr(default=(None, None))

    @field_validator("tables", "files", mode="before")
    @classmethod
    def _null_lists(cls, value: Any) -> Any:
        return [] if value is None else value

    @model_validator(mode="after")
    def _rules(self) -> DepartmentConfig:
        if not self.tables and not self.files:
            raise PydanticCustomError("qst_rules", "has no tables and no files; add at least one")
        if self.tables and self.connection is None:
            raise PydanticCustomError("qst_rules", "has tables but no 'connection'; add 'sqlite: <file>' or "
                                      "'url_env: <VARIABLE>'")
        issues: list[tuple[tuple, str, tuple | None]] = []
        used: dict[str, str] = {}
        for i, t in enumerate(self.tables):
            if t.asset is None:
                continue
            if t.asset in used:
                issues.append(
                    (
                        ("tables", i, "asset"),
                        f"asset name {t.asset!r} is already used by {used[t.asset]}",
                        None,
                    )
                )
            used.setdefault(t.asset, f"tables[{i}]")
        for j, f in enumerate(self.files):
            if f.name in used:
                issues.append(
                    (("files", j, "name"), f"asset name {f.name!r} is already used by {used[f.name]}", None)
                )
            used.setdefault(f.name, f"files[{j}]")
        if issues:
            raise _rules_error(issues)
        return self

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def key(self) -> str:
        """The department key (``samr``), known once loaded through :class:`SourcesConfig`."""
        return self._key

    def resolve_url(self, environ: Mapping[str, str] | None = None, *, must_exist: bool = False) -> str:
        """The SQLAlchemy URL of the department database.

        ``sqlite`` -> ``sqlite:///<absolute path>`` (with ``must_exist``, a missing file is a
        ConfigError instead of SQLite silently creating an empty database).  ``url_env`` -> the value
        of that variable in ``environ`` (default ``os.environ``); unset or empty raises ConfigError
        naming the department and the variable.  No error ever contains the URL.
        """
        conn = self.connection
        line, col = self._url_env_at
        if conn is None:
            raise ConfigError(ConfigIssue(self._origin, None, None, f"departments.{self._key}",
                                          f"department {self._key!r} has only file drops, no database"))
        if conn.sqlite is not None:
            if must_exist and not conn.sqlite.is_file():
                raise ConfigError(
                    ConfigIssue(
                        self._origin,
                        None,
                        None,
                        f"departments.{self._key}.connection.sqlite",
                        f"SQLite file {str(conn.sqlite)!r} of department {self._key!r} does not exist",
                    )
                )
            return f"sqlite:///{conn.sqlite}"
        env = os.environ if environ is None else environ
        var = conn.url_env
        assert var is not None
        path = f"departments.{self._key}.connection.url_env"
        value = env.get(var)
        if value is None or not value.strip():
            state = "is not set" if value is None else "is empty"
            raise ConfigError(
                ConfigIssue(
                    self._origin,
                    line,
                    col,
                    path,
                    f"environment variable {var!r} {state}; department {self._key!r} reads its "
                    "database URL (SQLAlchemy format) from it",
                )
            )
        value = value.strip()
        try:
            make_url(value)
        except Exception:  # noqa: BLE001 - the original message contains the URL
            raise ConfigError(
                ConfigIssue(
                    self._origin,
                    line,
                    col,
                    path,
                    f"environment variable {var!r} of department {self._key!r} does not hold a valid "
                    "SQLAlchemy URL (value not shown)",
                )
            ) from None
        return value

    def describe_connection(self) -> str:
        """A loggable description of the connection (no secret)."""
        if self.connection is None:
            return "file drops only"
        if self.connection.sqlite is not None:
            return f"sqlite file {self.connection.sqlite}"
        return f"URL from ${self.connection.url_env}"

    def effective_timezone(self, defaults: Defaults) -> ZoneInfo:
        return ZoneInfo(self.source_timezone or defaults.source_timezone)

    def effective_max_concurrent_reads(self, defaults: Defaults) -> int:
        return (
            self.max_concurrent_reads
            if self.max_concurrent_reads is not None
            else defaults.max_concurrent_reads
        )

    def table(self, asset: str) -> TableConfig:
        for t in self.tables:
            if t.asset == asset:
                return t
        raise KeyError(
            f"department {self._key!r} has no table with asset {asset!r} "
            f"(has: {', '.join(str(t.asset) for t in self.tables) or 'none'})"
        )

    def file_drop(self, name: str) -> FileDropConfig:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(
            f"department {self._key!r} has no file drop {name!r} "
            f"(has: {', '.join(f.name for f in self.files) or 'none'})"
        )


class SourcesConfig(_Model):
    """The whole ``sources.yaml``."""

    version: Literal[1]
    defaults: Defaults = Field(default_factory=Defaults)
    departments: Annotated[dict[DepartmentKey, DepartmentConfig], Field(min_length=1)]

    _origin: str = PrivateAttr(default="<config>")

    @field_validator("defaults", mode="before")
    @classmethod
    def _null_defaults(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _name_departments(self) -> SourcesConfig:
        for key, dept in self.departments.items():
            dept._key = key
        return self

    @property
    def origin(self) -> str:
        return self._origin

    def department(self, key: str) -> DepartmentConfig:
        try:
            return self.departments[key]
        except KeyError:
            raise KeyError(
                f"no department {key!r} in {self._origin} (has: {', '.join(self.departments)})"
            ) from None

    def table(self, department: str, asset: str) -> TableConfig:
        """The table whose asset name is ``asset`` in ``department``; KeyError if there is none."""
        return self.department(department).table(asset)

    def file_drop(self, department: str, name: str) -> FileDropConfig:
        return self.department(department).file_drop(name)

    def iter_tables(self) -> Iterator[tuple[DepartmentConfig, TableConfig]]:
        """Every (department, table) pair, in file order (``department.key`` gives the key)."""
        for dept in self.departments.values():
            for t in dept.tables:
                yield dept, t

    def iter_files(self) -> Iterator[tuple[DepartmentConfig, FileDropConfig]]:
        for dept in self.departments.values():
            for f in dept.files:
                yield dept, f

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict in the file's own key names (paths absolute); feeds sources_from_dict."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --------------------------------------------------------------------------------------------------
# JSON schema


def json_schema() -> dict[str, Any]:
    """The JSON schema of the format (as a dict)."""
    return SourcesConfig.model_json_schema(by_alias=True, mode="validation")


def schema_json(indent: int = 2) -> str:
    """The JSON schema of the format, as JSON text (for editors: yaml-language-server etc.)."""
    return json.dumps(json_schema(), indent=indent, ensure_ascii=False)


# --------------------------------------------------------------------------------------------------
# URL redaction

_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token|credential|auth|key", re.IGNORECASE)


def redact_url(url: Any) -> str:
    """``url`` safe for logs: password replaced by ``***`` (also secret-looking query parameters).

    An unparseable URL is not echoed at all.
    """
    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001 - the message would contain the URL
        return "<unparseable URL, not shown>"
    placeholder = "QSTREDACTEDQST"  # survives URL quoting, unlike "***"
    if u.query:
        u = u.set(query={k: (placeholder if _SECRET_QUERY_KEY.search(k) else v) for k, v in u.query.items()})
    return u.render_as_string(hide_password=True).replace(placeholder, "***")


# --------------------------------------------------------------------------------------------------
# YAML loading with positions

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_NODES = 200_000


class StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys in a mapping (plain YAML keeps the last one silently)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._dup_checked: set[int] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # called once per mapping node before its merge keys are flattened: check the explicit keys
        if id(node) not in self._dup_checked:
            self._dup_checked.add(id(node))
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key_node.value!r} (first on line {seen[key].line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        super().flatten_mapping(node)


@dataclass(frozen=True)
class _Pos:
    line: int  # 1-based
    column: int  # 1-based
    raw: str | None  # raw text of a scalar value, for hints
    quoted: bool


def _mark(m: yaml.Mark) -> tuple[int, int]:
    return m.line + 1, m.column + 1


class _Indexer:
    """Walks the composed node tree: key path -> position, and duplicate keys with their path."""

    def __init__(self, loader: StrictSafeLoader, origin: str):
        self.loader = loader
        self.origin = origin
        self.positions: dict[tuple, _Pos] = {}
        self.issues: list[ConfigIssue] = []
        self.visited = 0

    def _key_of(self, key_node: yaml.Node) -> Any:
        if isinstance(key_node, yaml.ScalarNode):
            try:
                return self.loader.construct_object(key_node)
            except yaml.YAMLError:
                return key_node.value
        return None

    def _record(self, path: tuple, at: yaml.Node, value: yaml.Node, overwrite: bool = True) -> None:
        if not overwrite and path in self.positions:
            return
        line, col = _mark(at.start_mark)
        raw = value.value if isinstance(value, yaml.ScalarNode) else None
        quoted = isinstance(value, yaml.ScalarNode) and value.style in ("'", '"')
        self.positions[path] = _Pos(line, col, raw, quoted)

    def walk(self, node: yaml.Node, path: tuple, stack: frozenset[int], merged: bool = False) -> None:
        self.visited += 1
        if self.visited > _MAX_NODES:
            raise ConfigError(
                ConfigIssue(
                    self.origin, None, None, "", f"the document is too large (more than {_MAX_NODES} nodes)"
                )
            )
        if id(node) in stack:  # recursive alias
            return
        stack = stack | {id(node)}
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            merges: list[yaml.Node] = []
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    merges.append(value_node)
                    continue
                key = self._key_of(key_node)
                try:
                    hash(key)
                except TypeError:
                    continue
                child = (*path, key)
                if not merged and key in seen:
                    first = seen[key].start_mark.line + 1
                    line, col = _mark(key_node.start_mark)
                    self.issues.append(
                        ConfigIssue(
                            self.origin,
                            line,
                            col,
                            _format_path(child),
                            f"duplicate key {key!r} (first defined on line {first})",
                        )
                    )
                    continue
                seen.setdefault(key, key_node)
                self._record(child, key_node, value_node, overwrite=not merged)
                self.walk(value_node, child, stack, merged)
            for m in merges:  # keys merged with '<<' point at their anchor definition
                for sub in m.value if isinstance(m, yaml.SequenceNode) else [m]:
                    self.walk(sub, path, stack, merged=True)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = (*path, i)
                self._record(child, item, item, overwrite=not merged)
                self.walk(item, child, stack, merged)


_PLAIN_KEY = re.compile(r"[^\W\d]\w*\Z")


def _format_path(parts: Sequence[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int) and not isinstance(p, bool):
            out += f"[{p}]"
        elif isinstance(p, str) and _PLAIN_KEY.match(p):
            out += ("." if out else "") + p
        else:
            shown = json.dumps(p, ensure_ascii=False) if isinstance(p, str) else repr(p)
            out += f"[{shown}]"
    return out


# --------------------------------------------------------------------------------------------------
# pydantic errors -> ConfigIssues


def _unwrap_optional(t: Any) -> Any:
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if len(args) == 1:
            return _unwrap_optional(args[0])
    if typing.get_origin(t) is Annotated:
        return _unwrap_optional(typing.get_args(t)[0])
    return t


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _model_at(loc: Sequence[Any], root: type[BaseModel] | None = None) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (for listing its allowed keys)."""
    t: Any = root or SourcesConfig
    for el in loc:
        t = _unwrap_optional(t)
        if _is_model(t):
            field = next((f for n, f in t.model_fields.items() if (f.alias or n) == el), None)
            if field is None:
                return None
            t = field.annotation
        elif typing.get_origin(t) in (list, dict):
            t = typing.get_args(t)[-1]
        else:
            return None
    t = _unwrap_optional(t)
    return t if _is_model(t) else None


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _suggest(key: Any, allowed: Sequence[str]) -> str | None:
    if not isinstance(key, str):
        return None
    lower = {a.lower(): a for a in allowed}
    close = difflib.get_close_matches(key.lower(), list(lower), n=1, cutoff=0.6)
    return lower[close[0]] if close else None


def _misspelled_required(errors: Sequence[Mapping[str, Any]], root: type[BaseModel] | None = None) -> set[tuple]:
    """Locations of 'missing' keys for which an unknown key nearby looks like a misspelling: the
    'unknown key ... did you mean' message says it all, so the 'missing' one is dropped."""
    found: set[tuple] = set()
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden" and loc:
            model = _model_at(loc[:-1], root)
            suggestion = _suggest(loc[-1], _allowed_keys(model)) if model is not None else None
            if suggestion:
                found.add((*loc[:-1], suggestion))
    return found


def _yaml_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "empty (null)"
    if isinstance(value, str):
        return "text (remove the quotes?)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


_ECHO_TYPES = {
    "literal_error",
    "int_type",
    "int_parsing",
    "greater_than_equal",
    "less_than_equal",
    "greater_than",
    "less_than",
    "bool_type",
    "string_type",
}


class _Translator:
    def __init__(self, origin: str, positions: Mapping[tuple, _Pos], root: type[BaseModel] | None = None):
        self.origin = origin
        self.positions = positions
        self.root = root

    def locate(self, loc: Sequence[Any]) -> tuple[int | None, int | None]:
        best: tuple = ()
        path: tuple = ()
        for el in loc:
            path = (*path, el)
            if path in self.positions:
                best = path
            else:
                break
        if best:
            p = self.positions[best]
            return p.line, p.column
        return (1, 1) if self.positions else (None, None)

    def issue(self, loc: Sequence[Any], message: str, anchor: Sequence[Any] | None = None) -> ConfigIssue:
        line, col = self.locate(anchor if anchor is not None else loc)
        return ConfigIssue(self.origin, line, col, _format_path(loc) or "<top level>", message)

    def translate(self, err: Mapping[str, Any]) -> list[ConfigIssue]:
        raw_loc = tuple(err["loc"])
        is_key = bool(raw_loc) and raw_loc[-1] == "[key]"
        loc = tuple(el for el in raw_loc if el != "[key]")
        etype = err["type"]
        ctx = err.get("ctx") or {}
        if etype == "qst_rules" and ctx.get("issues"):
            return [
                self.issue((*loc, *sub), msg, (*loc, *anchor) if anchor else None)
                for sub, msg, anchor in ctx["issues"]
            ]
        message = self.message(err, loc, is_key)
        return [self.issue(loc, message)]

    def message(self, err: Mapping[str, Any], loc: tuple, is_key: bool) -> str:
        etype = err["type"]
        ctx = err.get("ctx") or {}
        value = err.get("input")
        secret_zone = "connection" in loc
        if etype in ("value_error", "assertion_error") and "error" in ctx:
            return str(ctx["error"])
        if etype == "qst_rules":
            return str(err["msg"])
        if etype == "missing":
            return "required key is missing"
        if etype == "extra_forbidden":
            key = loc[-1] if loc else "?"
            model = _model_at(loc[:-1], self.root)
            allowed = _allowed_keys(model) if model is not None else []
            if model is ConnectionConfig:
                return (
                    f"unknown key {key!r}: a connection is either 'sqlite: <file>' or 'url_env: <NAME of an "
                    "environment variable>'; URLs and passwords never go in this file"
                )
            msg = f"unknown key {key!r}"
            suggestion = _suggest(key, allowed)
            if suggestion:
                msg += f" (did you mean {suggestion!r}?)"
            if allowed:
                msg += f"; allowed here: {', '.join(allowed)}"
            return msg
        if etype == "too_short":
            return "must not be empty"
        if etype == "literal_error" and loc == ("version",):
            return f"unsupported version; this Quanshitong reads version {SUPPORTED_VERSION}"
        if etype in ("model_type", "model_attributes_type", "dict_type"):
            return f"must be a mapping (key: value lines), not {_yaml_kind(value)}"
        if etype == "list_type":
            return f"must be a list, e.g. [A, B] or '- item' lines, not {_yaml_kind(value)}"
        if etype == "string_type":
            what = "key" if is_key else "value"
            msg = f"{what} must be text, not {_yaml_kind(value)}"
            pos = self.positions.get(loc)
            if isinstance(value, (bool, int, float)) and not secret_zone:
                raw = pos.raw if (pos is not None and not is_key and pos.raw is not None) else str(value)
                msg += f': YAML read {raw} as {_yaml_kind(value)}; put it in quotes: "{raw}"'
            return msg
        if etype == "int_type":
            return f"must be a whole number, not {_yaml_kind(value)}"
        msg = str(err["msg"])
        if msg.startswith("Input should be"):
            msg = "must be" + msg[len("Input should be") :]
        if (
            etype in _ECHO_TYPES
            and not secret_zone
            and isinstance(value, (str, int, float))
            and not isinstance(value, bool)
            and len(str(value)) <= 80
        ):
            msg += f" (got {value!r})"
        return msg


def _validate(data: Any, *, base_dir: Path, origin: str, positions: Mapping[tuple, _Pos]) -> SourcesConfig:
    tr = _Translator(origin, positions)
    if not isinstance(data, dict):
        raise ConfigError(
            tr.issue(
                (), f"the file must be a mapping with 'version' and 'departments', not {_yaml_kind(data)}"
            )
        )
    try:
        config = SourcesConfig.model_validate(data, context={"base_dir": Path(base_dir)})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        misspelled = _misspelled_required(errors)
        issues = [
            i
            for err in errors
            if not (err["type"] == "missing" and tuple(err["loc"]) in misspelled)
            for i in tr.translate(err)
        ]
        issues.sort(key=lambda i: (i.line if i.line is not None else 0, i.column or 0))
        raise ConfigError(issues) from None
    config._origin = origin
    for key, dept in config.departments.items():
        dept._origin = origin
        dept._url_env_at = tr.locate(("departments", key, "connection", "url_env"))
    return config


def _yaml_issue(origin: str, exc: yaml.YAMLError) -> ConfigIssue:
    # build the message from problem/context only: str(exc) quotes the source line, which could hold a secret
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        text = "invalid YAML: " + (", ".join(parts) if parts else "syntax error")
        if mark is not None:
            line, col = _mark(mark)
            return ConfigIssue(origin, line, col, "", text)
        return ConfigIssue(origin, None, None, "", text)
    return ConfigIssue(origin, None, None, "", "invalid YAML")


def sources_from_yaml(text: str, *, base_dir: Path | str, origin: str = "<string>") -> SourcesConfig:
    """Parse and validate YAML text; relative paths are relative to ``base_dir``."""
    loader = StrictSafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_issue(origin, exc)) from None
        if node is None:
            raise ConfigError(
                ConfigIssue(
                    origin,
                    None,
                    None,
                    "",
                    "the file is empty; it needs at least 'version: 1' and 'departments'",
                )
            )
        indexer = _Indexer(loader, origin)
        indexer.walk(node, (), frozenset())
        if indexer.issues:
            raise ConfigError(sorted(indexer.issues, key=lambda i: (i.line or 0, i.column or 0)))
        try:
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_issue(origin, exc)) from None
    finally:
        loader.dispose()
    return _validate(data, base_dir=Path(base_dir), origin=origin, positions=indexer.positions)


def load_sources(path: str | Path) -> SourcesConfig:
    """Load and validate a ``sources.yaml`` file.  Raises :class:`ConfigError` listing every problem."""
    path = Path(path)
    origin = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            ConfigIssue(origin, None, None, "", f"cannot read the file: {exc.strerror or type(exc).__name__}")
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            ConfigIssue(origin, line, None, "", "the file is not valid UTF-8 (GBK?); save it as UTF-8")
        ) from None
    return sources_from_yaml(text, base_dir=path.absolute().parent, origin=origin)


M = typing.TypeVar("M", bound=BaseModel)


def load_yaml_model(path: str | Path, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Load any YAML file into a pydantic ``model`` with this module's error reporting: every problem at
    once, each as ``file:line:col: dotted.key: message`` (:class:`ConfigError`); duplicate keys refused.
    Other configuration files (the staging specs of ``models/staging``) use it so that every file a data
    engineer writes answers in the same way."""
    path = Path(path)
    origin = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(ConfigIssue(origin, None, None, "", f"cannot read the file: {exc.strerror}")) from None
    except UnicodeDecodeError:
        raise ConfigError(ConfigIssue(origin, None, None, "", "the file is not valid UTF-8")) from None
    loader = StrictSafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                raise ConfigError(ConfigIssue(origin, None, None, "", "the file is empty"))
            indexer = _Indexer(loader, origin)
            indexer.walk(node, (), frozenset())
            if indexer.issues:
                raise ConfigError(sorted(indexer.issues, key=lambda i: (i.line or 0, i.column or 0)))
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_issue(origin, exc)) from None
    finally:
        loader.dispose()
    tr = _Translator(origin, indexer.positions, model)
    if not isinstance(data, dict):
        raise ConfigError(tr.issue((), f"the file must be a mapping, not {_yaml_kind(data)}"))
    try:
        return model.model_validate(data, context={"origin": origin, **(context or {})})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        misspelled = _misspelled_required(errors, model)
        issues = [i for err in errors if not (err["type"] == "missing" and tuple(err["loc"]) in misspelled)
                  for i in tr.translate(err)]
        issues.sort(key=lambda i: (i.line if i.line is not None else 0, i.column or 0))
        raise ConfigError(issues) from None


def sources_from_dict(data: dict, *, base_dir: Path, origin: str = "<dict>") -> SourcesConfig:
    """Validate an already-parsed configuration (no line numbers in errors)."""
    return _validate(data, base_dir=Path(base_dir), origin=origin, positions={})
