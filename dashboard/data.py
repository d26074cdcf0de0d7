"""Read-only access to the marts file for the 全视通 dashboard.

Why a layer of its own: the dashboard must never hold the marts file against the nightly build, and must show
the new night without a restart. The build writes a new file and swaps it in with ``os.replace``; a DuckDB
connection opened READ_ONLY on the old file keeps reading the old inode (the build is never blocked), and
:class:`Marts` reopens when the path's inode, size or mtime changes (after the queries still running on the old
file: see :meth:`Marts.cursor`). Each query runs on its own cursor, so the threaded web server can serve several
requests at once.

No business rule lives here: the numbers are the marts'. The SQL is the contract's named queries
(:data:`models.marts.contract.DASHBOARD_QUERIES`) plus :data:`PAGE_QUERIES`, which only select, filter and sum
columns of the contract's tables for the pages the contract has no query for yet.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from models.marts.contract import DASHBOARD_QUERIES

MARTS_FILE = "marts.duckdb"

#: The pages' own read-only queries: selections and sums of contract columns, nothing computed that the marts
#: define. Candidates for ``DASHBOARD_QUERIES`` when the contract takes them over.
PAGE_QUERIES: dict[str, str] = {
    "build_info": "SELECT max(built_at) AS built_at, max(as_of_date) AS as_of_date, max(committed_at) AS "
                  "lake_committed_at, count(*) AS lake_tables FROM meta_build",
    "department_last_delivery": (
        "SELECT department, max(period) FILTER (WHERE records_received > 0) AS last_delivered_on, "
        "arg_max(score, period) AS score, arg_max(grade, period) AS grade "
        "FROM mart_department_scorecard WHERE grain = 'day' AND asset = '*' GROUP BY department ORDER BY department"),
    "kpi_latest": (
        "WITH last AS (SELECT max(day) AS d FROM mart_kpi_daily WHERE NOT is_forecast) "
        "SELECT k.indicator, k.indicator_name_zh, k.day, k.actual, k.forecast, k.lower, k.upper, k.alert, "
        "p.actual AS previous_actual, w.week_mean "
        "FROM mart_kpi_daily k JOIN last ON k.day = last.d "
        "LEFT JOIN mart_kpi_daily p ON p.indicator = k.indicator AND p.day = last.d - 1 "
        "LEFT JOIN (SELECT indicator, avg(actual) AS week_mean FROM mart_kpi_daily, last "
        "           WHERE NOT is_forecast AND day BETWEEN last.d - 7 AND last.d - 1 GROUP BY indicator) w "
        "  ON w.indicator = k.indicator "
        "WHERE NOT k.is_forecast ORDER BY k.indicator"),
    "kpi_indicators": "SELECT DISTINCT indicator, indicator_name_zh FROM mart_kpi_daily ORDER BY indicator",
    "kpi_series": ("SELECT day, actual, forecast, lower, upper, is_forecast, alert, method FROM mart_kpi_daily "
                   "WHERE indicator = $indicator AND day >= $since ORDER BY day"),
    "kpi_alerts": ("SELECT day, indicator, indicator_name_zh, actual, forecast, lower, upper FROM mart_kpi_daily "
                   "WHERE alert AND day >= $since ORDER BY day DESC, indicator LIMIT $limit"),
    "warnings_by_day": ("SELECT warned_on, to_level, to_level_rank, count(*) AS warnings FROM mart_risk_warnings "
                        "WHERE warned_on >= $since GROUP BY ALL ORDER BY warned_on, to_level_rank"),
    "warnings_filtered": (
        "SELECT warned_on, uscc, name, district_name, industry_section, from_level, to_level, score, reasons, "
        "entity_id FROM mart_risk_warnings "
        "WHERE warned_on >= $since AND is_current "
        "AND ($district IS NULL OR district_name = $district) "
        "AND ($section IS NULL OR industry_section = $section) "
        "AND ($level IS NULL OR to_level = $level) "
        "ORDER BY to_level_rank DESC, warned_on DESC, score DESC LIMIT $limit"),
    "risk_distribution": (
        "SELECT district_name, industry_section, risk_level, level_rank, count(*) AS enterprises "
        "FROM mart_credit_risk WHERE ($district IS NULL OR district_name = $district) "
        "AND ($section IS NULL OR industry_section = $section) "
        "AND ($level IS NULL OR risk_level = $level) GROUP BY ALL"),
    "risk_levels": "SELECT level, level_rank, min_score, max_score FROM dim_risk_level ORDER BY level_rank",
    "districts": ("SELECT DISTINCT district_name FROM mart_credit_risk WHERE district_name IS NOT NULL "
                  "ORDER BY district_name"),
    "sections": "SELECT industry_section, industry_section_name FROM dim_industry_section ORDER BY industry_section",
    "abnormal_months": "SELECT min(month) AS first_month, max(month) AS last_month FROM mart_abnormal_distribution",
    "abnormal_by_month_district": (
        "SELECT month, district_name, sum(listings) AS listings FROM mart_abnormal_distribution "
        "WHERE month BETWEEN $from_month AND $to_month GROUP BY ALL ORDER BY month"),
    "abnormal_by_district_section": (
        "SELECT district_name, industry_section, sum(listings) AS listings, sum(still_listed) AS still_listed "
        "FROM mart_abnormal_distribution WHERE month BETWEEN $from_month AND $to_month GROUP BY ALL"),
    "abnormal_by_reason": (
        "SELECT reason, sum(listings) AS listings FROM mart_abnormal_distribution "
        "WHERE month BETWEEN $from_month AND $to_month GROUP BY ALL ORDER BY listings DESC"),
    "scorecard_latest": (
        "SELECT * FROM mart_department_scorecard WHERE grain = 'month' AND asset = '*' AND period = "
        "(SELECT max(period) FROM mart_department_scorecard WHERE grain = 'month') ORDER BY score DESC"),
    "scorecard_trend": (
        "SELECT period, department, score, timeliness_rate, completeness_rate, validity_rate, quarantine_rate "
        "FROM mart_department_scorecard WHERE grain = $grain AND asset = '*' AND period >= $since "
        "ORDER BY period, department"),
    "service_items": (
        "SELECT item_code, any_value(item_name) AS item_name, any_value(department_name_zh) AS department, "
        "sum(cases) AS cases, sum(finished_cases) AS finished_cases, sum(open_cases) AS open_cases, "
        "sum(processing_days_mean * finished_cases) / nullif(sum(finished_cases), 0) AS processing_days_mean, "
        "max(processing_days_p90) AS processing_days_p90_max, max(promised_days) AS promised_days, "
        "max(statutory_days) AS statutory_days, sum(overdue_cases) AS overdue_cases, "
        "sum(assessed_cases) AS assessed_cases, sum(open_overdue_cases) AS open_overdue_cases, "
        "sum(over_statutory_cases) AS over_statutory_cases, "
        "sum(satisfaction_avg * rated_cases) / nullif(sum(rated_cases), 0) AS satisfaction_avg, "
        "max(as_of) AS as_of FROM mart_service_efficiency GROUP BY item_code ORDER BY cases DESC"),
    "service_channels": (
        "SELECT channel, sum(cases) AS cases, sum(overdue_cases) AS overdue_cases, "
        "sum(assessed_cases) AS assessed_cases FROM mart_service_efficiency GROUP BY channel ORDER BY cases DESC"),
    "business_startup": "SELECT * FROM mart_business_startup ORDER BY month",
}


@dataclass
class _Opened:
    key: tuple[int, int, int]
    con: duckdb.DuckDBPyConnection
    in_flight: int = 0


class MartsUnavailable(RuntimeError):
    """The marts file is missing or unreadable (the page says so instead of failing)."""


class Marts:
    """The marts file of a home folder, read-only, reopened when the nightly build replaces it."""

    def __init__(self, home: Path | str) -> None:
        self.path = Path(home) / MARTS_FILE
        self._cond = threading.Condition()
        self._opened: _Opened | None = None
        self._tables: set[str] | None = None

    def _file_key(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError as exc:
            raise MartsUnavailable(f"集市文件不存在：{self.path}（请先构建集市）") from exc
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the current file. When the file changed since the last call, the old connection is
        closed once the queries still running on it are done, then the new file is opened: DuckDB keeps one
        database instance per path in a process, so while any connection to the old file lives, connecting
        to the path again would give the old file back."""
        key = self._file_key()
        with self._cond:
            if self._opened is not None and self._opened.key != key:
                old = self._opened
                self._cond.wait_for(lambda: old.in_flight == 0, timeout=30)
                if self._opened is old:
                    old.con.close()
                    self._opened = None
            if self._opened is None:
                try:
                    con = duckdb.connect(str(self.path), read_only=True)
                except duckdb.Error as exc:
                    raise MartsUnavailable(f"集市文件无法打开：{exc}") from exc
                self._opened = _Opened(key, con)
                self._tables = None
            opened = self._opened
            opened.in_flight += 1
            cur = opened.con.cursor()
        try:
            yield cur
        finally:
            cur.close()
            with self._cond:
                opened.in_flight -= 1
                self._cond.notify_all()

    def tables(self) -> set[str]:
        with self.cursor() as cur:
            if self._tables is None:
                self._tables = {r[0] for r in cur.execute(
                    "SELECT table_name FROM information_schema.tables").fetchall()}
            return self._tables

    def has(self, *tables: str) -> bool:
        try:
            return set(tables) <= self.tables()
        except MartsUnavailable:
            return False

    def sql(self, name: str) -> str:
        return DASHBOARD_QUERIES[name] if name in DASHBOARD_QUERIES else PAGE_QUERIES[name]

    def frame(self, name: str, /, **params: Any) -> pd.DataFrame:
        """The rows of a named query (contract first, then :data:`PAGE_QUERIES`) as a pandas frame."""
        with self.cursor() as cur:
            return cur.execute(self.sql(name), params or None).df()

    def raw(self, sql: str, /, **params: Any) -> pd.DataFrame:
        """A query of a page that is not named (kept for lookups by a key column of the contract)."""
        with self.cursor() as cur:
            return cur.execute(sql, params or None).df()
