"""信用风险预警: an explainable credit risk score per enterprise, and warnings when an enterprise's level rises.

The score is the sum of the points of the **factors** that hold for an enterprise (:data:`FACTORS`, each with
the reason shown to the duty officer), capped at 100, and its **level** is the band of :data:`LEVELS`
(低 0–19, 中 20–39, 高 40–59, 极高 60–100). Points and bands are data: change them here and the docs, the
``dim_risk_factor`` / ``dim_risk_level`` tables and the marts follow.

Every factor is an **interval of days** during which it holds, derived from dated events only:

============================  ==================================================================================
abnormal_listed               listed in 经营异常名录: [listed, removed) — open while not removed
defaulter                     失信被执行人 (performance not 全部履行): [filed, ∞) — the list has no removal day
tax_rating_d                  纳税信用 D: [rated, the enterprise's next rating)
tax_arrears                   a 欠税 record (QS_XX lists current arrears): [arrears since, ∞)
recent_penalty                a penalty (any category of the penalty family): [decided, decided + 12 months)
lawsuit_defendant             court case as 被告/被执行人: [filed, filed + 24 months)
social_arrears                contribution arrears > 0 in a month: [month, next reported month or month + 3)
headcount_falling             insured headcount ≤ 70 % of the earliest of the five months before (base ≥ 3):
                              [month, next reported month or month + 3)
rep_linked_defaulter          the legal representative represents another enterprise that is a defaulter, or
                              is a defaulter in person: [the earliest such listing, ∞)
============================  ==================================================================================

Events without a day: state factors (defaulter, arrears, rating) count from 1970-01-01 (they are known to
hold, not since when); window factors (penalties, lawsuits) are left out (the window cannot be placed).
Events after the reference day R are ignored, so a rebuild as of an earlier day sees only what had happened.

**Warnings are computed from the events' dates, not from a persisted previous night.** Overlapping intervals
of one factor are merged; the score is then a step function of the day (+points where an interval starts,
−points where it ends), and a warning is each day on which the level rank rises. Why not compare with last
night's mart: it needs side state (principle 3: state is derived from committed data), it cannot be rebuilt
as of an earlier lake version, and a missed night would lose warnings. The cost: a late-arriving event (a
penalty recorded three days late) produces a warning dated on the event's day, in the past — the dashboard's
"top warnings" orders by level and day, and ``mart_risk_warnings.warned_on`` is the day the risk arose, which
is what an audit asks. Factors built on a department's current snapshot (arrears, defaulter's performance)
are as the snapshot says now, applied from their event day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from models.events import DEFENDANT_ROLES, FULLY_PERFORMED, PENALTY_CATEGORIES, WORST_TAX_RATING
from models.marts.common import create_table, mart, q, sql_str
from models.marts.common import sql_in as _in


@dataclass(frozen=True)
class Factor:
    """A risk factor. ``reads`` says which canonical facts it is computed from — event categories
    (:mod:`models.events`) or the enterprise records' reported columns — so that ``dim_risk_factor.source``
    names the tables of *this* deployment that feed it, never a city's table written here."""

    key: str
    points: int
    reason_zh: str
    rule_en: str
    categories: tuple[str, ...] = ()
    record_column: str | None = None


FACTORS: tuple[Factor, ...] = (
    Factor(
        "defaulter",
        30,
        "被列为失信被执行人",
        "listed as a judgment defaulter (performance not fully met)",
        categories=("judgment_default",),
    ),
    Factor(
        "abnormal_listed",
        20,
        "被列入经营异常名录且尚未移出",
        "on the abnormal-operations list, not removed",
        categories=("abnormal_listing",),
    ),
    Factor(
        "tax_rating_d", 20, "纳税信用等级为D级", "latest tax credit rating is D", categories=("tax_rating",)
    ),
    Factor(
        "rep_linked_defaulter",
        15,
        "法定代表人关联失信企业或本人失信",
        "legal representative also represents a defaulting enterprise, or is a defaulter",
        categories=("judgment_default",),
    ),
    Factor("tax_arrears", 10, "存在欠税记录", "has tax arrears", categories=("tax_arrears",)),
    Factor(
        "recent_penalty",
        10,
        "近12个月受到行政处罚",
        "administrative penalty in the last 12 months",
        categories=PENALTY_CATEGORIES,
    ),
    Factor(
        "lawsuit_defendant",
        10,
        "近24个月作为被告或被执行人涉诉",
        "defendant or subject to enforcement in a case filed in the last 24 months",
        categories=("court_case",),
    ),
    Factor(
        "social_arrears",
        10,
        "欠缴社会保险费",
        "social-insurance contribution arrears in a recent month",
        record_column="contribution_arrears",
    ),
    Factor(
        "headcount_falling",
        10,
        "参保人数明显下降（降幅≥30%）",
        "insured headcount fell by 30 % or more against the earliest of the five months before",
        record_column="insured_headcount",
    ),
)
NO_SOURCE = "本市未接入此类数据 / no source of this deployment"
#: (level, rank, lowest score, highest score)
LEVELS: tuple[tuple[str, int, int, int], ...] = (
    ("低", 1, 0, 19),
    ("中", 2, 20, 39),
    ("高", 3, 40, 59),
    ("极高", 4, 60, 100),
)
SCORE_CAP = 100
HEADCOUNT_DROP = 0.7  # falling: latest <= 70 % of base
HEADCOUNT_MIN_BASE = 3
OPEN_END = "DATE '9999-12-31'"


def level_sql(score: str) -> tuple[str, str]:
    """SQL CASE expressions giving the level and its rank of a score expression."""
    level = "CASE " + " ".join(
        f"WHEN {score} >= {lo} THEN {sql_str(name)}" for name, _, lo, _ in reversed(LEVELS)
    )
    rank = "CASE " + " ".join(f"WHEN {score} >= {lo} THEN {r}" for _, r, lo, _ in reversed(LEVELS))
    return level + " END", rank + " END"


def _factor_sources_sql(has_departments: bool) -> str:
    """``(factor, source)``: the deployment's tables that feed each factor, read from the canonical tables
    (events of the factor's categories; enterprise records reporting its column, or for the headcount the
    declared employment relations when no record reports one), each as '<department's short name> <table>', the
    table with the most rows first (an order that does not depend on what the deployment calls its tables)."""
    name = "coalesce(d.short_title, t.source_department)" if has_departments else "t.source_department"
    join = "LEFT JOIN lake_int_departments d ON d.department = t.source_department" if has_departments else ""
    parts = []
    for f in FACTORS:
        if f.categories:
            where = f"FROM lake_int_events WHERE event_category IN {_in(f.categories)}"
        else:
            where = f"FROM lake_int_enterprise_records WHERE {f.record_column} IS NOT NULL"
        parts.append(
            f"SELECT {sql_str(f.key)} AS factor, source_department, source_table, count(*) AS n {where} "
            "GROUP BY ALL"
        )
        if f.record_column == "insured_headcount":
            parts.append(
                f"SELECT {sql_str(f.key)}, source_department, source_table, count(*) FROM lake_int_person_records "
                "WHERE relation = 'employment' AND NOT EXISTS (SELECT 1 FROM lake_int_enterprise_records "
                "WHERE insured_headcount IS NOT NULL) GROUP BY ALL"
            )
    return (
        f"SELECT t.factor, string_agg({name} || ' ' || t.source_table, '；' ORDER BY t.n DESC, {name}, "
        f"t.source_table) AS source FROM ({' UNION ALL '.join(parts)}) t {join} GROUP BY t.factor"
    )


def build_risk(
    con: duckdb.DuckDBPyConnection, ref: dt.date, *, has_departments: bool = True
) -> dict[str, int]:
    r = f"DATE '{ref.isoformat()}'"
    values = ", ".join(
        f"({sql_str(f.key)}, {f.points}, {sql_str(f.reason_zh)}, {sql_str(f.rule_en)})" for f in FACTORS
    )
    rows = {
        "dim_risk_factor": create_table(
            con,
            "dim_risk_factor",
            f"""SELECT f.*, coalesce(s.source, {sql_str(NO_SOURCE)}) AS source
            FROM (VALUES {values}) AS f(factor, points, reason_zh, rule_en)
            LEFT JOIN ({_factor_sources_sql(has_departments)}) s ON s.factor = f.factor""",
            "points DESC, factor",
        )
    }
    lv = ", ".join(f"({sql_str(n)}, {k}, {lo}, {hi})" for n, k, lo, hi in LEVELS)
    rows["dim_risk_level"] = create_table(
        con,
        "dim_risk_level",
        f"SELECT * FROM (VALUES {lv}) AS t(level, level_rank, min_score, max_score)",
        "level_rank",
    )
    epoch = "DATE '1970-01-01'"
    performed, worst = sql_str(FULLY_PERFORMED), sql_str(WORST_TAX_RATING)
    q(
        con,
        f"""CREATE OR REPLACE TEMP TABLE _iv AS
        WITH ev AS (SELECT entity_id, event_category, event_date, end_date, amount, category FROM mart_enterprise_events
                    WHERE event_date IS NULL OR event_date <= {r}),
        ratings AS (SELECT entity_id, category, event_date AS s,
                           lead(event_date) OVER (PARTITION BY entity_id ORDER BY event_date) AS e
                    FROM ev WHERE event_category = 'tax_rating' AND event_date IS NOT NULL),
        defaults AS (SELECT entity_id, coalesce(event_date, {epoch}) AS s FROM ev
                     WHERE event_category = 'judgment_default' AND category IS DISTINCT FROM {performed}),
        person_defaults AS (
            SELECT p.entity_id AS person_id, min(coalesce(e.event_date, {epoch})) AS s
            FROM lake_int_events e JOIN _xw_per p ON p.record_id = e.subject_record_id
            WHERE e.subject_kind = 'person' AND e.event_category = 'judgment_default'
              AND e.category IS DISTINCT FROM {performed} AND (e.event_date IS NULL OR e.event_date <= {r})
            GROUP BY ALL),
        reps AS (SELECT DISTINCT person_id, entity_id FROM _links WHERE relation = 'legal_rep'),
        ent_default AS (SELECT entity_id, min(s) AS s FROM defaults GROUP BY ALL),
        rep_linked AS (
            SELECT a.entity_id, d.s FROM reps a JOIN reps b ON a.person_id = b.person_id AND a.entity_id <> b.entity_id
            JOIN ent_default d ON d.entity_id = b.entity_id
            UNION ALL
            SELECT a.entity_id, pd.s FROM reps a JOIN person_defaults pd ON pd.person_id = a.person_id),
        hc AS (SELECT *, coalesce(next_month, month + INTERVAL 3 MONTH)::DATE AS e FROM _headcount)
        SELECT entity_id, 'abnormal_listed' AS factor, event_date AS s, end_date AS e FROM ev
            WHERE event_category = 'abnormal_listing' AND event_date IS NOT NULL
        UNION ALL SELECT entity_id, 'defaulter', s, NULL FROM defaults
        UNION ALL SELECT entity_id, 'tax_rating_d', s, e FROM ratings WHERE category = {worst}
        UNION ALL SELECT entity_id, 'tax_arrears', coalesce(event_date, {epoch}), NULL FROM ev
            WHERE event_category = 'tax_arrears' AND coalesce(amount, 1) > 0
        UNION ALL SELECT entity_id, 'recent_penalty', event_date, (event_date + INTERVAL 12 MONTH)::DATE FROM ev
            WHERE event_category IN {_in(PENALTY_CATEGORIES)} AND event_date IS NOT NULL
        UNION ALL SELECT entity_id, 'lawsuit_defendant', event_date, (event_date + INTERVAL 24 MONTH)::DATE FROM ev
            WHERE event_category = 'court_case' AND category IN {_in(DEFENDANT_ROLES)} AND event_date IS NOT NULL
        UNION ALL SELECT entity_id, 'social_arrears', month, e FROM hc WHERE arrears > 0
        UNION ALL SELECT entity_id, 'headcount_falling', month, e FROM hc
            WHERE base_headcount >= {HEADCOUNT_MIN_BASE} AND headcount <= {HEADCOUNT_DROP} * base_headcount
        UNION ALL SELECT entity_id, 'rep_linked_defaulter', min(s), NULL FROM rep_linked GROUP BY entity_id""",
    )
    # merge overlapping intervals of one factor (gaps and islands); open end = 9999-12-31
    q(
        con,
        f"""CREATE OR REPLACE TEMP TABLE _ivm AS
        WITH a AS (SELECT entity_id, factor, s, coalesce(e, {OPEN_END}) AS e FROM _iv WHERE s <= {r}
                   AND coalesce(e, {OPEN_END}) > s),
        b AS (SELECT *, max(e) OVER (PARTITION BY entity_id, factor ORDER BY s, e
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_e FROM a),
        c AS (SELECT *, sum(CASE WHEN prev_e IS NULL OR s > prev_e THEN 1 ELSE 0 END)
                        OVER (PARTITION BY entity_id, factor ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island FROM b)
        SELECT c.entity_id, c.factor, min(s) AS s, max(e) AS e, any_value(f.points) AS points,
               any_value(f.reason_zh) AS reason_zh
        FROM c JOIN dim_risk_factor f ON f.factor = c.factor GROUP BY c.entity_id, c.factor, island""",
    )
    rows["mart_credit_risk_factors"] = create_table(
        con,
        "mart_credit_risk_factors",
        f"""
        SELECT entity_id, factor, points, reason_zh, s AS since, CASE WHEN e < {OPEN_END} THEN e END AS until
        FROM _ivm WHERE s <= {r} AND e > {r}""",
        "entity_id, points DESC",
    )
    # the score as a step function of the day, and the days its level rose
    lvl, rank = level_sql(f"least({SCORE_CAP}, raw)")
    q(
        con,
        f"""CREATE OR REPLACE TEMP TABLE _timeline AS
        WITH d AS (SELECT entity_id, s AS day, points AS delta FROM _ivm
                   UNION ALL SELECT entity_id, e, -points FROM _ivm WHERE e <= {r}),
        g AS (SELECT entity_id, day, sum(delta) AS delta FROM d GROUP BY ALL),
        c AS (SELECT entity_id, day, sum(delta) OVER (PARTITION BY entity_id ORDER BY day
                                                      ROWS UNBOUNDED PRECEDING) AS raw FROM g)
        SELECT entity_id, day, least({SCORE_CAP}, raw)::INTEGER AS score, {lvl} AS level, {rank} AS level_rank,
               lag({rank}, 1, 1) OVER (PARTITION BY entity_id ORDER BY day) AS prev_rank
        FROM c""",
    )
    q(
        con,
        """CREATE OR REPLACE TEMP TABLE _current AS
        SELECT entity_id, sum(points) AS raw, list(factor ORDER BY points DESC, factor) AS factors,
               string_agg(reason_zh, '；' ORDER BY points DESC, factor) AS reasons, count(*) AS factor_count,
"""
        + ",\n".join(
            f"               coalesce(max(points) FILTER (factor = '{f.key}'), 0) AS p_{f.key}"
            for f in FACTORS
        )
        + " FROM mart_credit_risk_factors GROUP BY entity_id",
    )
    q(
        con,
        """CREATE OR REPLACE TEMP TABLE _since AS SELECT entity_id, max(day) AS level_since FROM _timeline
              WHERE level_rank <> prev_rank GROUP BY entity_id""",
    )
    lvl0, rank0 = level_sql(f"least({SCORE_CAP}, coalesce(c.raw, 0))")
    pcols = ", ".join(f"coalesce(c.p_{f.key}, 0) AS p_{f.key}" for f in FACTORS)
    rows["mart_credit_risk"] = create_table(
        con,
        "mart_credit_risk",
        f"""
        SELECT d.entity_id, d.uscc, d.name, d.division_code, dv.division_name AS district_name, d.industry_section,
               least({SCORE_CAP}, coalesce(c.raw, 0)) AS risk_score, {lvl0} AS risk_level, {rank0} AS level_rank,
               CASE WHEN coalesce(c.raw, 0) >= {LEVELS[1][2]} THEN sn.level_since END AS level_since,
               coalesce(c.factor_count, 0) AS factor_count, coalesce(c.factors, []) AS factors,
               coalesce(c.reasons, '') AS reasons, {pcols}, {r} AS as_of_date
        FROM lake_dim_enterprise d
        LEFT JOIN _current c ON c.entity_id = d.entity_id
        LEFT JOIN _since sn ON sn.entity_id = d.entity_id
        LEFT JOIN dim_division dv ON dv.division_code = d.division_code""",
        "entity_id",
    )
    rows["mart_risk_warnings"] = create_table(
        con,
        "mart_risk_warnings",
        f"""
        WITH w AS (SELECT * FROM _timeline WHERE level_rank > prev_rank),
        why AS (SELECT w.entity_id, w.day, string_agg(m.reason_zh, '；' ORDER BY m.points DESC, m.factor) AS reasons
                FROM w JOIN _ivm m ON m.entity_id = w.entity_id AND m.s <= w.day AND m.e > w.day GROUP BY ALL)
        SELECT w.entity_id, cr.uscc, cr.name, cr.division_code, cr.district_name, cr.industry_section,
               w.day AS warned_on, (SELECT level FROM dim_risk_level WHERE level_rank = w.prev_rank) AS from_level,
               w.level AS to_level, w.level_rank AS to_level_rank, w.score, why.reasons,
               cr.level_rank >= w.level_rank AS is_current, {r} AS as_of_date
        FROM w JOIN mart_credit_risk cr ON cr.entity_id = w.entity_id
        LEFT JOIN why ON why.entity_id = w.entity_id AND why.day = w.day""",
        "warned_on DESC, to_level_rank DESC",
    )
    return rows


MARTS = (
    mart(
        "risk",
        (
            "dim_risk_factor",
            "dim_risk_level",
            "mart_credit_risk_factors",
            "mart_credit_risk",
            "mart_risk_warnings",
        ),
        (
            "dim_enterprise",
            "int_events",
            "int_enterprise_records",
            "int_person_records",
            "mart_enterprise_events",
            "_xw_per",
            "_links",
            "_headcount",
            "dim_division",
            "int_departments",
        ),
        lambda ctx: build_risk(ctx.con, ctx.as_of, has_departments=ctx.has("int_departments")),
        optional=("int_departments",),
    ),
)
