"""一企一档: the enterprise marts — the dimensions, the working tables every mart shares, the detail tables
(every linked record, every event) and ``mart_enterprise_360``.

Why it is shaped so: every figure about an enterprise is an aggregate of its **events** (``int_events`` whose
subject record the gold crosswalk assigns to the enterprise), so ``mart_enterprise_events`` is built once,
stored ordered by entity, and both the 360 row and the risk factors aggregate it — the card and its detail
can never disagree. Insured headcount is not an event attribute: it is the enterprise records' reported monthly
``insured_headcount`` (any spec whose enterprise rows map it, e.g. an employer table with one row per account and
month), summed per enterprise and month (an enterprise with two accounts after a migration has both counted).
A city whose specs report no headcount gets it counted from the declared employment relations (``relations:``
of the specs: the distinct persons employed, in the reference month). Employee links (``insured_at``) come from
the same declared relations, never from a table known by name. The headcount rule is :mod:`models.headcount`
(the gold review queue ranks employers by it too).

Definitions (``as_of_date`` = the build's reference day R):
Events are read by **category** (``event_category``, :mod:`models.events`), never by a deployment's type name:
- penalties: the penalty family (``market_penalty``, ``environmental_penalty``, ``other_penalty``); the SAMR
  and environmental counts are the first two; the 12-month count is decided in (R − 12 months, R];
- court cases: ``court_case`` events by litigation role: plaintiff = 原告 or 申请执行人, defendant = 被告 or
  被执行人 (第三人 counts in neither; :data:`models.events.PLAINTIFF_ROLES`);
- defaulter: any ``judgment_default`` listing whose performance is not 全部履行;
- abnormal: ``abnormal_active`` = a listing on or before R not removed by R;
- tax rating: the latest ``tax_rating`` event by rating day; arrears: ``tax_arrears`` events (a department's
  list of current arrears);
- headcount: the latest contribution month's insured headcount; its trend compares it with the earliest month
  within the five before it (six monthly figures at most), ``change = latest / base − 1``;
- service cases: ``service_case`` events with the enterprise as applicant, 12-month count on (R − 12 months, R].
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from models.events import (
    DEFENDANT_ROLES,
    FULLY_PERFORMED,
    PENALTY_CATEGORIES,
    PLAINTIFF_ROLES,
    WORST_TAX_RATING,
)
from models.headcount import build_headcount, latest_headcount
from models.marts.common import MartContext, create_table, mart, q, sql_str
from models.marts.common import sql_in as _in

DATA = Path(__file__).resolve().parents[1] / "data"


def build_dimensions(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    divisions = sql_str(str(DATA / "divisions.csv"))
    sections = sql_str(str(DATA / "gbt4754_sections.csv"))
    n1 = create_table(
        con,
        "dim_division",
        f"""
        SELECT d.code AS division_code, d.name AS division_name, d.level, d.parent_code, p.name AS parent_name
        FROM read_csv({divisions}, all_varchar = true) d
        LEFT JOIN read_csv({divisions}, all_varchar = true) p ON p.code = d.parent_code""",
        "division_code",
    )
    n2 = create_table(
        con,
        "dim_industry_section",
        f"""
        SELECT section AS industry_section, name AS industry_section_name, first_division, last_division
        FROM read_csv({sections}, all_varchar = true)""",
        "industry_section",
    )
    return {"dim_division": n1, "dim_industry_section": n2}


def build_departments(ctx: MartContext) -> dict[str, int]:
    """``dim_department`` from the canonical ``int_departments``: the names the dashboard shows come from the
    deployment, never from code. Without the table (a lake built before it existed) it is empty, with a
    note: the dashboard then shows every department by its key."""
    if ctx.has("int_departments"):
        select = (
            "SELECT department, title, coalesce(short_title, department) AS name_zh FROM lake_int_departments"
        )
    else:
        ctx.notes["dim_department"] = "no silver/int_departments: empty (departments shown by key)"
        select = "SELECT * FROM (SELECT NULL AS department, NULL AS title, NULL AS name_zh) WHERE false"
    return {"dim_department": create_table(ctx.con, "dim_department", select, "department")}


def build_crosswalk(con: duckdb.DuckDBPyConnection) -> None:
    """The crosswalk split by kind (working tables every enterprise and person mart joins on)."""
    q(
        con,
        """CREATE OR REPLACE TEMP TABLE _xw_ent AS SELECT record_id, entity_id, source_department, source_asset,
              source_pk, role FROM lake_entity_crosswalk WHERE entity_type = 'enterprise'""",
    )
    q(
        con,
        """CREATE OR REPLACE TEMP TABLE _xw_per AS SELECT record_id, entity_id, source_department, source_asset,
              source_pk, role FROM lake_entity_crosswalk WHERE entity_type = 'person'""",
    )


def build_detail(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The enterprise events and records (detail marts)."""
    rows = {}
    rows["mart_enterprise_events"] = create_table(
        con,
        "mart_enterprise_events",
        """
        SELECT x.entity_id, e.event_id, e.event_type, e.event_category, e.event_date, e.end_date, e.amount, e.category, e.reference,
               e.status, e.source_department, e.source_asset, e.source_pk, e.subject_record_id
        FROM lake_int_events e JOIN _xw_ent x ON x.record_id = e.subject_record_id
        WHERE e.subject_kind = 'enterprise'""",
        "entity_id, event_date",
    )
    rows["mart_enterprise_records"] = create_table(
        con,
        "mart_enterprise_records",
        """
        SELECT x.entity_id, x.record_id, x.source_department, x.source_asset, x.source_table, x.source_pk, x.role,
               r.name, r.uscc, x.rule, x.match_probability, x.why
        FROM (SELECT * FROM lake_entity_crosswalk WHERE entity_type = 'enterprise') x
        LEFT JOIN (SELECT record_id, name, uscc FROM lake_int_enterprise_records) r
          ON r.record_id = x.record_id""",
        "entity_id, record_id",
    )
    return rows


def _run_headcount(ctx: MartContext) -> None:
    note = build_headcount(ctx.con, ctx.as_of)
    if note:
        ctx.notes["mart_enterprise_360.insured_headcount"] = note


def build_links(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Person-enterprise links: legal representative (a person mention declared ``related``: its related record is
    the enterprise it represents) and insured at (a person record's declared employment relation: its related
    record is the employer on the same row). Read from the canonical ``relation``, never from a role's name: a
    deployment calls its roles what it likes. ``_legal_rep_of``: the legal representative of each enterprise
    record (the golden record's ``legal_rep_from`` finds its person through it)."""
    q(
        con,
        """CREATE OR REPLACE TEMP TABLE _legal_rep_of AS
        SELECT p.related_record_id AS record_id, min(px.entity_id) AS person_id
        FROM (SELECT record_id, related_record_id FROM lake_int_person_records
              WHERE relation = 'legal_rep' AND related_record_id IS NOT NULL) p
        JOIN _xw_per px ON px.record_id = p.record_id
        GROUP BY ALL""",
    )
    q(
        con,
        """CREATE OR REPLACE TEMP TABLE _links AS
        SELECT px.entity_id AS person_id, ex.entity_id, 'legal_rep' AS relation,
               count(*)::INTEGER AS records, list(DISTINCT p.source_department ORDER BY p.source_department) AS departments
        FROM (SELECT record_id, related_record_id, source_department FROM lake_int_person_records
              WHERE relation = 'legal_rep' AND related_record_id IS NOT NULL) p
        JOIN _xw_per px ON px.record_id = p.record_id
        JOIN _xw_ent ex ON ex.record_id = p.related_record_id
        GROUP BY ALL
        UNION ALL
        SELECT px.entity_id, ex.entity_id, 'insured_at', count(*)::INTEGER, list(DISTINCT p.source_department)
        FROM (SELECT record_id, related_record_id, source_department FROM lake_int_person_records
              WHERE relation = 'employment' AND related_record_id IS NOT NULL) p
        JOIN _xw_per px ON px.record_id = p.record_id
        JOIN _xw_ent ex ON ex.record_id = p.related_record_id
        GROUP BY ALL""",
    )
    return {
        "mart_person_enterprise_links": create_table(
            con, "mart_person_enterprise_links", "SELECT * FROM _links", "person_id, entity_id"
        )
    }


def _registered(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    try:
        q(con, f"SELECT 1 FROM {name} LIMIT 0")
        return True
    except duckdb.Error:
        return False


def build_enterprise_360(con: duckdb.DuckDBPyConnection, ref: dt.date) -> dict[str, int]:
    r = f"DATE '{ref.isoformat()}'"
    penalty = f"event_category IN {_in(PENALTY_CATEGORIES)}"
    performed, worst = sql_str(FULLY_PERFORMED), sql_str(WORST_TAX_RATING)
    q(
        con,
        f"""CREATE OR REPLACE TEMP TABLE _agg AS SELECT entity_id,
        arg_max(category, event_date) FILTER (event_category = 'tax_rating' AND event_date <= {r}) AS tax_rating,
        max(event_date) FILTER (event_category = 'tax_rating' AND event_date <= {r}) AS tax_rating_on,
        count(*) FILTER (event_category = 'tax_rating' AND category = {worst}) AS tax_rating_d_count,
        count(*) FILTER (event_category = 'tax_arrears') AS tax_arrears_count,
        coalesce(sum(amount) FILTER (event_category = 'tax_arrears'), 0) AS tax_arrears_amount,
        max(event_date) FILTER (event_category = 'tax_arrears') AS tax_arrears_latest_on,
        count(*) FILTER ({penalty}) AS penalty_count,
        count(*) FILTER (event_category = 'market_penalty') AS penalty_market_count,
        count(*) FILTER (event_category = 'environmental_penalty') AS penalty_environmental_count,
        coalesce(sum(amount) FILTER ({penalty}), 0) AS penalty_amount,
        max(event_date) FILTER ({penalty}) AS penalty_latest_on,
        count(*) FILTER ({penalty} AND event_date > {r} - INTERVAL 12 MONTH
                         AND event_date <= {r}) AS penalty_count_12m,
        count(*) FILTER (event_category = 'abnormal_listing') AS abnormal_count,
        coalesce(bool_or(event_date <= {r} AND (end_date IS NULL OR end_date > {r}))
                 FILTER (event_category = 'abnormal_listing'), false) AS abnormal_active,
        max(event_date) FILTER (event_category = 'abnormal_listing') AS abnormal_latest_on,
        arg_max(category, event_date) FILTER (event_category = 'abnormal_listing') AS abnormal_latest_reason,
        count(*) FILTER (event_category = 'court_case' AND category IN {_in(PLAINTIFF_ROLES)}) AS court_plaintiff_count,
        count(*) FILTER (event_category = 'court_case' AND category IN {_in(DEFENDANT_ROLES)}) AS court_defendant_count,
        coalesce(sum(amount) FILTER (event_category = 'court_case' AND category IN {_in(DEFENDANT_ROLES)}), 0)
            AS court_defendant_amount,
        max(event_date) FILTER (event_category = 'court_case') AS court_latest_filed_on,
        count(*) FILTER (event_category = 'judgment_default' AND category IS DISTINCT FROM {performed}) AS defaulter_count,
        max(event_date) FILTER (event_category = 'judgment_default' AND category IS DISTINCT FROM {performed})
            AS defaulter_latest_on,
        count(*) FILTER (event_category = 'service_case') AS service_case_count,
        count(*) FILTER (event_category = 'service_case' AND event_date > {r} - INTERVAL 12 MONTH
                         AND event_date <= {r}) AS service_case_count_12m,
        max(event_date) FILTER (event_category = 'service_case') AS service_latest_on
      FROM mart_enterprise_events GROUP BY entity_id""",
    )
    latest_headcount(con)
    n = create_table(
        con,
        "mart_enterprise_360",
        f"""
        SELECT d.entity_id, d.uscc, d.name, d.name_comparison, d.is_branch, d.parent_entity_id, d.regno, d.org_code,
               d.tin, d.status, d.legal_rep_name, rep.person_id AS legal_rep_person_id, d.address, d.division_code,
               dv.division_name AS district_name, d.industry, d.industry_section, s.industry_section_name,
               d.founded_on, d.registered_capital_wan, d.records AS source_records, d.departments,
               a.tax_rating, a.tax_rating_on, coalesce(a.tax_rating_d_count, 0) AS tax_rating_d_count,
               coalesce(a.tax_arrears_count, 0) AS tax_arrears_count,
               coalesce(a.tax_arrears_amount, 0) AS tax_arrears_amount, a.tax_arrears_latest_on,
               coalesce(a.penalty_count, 0) AS penalty_count, coalesce(a.penalty_market_count, 0) AS penalty_market_count,
               coalesce(a.penalty_environmental_count, 0) AS penalty_environmental_count, coalesce(a.penalty_amount, 0) AS penalty_amount,
               a.penalty_latest_on, coalesce(a.penalty_count_12m, 0) AS penalty_count_12m,
               coalesce(a.abnormal_count, 0) AS abnormal_count, coalesce(a.abnormal_active, false) AS abnormal_active,
               a.abnormal_latest_on, a.abnormal_latest_reason,
               coalesce(a.court_plaintiff_count, 0) AS court_plaintiff_count,
               coalesce(a.court_defendant_count, 0) AS court_defendant_count,
               coalesce(a.court_defendant_amount, 0) AS court_defendant_amount, a.court_latest_filed_on,
               coalesce(a.defaulter_count, 0) > 0 AS is_defaulter, coalesce(a.defaulter_count, 0) AS defaulter_count,
               a.defaulter_latest_on,
               h.insured_headcount, h.insured_month, h.insured_headcount_base,
               CASE WHEN h.insured_headcount_base > 0
                    THEN h.insured_headcount / h.insured_headcount_base - 1 END AS insured_headcount_change,
               h.social_arrears_amount,
               coalesce(a.service_case_count, 0) AS service_case_count,
               coalesce(a.service_case_count_12m, 0) AS service_case_count_12m, a.service_latest_on,
               coalesce(cr.risk_score, 0) AS risk_score, coalesce(cr.risk_level, '低') AS risk_level,
               {r} AS as_of_date
        FROM lake_dim_enterprise d
        LEFT JOIN dim_division dv ON dv.division_code = d.division_code
        LEFT JOIN dim_industry_section s ON s.industry_section = d.industry_section
        LEFT JOIN _agg a ON a.entity_id = d.entity_id
        LEFT JOIN _hc_latest h ON h.entity_id = d.entity_id
        LEFT JOIN mart_credit_risk cr ON cr.entity_id = d.entity_id
        LEFT JOIN _legal_rep_of rep ON rep.record_id = d.legal_rep_from""",
        "uscc",
    )
    m = create_table(
        con,
        "mart_enterprise_search",
        """
        SELECT name AS search_key, entity_id, uscc, name, status, district_name, risk_level
        FROM mart_enterprise_360 WHERE name IS NOT NULL
        UNION ALL
        SELECT name_comparison, entity_id, uscc, name, status, district_name, risk_level
        FROM mart_enterprise_360 WHERE name_comparison IS NOT NULL AND name_comparison <> name""",
        "search_key",
    )
    return {"mart_enterprise_360": n, "mart_enterprise_search": m}


MARTS = (
    mart("dimensions", ("dim_division", "dim_industry_section"), (), lambda ctx: build_dimensions(ctx.con)),
    mart(
        "departments",
        ("dim_department",),
        ("int_departments",),
        lambda ctx: build_departments(ctx),
        optional=("int_departments",),
    ),
    mart("crosswalk", ("_xw_ent", "_xw_per"), ("entity_crosswalk",), lambda ctx: build_crosswalk(ctx.con)),
    mart(
        "enterprise_detail",
        ("mart_enterprise_events", "mart_enterprise_records"),
        ("int_events", "int_enterprise_records", "entity_crosswalk", "_xw_ent"),
        lambda ctx: build_detail(ctx.con),
    ),
    mart(
        "headcount",
        ("_headcount",),
        ("int_enterprise_records", "int_person_records", "_xw_ent", "_xw_per"),
        _run_headcount,
    ),
    mart(
        "person_enterprise_links",
        ("_links", "mart_person_enterprise_links", "_legal_rep_of"),
        ("int_person_records", "_xw_per", "_xw_ent"),
        lambda ctx: build_links(ctx.con),
    ),
    mart(
        "enterprise_360",
        ("mart_enterprise_360", "mart_enterprise_search"),
        (
            "dim_enterprise",
            "mart_enterprise_events",
            "_headcount",
            "_legal_rep_of",
            "dim_division",
            "dim_industry_section",
            "mart_credit_risk",
        ),
        lambda ctx: build_enterprise_360(ctx.con, ctx.as_of),
    ),
)
