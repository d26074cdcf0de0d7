"""The marts as an explicit graph: every mart module's :data:`MARTS` nodes, in one registry, run in the order
their declared inputs give.

Why a graph and not a list of calls: the order of the build, the working tables and the lineage Dagster shows
(``pipelines/marts.py``) are all read from the same declarations, so adding a mart is adding a node -- its
inputs place it, and a mart that fails stops the build with its name (:class:`MartBuildError`) instead of
leaving a table out. :func:`check_registry` runs at import: a node reading a table nobody writes, two nodes
writing one table, a contract table nobody builds or a circle is an error before any data is read.
"""

from __future__ import annotations

import graphlib
import time
from collections.abc import Callable

import duckdb

from models.marts import abnormal, calendar, enterprise, kpi, person, risk, scorecard_mart, service
from models.marts.common import LAKE_TABLES, OPTIONAL_LAKE_TABLES, Mart, MartContext, mart, q
from models.marts.contract import EXTERNAL_TABLES, TABLES

__all__ = [
    "MARTS",
    "MartBuildError",
    "check_registry",
    "contract",
    "lineage",
    "order",
    "producers",
    "run_marts",
]


class MartBuildError(RuntimeError):
    """A mart failed: the message names it, its tables and the cause (chained as ``__cause__``)."""


def _meta_build(ctx: MartContext) -> dict[str, int]:
    q(
        ctx.con,
        "CREATE OR REPLACE TABLE meta_build (lake_table VARCHAR, delta_version BIGINT, committed_at "
        "TIMESTAMPTZ, built_at TIMESTAMPTZ, as_of_date DATE, as_of_lake VARCHAR)",
    )
    if ctx.meta_rows:
        ctx.con.executemany("INSERT INTO meta_build VALUES (?, ?, ?, ?, ?, ?)", ctx.meta_rows)
    return {"meta_build": len(ctx.meta_rows)}


def _meta_notes(ctx: MartContext) -> dict[str, int]:
    """``meta_notes``: why a table is empty or a column null on this city (a mart whose inputs are absent is
    built empty and says so), kept in the file so that the dashboard page reading the table shows the notice.
    A note on a working table (``_service_cases``) concerns the published tables of the marts that read it."""
    readers: dict[str, list[str]] = {}
    for m in MARTS:
        for t in m.inputs:
            readers.setdefault(t, []).extend(m.published)
    rows = []
    for subject, note in sorted(ctx.notes.items()):
        table = subject.split(".")[0]
        tables = sorted(set(readers.get(table, []))) if table.startswith("_") else [table]
        rows.append((subject, tables, note))
    q(ctx.con, "CREATE OR REPLACE TABLE meta_notes (subject VARCHAR, tables VARCHAR[], note VARCHAR)")
    if rows:
        ctx.con.executemany("INSERT INTO meta_notes VALUES (?, ?, ?)", rows)
    return {"meta_notes": len(rows)}


#: Every mart node (the registry); order here is only the tie-break of :func:`order`.
MARTS: tuple[Mart, ...] = (
    *enterprise.MARTS,
    *risk.MARTS,
    *person.MARTS,
    *abnormal.MARTS,
    *scorecard_mart.MARTS,
    *calendar.MARTS,
    *service.MARTS,
    *kpi.MARTS,
    mart(
        "meta_build",
        ("meta_build",),
        tuple(LAKE_TABLES),
        lambda ctx: _meta_build(ctx),
        optional=tuple(OPTIONAL_LAKE_TABLES),
    ),
)
#: The notes node reads every other node's tables, so it runs last and sees every note of the build.
MARTS = (
    *MARTS,
    mart("meta_notes", ("meta_notes",), tuple(t for m in MARTS for t in m.published), _meta_notes),
)


def producers(marts: tuple[Mart, ...] = MARTS) -> dict[str, Mart]:
    """table -> the node that writes it."""
    out: dict[str, Mart] = {}
    for m in marts:
        for t in m.outputs:
            if t in out:
                raise ValueError(f"table {t} is written by two marts: {out[t].name} and {m.name}")
            out[t] = m
    return out


def order(marts: tuple[Mart, ...] = MARTS) -> list[Mart]:
    """The nodes, each after the nodes whose tables it reads (a circle raises :class:`graphlib.CycleError`)."""
    made = producers(marts)
    by_name = {m.name: m for m in marts}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for m in marts:
        sorter.add(m.name, *(made[t].name for t in m.inputs if t in made))
    return [by_name[n] for n in sorter.static_order()]


def check_registry(marts: tuple[Mart, ...] = MARTS) -> None:
    """Every input is a lake table or another node's table, every optional input is a lake table that may be
    absent, every table of the contract is built, and there is no circle."""
    made = producers(marts)
    problems = []
    for m in marts:
        problems += [
            f"mart {m.name} reads {t}, which is neither a lake table nor written by a mart"
            for t in m.inputs
            if t not in made and t not in LAKE_TABLES
        ]
        problems += [
            f"mart {m.name}: optional input {t} is not an optional lake table"
            for t in m.optional
            if t not in OPTIONAL_LAKE_TABLES or t not in m.inputs
        ]
    problems += [
        f"contract table {t} is built by no mart" for t in (*TABLES, *EXTERNAL_TABLES) if t not in made
    ]
    if problems:
        raise ValueError("; ".join(problems))
    order(marts)


def contract(marts: tuple[Mart, ...] = MARTS) -> dict[str, tuple[str, ...]]:
    """Every table the file publishes -> its columns in order (what ``quality.marts_checks`` holds it to)."""
    return {t: cols for m in marts for t, cols in m.contract.items()}


def comments(marts: tuple[Mart, ...] = MARTS) -> dict[str, dict]:
    """The comments of the tables outside models/marts/contract/ (their modules' ``COMMENTS``)."""
    return {t: c for m in marts for t, c in m.comments.items()}


def lineage(marts: tuple[Mart, ...] = MARTS) -> dict[str, tuple[str, ...]]:
    """Every published table -> what it is built from: lake tables (by SQL name) and published tables, working
    tables replaced by what they are built from."""
    made = producers(marts)

    def upstream(table: str, seen: frozenset[str]) -> set[str]:
        if table not in made or not table.startswith("_"):
            return {table}
        if table in seen:
            return set()
        return {u for i in made[table].inputs for u in upstream(i, seen | {table})}

    out = {}
    for m in marts:
        ups = {u for i in m.inputs for u in upstream(i, frozenset())}
        for t in m.published:
            out[t] = tuple(sorted(ups - {t}))
    return out


def run_marts(
    con: duckdb.DuckDBPyConnection,
    ctx: MartContext,
    *,
    seconds: dict[str, float],
    rows: dict[str, int],
    marts: tuple[Mart, ...] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Run every node in :func:`order`; the first failure raises :class:`MartBuildError` naming the mart."""
    for m in order(marts or MARTS):
        missing = [t for t in m.inputs if t in LAKE_TABLES and t not in m.optional and not ctx.has(t)]
        if missing:
            raise MartBuildError(
                f"mart {m.name} ({', '.join(m.outputs)}) needs lake table(s) "
                f"{', '.join(LAKE_TABLES[t] for t in missing)}, not in the lake at the versions read"
            )
        t0 = clock()
        try:
            built = m.run(ctx)
        except Exception as exc:
            raise MartBuildError(f"mart {m.name} ({', '.join(m.outputs)}) failed: {exc!r}") from exc
        seconds[m.name] = clock() - t0
        rows.update(built or {})
        _check_outputs(con, m)


def _check_outputs(con: duckdb.DuckDBPyConnection, m: Mart) -> None:
    """The node wrote every table it declares, published ones with their contract's columns in order."""
    have: dict[str, list[str]] = {}
    for table, column in q(con, "SELECT table_name, column_name FROM duckdb_columns() ORDER BY column_index"):
        have.setdefault(table, []).append(column)
    for t in m.outputs:
        if t not in have:
            raise MartBuildError(f"mart {m.name} did not create its table {t}")
        if t in m.contract and have[t] != list(m.contract[t]):
            raise MartBuildError(
                f"mart {m.name}: table {t} has columns {have[t]}, its contract says {list(m.contract[t])}"
            )


check_registry()
