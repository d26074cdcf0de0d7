"""What a bureau's package will hold, checked against the marts file before anything is written: the catalog
of the file's tables (and the gold tables registered from the lake), each entitled table's columns and row
conditions as SQL, and the lake versions the marts were built from.

Why apart: every problem of a bureau's entitlement is found here at once, before a byte is written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb

from connectors.identifiers_sql import quote_identifier
from models.exports.entitlements import (
    ColumnRule,
    ExportError,
    ExportsConfig,
    RowCondition,
    TableEntitlement,
)
from models.exports.publish import jsonable


def quoted(name: str, what: str = "identifier") -> str:
    """A validated, double-quoted DuckDB identifier (the one quoting rule of connectors.identifiers_sql)."""
    return quote_identifier(name, "duckdb", what=what)


SOURCE_ALIAS = "__qst_src"
CROSSWALK_ALIAS = "__qst_xw"

# ---------------------------------------------------------------------------------------------------------
# the marts catalog and the plan


@dataclass
class _Catalog:
    tables: dict[str, str]  # lower name -> name
    comments: dict[str, str | None]  # name -> table comment
    columns: dict[str, dict[str, tuple[str, str | None]]]  # table -> lower column -> (column, comment)

    def table(self, name: str) -> str | None:
        return self.tables.get(name.lower())

    def column(self, table: str, name: str) -> tuple[str, str | None] | None:
        return self.columns.get(table, {}).get(name.lower())


def _catalog(con: duckdb.DuckDBPyConnection) -> _Catalog:
    """The marts file's tables and views, and the gold tables registered from the lake (temporary views, which
    carry no comments: theirs come from :mod:`models.gold.docs`)."""
    from models.gold.docs import column_comment, table_comment

    rels = con.execute(
        "SELECT table_name, comment, false FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' UNION ALL SELECT view_name, comment, database_name = 'temp' FROM duckdb_views() "
        "WHERE database_name IN (current_database(), 'temp') AND schema_name = 'main' AND NOT internal"
    ).fetchall()
    lake = {t for t, _, from_lake in rels if from_lake}
    cols = con.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns() "
        "WHERE database_name IN (current_database(), 'temp') AND schema_name = 'main' "
        "ORDER BY table_name, column_index"
    ).fetchall()
    columns: dict[str, dict[str, tuple[str, str | None]]] = {}
    for table, column, comment in cols:
        if table in lake:
            comment = comment or column_comment(table, column)
        columns.setdefault(table, {})[column.lower()] = (column, comment or None)
    return _Catalog(
        {t.lower(): t for t, _, _ in rels},
        {t: c or (table_comment(t) if t in lake else None) for t, c, _ in rels},
        columns,
    )


@dataclass
class PlanColumn:
    output: str
    source: str  # as the catalog spells it
    rule: ColumnRule
    comment: str | None


@dataclass
class ExportPlan:
    ent: TableEntitlement
    table: str  # as the catalog spells it
    comment: str | None
    columns: list[PlanColumn]
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)


def _condition_sql(
    cond: RowCondition,
    catalog: _Catalog,
    table: str,
    crosswalk: str | None,
    department: str,
    problems: list[str],
    where: str,
) -> tuple[str, list[Any]]:
    if cond.kind == "all":
        return "TRUE", []
    col_name = cond.column if cond.kind != "related" else cond.related
    assert col_name is not None
    found = catalog.column(table, col_name)
    if found is None:
        problems.append(f"{where}: the row filter's column {col_name!r} is not in {table}")
        return "FALSE", []
    col = f"{SOURCE_ALIAS}.{quoted(found[0], 'column name')}"
    if cond.kind == "in":
        values = list(cond.in_ or [])
        return f"CAST({col} AS VARCHAR) IN ({', '.join('?' for _ in values)})", values
    if cond.kind == "prefix":
        values = list(cond.prefix or [])
        return "(" + " OR ".join(f"starts_with(CAST({col} AS VARCHAR), ?)" for _ in values) + ")", values
    # related: a semi-join on the crosswalk rows of the bureau's department
    if crosswalk is None:
        problems.append(
            f"{where}: the relationship filter needs the crosswalk table, which is not in the marts file"
        )
        return "FALSE", []
    xw_entity = catalog.column(crosswalk, "entity_id")
    xw_dept = catalog.column(crosswalk, "source_department")
    if xw_entity is None or xw_dept is None:
        problems.append(f"{where}: the crosswalk table {crosswalk} lacks entity_id or source_department")
        return "FALSE", []
    sub = (
        f"SELECT {CROSSWALK_ALIAS}.{quoted(xw_entity[0])} FROM {quoted(crosswalk)} AS {CROSSWALK_ALIAS} "
        f"WHERE {CROSSWALK_ALIAS}.{quoted(xw_dept[0])} = ?"
    )
    return f"{col} IN ({sub})", [department]


def make_plan(
    con: duckdb.DuckDBPyConnection, config: ExportsConfig, bureau: str, date: dt.date
) -> tuple[list[ExportPlan], list[dict[str, Any]], _Catalog]:
    """What to export, checked against the marts file: every problem of the bureau at once."""
    catalog = _catalog(con)
    department = config.department_of(bureau)
    crosswalk = catalog.table(config.crosswalk_table)
    plans: list[ExportPlan] = []
    withheld: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, ent in enumerate(config.bureau(bureau).tables):
        where = f"tables[{i}] ({ent.table})"
        if not ent.shared:
            withheld.append({"table": ent.table, "sharing": ent.sharing, "reason": ent.reason or "不予共享"})
            continue
        if ent.valid_until is not None and ent.expired(date):
            withheld.append(
                {
                    "table": ent.table,
                    "name": ent.output_name,
                    "sharing": ent.sharing,
                    "agreement": ent.agreement,
                    "reason": f"agreement expired on {ent.valid_until.isoformat()}",
                }
            )
            continue
        table = catalog.table(ent.table)
        if table is None:
            problems.append(
                f"{where}: table {ent.table!r} is neither in the marts file nor a gold table of the lake"
            )
            continue
        columns = []
        for out, rule in ent.exported_columns():
            src = ent.source_of(out)
            found = catalog.column(table, src)
            if found is None:
                problems.append(f"{where}: column {src!r} is not in {table}")
                continue
            columns.append(PlanColumn(out, found[0], rule, found[1]))
        plan = ExportPlan(ent, table, catalog.comments.get(table), columns)
        for cond in ent.rows or []:
            sql, params = _condition_sql(cond, catalog, table, crosswalk, department, problems, where)
            plan.where.append(sql)
            plan.params.extend(params)
        plans.append(plan)
    if problems:
        raise ExportError(f"bureau {bureau}: " + "; ".join(problems))
    return plans, withheld, catalog


def versions_in_lake(con: duckdb.DuckDBPyConnection, catalog: _Catalog) -> list[dict[str, Any]]:
    """``meta_build`` as the marts build wrote it, every column (``lake_table``, ``delta_version``,
    ``built_at`` ...), one entry per lake table read; no such table -> empty."""
    table = catalog.table("meta_build")
    if table is None:
        return []
    cur = con.execute(f"SELECT * FROM {quoted(table)} ORDER BY ALL")
    names = [d[0] for d in cur.description]
    return [{k: jsonable(v) for k, v in zip(names, row, strict=True)} for row in cur.fetchall()]
