"""The value types of ``sources.yaml`` and their rules: identifiers, slugs, look-back windows, time zones,
column types, sheet references, paths relative to the file.

Each is an ``Annotated`` type whose validator raises ValueError with a message written for the data
engineer; pydantic carries it into a :class:`lake.yamlfile.ConfigIssue` at the key's line. The models of
:mod:`connectors.config_schema` are built from them; :mod:`connectors.types` reads :class:`ColumnType`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, Strict, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from lake.city import DEFAULT_TIMEZONE, check_timezone

from .identifiers_sql import MAX_IDENTIFIER_LENGTH, validate_identifier

__all__ = [
    "ENV_VAR_RE",
    "REPAIRS",
    "SIMPLE_TYPES",
    "SLUG_RE",
    "AssetName",
    "ColumnName",
    "ColumnType",
    "ColumnTypeName",
    "DepartmentKey",
    "FileDropName",
    "Lookback",
    "RenameTarget",
    "SchemaName",
    "SheetRef",
    "StrictInt",
    "TableName",
    "TimeZoneName",
    "parse_column_type",
    "parse_lookback",
    "resolve_path",
    "rules_error",
]


SLUG_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
ENV_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LOOKBACK_RE = re.compile(r"([0-9]{1,5})([dh])\Z")
_DECIMAL_RE = re.compile(r"decimal\(\s*([0-9]{1,3})\s*,\s*([0-9]{1,3})\s*\)\Z")
SimpleType = Literal["string", "int64", "float64", "bool", "date", "timestamp"]
SIMPLE_TYPES: tuple[SimpleType, ...] = ("string", "int64", "float64", "bool", "date", "timestamp")
REPAIRS = ("gbk_in_latin1",)


# --------------------------------------------------------------------------------------------------
# value types and their validators (ValueError messages become ConfigIssue messages)


def _identifier(what: str):
    def check(value: str) -> str:
        return validate_identifier(value, what)

    return AfterValidator(check)


def _slug(what: str):
    def check(value: str) -> str:
        if not SLUG_RE.match(value) or len(value) > MAX_IDENTIFIER_LENGTH:
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


class ColumnType(NamedTuple):
    """A parsed column ``type``: ``kind`` is one of SIMPLE_TYPES or ``"decimal"``."""

    kind: SimpleType | Literal["decimal"]
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
        raise ValueError(f"column type must be text: {allowed}")
    t = text.strip().lower()
    simple = next((s for s in SIMPLE_TYPES if s == t), None)
    if simple is not None:
        return ColumnType(simple)
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
    AfterValidator(check_timezone),
    WithJsonSchema({"type": "string", "description": f"IANA time zone name, e.g. {DEFAULT_TIMEZONE}"}),
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
        raise ValueError("sheet must be a sheet name or a 0-based sheet index")
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


def rules_error(issues: list[tuple[tuple, str, tuple | None]]) -> PydanticCustomError:
    """Several cross-field problems of one model, each with the key (relative to the model) it concerns
    and optionally the key whose position the message should point at."""
    return PydanticCustomError(
        "qst_rules", "{summary}", {"summary": "; ".join(m for _, m, _ in issues), "issues": issues}
    )


def resolve_path(value: Any, info: ValidationInfo, what: str) -> Path:
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


def resolve_roots(value: Any, info: ValidationInfo) -> list[Path]:
    """``file_roots`` resolved like every path of the file; not declared (or empty): the YAML file's folder."""
    if value is None or value == []:
        value = ["."]
    if not isinstance(value, list):
        raise ValueError("file_roots must be a list of folders, e.g. [drops, /srv/drops]")
    return [resolve_path(v, info, "file_roots") for v in value]


def drop_root_issues(
    roots: list[Path], drops: list[tuple[str, int, Path]]
) -> list[tuple[tuple, str, tuple | None]]:
    """The file drops (department key, index, resolved folder) whose folder lies outside every root: a
    ``folder: ../../../etc`` would otherwise have the night read ``/etc/passwd`` into bronze.  The folders are
    compared resolved (``..`` and symbolic links followed), so neither can lead out."""
    allowed = ", ".join(str(r) for r in roots)
    return [
        (
            ("departments", key, "files", j, "folder"),
            f"folder {str(folder)!r} is outside the folders file drops may be read from ({allowed}); move the "
            "drop there or declare its folder in the top-level 'file_roots'",
            None,
        )
        for key, j, folder in drops
        if not any(folder == root or folder.is_relative_to(root) for root in roots)
    ]
