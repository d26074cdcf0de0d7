"""Validation and quoting of SQL identifiers that come from configuration.

Table, schema and column names in ``sources.yaml`` end up inside SQL text (``SELECT "GXSJ" FROM
"T_SCZT_DJXX" ...``).  They are therefore treated as hostile: every name is first checked against a
strict whitelist, and only then quoted for the target dialect.  Quoting alone would already stop
injection, but the whitelist also catches typos and copy-paste accidents early, at config load time.

Accepted identifiers
    * 1 to 63 characters (PostgreSQL's limit, the smallest of the supported databases);
    * every character is a Unicode letter (categories ``L*``: Latin, Chinese such as
      ``统一社会信用代码``, ...), a decimal digit (category ``Nd``) or ``_``;
    * the first character is not a digit.

Anything else -- quotes, backticks, brackets, spaces, dots, dashes, semicolons, control or
zero-width characters, the empty string -- raises :class:`IdentifierError`.

Note that quoting makes names case-sensitive in PostgreSQL and Oracle: ``T_SCZT_DJXX`` is quoted
verbatim, so configuration must spell names exactly as the source catalog stores them.
"""

from __future__ import annotations

import unicodedata

__all__ = [
    "MAX_IDENTIFIER_LENGTH",
    "IdentifierError",
    "is_valid_identifier",
    "qualified_name",
    "quote_identifier",
    "validate_identifier",
]

MAX_IDENTIFIER_LENGTH = 63

# Dialect names as SQLAlchemy's ``engine.dialect.name`` reports them.
_BACKTICK_DIALECTS = frozenset({"mysql", "mariadb"})
_BRACKET_DIALECTS = frozenset({"mssql"})
# Everything else is quoted the ANSI SQL way ("..."): sqlite, postgresql, oracle, generic, and the
# PostgreSQL/Oracle-like domestic databases (dm, kingbase, opengauss, ...).


class IdentifierError(ValueError):
    """A name from configuration is not an acceptable SQL identifier."""


def _problem(name: str) -> str | None:
    """Why ``name`` is not acceptable, or None when it is."""
    if name == "":
        return "it is empty"
    if len(name) > MAX_IDENTIFIER_LENGTH:
        return f"it is {len(name)} characters long (at most {MAX_IDENTIFIER_LENGTH})"
    for ch in name:
        if ch == "_" or ch.isalpha() or unicodedata.category(ch) == "Nd":
            continue
        if ch.isspace():
            kind = "whitespace"
        elif unicodedata.category(ch) in ("Cc", "Cf"):
            kind = "a control or invisible character"
        else:
            kind = "a character"
        return f"it contains {kind} {ch!r}; only letters, digits and '_' are allowed"
    if unicodedata.category(name[0]) == "Nd":
        return "it starts with a digit"
    return None


def validate_identifier(name: object, what: str = "identifier") -> str:
    """Return ``name`` unchanged if it is an acceptable SQL identifier, else raise IdentifierError.

    ``what`` says what the name is (``"table name"``, ``"column name"``...) and is used in the
    error message together with ``repr(name)``.
    """
    if not isinstance(name, str):
        raise IdentifierError(f"{what} must be text, got {type(name).__name__} {name!r}")
    problem = _problem(name)
    if problem is not None:
        raise IdentifierError(f"{what} {name!r} is not a valid SQL identifier: {problem}")
    return name


def is_valid_identifier(name: object) -> bool:
    """True when :func:`validate_identifier` would accept ``name``."""
    return isinstance(name, str) and _problem(name) is None


def _dialect_key(dialect: str) -> str:
    if not isinstance(dialect, str) or not dialect:
        raise ValueError(f"dialect must be a non-empty string, got {dialect!r}")
    # tolerate "postgresql+psycopg" style driver suffixes
    return dialect.split("+", 1)[0].strip().lower()


def quote_identifier(name: str, dialect: str, *, what: str = "identifier") -> str:
    """Validate ``name`` and quote it for ``dialect`` (an SQLAlchemy ``engine.dialect.name``).

    ``"name"`` for sqlite, postgresql, oracle, generic and any other ANSI dialect;
    ```name``` for mysql and mariadb; ``[name]`` for mssql.
    """
    validate_identifier(name, what)
    key = _dialect_key(dialect)
    # The whitelist excludes every quote character, so no escaping is ever needed; the replace()
    # calls are kept as a second line of defence should the whitelist ever be widened.
    if key in _BACKTICK_DIALECTS:
        return "`" + name.replace("`", "``") + "`"
    if key in _BRACKET_DIALECTS:
        return "[" + name.replace("]", "]]") + "]"
    return '"' + name.replace('"', '""') + '"'


def qualified_name(schema: str | None, table: str, dialect: str) -> str:
    """``"schema"."table"`` (quoted for ``dialect``), or just ``"table"`` when ``schema`` is None."""
    quoted_table = quote_identifier(table, dialect, what="table name")
    if schema is None:
        return quoted_table
    return f"{quote_identifier(schema, dialect, what='schema name')}.{quoted_table}"
