"""What an enterprise's insured headcount (参保人数) is: one rule, read by the marts (the 360 card, the risk factor
``headcount_falling``) and by the gold review queue (a large employer's borderline pair is reviewed first).

Why a module of its own, beside :mod:`models.events`: the figure is a definition, not a mart. The review queue is
built in gold, before the marts exist, and must rank employers by the same number the dashboard will show; a second
copy of the rule in gold would drift from the first the day a city's headcount is counted otherwise.

The rule, on a DuckDB connection that has the canonical tables registered as ``lake_int_enterprise_records`` and
``lake_int_person_records`` and the crosswalk split by kind as ``_xw_ent`` and ``_xw_per`` (``record_id,
entity_id``; the marts' working tables, or a subset of them):

- per enterprise and contribution month, the sum of the enterprise records' reported ``insured_headcount`` (an
  enterprise with two accounts after a migration has both counted);
- a city whose specs report no headcount gets it counted from the declared employment relations: the distinct
  persons employed, in the reference month;
- the trend base of each month is the earliest month within the five before it;
- an enterprise's headcount is its latest month's (:func:`latest_headcount`).
"""

from __future__ import annotations

import datetime as dt

import duckdb

#: The note a build reports when the headcount is counted from relations, not reported.
COUNTED_NOTE = "no spec reports insured_headcount: counted from the declared employment relations"


def _q(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> list[tuple]:
    """Run a statement to completion (DuckDB streams ``execute`` results: an open one owns the connection)."""
    return con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()


def build_headcount(con: duckdb.DuckDBPyConnection, ref: dt.date) -> str | None:
    """``_headcount``: monthly insured headcounts per enterprise (``entity_id, month, headcount, arrears,
    base_headcount, next_month``): the reported figures of the enterprise records, else (no record reports one) the
    persons of the declared employment relations counted in the reference month. Returns a note when the
    headcount is counted, not reported."""
    reported = _q(
        con,
        "SELECT count(*) FROM lake_int_enterprise_records WHERE contribution_month IS NOT NULL "
        "AND insured_headcount IS NOT NULL",
    )[0][0]
    note = None
    if reported:
        _q(
            con,
            """CREATE OR REPLACE TEMP TABLE _headcount AS
            SELECT x.entity_id, s.contribution_month AS month,
                   sum(s.insured_headcount)::BIGINT AS headcount, sum(s.contribution_arrears) AS arrears
            FROM (SELECT record_id, contribution_month, insured_headcount, contribution_arrears
                  FROM lake_int_enterprise_records
                  WHERE contribution_month IS NOT NULL AND contribution_month <= ?) s
            JOIN _xw_ent x ON x.record_id = s.record_id
            GROUP BY ALL""",
            [ref],
        )
    else:
        _q(
            con,
            """CREATE OR REPLACE TEMP TABLE _headcount AS
            SELECT ex.entity_id, date_trunc('month', ?::DATE)::DATE AS month,
                   count(DISTINCT px.entity_id)::BIGINT AS headcount, NULL::DECIMAL(18,2) AS arrears
            FROM (SELECT record_id, related_record_id FROM lake_int_person_records
                  WHERE relation = 'employment' AND related_record_id IS NOT NULL) p
            JOIN _xw_per px ON px.record_id = p.record_id
            JOIN _xw_ent ex ON ex.record_id = p.related_record_id
            GROUP BY ALL""",
            [ref],
        )
        note = COUNTED_NOTE
    # trend base: the earliest month within the five before each month
    _q(
        con,
        """CREATE OR REPLACE TEMP TABLE _headcount AS SELECT *,
                first_value(headcount) OVER w AS base_headcount,
                lead(month) OVER (PARTITION BY entity_id ORDER BY month) AS next_month
              FROM _headcount
              WINDOW w AS (PARTITION BY entity_id ORDER BY month
                           RANGE BETWEEN INTERVAL 5 MONTH PRECEDING AND CURRENT ROW)""",
    )
    return note


def latest_headcount(con: duckdb.DuckDBPyConnection) -> None:
    """``_hc_latest`` from ``_headcount``: per enterprise its latest month's headcount (``insured_headcount``), that
    month, the month's trend base and its social-insurance arrears."""
    _q(
        con,
        """CREATE OR REPLACE TEMP TABLE _hc_latest AS
        SELECT entity_id, arg_max(headcount, month) AS insured_headcount, max(month) AS insured_month,
               arg_max(base_headcount, month) AS insured_headcount_base,
               arg_max(arrears, month) AS social_arrears_amount
        FROM _headcount GROUP BY entity_id""",
    )
