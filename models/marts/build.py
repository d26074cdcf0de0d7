"""Build the analysts' and the dashboard's DuckDB file, ``HOME/marts.duckdb``, from the lake.

Why it is built this way:

- **Atomic replace.** Every table is built into a new file next to the old one (``.marts.duckdb.building-*``),
  commented, indexed and checkpointed, then the file is closed, fsynced and ``os.replace``d onto
  ``marts.duckdb``. A reader never sees a half-built database; an analyst's open session keeps reading the
  old file (its inode) and never blocks the build; a failure anywhere leaves the previous file as it was.
- **Pinned lake versions.** Each Delta table is read at one version (``DeltaTable(path, version=...)`` as an
  Arrow dataset registered on the connection: DuckDB cannot load its Delta extension offline). The versions
  are recorded in ``meta_build`` (bureau exports copy it into their manifests). ``as_of_date`` picks, for every
  table, the newest version committed on or before the end of that day (Asia/Shanghai) — "what did we know
  on the 3rd?" — and ``as_of_versions`` names versions explicitly.
- **The reference day** of the recent-window figures and of the risk score (``as_of_date`` in every mart) is
  ``as_of_date`` when given, else the newest event day of the lake not after today: the day the data
  reaches, so a rebuild of the same lake gives the same figures.
- **Everything in DuckDB SQL**, one connection, vectorized; the table modules (:mod:`.enterprise`,
  :mod:`.person`, :mod:`.risk`, :mod:`.abnormal`, :mod:`.scorecard_mart`) each create their tables, and
  :func:`create_table` gives each exactly the columns, types and order of :mod:`models.marts.contract`.
- **Comments** (Chinese / English) come from the contract; ``HOME/docs/data_dictionary.md`` is generated from
  the comments stored in the file, so the documentation is what the analysts' ``duckdb`` shows.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from models.marts.contract import EXTERNAL_TABLES, TABLES, Table

TIMEZONE = ZoneInfo("Asia/Shanghai")
MARTS_FILE = "marts.duckdb"
#: The oldest DuckDB release that must be able to open the file.
STORAGE_COMPATIBILITY = "v1.4.0"

#: The lake tables the marts read: name in SQL -> path under HOME/lake.
LAKE_TABLES: dict[str, str] = {
    "int_events": "silver/int_events",
    "int_enterprise_records": "silver/int_enterprise_records",
    "int_person_records": "silver/int_person_records",
    "stg_social__employers": "silver/stg_social__employers",
    "stg_service__service_cases": "silver/stg_service__service_cases",
    "stg_samr__registrations": "silver/stg_samr__registrations",
    "entity_crosswalk": "gold/entity_crosswalk",
    "dim_enterprise": "gold/dim_enterprise",
    "dim_person": "gold/dim_person",
    "scorecard": "quality/scorecard",
}
#: Lake tables a mart build can do without (the scorecard is written by the quality step).
OPTIONAL_LAKE_TABLES = {"scorecard", "stg_service__service_cases", "stg_social__employers", "stg_samr__registrations"}


@dataclass
class MartsReport:
    path: Path
    as_of_date: dt.date
    versions: dict[str, int | None]
    seconds: dict[str, float] = field(default_factory=dict)       # per step / table
    rows: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)         # table -> why it was not built
    total_seconds: float = 0.0


def marts_path(home: Path | str) -> Path:
    return Path(home) / MARTS_FILE


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def q(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> list[tuple]:
    """Run a statement to completion (DuckDB 2 streams ``execute`` results: an open one owns the connection)."""
    return con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()


# --------------------------------------------------------------------------------------------------------
# lake versions
# --------------------------------------------------------------------------------------------------------
def _delta_history(path: Path) -> list[tuple[int, dt.datetime]]:
    from deltalake import DeltaTable

    out = []
    for h in DeltaTable(str(path)).history():
        ts = h.get("timestamp")
        if ts is None or h.get("version") is None:
            continue
        out.append((int(h["version"]), dt.datetime.fromtimestamp(ts / 1000, dt.UTC)))
    return sorted(out)


def resolve_versions(home: Path, as_of_versions: dict[str, int] | None = None,
                     as_of_date: dt.date | None = None) -> dict[str, tuple[int | None, dt.datetime | None]]:
    """``{sql name: (version, committed_at)}`` for every lake table that exists (version None: absent then).

    ``as_of_versions`` (keys: the SQL names of :data:`LAKE_TABLES` or their lake paths) wins; otherwise with
    ``as_of_date`` the newest version committed by the end of that day in Asia/Shanghai; otherwise the latest.
    """
    as_of_versions = as_of_versions or {}
    end = None
    if as_of_date is not None:
        end = dt.datetime.combine(as_of_date + dt.timedelta(days=1), dt.time(0), TIMEZONE)
    out: dict[str, tuple[int | None, dt.datetime | None]] = {}
    for name, rel in LAKE_TABLES.items():
        path = Path(home) / "lake" / rel
        if not (path / "_delta_log").is_dir():
            if name not in OPTIONAL_LAKE_TABLES:
                raise FileNotFoundError(f"lake table {rel} does not exist under {home}: build silver and gold first")
            out[name] = (None, None)
            continue
        history = _delta_history(path)
        wanted = as_of_versions.get(name, as_of_versions.get(rel))
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


def _register(con: duckdb.DuckDBPyConnection, home: Path, versions: dict[str, tuple[int | None, object]]) -> None:
    from deltalake import DeltaTable

    for name, (version, _) in versions.items():
        if version is None:
            continue
        dataset = DeltaTable(str(Path(home) / "lake" / LAKE_TABLES[name]), version=version).to_pyarrow_dataset()
        con.register(f"lake_{name}", dataset)


# --------------------------------------------------------------------------------------------------------
# helpers for the table modules
# --------------------------------------------------------------------------------------------------------
def create_table(con: duckdb.DuckDBPyConnection, table: Table | str, select_sql: str,
                 order_by: str | None = None) -> int:
    """``CREATE TABLE`` with exactly the contract's columns, types and order, rows stored ordered."""
    t = TABLES[table] if isinstance(table, str) else table
    cols = ", ".join(f'CAST("{c.name}" AS {c.type}) AS "{c.name}"' for c in t.columns)
    order = f" ORDER BY {order_by}" if order_by else ""
    q(con, f'CREATE OR REPLACE TABLE "{t.name}" AS SELECT {cols} FROM ({select_sql}) AS _src{order}')
    return q(con, f'SELECT count(*) FROM "{t.name}"')[0][0]


def _default_reference_day(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The newest day, not after today, on which events of at least two types happened: the day the lake's
    data reaches (one department's future-dated typo cannot move it)."""
    today = dt.datetime.now(TIMEZONE).date()
    day = q(con, """SELECT max(event_date) FROM (SELECT event_date FROM lake_int_events WHERE event_date <= ?
                     GROUP BY event_date HAVING count(DISTINCT event_type) >= 2)""", [today])[0][0]
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
    lines = ["# 数据字典 Data dictionary: marts.duckdb", "",
             ("Generated by `models/marts/build.py` from the table and column comments stored in the file "
              "(`SELECT * FROM duckdb_columns()`); do not edit by hand."), ""]
    if title_note:
        lines += [title_note, ""]
    tables = q(con, "SELECT table_name, comment, estimated_size FROM duckdb_tables() WHERE schema_name = 'main' "
                    "ORDER BY table_name")
    lines += ["| table | rows | description |", "|---|---:|---|"]
    lines += [f"| [`{n}`](#{n}) | {size:,} | {(c or '').replace('|', '/')} |" for n, c, size in tables]
    for name, comment, _ in tables:
        lines += ["", f"## {name}", "", comment or "", "", "| column | type | description |", "|---|---|---|"]
        for col, typ, ccom in q(con, "SELECT column_name, data_type, comment FROM duckdb_columns() "
                                     "WHERE table_name = ? ORDER BY column_index", [name]):
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
# the external marts (service efficiency, KPIs, calendar: another module's contract)
# --------------------------------------------------------------------------------------------------------
def _external_marts(con: duckdb.DuckDBPyConnection, report: MartsReport, versions: dict) -> dict[str, dict]:
    """HOOK for ``models.marts.calendar`` / ``service`` / ``kpi`` (written by another engineer): each table they
    define is built here from the same pinned lake versions and commented from their ``COMMENTS``. A module
    that is not there (yet) is reported in ``report.skipped``, not an error."""
    import importlib

    comments: dict[str, dict] = {}
    frames: dict[str, object] = {}
    t0 = time.perf_counter()
    try:
        calendar = importlib.import_module("models.marts.calendar")
        frames["dim_calendar"] = calendar.dim_calendar()
        report.seconds["compute dim_calendar"] = time.perf_counter() - t0
        comments.update(calendar.COMMENTS)
    except Exception as exc:  # noqa: BLE001 - the hook reports, never breaks the build
        report.skipped["dim_calendar"] = f"models.marts.calendar: {exc!r}"
    cases = None
    if versions.get("stg_service__service_cases", (None,))[0] is not None:
        try:
            service = importlib.import_module("models.marts.service")
            cols = [c for c in service.CASE_COLUMNS]
            have = {r[0] for r in q(con, "DESCRIBE lake_stg_service__service_cases")}
            sel = ", ".join(f'"{c}"' for c in cols if c in have)
            cases = con.sql(f"SELECT {sel} FROM lake_stg_service__service_cases").pl()
            as_of = report.as_of_date
            t0 = time.perf_counter()
            startups = service.business_startup_cases(cases, as_of)
            frames["mart_service_efficiency"] = service.mart_service_efficiency(cases, as_of)
            frames["mart_business_startup"] = service.mart_business_startup(startups=startups)
            frames["mart_business_startup_cases"] = startups
            report.seconds["compute service marts"] = time.perf_counter() - t0
            comments.update(service.COMMENTS)
        except Exception as exc:  # noqa: BLE001
            for n in ("mart_service_efficiency", "mart_business_startup", "mart_business_startup_cases"):
                report.skipped[n] = f"models.marts.service: {exc!r}"
    try:
        kpi = importlib.import_module("models.marts.kpi")
        if cases is None:
            raise LookupError("no service cases")
        types = sorted({t for i in kpi.INDICATORS for t in i.event_types})
        events = con.sql(f"SELECT {', '.join(kpi.EVENT_COLUMNS)} FROM lake_int_events WHERE event_type IN "
                         f"({', '.join(sql_str(t) for t in types)})").pl()
        registrations = None
        if versions.get("stg_samr__registrations", (None,))[0] is not None:
            registrations = con.sql("SELECT status, updated_at FROM lake_stg_samr__registrations").pl()
        t0 = time.perf_counter()
        frames["mart_kpi_daily"] = kpi.mart_kpi_daily(events, as_of=report.as_of_date, cases=cases,
                                                      registrations=registrations)
        report.seconds["compute mart_kpi_daily"] = time.perf_counter() - t0
        comments.update(kpi.COMMENTS)
    except Exception as exc:  # noqa: BLE001
        report.skipped["mart_kpi_daily"] = f"models.marts.kpi: {exc!r}"
    for name, frame in frames.items():
        t0 = time.perf_counter()
        con.register("_ext_frame", frame)
        q(con, f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _ext_frame')
        con.unregister("_ext_frame")
        report.seconds[name] = time.perf_counter() - t0
        report.rows[name] = len(frame)  # type: ignore[arg-type]
    return {k: v for k, v in comments.items() if k in EXTERNAL_TABLES}


# --------------------------------------------------------------------------------------------------------
# the build
# --------------------------------------------------------------------------------------------------------
def build_marts(home: Path | str, *, as_of_versions: dict[str, int] | None = None,
                as_of_date: dt.date | str | None = None, memory_limit: str | None = None,
                threads: int | None = None) -> MartsReport:
    """Build every mart into a new DuckDB file and atomically replace ``HOME/marts.duckdb`` with it.

    ``as_of_versions``: ``{lake table: Delta version}`` (SQL names of :data:`LAKE_TABLES`, or their lake
    paths such as ``"gold/dim_enterprise"``); ``as_of_date``: for each table the newest version committed on
    or before that day (Asia/Shanghai), and the figures' reference day. Writes ``HOME/docs/data_dictionary.md``.
    """
    from models.marts import abnormal, enterprise, person, risk, scorecard_mart

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

        def step(name: str, fn, *args) -> None:
            t0 = time.perf_counter()
            rows = fn(con, *args)
            report.seconds[name] = time.perf_counter() - t0
            if isinstance(rows, dict):
                report.rows.update(rows)

        step("dimensions", enterprise.build_dimensions)
        step("enterprise_base", enterprise.build_base, reference)
        step("risk", risk.build_risk, reference)
        step("enterprise_360", enterprise.build_enterprise_360, reference)
        step("person", person.build_person, reference)
        if not os.environ.get(person.PII_KEY_ENV):
            report.skipped["mart_person_360.id_hash"] = f"{person.PII_KEY_ENV} is not set: id_hash is null"
        step("abnormal", abnormal.build_abnormal_distribution, reference)
        if versions["scorecard"][0] is not None:
            step("scorecard", scorecard_mart.build_scorecard)
        else:
            report.skipped["mart_department_scorecard"] = "no lake/quality/scorecard"
            create_table(con, "mart_department_scorecard", "SELECT * FROM (SELECT " + ", ".join(
                f"NULL AS {c}" for c in TABLES["mart_department_scorecard"].column_names) + ") WHERE false")
        t0 = time.perf_counter()
        external = _external_marts(con, report, versions)
        report.seconds["external"] = time.perf_counter() - t0

        rows = [(LAKE_TABLES[n], v, c, built_at, reference,
                 "versions" if as_of_versions else (f"date:{as_of_date}" if as_of_date else "latest"))
                for n, (v, c) in versions.items() if v is not None]
        q(con, "CREATE OR REPLACE TABLE meta_build (lake_table VARCHAR, delta_version BIGINT, committed_at TIMESTAMPTZ, "
               "built_at TIMESTAMPTZ, as_of_date DATE, as_of_lake VARCHAR)")
        con.executemany("INSERT INTO meta_build VALUES (?, ?, ?, ?, ?, ?)", rows)
        # drop the working tables (prefixed _) and the registered views before the file is sealed
        for (name,) in q(con, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                              "AND starts_with(table_name, '_')"):
            q(con, f'DROP TABLE "{name}"')
        for name in TABLES:
            if name not in {r[0] for r in q(con, "SELECT table_name FROM duckdb_tables()")}:
                report.skipped.setdefault(name, "not built")
        t0 = time.perf_counter()
        _comment_all(con, external)
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
    lines += [f"  skipped {k}: {v}" for k, v in report.skipped.items()]
    return "\n".join(lines)
