"""The dashboard's queries on the marts file, by name, and the parameters each one takes."""

from __future__ import annotations

# --------------------------------------------------------------------------------------------------------
# the dashboard's queries ($name parameters; DuckDB: con.execute(sql, {"uscc": ...}))
# --------------------------------------------------------------------------------------------------------
DASHBOARD_QUERIES: dict[str, str] = {
    # 一企一档: the card of one enterprise by its USCC
    "enterprise_by_uscc": "SELECT * FROM mart_enterprise_360 WHERE uscc = $uscc",
    # 一企一档: search by name — names (or their comparison form, without region and legal form: 顺德实业 finds
    # 深圳市顺德实业有限公司) starting with the text, the exact name first (at most $limit rows). The range on
    # the sorted search_key is what makes it fast: the zone maps skip every other block.
    "enterprise_by_name": (
        "SELECT * FROM (SELECT DISTINCT entity_id, uscc, name, status, district_name, risk_level "
        "FROM mart_enterprise_search WHERE search_key >= $name AND search_key < $name || chr(1114111)) "
        "ORDER BY name <> $name, name LIMIT $limit"
    ),
    # the records and the timeline behind the card
    "enterprise_records": "SELECT * FROM mart_enterprise_records WHERE entity_id = $entity_id ORDER BY source_department, record_id",
    "enterprise_events": (
        "SELECT * FROM mart_enterprise_events WHERE entity_id = $entity_id "
        "ORDER BY event_date DESC NULLS LAST LIMIT $limit"
    ),
    "enterprise_risk_factors": "SELECT * FROM mart_credit_risk_factors WHERE entity_id = $entity_id ORDER BY points DESC",
    # 经营异常分布: one district, by month and industry section, between two months
    "district_abnormal_distribution": (
        "SELECT month, industry_section, industry_section_name, sum(listings) AS listings, "
        "sum(enterprises) AS enterprises, sum(still_listed) AS still_listed "
        "FROM mart_abnormal_distribution WHERE division_code = $division_code "
        "AND month BETWEEN $from_month AND $to_month GROUP BY ALL ORDER BY month, industry_section"
    ),
    # 经营异常分布: the whole city by district for a range of months (the map)
    "abnormal_by_district": (
        "SELECT division_code, district_name, sum(listings) AS listings, sum(still_listed) AS still_listed "
        "FROM mart_abnormal_distribution WHERE month BETWEEN $from_month AND $to_month "
        "GROUP BY ALL ORDER BY listings DESC"
    ),
    # 信用风险预警: the newest warnings at the highest levels
    "top_warnings": (
        "SELECT warned_on, entity_id, uscc, name, district_name, from_level, to_level, score, reasons "
        "FROM mart_risk_warnings WHERE warned_on >= $since AND is_current "
        "ORDER BY to_level_rank DESC, warned_on DESC, score DESC LIMIT $limit"
    ),
    # 信用风险: how many enterprises per level and district
    "risk_level_counts": (
        "SELECT district_name, risk_level, count(*) AS enterprises FROM mart_credit_risk GROUP BY ALL "
        "ORDER BY district_name, risk_level"
    ),
    # 报送考核: one department's scorecard rows ($grain 'day' or 'month'), newest first
    "department_scorecard": (
        "SELECT * FROM mart_department_scorecard WHERE department = $department AND grain = $grain "
        "AND period >= $since ORDER BY period DESC, asset = '*' DESC, asset"
    ),
}

#: Example parameters (the benchmark and the tests fill them from the data).
DASHBOARD_PARAMETERS: dict[str, tuple[str, ...]] = {
    "enterprise_by_uscc": ("uscc",),
    "enterprise_by_name": ("name", "limit"),
    "enterprise_records": ("entity_id",),
    "enterprise_events": ("entity_id", "limit"),
    "enterprise_risk_factors": ("entity_id",),
    "district_abnormal_distribution": ("division_code", "from_month", "to_month"),
    "abnormal_by_district": ("from_month", "to_month"),
    "top_warnings": ("since", "limit"),
    "risk_level_counts": (),
    "department_scorecard": ("department", "grain", "since"),
}
