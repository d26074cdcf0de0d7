"""The models of ``sources.yaml``: what a department, a table, a file drop and a connection are.

The format's reference (every key, its default and its rules) is the docstring of
:mod:`connectors.config`, which loads a file into these models; the value types they are built from are
in :mod:`connectors.config_values`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import make_url

from lake.city import DEFAULT_TIMEZONE, check_timezone
from lake.yamlfile import ConfigError, ConfigIssue

from .config_values import (
    ENV_VAR_RE,
    SLUG_RE,
    AssetName,
    ColumnName,
    ColumnType,
    ColumnTypeName,
    DepartmentKey,
    FileDropName,
    Lookback,
    RenameTarget,
    SchemaName,
    SheetRef,
    StrictInt,
    TableName,
    TimeZoneName,
    drop_root_issues,
    parse_column_type,
    parse_lookback,
    resolve_path,
    resolve_roots,
    rules_error,
)
from .identifiers_sql import qualified_name

__all__ = [
    "ColumnConfig",
    "ConnectionConfig",
    "Defaults",
    "DepartmentConfig",
    "FileDropConfig",
    "SourcesConfig",
    "TableConfig",
    "redact_url",
]


# --------------------------------------------------------------------------------------------------
# models


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Model):
    """Values used where a department or table sets none."""

    source_timezone: TimeZoneName = DEFAULT_TIMEZONE  # the city's zone; SourcesConfig.timezone when declared
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
        return resolve_path(value, info, "sqlite")

    @field_validator("url_env", mode="before")
    @classmethod
    def _env_name(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str) or not ENV_VAR_RE.match(value):
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
        if data.get("asset") is None and isinstance(name, str) and SLUG_RE.match(name.lower()):
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
            raise rules_error(issues)
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
        return resolve_path(value, info, "folder")

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
            raise rules_error(issues)
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
            raise PydanticCustomError(
                "qst_rules", "has tables but no 'connection'; add 'sqlite: <file>' or 'url_env: <VARIABLE>'"
            )
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
            raise rules_error(issues)
        return self

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def key(self) -> str:
        """The department key (``samr``), known once loaded through :class:`SourcesConfig`."""
        return self._key

    @property
    def short_title(self) -> str | None:
        """The title's part before its first space (``市场监管局`` of ``市场监管局 market regulation (SAMR)``): the
        short name a chart or a table shows; None without a title (the UI then shows the key)."""
        if self.title is None or not self.title.strip():
            return None
        return self.title.strip().split(maxsplit=1)[0]

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
            raise ConfigError(
                ConfigIssue(
                    self._origin,
                    None,
                    None,
                    f"departments.{self._key}",
                    f"department {self._key!r} has only file drops, no database",
                )
            )
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
        except Exception:
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
    timezone: TimeZoneName = DEFAULT_TIMEZONE
    defaults: Defaults = Field(default_factory=Defaults)
    departments: Annotated[dict[DepartmentKey, DepartmentConfig], Field(min_length=1)]
    #: where file drops may be (resolved); not declared: the YAML file's folder (connectors/config.py)
    file_roots: list[Path] = Field(default_factory=list, validate_default=True)

    _origin: str = PrivateAttr(default="<config>")
    _roots = field_validator("file_roots", mode="before")(resolve_roots)

    @model_validator(mode="before")
    @classmethod
    def _city_zone_by_default(cls, data: Any) -> Any:
        # The city's zone, when the deployment declares one, is also the zone of the sources' naive
        # timestamps unless ``defaults.source_timezone`` says otherwise. An invalid zone is reported once,
        # at ``timezone``, not again at the default it would have become.
        if not isinstance(data, dict) or not isinstance(data.get("timezone"), str):
            return data
        defaults = data.get("defaults")
        if not (defaults is None or isinstance(defaults, dict)) or "source_timezone" in (defaults or {}):
            return data
        try:
            check_timezone(data["timezone"])
        except ValueError:
            return data
        return {**data, "defaults": {**(defaults or {}), "source_timezone": data["timezone"]}}

    @field_validator("defaults", mode="before")
    @classmethod
    def _null_defaults(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _name_departments(self) -> SourcesConfig:
        for key, dept in self.departments.items():
            dept._key = key
        drops = [(k, j, f.folder) for k, d in self.departments.items() for j, f in enumerate(d.files)]
        if issues := drop_root_issues(self.file_roots, drops):
            raise rules_error(issues)
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
# URL redaction

_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token|credential|auth|key", re.IGNORECASE)


def redact_url(url: Any) -> str:
    """``url`` safe for logs: password replaced by ``***`` (also secret-looking query parameters).

    An unparseable URL is not echoed at all.
    """
    try:
        u = make_url(url)
    except Exception:
        return "<unparseable URL, not shown>"
    placeholder = "QSTREDACTEDQST"  # survives URL quoting, unlike "***"
    if u.query:
        u = u.set(query={k: (placeholder if _SECRET_QUERY_KEY.search(k) else v) for k, v in u.query.items()})
    return u.render_as_string(hide_password=True).replace(placeholder, "***")
