"""Every query the 全视通 dashboard runs against the marts file, by name, each under the signed-in user's scope.

Why one module: pages hold no SQL, so what the dashboard reads (and what the marts must keep stable for it) is
reviewed, tested (tests/test_dashboard.py runs each query on real marts) and benchmarked in one place. The
contract's queries (:data:`models.marts.contract.DASHBOARD_QUERIES`, benchmarked by bench/bench_marts.py at a
million enterprises) come first; :data:`PAGE_QUERIES` are the pages' own, which only select, filter and sum
columns of the contract's tables, nothing the marts define -- candidates for the contract when it takes them
over. Parameters are DuckDB's ``$name``.

**Scope, in the SQL.** A district officer sees only the enterprises and persons of the divisions granted
(:mod:`dashboard.auth`). Every query that reads a table describing enterprises or persons or carrying a
district (:data:`SCOPED_TABLES`: the contract's ``mart_*`` tables with an ``entity_id``, ``person_id`` or
``division_code`` column) filters on ``$scope_all`` / ``$scope_divisions``, which
:class:`dashboard.data.ScopedMarts` fills from the session on every call -- never the page, never the browser.
A query missing them fails to bind (fail closed), and tests/test_dashboard_security.py checks that every query
on a scoped table holds the predicate and that every table read is classified. The division is the marts'
``division_code`` (GB/T 2260, county level) of the enterprise's or person's golden record; tables without it
(search keys, records, events, risk factors) are scoped through their enterprise's row in
``mart_enterprise_360``. The contract's queries on scoped tables are replaced here by scoped versions with the
same columns; for a leader they return exactly the contract's rows (tested).

**Masking, in the SQL.** ``$masked`` (the analyst's role) masks natural persons' names: the first character,
then ``*``.
"""

from __future__ import annotations

import re

from models.marts.contract import DASHBOARD_QUERIES, TABLES

#: the contract's tables whose rows name an enterprise or a person or carry a district
SCOPED_TABLES: frozenset[str] = frozenset(
    t.name
    for t in TABLES.values()
    if t.name.startswith("mart_") and {"entity_id", "person_id", "division_code"} & set(t.column_names)
)
#: tables read unscoped: city-wide figures that name no enterprise or person, dimensions, build metadata
CITY_WIDE_TABLES: frozenset[str] = frozenset(
    {
        "mart_kpi_daily",
        "mart_department_scorecard",
        "mart_service_efficiency",
        "mart_business_startup",
        "dim_department",
        "dim_industry_section",
        "dim_risk_level",
        "dim_risk_factor",
        "dim_division",
        "meta_build",
        "meta_notes",
    }
)


def in_scope(column: str = "division_code") -> str:
    """The predicate keeping the rows whose division is granted (every row for a whole-city role)."""
    return f"($scope_all OR list_contains($scope_divisions, {column}))"


def enterprise_in_scope(column: str = "entity_id") -> str:
    """The predicate keeping the rows of enterprises whose golden record's division is granted."""
    return (
        f"($scope_all OR {column} IN (SELECT s.entity_id FROM mart_enterprise_360 s "
        "WHERE list_contains($scope_divisions, s.division_code)))"
    )


def masked(column: str) -> str:
    """A natural person's name, masked for an analyst (张** for 张三丰)."""
    return (
        f"CASE WHEN $masked AND {column} IS NOT NULL "
        f"THEN left({column}, 1) || repeat('*', greatest(length({column}) - 1, 1)) ELSE {column} END"
    )


_ENTERPRISE_CARD = f"SELECT * REPLACE ({masked('legal_rep_name')} AS legal_rep_name) FROM mart_enterprise_360"

#: The contract's queries on scoped tables, scoped (same columns; a leader gets the contract's rows).
SCOPED_CONTRACT_QUERIES: dict[str, str] = {
    "enterprise_by_uscc": f"{_ENTERPRISE_CARD} WHERE uscc = $uscc AND {in_scope()}",
    "enterprise_by_name": (
        "SELECT * FROM (SELECT DISTINCT entity_id, uscc, name, status, district_name, risk_level "
        "FROM mart_enterprise_search WHERE search_key >= $name AND search_key < $name || chr(1114111) "
        f"AND {enterprise_in_scope()}) ORDER BY name <> $name, name LIMIT $limit"
    ),
    "enterprise_records": (
        "SELECT * FROM mart_enterprise_records WHERE entity_id = $entity_id "
        f"AND {enterprise_in_scope()} ORDER BY source_department, record_id"
    ),
    "enterprise_events": (
        f"SELECT * FROM mart_enterprise_events WHERE entity_id = $entity_id AND {enterprise_in_scope()} "
        "ORDER BY event_date DESC NULLS LAST LIMIT $limit"
    ),
    "enterprise_risk_factors": (
        f"SELECT * FROM mart_credit_risk_factors WHERE entity_id = $entity_id AND {enterprise_in_scope()} "
        "ORDER BY points DESC"
    ),
    "district_abnormal_distribution": (
        "SELECT month, industry_section, industry_section_name, sum(listings) AS listings, "
        "sum(enterprises) AS enterprises, sum(still_listed) AS still_listed "
        f"FROM mart_abnormal_distribution WHERE division_code = $division_code AND {in_scope()} "
        "AND month BETWEEN $from_month AND $to_month GROUP BY ALL ORDER BY month, industry_section"
    ),
    "abnormal_by_district": (
        "SELECT division_code, district_name, sum(listings) AS listings, sum(still_listed) AS still_listed "
        f"FROM mart_abnormal_distribution WHERE month BETWEEN $from_month AND $to_month AND {in_scope()} "
        "GROUP BY ALL ORDER BY listings DESC"
    ),
    "top_warnings": (
        "SELECT warned_on, entity_id, uscc, name, district_name, from_level, to_level, score, reasons "
        f"FROM mart_risk_warnings WHERE warned_on >= $since AND is_current AND {in_scope()} "
        "ORDER BY to_level_rank DESC, warned_on DESC, score DESC LIMIT $limit"
    ),
    "risk_level_counts": (
        f"SELECT district_name, risk_level, count(*) AS enterprises FROM mart_credit_risk WHERE {in_scope()} "
        "GROUP BY ALL ORDER BY district_name, risk_level"
    ),
}

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
        f"WHERE warned_on >= $since AND {in_scope()} GROUP BY ALL ORDER BY warned_on, to_level_rank"
    ),
    "warnings_filtered": (
        "SELECT warned_on, uscc, name, district_name, industry_section, from_level, to_level, score, reasons, "
        "entity_id FROM mart_risk_warnings "
        f"WHERE warned_on >= $since AND is_current AND {in_scope()} "
        "AND ($district IS NULL OR district_name = $district) "
        "AND ($section IS NULL OR industry_section = $section) "
        "AND ($level IS NULL OR to_level = $level) "
        "ORDER BY to_level_rank DESC, warned_on DESC, score DESC LIMIT $limit"
    ),
    "risk_distribution": (
        "SELECT district_name, industry_section, risk_level, level_rank, count(*) AS enterprises "
        f"FROM mart_credit_risk WHERE {in_scope()} AND ($district IS NULL OR district_name = $district) "
        "AND ($section IS NULL OR industry_section = $section) "
        "AND ($level IS NULL OR risk_level = $level) GROUP BY ALL"
    ),
    "risk_levels": "SELECT level, level_rank, min_score, max_score FROM dim_risk_level ORDER BY level_rank",
    "districts": (
        f"SELECT DISTINCT district_name FROM mart_credit_risk WHERE district_name IS NOT NULL AND {in_scope()} "
        "ORDER BY district_name"
    ),
    # the districts of the city's enterprises (the codes a district officer is granted)
    "divisions": (
        "SELECT DISTINCT division_code, district_name FROM mart_enterprise_360 "
        f"WHERE division_code IS NOT NULL AND {in_scope()} ORDER BY division_code"
    ),
    "sections": "SELECT industry_section, industry_section_name FROM dim_industry_section ORDER BY industry_section",
    "abnormal_months": (
        "SELECT min(month) AS first_month, max(month) AS last_month FROM mart_abnormal_distribution "
        f"WHERE {in_scope()}"
    ),
    "abnormal_by_month_district": (
        "SELECT month, district_name, sum(listings) AS listings FROM mart_abnormal_distribution "
        f"WHERE month BETWEEN $from_month AND $to_month AND {in_scope()} GROUP BY ALL ORDER BY month"
    ),
    "abnormal_by_district_section": (
        "SELECT district_name, industry_section, sum(listings) AS listings, sum(still_listed) AS still_listed "
        f"FROM mart_abnormal_distribution WHERE month BETWEEN $from_month AND $to_month AND {in_scope()} "
        "GROUP BY ALL"
    ),
    "abnormal_by_reason": (
        "SELECT reason, sum(listings) AS listings FROM mart_abnormal_distribution "
        f"WHERE month BETWEEN $from_month AND $to_month AND {in_scope()} GROUP BY ALL ORDER BY listings DESC"
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
    "warnings_as_of": f"SELECT max(as_of_date) AS d FROM mart_risk_warnings WHERE {in_scope()}",
    "risk_as_of": f"SELECT max(as_of_date) AS d FROM mart_credit_risk WHERE {in_scope()}",
    "kpi_last_day": "SELECT max(day) AS d FROM mart_kpi_daily WHERE NOT is_forecast",
    "scorecard_last_period": "SELECT max(period) AS p FROM mart_department_scorecard WHERE grain = $grain",
    "abnormal_districts": (
        "SELECT DISTINCT district_name FROM mart_abnormal_distribution "
        f"WHERE district_name IS NOT NULL AND {in_scope()} ORDER BY 1"
    ),
    "abnormal_division_code": (
        "SELECT any_value(division_code) AS c FROM mart_abnormal_distribution "
        f"WHERE district_name = $district AND {in_scope()}"
    ),
    # 企业一档: the card by entity id, and the search steps after the contract's by-USCC and by-name lookups
    "enterprise_by_id": f"{_ENTERPRISE_CARD} WHERE entity_id = $entity_id AND {in_scope()}",
    **{
        f"enterprise_by_{column}": (
            f"SELECT {SEARCH_COLUMNS} FROM mart_enterprise_360 WHERE ({column} = $key "
            f"OR uscc = $key) AND {in_scope()} LIMIT $limit"
        )
        for column in ("regno", "org_code", "tin")
    },
    "enterprise_by_record_name": (
        f"SELECT {SEARCH_COLUMNS} FROM mart_enterprise_360 WHERE {in_scope()} AND entity_id IN "
        "(SELECT r.entity_id FROM mart_enterprise_records r JOIN mart_enterprise_360 e USING (entity_id) "
        "WHERE r.name = $name AND ($scope_all OR list_contains($scope_divisions, e.division_code)) "
        "LIMIT $limit) ORDER BY name"
    ),
    "enterprise_name_contains": (
        f"SELECT {SEARCH_COLUMNS} FROM mart_enterprise_360 WHERE (contains(name_comparison, $text) "
        f"OR contains(name, $text)) AND {in_scope()} ORDER BY length(name), name LIMIT $limit"
    ),
}


#: Every query by name: the contract's (scoped where they read a scoped table), then the pages' own.
QUERIES: dict[str, str] = {**DASHBOARD_QUERIES, **SCOPED_CONTRACT_QUERIES, **PAGE_QUERIES}
#: the scope's parameters, filled by :class:`dashboard.data.ScopedMarts` alone
SCOPE_PARAMETERS = ("scope_all", "scope_divisions", "masked")


def sql_of(name: str) -> str:
    """The SQL of a named query."""
    return QUERIES[name]


def parameters_of(name: str) -> frozenset[str]:
    """The ``$name`` parameters a query binds."""
    return frozenset(re.findall(r"\$([a-z_]+)", sql_of(name)))


_TABLE_RE = re.compile(r"\b(?:FROM|JOIN)\s+((?:mart|dim|meta)_\w+)", re.IGNORECASE)


def tables_of(name: str, *, with_scope: bool = False) -> frozenset[str]:
    """The marts tables a named query reads (what a page showing its rows should explain when they are empty);
    ``with_scope``: the table the scope predicate looks enterprises up in too."""
    sql = sql_of(name) if with_scope else sql_of(name).replace(enterprise_in_scope(), "")
    return frozenset(_TABLE_RE.findall(sql))
