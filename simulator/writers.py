"""Where the simulated departments live: SQLite files (the embedded default) or any SQLAlchemy URL.

Each target creates tables from a :class:`TableSpec` in its own dialect — MariaDB gets latin1 columns
holding raw GBK bytes, unsigned integers and zero dates, as the real legacy systems have — and writes
Polars batches with the fastest path its driver offers (sqlite3 ``executemany``, PostgreSQL ``COPY``,
MySQL multi-row ``INSERT``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from connectors.identifiers_sql import quote_identifier
from simulator.tables import Column, TableSpec

LEGACY_TEXT_ENCODING = "gb18030"  # superset of GBK: rare characters survive the latin1 round trip


def mojibake(s: pl.Series) -> pl.Series:
    """GBK/GB18030 bytes read back as latin1 — what a utf8 client sees of a latin1 column."""
    return pl.Series(
        s.name,
        [None if v is None else v.encode(LEGACY_TEXT_ENCODING).decode("latin1") for v in s.to_list()],
        dtype=pl.Utf8,
    )


def _sa_type(col: Column, dialect: str) -> sa.types.TypeEngine:
    kind, _, arg = col.type.partition(":")
    is_mysql = dialect in ("mysql", "mariadb")
    if kind == "str":
        if is_mysql and col.latin1:
            return mysql.VARCHAR(int(arg), charset="latin1")
        return sa.String(int(arg))
    if kind == "text":
        return sa.Text()
    if kind in ("int", "uint"):
        return mysql.INTEGER(unsigned=True) if is_mysql and kind == "uint" else sa.Integer()
    if kind in ("bigint", "ubigint"):
        return mysql.BIGINT(unsigned=True) if is_mysql and kind == "ubigint" else sa.BigInteger()
    if kind == "dec":
        p, s = arg.split(":")
        return sa.Numeric(int(p), int(s))
    if kind == "date":
        return sa.Date()
    if kind == "datetime":
        return mysql.DATETIME() if is_mysql else sa.DateTime()
    raise ValueError(f"unknown column type {col.type!r} in {col.name}")


def prepare(df: pl.DataFrame, spec: TableSpec, dialect: str) -> pl.DataFrame:
    """Values as the driver wants them: text for dates and decimals, dialect-specific sentinels."""
    exprs = []
    for col in spec.columns:
        c = pl.col(col.name)
        dtype = df.schema[col.name]
        if dtype == pl.Datetime:
            c = c.dt.strftime("%Y-%m-%d %H:%M:%S")
        elif dtype == pl.Date or isinstance(dtype, pl.Decimal):
            c = c.cast(pl.Utf8)
        if col.type == "date" and dialect == "postgresql":
            c = pl.when(c.cast(pl.Utf8) == "0000-00-00").then(pl.lit("1900-01-01")).otherwise(c.cast(pl.Utf8))
        exprs.append(c.alias(col.name))
    out = df.select(exprs)
    latin1 = [c.name for c in spec.columns if c.latin1]
    if latin1 and dialect in ("mysql", "mariadb"):  # the raw GBK bytes, as the legacy application stored them
        out = out.with_columns(
            [
                pl.Series(
                    name,
                    [None if v is None else v.encode(LEGACY_TEXT_ENCODING) for v in out[name].to_list()],
                    dtype=pl.Binary,
                )
                for name in latin1
            ]
        )
    elif latin1:
        out = out.with_columns([mojibake(out[name]) for name in latin1])
    return out


class Target:
    """A department's database."""

    dialect: str

    def create(self, spec: TableSpec, *, replace: bool = True) -> None: ...
    def write(self, spec: TableSpec, df: pl.DataFrame, *, prepared: bool = False) -> None:
        """Insert rows; ``prepared`` says :func:`prepare` already ran for this dialect."""

    def execute(self, sql: str, params: list[tuple] | None = None) -> None: ...
    def close(self) -> None: ...

    def q(self, name: str) -> str:
        return quote_identifier(name, self.dialect)

    def placeholders(self, n: int) -> str:
        return ", ".join(["?"] * n)


class SQLiteTarget(Target):
    dialect = "sqlite"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")

    def create(self, spec: TableSpec, *, replace: bool = True) -> None:
        ddl_types = {
            "str": "VARCHAR({})",
            "text": "TEXT",
            "int": "INTEGER",
            "uint": "INTEGER",
            "bigint": "BIGINT",
            "ubigint": "BIGINT",
            "dec": "DECIMAL({})",
            "date": "DATE",
            "datetime": "DATETIME",
        }
        cols = []
        for c in spec.columns:
            kind, _, arg = c.type.partition(":")
            cols.append(f"{self.q(c.name)} {ddl_types[kind].format(arg.replace(':', ','))}")
        pk = ", ".join(self.q(k) for k in spec.primary_key)
        if replace:
            self.conn.execute(f"DROP TABLE IF EXISTS {self.q(spec.name)}")
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.q(spec.name)} ({', '.join(cols)}, PRIMARY KEY ({pk}))"
        )

    def write(self, spec: TableSpec, df: pl.DataFrame, *, prepared: bool = False) -> None:
        if df.is_empty():
            return
        rows = (df if prepared else prepare(df, spec, self.dialect)).rows()
        cols = ", ".join(self.q(c) for c in spec.column_names)
        self.conn.execute("BEGIN")
        self.conn.executemany(
            f"INSERT INTO {self.q(spec.name)} ({cols}) VALUES ({self.placeholders(len(spec.columns))})", rows
        )
        self.conn.execute("COMMIT")

    def execute(self, sql: str, params: list[tuple] | None = None) -> None:
        self.conn.execute("BEGIN")
        if params is None:
            self.conn.execute(sql)
        else:
            self.conn.executemany(sql, params)
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class SQLAlchemyTarget(Target):
    """PostgreSQL, MariaDB/MySQL, or any dialect SQLAlchemy knows."""

    def __init__(self, url: str):
        self.engine = sa.create_engine(url)
        self.dialect = self.engine.dialect.name
        self.metadata = sa.MetaData()

    def placeholders(self, n: int) -> str:
        return (
            ", ".join(["%s"] * n)
            if self.dialect in ("postgresql", "mysql", "mariadb")
            else ", ".join(["?"] * n)
        )

    def _table(self, spec: TableSpec) -> sa.Table:
        if spec.name in self.metadata.tables:
            return self.metadata.tables[spec.name]
        cols = [
            sa.Column(
                c.name, _sa_type(c, self.dialect), primary_key=c.name in spec.primary_key, autoincrement=False
            )
            for c in spec.columns
        ]
        kwargs = {"mysql_charset": "utf8mb4"} if self.dialect in ("mysql", "mariadb") else {}
        return sa.Table(spec.name, self.metadata, *cols, **kwargs)

    def create(self, spec: TableSpec, *, replace: bool = True) -> None:
        table = self._table(spec)
        with self.engine.begin() as conn:
            if replace:
                table.drop(conn, checkfirst=True)
            table.create(conn, checkfirst=True)

    def write(self, spec: TableSpec, df: pl.DataFrame, *, prepared: bool = False) -> None:
        if df.is_empty():
            return
        data = df if prepared else prepare(df, spec, self.dialect)
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            cols = ", ".join(self.q(c) for c in spec.column_names)
            if self.dialect == "postgresql":
                with cur.copy(f"COPY {self.q(spec.name)} ({cols}) FROM STDIN") as copy:
                    for row in data.iter_rows():
                        copy.write_row(row)
            else:
                if self.dialect in ("mysql", "mariadb"):
                    cur.execute("SET SESSION sql_mode = ''")  # legacy MySQL accepted zero dates
                cur.executemany(
                    f"INSERT INTO {self.q(spec.name)} ({cols}) VALUES "
                    f"({self.placeholders(len(spec.columns))})",
                    data.rows(),
                )
            raw.commit()
        finally:
            raw.close()

    def execute(self, sql: str, params: list[tuple] | None = None) -> None:
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            if params is None:
                cur.execute(sql)
            else:
                cur.executemany(sql, params)
            raw.commit()
        finally:
            raw.close()

    def close(self) -> None:
        self.engine.dispose()


def open_target(spec: str | Path) -> Target:
    """A SQLAlchemy URL, or a path to a SQLite file."""
    text = str(spec)
    if "://" in text:
        return SQLAlchemyTarget(text)
    return SQLiteTarget(Path(text))
