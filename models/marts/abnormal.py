"""经营异常分布: abnormal-operations listings (市场监管 T_JYYC_ML) by month listed, district, industry section and
reason — the map and the trend on the dashboard.

A listing is placed by its enterprise's **golden** division and industry (gold ``dim_enterprise``): the list
itself carries neither, and the golden record is the one answer every department agrees on. A listing whose
enterprise has no division is in the row with a null ``division_code`` and ``district_name`` 未知; one without a
listing day (kept by silver, not quarantined) has a null ``month``. ``removed`` / ``still_listed`` say what has
become of the month's listings by the reference day.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from models.marts.common import create_table, mart


def build_abnormal_distribution(con: duckdb.DuckDBPyConnection, ref: dt.date) -> dict[str, int]:
    r = f"DATE '{ref.isoformat()}'"
    n = create_table(
        con,
        "mart_abnormal_distribution",
        f"""
        SELECT date_trunc('month', e.event_date)::DATE AS month, d.division_code,
               coalesce(dv.division_name, '未知') AS district_name, d.industry_section, s.industry_section_name,
               e.category AS reason, count(*) AS listings, count(DISTINCT e.entity_id) AS enterprises,
               count(*) FILTER (e.end_date IS NOT NULL AND e.end_date <= {r}) AS removed,
               count(*) FILTER (e.end_date IS NULL OR e.end_date > {r}) AS still_listed
        FROM mart_enterprise_events e
        JOIN lake_dim_enterprise d ON d.entity_id = e.entity_id
        LEFT JOIN dim_division dv ON dv.division_code = d.division_code
        LEFT JOIN dim_industry_section s ON s.industry_section = d.industry_section
        WHERE e.event_category = 'abnormal_listing' AND (e.event_date IS NULL OR e.event_date <= {r})
        GROUP BY ALL""",
        "division_code, month",
    )
    return {"mart_abnormal_distribution": n}


MARTS = (
    mart(
        "abnormal",
        ("mart_abnormal_distribution",),
        ("mart_enterprise_events", "dim_enterprise", "dim_division", "dim_industry_section"),
        lambda ctx: build_abnormal_distribution(ctx.con, ctx.as_of),
    ),
)
