"""Reflecting one legacy source table and planning its bronze columns, for :mod:`connectors.readers`.

Every name that will reach SQL text is validated before anything connects (:func:`validate_names`); the
database URL is resolved without leaking it (:func:`resolve_secret`); the table is reflected with the
SQLAlchemy inspector (:func:`reflect`, plus the MySQL column character sets); and every column gets its
bronze type and output name (:func:`plan_columns`, the type rules being :mod:`connectors.types`).

Errors are :class:`SourceReadError`, raised outside the ``except`` block that caught the driver's exception,
so no chained exception (whose text may hold connection details) travels with them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine.interfaces import ReflectedColumn

from lake.yamlfile import ConfigError

from .config_schema import DepartmentConfig, TableConfig
from .identifiers_sql import IdentifierError, validate_identifier
from .transports import MYSQL, Secret, engine_for
from .types import STRING, SourceColumn, choose_type

__all__ = [
    "FLAGS_COLUMN",
    "ReadContext",
    "Reflected",
    "SourceReadError",
    "bronze_schema",
    "dept_key",
    "natural_column",
    "plan_columns",
    "reflect",
    "resolve_secret",
    "validate_names",
]

FLAGS_COLUMN = "_qst_flags"


class SourceReadError(Exception):
    """A source table cannot be read.  The message names the department, the table (and the column) and
    the cause; it never contains the database URL or its password."""

    def __init__(
        self,
        message: str,
        *,
        department: str | None = None,
        table: str | None = None,
        column: str | None = None,
    ):
        super().__init__(message)
        self.department = department
        self.table = table
        self.column = column


@dataclass
class ReadContext:
    """One read: its department and table, and (once resolved) the secret every error message is scrubbed of."""

    department: DepartmentConfig
    table: TableConfig
    dept_key: str
    secret: Secret | None = None

    def error(self, what: str, column: str | None = None) -> SourceReadError:
        where = f"department {self.dept_key!r}, table {self.table_label}"
        if column is not None:
            where += f", column {column!r}"
        return SourceReadError(
            self.scrub(f"{where}: {what}"),
            department=self.dept_key,
            table=str(self.table.name),
            column=column,
        )

    @property
    def table_label(self) -> str:
        schema = getattr(self.table, "source_schema", None)
        return repr(f"{schema}.{self.table.name}" if schema else str(self.table.name))

    def scrub(self, text: str) -> str:
        if self.secret is not None:
            for needle in self.secret.needles():
                text = text.replace(needle, "***")
        return text

    def cause(self, exc: BaseException) -> str:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return self.scrub(f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__)


def dept_key(department: DepartmentConfig) -> str:
    return department.key or department.title or "?"


def validate_names(ctx: ReadContext, columns: Sequence[str] | None) -> None:
    """Every name that will reach SQL text, checked before anything connects."""
    t = ctx.table
    checks: list[tuple[object, str, bool]] = [(t.name, "table name", False)]
    if t.source_schema is not None:
        checks.append((t.source_schema, "schema name", False))
    for c in [*t.primary_key, *([t.cursor] if t.cursor else []), *t.columns, *(columns or [])]:
        checks.append((c, "column name", True))
    for col_cfg in t.columns.values():
        if col_cfg.rename is not None:
            checks.append((col_cfg.rename, "rename target", True))
    for name, what, is_column in checks:
        try:
            validate_identifier(name, what)
        except IdentifierError as exc:
            raise ctx.error(
                f"refused before any SQL was sent: {exc}",
                column=(name if isinstance(name, str) else repr(name)) if is_column else None,
            ) from None


def resolve_secret(ctx: ReadContext, environ: Mapping[str, str] | None) -> Secret:
    dept = ctx.department
    failure: SourceReadError | None = None
    url_text = ""
    try:
        url_text = dept.resolve_url(environ, must_exist=True)
    except ConfigError as exc:
        failure = ctx.error(str(exc.issues[0].message if exc.issues else exc))
    if failure is None:
        try:
            url = sa.engine.make_url(url_text)
        except Exception:
            failure = ctx.error(
                f"the database URL ({dept.describe_connection()}) is not a valid SQLAlchemy URL"
            )
    if failure is not None:
        raise failure  # raised outside the except block: no chained driver exception to leak a secret
    secret = Secret(url)
    ctx.secret = secret
    if url.get_backend_name() == "sqlite":
        db = url.database or ""
        if db in ("", ":memory:") or db.startswith("file:"):
            raise ctx.error("a SQLite source must be a file path")
        if not Path(db).is_file():
            raise ctx.error(f"SQLite file {db!r} does not exist")
    return secret


def _type_text(sa_type: sa.types.TypeEngine, dialect: sa.Dialect) -> str:
    try:
        return str(sa_type.compile(dialect=dialect))
    except Exception:
        return type(sa_type).__name__


@dataclass
class Reflected:
    backend: str
    columns: list[ReflectedColumn]
    charsets: dict[str, str | None]
    type_texts: dict[str, str]


def reflect(ctx: ReadContext, secret: Secret) -> Reflected:
    """Reflect the table.  Every failure is raised outside the ``except`` block that caught the driver's
    exception, so no chained exception (whose text may hold connection details) travels with it."""
    backend = secret.url.get_backend_name()
    failure: SourceReadError | None = None
    try:
        engine = engine_for(secret)
    except Exception as exc:
        failure = ctx.error(
            f"cannot create a connection ({ctx.department.describe_connection()}): {ctx.cause(exc)}"
        )
    if failure is not None:
        raise failure
    try:
        try:
            conn = engine.connect()
        except Exception as exc:
            failure = ctx.error(
                f"cannot connect to the {backend} database "
                f"({ctx.department.describe_connection()}): {ctx.cause(exc)}"
            )
        if failure is not None:
            raise failure
        with conn:
            result = _reflect_on(ctx, conn, backend, engine.dialect)
    finally:
        engine.dispose()
    if isinstance(result, SourceReadError):
        raise result
    return result


def _reflect_on(
    ctx: ReadContext, conn: sa.Connection, backend: str, dialect: sa.Dialect
) -> Reflected | SourceReadError:
    t = ctx.table
    try:
        cols = sa.inspect(conn).get_columns(t.name, schema=t.source_schema)
    except sa.exc.NoSuchTableError:
        cols = []
    except Exception as exc:
        return ctx.error(f"cannot reflect the table: {ctx.cause(exc)}")
    if not cols:  # NoSuchTableError, or a dialect that returns no columns
        where = f" in schema {t.source_schema!r}" if t.source_schema else ""
        return ctx.error(
            f"the table does not exist{where} in the {backend} database "
            f"({ctx.department.describe_connection()})"
        )
    charsets: dict[str, str | None] = {}
    if backend in MYSQL:
        try:
            rows = conn.execute(
                sa.text(
                    "SELECT COLUMN_NAME, CHARACTER_SET_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table"
                ),
                {"schema": t.source_schema, "table": t.name},
            ).all()
        except Exception as exc:
            return ctx.error(f"cannot read the column character sets: {ctx.cause(exc)}")
        charsets = {r[0]: r[1] for r in rows}
    texts = {c["name"]: _type_text(c["type"], dialect) for c in cols}
    return Reflected(backend, cols, charsets, texts)


def _check_exists(ctx: ReadContext, reflected: Reflected, wanted: Sequence[tuple[str, str]]) -> None:
    names = [c["name"] for c in reflected.columns]
    present = set(names)
    for name, role in wanted:
        if name not in present:
            hint = difflib.get_close_matches(name, names, n=1)
            if not hint:
                hint = [n for n in names if n.casefold() == name.casefold()]
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ctx.error(
                f"{role} {name!r} does not exist in the source table{suggestion}; it has: {', '.join(names)}",
                column=name,
            )


def plan_columns(ctx: ReadContext, reflected: Reflected, columns: Sequence[str] | None) -> list[SourceColumn]:
    t = ctx.table
    wanted = [(c, "primary key column") for c in t.primary_key]
    if t.cursor:
        wanted.append((t.cursor, "cursor column"))
    wanted += [(c, "configured column") for c in t.columns]
    wanted += [(c, "requested column") for c in (columns or [])]
    _check_exists(ctx, reflected, wanted)
    by_name = {c["name"]: c for c in reflected.columns}
    order = list(dict.fromkeys(columns)) if columns is not None else [c["name"] for c in reflected.columns]
    plan: list[SourceColumn] = []
    seen: dict[str, str] = {}
    for name in order:
        col = by_name[name]
        cfg = t.columns.get(name)
        override = cfg.parsed_type if cfg is not None else None
        repair = cfg.repair if cfg is not None else None
        choice = choose_type(
            col["type"],
            reflected.backend,
            override=override,
            repair=repair is not None,
            charset=reflected.charsets.get(name),
        )
        out = t.output_name(name)
        try:
            validate_identifier(out, "output column name")
        except IdentifierError as exc:
            raise ctx.error(f"cannot be loaded: {exc}", column=name) from None
        folded = out.casefold()
        if folded == FLAGS_COLUMN or folded in seen:
            other = FLAGS_COLUMN if folded == FLAGS_COLUMN else repr(seen[folded])
            raise ctx.error(
                f"output column {out!r} clashes with {other} (Delta compares names "
                "case-insensitively); add a rename",
                column=name,
            )
        seen[folded] = name
        plan.append(
            SourceColumn(
                name=name,
                sql_type=reflected.type_texts[name],
                nullable=bool(col.get("nullable", True)),
                arrow_type=choice.arrow_type,
                output_name=out,
                rule=choice.rule,
                repair=repair,
                choice=choice,
            )
        )
    return plan


def natural_column(reflected: Reflected, name: str) -> SourceColumn:
    """A column with its declared type only (no configured override): what SQL compares against."""
    col = next(c for c in reflected.columns if c["name"] == name)
    choice = choose_type(col["type"], reflected.backend)
    return SourceColumn(
        name=name,
        sql_type=reflected.type_texts[name],
        nullable=bool(col.get("nullable", True)),
        arrow_type=choice.arrow_type,
        output_name=name,
        rule=choice.rule,
        choice=choice,
    )


def bronze_schema(plan: Sequence[SourceColumn]) -> pa.Schema:
    return pa.schema(
        [pa.field(c.output_name, c.arrow_type, nullable=True) for c in plan]
        + [pa.field(FLAGS_COLUMN, STRING, nullable=True)]
    )
