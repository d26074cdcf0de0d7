"""Build the analysts' and the dashboard's DuckDB file, ``HOME/marts.duckdb``, from the lake.

Why it is built this way:

- **Atomic replace.** Every table is built into a new file next to the old one (``.marts.duckdb.building-*``),
  commented, indexed and checkpointed, then the file is closed, fsynced and ``os.replace``d onto
  ``marts.duckdb``. A reader never sees a half-built database; an analyst's open session keeps reading the
  old file (its inode) and never blocks the build; a failure anywhere leaves the previous file as it was.
- **Pinned lake versions.** Each Delta table is read at one version (``DeltaTable(path, version=...)`` as an
  Arrow dataset registered on the connection: DuckDB cannot load its Delta extension offline). The versions
  are recorded in ``meta_build`` (bureau exports copy it into their manifests). ``as_of_date`` picks, for every
  table, the newest version committed on or before the end of that day (the city's time zone) — "what did we know
  on the 3rd?" — and ``as_of_versions`` names versions explicitly.
- **The reference day** of the recent-window figures and of the risk score (``as_of_date`` in every mart) is
  ``as_of_date`` when given, else the newest event day of the lake not after today: the day the data
  reaches, so a rebuild of the same lake gives the same figures.
- **An explicit graph.** Each table module declares its marts as data (``MARTS``: tables written, tables
  read, contract); :mod:`models.marts.graph` runs them in the order their inputs give, and the first one that
  fails stops the build with its name -- no mart is ever left out quietly, and nothing is swapped in.
- **Everything in DuckDB SQL**, one connection, vectorized (the service, KPI and calendar marts compute in
  Polars and are stored from their frames); :func:`create_table` gives each SQL table exactly the columns,
  types and order of :mod:`models.marts.contract`, and every node's tables are checked against its contract.
- **Comments** (Chinese / English) come from the contract; ``HOME/docs/data_dictionary.md`` is generated from
  the comments stored in the file, so the documentation is what the analysts' ``duckdb`` shows.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from lake.city import city_zone
from lake.delta import delta_table, exists
from lake.layout import MARTS_FILE, lake_root, marts_path
from lake.storage import Location
from models.marts import graph
from models.marts.common import LAKE_TABLES, OPTIONAL_LAKE_TABLES, MartContext, create_table, q, sql_str
from models.marts.contract import TABLES

__all__ = [
    "LAKE_TABLES",
    "MARTS_FILE",
    "OPTIONAL_LAKE_TABLES",
    "MartsReport",
    "build_marts",
    "create_table",
    "data_dictionary",
    "describe",
    "marts_path",
    "q",
    "resolve_versions",
    "sql_str",
]

#: The oldest DuckDB release that must be able to open the file.
STORAGE_COMPATIBILITY = "v1.4.0"


@dataclass
class MartsReport:
    path: Path
    as_of_date: dt.date
    versions: dict[str, int | None]
    seconds: dict[str, float] = field(default_factory=dict)  # per step / table
    rows: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # table or column -> why it is empty / null
    total_seconds: float = 0.0


# --------------------------------------------------------------------------------------------------------
# lake versions
# --------------------------------------------------------------------------------------------------------
def _delta_history(path: Location) -> list[tuple[int, dt.datetime]]:
    out = []
    for h in delta_table(path).history():
        ts = h.get("timestamp")
        if ts is None or h.get("version") is None:
            continue
        out.append((int(h["version"]), dt.datetime.fromtimestamp(ts / 1000, dt.UTC)))
    return sorted(out)


def resolve_versions(
    home: Path, as_of_versions: dict[str, int] | None = None, as_of_date: dt.date | None = None
) -> dict[str, tuple[int | None, dt.datetime | None]]:
    """``{sql name: (version, committed_at)}`` for every lake table that exists (version None: absent then).

    ``as_of_versions`` (keys: the SQL names of :data:`LAKE_TABLES` or their lake paths) wins; otherwise with
    ``as_of_date`` the newest version committed by the end of that day in the city's time zone; otherwise the latest.
    """
    as_of_versions = as_of_versions or {}
    unknown = [k for k in as_of_versions if k not in LAKE_TABLES and k not in LAKE_TABLES.values()]
    if unknown:
        # a misspelled pin would otherwise be ignored, and the "audit" rebuild read the latest version
        raise ValueError(
            f"--as-of-version names no lake table the marts read: {', '.join(map(repr, unknown))}; the "
            f"tables are (SQL name or lake path): {', '.join(f'{n} ({r})' for n, r in LAKE_TABLES.items())}"
        )
    end = None
    if as_of_date is not None:
        end = dt.datetime.combine(as_of_date + dt.timedelta(days=1), dt.time(0), city_zone())
    out: dict[str, tuple[int | None, dt.datetime | None]] = {}
    for name, rel in LAKE_TABLES.items():
        path = lake_root(home) / rel
        wanted = as_of_versions.get(name, as_of_versions.get(rel))
        if not exists(path):
            if name not in OPTIONAL_LAKE_TABLES or wanted is not None:
                raise FileNotFoundError(
                    f"lake table {rel} does not exist under {home}: build silver and gold first"
                )
            out[name] = (None, None)
            continue
        history = _delta_history(path)
        if wanted is not None:
            match = [h for h in history if h[0] == int(wanted)]
            if not match:
                raise ValueError(f"lake table {rel} has no version {wanted}")
            out[name] = match[0]
        elif end is not None:
            before = [h for h in history if h[1] < end]
            if not before and name not in OPTIONAL_LAKE_TABLES:
                raise ValueError(f"lake table {rel} had no version committed by {as_of_date}")
            out[name] = before[-1] if before else (None, None)
        else:
            out[name] = history[-1]
    return out


def _register(
    con: duckdb.DuckDBPyConnection, home: Path, versions: Mapping[str, tuple[int | None, object]]
) -> None:
    for name, (version, _) in versions.items():
        if version is None:
            continue
        dataset = delta_table(lake_root(home) / LAKE_TABLES[name], version=version).to_pyarrow_dataset()
        con.register(f"lake_{name}", dataset)


def _default_reference_day(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The newest day, not after today, on which events of at least two types happened: the day the lake's
    data reaches (one department's future-dated typo cannot move it)."""
    today = dt.datetime.now(city_zone()).date()
    day = q(
        con,
        """SELECT max(event_date) FROM (SELECT event_date FROM lake_int_events WHERE event_date <= ?
                     GROUP BY event_date HAVING count(DISTINCT event_type) >= 2)""",
        [today],
    )[0][0]
    return day or today


def _comment_all(con: duckdb.DuckDBPyConnection, external: dict[str, dict]) -> None:
    present = {r[0] for r in q(con, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'")}
    for t in TABLES.values():
        if t.name not in present:
            continue
        q(con, f'COMMENT ON TABLE "{t.name}" IS {sql_str(t.comment)}')
        for c in t.columns:
            q(con, f'COMMENT ON COLUMN "{t.name}"."{c.name}" IS {sql_str(c.comment)}')
    for name, spec in external.items():
        if name not in present:
            continue
        q(con, f'COMMENT ON TABLE "{name}" IS {sql_str(spec["table"])}')
        cols = {r[0] for r in q(con, "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [name])}
        for col, text in spec["columns"].items():
            if col in cols:
                q(con, f'COMMENT ON COLUMN "{name}"."{col}" IS {sql_str(text)}')


def _indexes(con: duckdb.DuckDBPyConnection) -> None:
    present = {r[0] for r in q(con, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'")}
    for t in TABLES.values():
        if t.name not in present:
            continue
        for col in t.lookup:
            q(con, f'CREATE INDEX "ix_{t.name}_{col}" ON "{t.name}" ("{col}")')


def data_dictionary(con: duckdb.DuckDBPyConnection, title_note: str = "") -> str:
    """Markdown from the comments stored in the file (what ``duckdb`` shows is what the docs say)."""
    lines = [
        "# 数据字典 Data dictionary: marts.duckdb",
        "",
        (
            "Generated by `models/marts/build.py` from the table and column comments stored in the file "
            "(`SELECT * FROM duckdb_columns()`); do not edit by hand."
        ),
        "",
    ]
    if title_note:
        lines += [title_note, ""]
    tables = q(
        con,
        "SELECT table_name, comment, estimated_size FROM duckdb_tables() WHERE schema_name = 'main' "
        "ORDER BY table_name",
    )
    lines += ["| table | rows | description |", "|---|---:|---|"]
    lines += [f"| [`{n}`](#{n}) | {size:,} | {(c or '').replace('|', '/')} |" for n, c, size in tables]
    for name, comment, _ in tables:
        lines += ["", f"## {name}", "", comment or "", "", "| column | type | description |", "|---|---|---|"]
        for col, typ, ccom in q(
            con,
            "SELECT column_name, data_type, comment FROM duckdb_columns() "
            "WHERE table_name = ? ORDER BY column_index",
            [name],
        ):
            lines.append(f"| `{col}` | {typ} | {(ccom or '').replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------------
# the build
# --------------------------------------------------------------------------------------------------------
def build_marts(
    home: Path | str,
    *,
    as_of_versions: dict[str, int] | None = None,
    as_of_date: dt.date | str | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> MartsReport:
    """Build every mart into a new DuckDB file and atomically replace ``HOME/marts.duckdb`` with it.

    ``as_of_versions``: ``{lake table: Delta version}`` (SQL names of :data:`LAKE_TABLES`, or their lake
    paths such as ``"gold/dim_enterprise"``); ``as_of_date``: for each table the newest version committed on
    or before that day (the city's time zone), and the figures' reference day. Writes ``HOME/docs/data_dictionary.md``.
    """
    started = time.perf_counter()
    home = Path(home)
    if isinstance(as_of_date, str):
        as_of_date = dt.date.fromisoformat(as_of_date)
    versions = resolve_versions(home, as_of_versions, as_of_date)
    final = marts_path(home)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.building-{os.getpid()}")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    built_at = dt.datetime.now(dt.UTC)
    # readable by older DuckDB too: the `duckdb` command line from PyPI (duckdb-cli) and BI tools lag the
    # Python package by a storage version
    con = duckdb.connect(str(tmp), config={"storage_compatibility_version": STORAGE_COMPATIBILITY})
    try:
        if memory_limit:
            q(con, f"SET memory_limit = {sql_str(memory_limit)}")
        if threads:
            q(con, f"SET threads = {int(threads)}")
        q(con, "SET preserve_insertion_order = false")
        _register(con, home, versions)
        reference = as_of_date or _default_reference_day(con)
        report = MartsReport(final, reference, {k: v[0] for k, v in versions.items()})
        meta_rows = [
            (
                LAKE_TABLES[n],
                v,
                c,
                built_at,
                reference,
                "versions" if as_of_versions else (f"date:{as_of_date}" if as_of_date else "latest"),
            )
            for n, (v, c) in versions.items()
            if v is not None
        ]
        ctx = MartContext(
            con,
            reference,
            frozenset(n for n, (v, _) in versions.items() if v is not None),
            meta_rows,
            report.notes,
        )
        graph.run_marts(con, ctx, seconds=report.seconds, rows=report.rows)
        # drop the working tables (prefixed _) and the registered views before the file is sealed
        for (name,) in q(
            con,
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
            "AND starts_with(table_name, '_')",
        ):
            q(con, f'DROP TABLE "{name}"')
        t0 = time.perf_counter()
        _comment_all(con, graph.comments())
        _indexes(con)
        report.seconds["indexes"] = time.perf_counter() - t0
        dictionary = data_dictionary(con, f"As of {reference}; lake versions in `meta_build`.")
        for name, (version, _) in versions.items():
            if version is not None:
                con.unregister(f"lake_{name}")
        q(con, "CHECKPOINT")
        con.close()
    except BaseException:
        con.close()
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    _fsync(tmp)
    os.replace(tmp, final)
    _fsync(final.parent)
    _write_atomic(home / "docs" / "data_dictionary.md", dictionary)
    report.total_seconds = time.perf_counter() - started
    return report


def describe(report: MartsReport) -> str:
    lines = [f"marts: {report.path} as of {report.as_of_date} in {report.total_seconds:.1f} s"]
    lines += [f"  {k:<32} {v:7.2f} s" for k, v in report.seconds.items()]
    lines += [f"  {k:<32} {v:>12,} rows" for k, v in sorted(report.rows.items())]
    lines += [f"  note {k}: {v}" for k, v in report.notes.items()]
    return "\n".join(lines)
