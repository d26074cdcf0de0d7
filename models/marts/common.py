"""What every mart module shares: the SQL helpers, the declaration of a mart node, the lake tables the marts may
read. (What an event means — its category, the penalty family, the litigation roles — is
:mod:`models.events`: the marts read ``int_events.event_category``, never a deployment's event type.)

Why a module of its own: the table modules used to import these from :mod:`models.marts.build` (which imports
them back to run them) and from each other (``risk`` from ``enterprise``), a circle that made the import order
matter. Everything here is a leaf: it imports only the contract, so ``build`` -> ``graph`` -> table modules ->
``common`` runs one way.

A mart is declared as data (:class:`Mart`): the tables it writes, the tables it reads (lake tables by their SQL
name in :data:`LAKE_TABLES`, or tables another mart writes), and the columns it promises. Tables whose name
starts with ``_`` are working tables (DuckDB temporary tables): declared like any other so that the order is
derived from the inputs, never written into the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import duckdb

from models.marts.contract import TABLES, Table

#: The lake tables the marts read: name in SQL (registered as ``lake_<name>``) -> path under HOME/lake.
LAKE_TABLES: dict[str, str] = {
    "int_events": "silver/int_events",
    "int_enterprise_records": "silver/int_enterprise_records",
    "int_person_records": "silver/int_person_records",
    "int_service_cases": "silver/int_service_cases",
    "int_departments": "silver/int_departments",
    "entity_crosswalk": "gold/entity_crosswalk",
    "dim_enterprise": "gold/dim_enterprise",
    "dim_person": "gold/dim_person",
    "scorecard": "quality/scorecard",
}
#: Lake tables that may be absent (a department not connected, the scorecard not written yet): a mart that
#: reads one declares how it does without it (:attr:`Mart.optional`), or the build fails naming it.
#: ``int_departments`` is absent from a lake silver built before it existed: its departments then show by key.
OPTIONAL_LAKE_TABLES = frozenset({"scorecard", "int_departments"})


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(sql_str(v) for v in values) + ")"


def q(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> list[tuple]:
    """Run a statement to completion (DuckDB 2 streams ``execute`` results: an open one owns the connection)."""
    return con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()


def create_table(
    con: duckdb.DuckDBPyConnection, table: Table | str, select_sql: str, order_by: str | None = None
) -> int:
    """``CREATE TABLE`` with exactly the contract's columns, types and order, rows stored ordered."""
    t = TABLES[table] if isinstance(table, str) else table
    cols = ", ".join(f'CAST("{c.name}" AS {c.type}) AS "{c.name}"' for c in t.columns)
    order = f" ORDER BY {order_by}" if order_by else ""
    q(con, f'CREATE OR REPLACE TABLE "{t.name}" AS SELECT {cols} FROM ({select_sql}) AS _src{order}')
    return q(con, f'SELECT count(*) FROM "{t.name}"')[0][0]


def frame_table(con: duckdb.DuckDBPyConnection, name: str, frame: object) -> int:
    """A table from a Polars frame computed outside DuckDB (its module's schema is its contract)."""
    con.register("_frame", frame)
    try:
        q(con, f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _frame')
    finally:
        con.unregister("_frame")
    return q(con, f'SELECT count(*) FROM "{name}"')[0][0]


@dataclass
class MartContext:
    """What a mart's ``run`` gets: the connection of the file being built (the lake registered as
    ``lake_<name>`` at pinned versions), the reference day, and which optional lake tables are there."""

    con: duckdb.DuckDBPyConnection
    as_of: dt.date
    lake: frozenset[str]
    meta_rows: list[tuple] = field(default_factory=list)
    #: table or column -> why it is empty or null (reported, never a reason to leave a table out)
    notes: dict[str, str] = field(default_factory=dict)

    def has(self, lake_table: str) -> bool:
        return lake_table in self.lake


Run = Callable[[MartContext], Mapping[str, int] | None]


@dataclass(frozen=True)
class Mart:
    """One node of the marts graph.

    ``outputs``: the tables ``run`` creates (``_name``: a working table, dropped with the connection);
    ``inputs``: lake tables (:data:`LAKE_TABLES`) and tables of other marts it reads; ``optional``: the lake
    inputs it does without; ``contract``: the columns, in order, of each table it publishes.
    """

    name: str
    outputs: tuple[str, ...]
    inputs: tuple[str, ...]
    run: Run
    optional: frozenset[str] = frozenset()
    contract: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: ``{table: {"table": comment, "columns": {column: comment}}}`` of tables outside models/marts/contract/
    comments: Mapping[str, dict] = field(default_factory=dict)

    @property
    def published(self) -> tuple[str, ...]:
        return tuple(t for t in self.outputs if not t.startswith("_"))


def mart(
    name: str,
    outputs: tuple[str, ...],
    inputs: tuple[str, ...],
    run: Run,
    *,
    optional: tuple[str, ...] = (),
    comments: Mapping[str, dict] | None = None,
) -> Mart:
    """A :class:`Mart` whose contract is read from :mod:`models.marts.contract`, or from ``comments`` (the
    ``COMMENTS`` of a module that keeps its own contract)."""
    comments = dict(comments or {})
    contract = {}
    for table in outputs:
        if table.startswith("_"):
            continue
        if table in comments:
            contract[table] = tuple(comments[table]["columns"])
        elif table in TABLES:
            contract[table] = tuple(TABLES[table].column_names)
        else:
            raise ValueError(
                f"mart {name}: table {table} has no contract (models/marts/contract/ or COMMENTS)"
            )
    return Mart(
        name,
        tuple(outputs),
        tuple(inputs),
        run,
        frozenset(optional),
        contract,
        {t: c for t, c in comments.items() if t in outputs},
    )
