"""Every query the 全视通 dashboard runs against the marts file, by name.

Why one module: pages hold no SQL, so what the dashboard reads (and what the marts must keep stable for it) is
reviewed, tested (tests/test_dashboard.py runs each query on real marts) and benchmarked in one place. The
contract's queries (:data:`models.marts.contract.DASHBOARD_QUERIES`, benchmarked by bench/bench_marts.py at a
million enterprises) come first; :data:`PAGE_QUERIES` are the pages' own, which only select, filter and sum
columns of the contract's tables, nothing the marts define -- candidates for the contract when it takes them
over. Parameters are DuckDB's ``$name``.
"""

from __future__ import annotations

import re

from models.marts.contract import DASHBOARD_QUERIES

#: the columns of a search result row (企业一档)
SEARCH_COLUMNS = "entity_id, uscc, name, status, district_name, risk_level"

#: The pages' own read-only queries: selections and sums of contract columns.
PAGE_QUERIES: dict[str, str] = {
    "tables": "SELECT table_name FROM information_schema.tables",
    "build_info": "SELECT max(built_at) AS built_at, max(as_of_date) AS as_of_date, max(committed_at) AS "
    "lake_committed_at, count(*) AS lake_tables FROM meta_build",
    "department_last_delivery": (
        "SELECT department, max(period) FILTER (WHERE records_received > 0) AS last_delivered_on, "
        "arg_max(score, period) AS score, arg_max(grade, period) AS grade "
        "FROM mart_department_scorecard WHERE grain = 'day' AND asset = '*' GROUP BY department ORDER BY department"
    ),
    "department_names": "SELECT department, name_zh FROM dim_department ORDER BY department",
    "build_notes": "SELECT subject, tables, note FROM meta_notes ORDER BY subject",
    "kpi_latest": (
        "WITH last AS (SELECT max(day) AS d FROM mart_kpi_daily WHERE NOT is_forecast) "
        "SELECT k.indicator, k.indicator_name_zh, k.day, k.actual, k.forecast, k.lower, k.upper, k.alert, "
        "p.actual AS previous_actual, w.week_mean "
        "FROM mart_kpi_daily k JOIN last ON k.day = last.d "
        "LEFT JOIN mart_kpi_daily p ON p.indicator = k.indicator AND p.day = last.d - 1 "
        "LEFT JOIN (SELECT indicator, avg(actual) AS week_mean FROM mart_kpi_daily, last "
        "           WHERE NOT is_forecast AND day BETWEEN last.d - 7 AND last.d - 1 GROUP BY indicator) w "
        "  ON w.indicator = k.indicator "
        "WHERE NOT k.is_forecast ORDER BY k.indicator"
    ),
    "kpi_indicators": "SELECT DISTINCT indicator, indicator_name_zh FROM mart_kpi_daily ORDER BY indicator",
    "kpi_series": (
        "SELECT day, actual, forecast, lower, upper, is_forecast, alert, method FROM mart_kpi_daily "
        "WHERE indicator = $indicator AND day >= $since ORDER BY day"
    ),
    "kpi_alerts": (
        "SELECT day, indicator, indicator_name_zh, actual, forecast, lower, upper FROM mart_kpi_daily "
        "WHERE alert AND day >= $since ORDER BY day DESC, indicator LIMIT $limit"
    ),
    "warnings_by_day": (
        "SELECT warned_on, to_level, to_level_rank, count(*) AS warnings FROM mart_risk_warnings "
        "WHERE warned_on >= $since GROUP BY ALL ORDER BY warned_on, to_level_rank"
    ),
    "warnings_filtered": (
        "SELECT warned_on, uscc, name, district_name, industry_section, from_level, to_level, score, reasons, "
        "entity_id FROM mart_risk_warnings "
        "WHERE warned_on >= $since AND is_current "
        "AND ($district IS NULL OR district_name = $district) "
        "AND ($section IS NULL OR industry_section = $section) "
        "AND ($level IS NULL OR to_level = $level) "
        "ORDER BY to_level_rank DESC, warned_on DESC, score DESC LIMIT $limit"
    ),
    "risk_distribution": (
        "SELECT district_name, industry_section, risk_level, level_rank, count(*) AS enterprises "
        "FROM mart_credit_risk WHERE ($district IS NULL OR district_name = $district) "
        "AND ($section IS NULL OR industry_section = $section) "
        "AND ($level IS NULL OR risk_level = $level) GROUP BY ALL"
    ),
    "risk_levels": "SELECT level, level_rank, min_score, max_score FROM dim_risk_level ORDER BY level_rank",
    "districts": (
        "SELECT DISTINCT district_name FROM mart_credit_risk WHERE district_name IS NOT NULL "
        "ORDER BY district_name"
    ),
    "sections": "SELECT industry_section, industry_section_name FROM dim_industry_section ORDER BY industry_section",
    "abnormal_months": "SELECT min(month) AS first_month, max(month) AS last_month FROM mart_abnormal_distribution",
    "abnormal_by_month_district": (
        "SELECT month, district_name, sum(listings) AS listings FROM mart_abnormal_distribution "
        "WHERE month BETWEEN $from_month AND $to_month GROUP BY ALL ORDER BY month"
    ),
    "abnormal_by_district_section": (
        "SELECT district_name, industry_section, sum(listings) AS listings, sum(still_listed) AS still_listed "
        "FROM mart_abnormal_distribution WHERE month BETWEEN $from_month AND $to_month GROUP BY ALL"
    ),
    "abnormal_by_reason": (
        "SELECT reason, sum(listings) AS listings FROM mart_abnormal_distribution "
        "WHERE month BETWEEN $from_month AND $to_month GROUP BY ALL ORDER BY listings DESC"
    ),
    "scorecard_latest": (
        "SELECT * FROM mart_department_scorecard WHERE grain = 'month' AND asset = '*' AND period = "
        "(SELECT max(period) FROM mart_department_scorecard WHERE grain = 'month') ORDER BY score DESC"
    ),
    "scorecard_trend": (
        "SELECT period, department, score, timeliness_rate, completeness_rate, validity_rate, quarantine_rate "
        "FROM mart_department_scorecard WHERE grain = $grain AND asset = '*' AND period >= $since "
        "ORDER BY period, department"
    ),
    "service_items": (
        "SELECT item_code, any_value(item_name) AS item_name, any_value(department_name_zh) AS department, "
        "sum(cases) AS cases, sum(finished_cases) AS finished_cases, sum(open_cases) AS open_cases, "
        "sum(processing_days_mean * finished_cases) / nullif(sum(finished_cases), 0) AS processing_days_mean, "
        "max(processing_days_p90) AS processing_days_p90_max, max(promised_days) AS promised_days, "
        "max(statutory_days) AS statutory_days, sum(overdue_cases) AS overdue_cases, "
        "sum(assessed_cases) AS assessed_cases, sum(open_overdue_cases) AS open_overdue_cases, "
        "sum(over_statutory_cases) AS over_statutory_cases, "
        "sum(satisfaction_avg * rated_cases) / nullif(sum(rated_cases), 0) AS satisfaction_avg, "
        "max(as_of) AS as_of FROM mart_service_efficiency GROUP BY item_code ORDER BY cases DESC"
    ),
    "service_channels": (
        "SELECT channel, sum(cases) AS cases, sum(overdue_cases) AS overdue_cases, "
        "sum(assessed_cases) AS assessed_cases FROM mart_service_efficiency GROUP BY channel ORDER BY cases DESC"
    ),
    "business_startup": "SELECT * FROM mart_business_startup ORDER BY month",
    # the newest day of each mart a page counts back from
    "warnings_as_of": "SELECT max(as_of_date) AS d FROM mart_risk_warnings",
    "risk_as_of": "SELECT max(as_of_date) AS d FROM mart_credit_risk",
    "kpi_last_day": "SELECT max(day) AS d FROM mart_kpi_daily WHERE NOT is_forecast",
    "scorecard_last_period": "SELECT max(period) AS p FROM mart_department_scorecard WHERE grain = $grain",
    "abnormal_districts": (
        "SELECT DISTINCT district_name FROM mart_abnormal_distribution "
        "WHERE district_name IS NOT NULL ORDER BY 1"
    ),
    "abnormal_division_code": (
        "SELECT any_value(division_code) AS c FROM mart_abnormal_distribution WHERE district_name = $district"
    ),
    # 企业一档: the card by entity id, and the search steps after the contract's by-USCC and by-name lookups
    "enterprise_by_id": "SELECT * FROM mart_enterprise_360 WHERE entity_id = $entity_id",
    **{
        f"enterprise_by_{column}": (
            f"SELECT {SEARCH_COLUMNS} FROM mart_enterprise_360 WHERE {column} = $key "
            "OR uscc = $key LIMIT $limit"
        )
        for column in ("regno", "org_code", "tin")
    },
    "enterprise_by_record_name": (
        f"SELECT {SEARCH_COLUMNS} FROM mart_enterprise_360 WHERE entity_id IN "
        "(SELECT entity_id FROM mart_enterprise_records WHERE name = $name LIMIT $limit) ORDER BY name"
    ),
    "enterprise_name_contains": (
        f"SELECT {SEARCH_COLUMNS} FROM mart_enterprise_360 WHERE contains(name_comparison, $text) "
        "OR contains(name, $text) ORDER BY length(name), name LIMIT $limit"
    ),
}


def sql_of(name: str) -> str:
    """The SQL of a named query; the contract's wins, so a page query the contract takes over needs no edit."""
    return DASHBOARD_QUERIES[name] if name in DASHBOARD_QUERIES else PAGE_QUERIES[name]


_TABLE_RE = re.compile(r"\b(?:FROM|JOIN)\s+((?:mart|dim|meta)_\w+)", re.IGNORECASE)


def tables_of(name: str) -> frozenset[str]:
    """The marts tables a named query reads (what a page showing its rows should explain when they are empty)."""
    return frozenset(_TABLE_RE.findall(sql_of(name)))
