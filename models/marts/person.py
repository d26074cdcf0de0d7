"""一人一档: one row per person (legal representatives, insured persons, parties, applicants, roster entries),
and the person-enterprise links.

Personal data (docs/domain/identifiers.md; GB/T 35273 §7.2; PIPL art. 28/51): the marts file is opened by many analysts
and copied into notebooks, so it holds **no full ID number and no full phone**. A person carries
``id_number_masked`` (first 6 + last 4: ``110105********002X``, hiding the birth date), ``phone_masked``
(``138****8000``), the birth year and sex (for statistics), and ``id_hash``: the lowercase hex HMAC-SHA256 of
the normalized ID (NFKC, trimmed, upper case — the normalization of the bureau exports,
``models/keyed_hash.py``, shared with the exports) keyed with the secret in ``QST_EXPORT_HMAC_KEY``. Equal IDs give equal hashes
in the marts and in every export, so an analyst can join or count persons without seeing a number, and nobody
without the key can enumerate IDs back from it. Without the secret ``id_hash`` is null (never a bare hash:
ID numbers are enumerable). The full ID stays in the lake's gold ``dim_person``, behind its access control.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from models.events import FULLY_PERFORMED
from models.keyed_hash import KEY_ENV, env_key, keyed_hashes
from models.marts.common import create_table, mart, q, sql_str

#: The secret's environment variable: the one of :mod:`models.keyed_hash` (kept here for ``qst demo``).
PII_KEY_ENV = KEY_ENV


def build_person(con: duckdb.DuckDBPyConnection, ref: dt.date) -> dict[str, int]:
    r = f"DATE '{ref.isoformat()}'"
    key = env_key()
    ids = con.sql("SELECT entity_id, id_number FROM lake_dim_person WHERE id_number IS NOT NULL").pl()
    hashes = keyed_hashes(ids.get_column("id_number").to_list(), key) if key else [None] * ids.height
    con.register(
        "_id_hash_frame", ids.select("entity_id").with_columns(pl.Series("id_hash", hashes, pl.Utf8))
    )
    q(con, "CREATE OR REPLACE TEMP TABLE _id_hash AS SELECT * FROM _id_hash_frame")
    con.unregister("_id_hash_frame")
    q(
        con,
        f"""CREATE OR REPLACE TEMP TABLE _pev AS
        SELECT p.entity_id,
               count(*) FILTER (e.event_category = 'judgment_default'
                                AND e.category IS DISTINCT FROM {sql_str(FULLY_PERFORMED)}) AS defaults,
               count(*) FILTER (e.event_category = 'court_case') AS court_cases,
               count(*) FILTER (e.event_category = 'insurance_enrollment') AS insured,
               count(*) FILTER (e.event_category = 'service_case') AS service_cases
        FROM lake_int_events e JOIN _xw_per p ON p.record_id = e.subject_record_id
        WHERE e.subject_kind = 'person' AND (e.event_date IS NULL OR e.event_date <= {r})
        GROUP BY ALL""",
    )
    q(
        con,
        """CREATE OR REPLACE TEMP TABLE _prep AS
        SELECT l.person_id, count(*) AS legal_rep_count, list(l.entity_id ORDER BY l.entity_id) AS ids,
               count(*) FILTER (cr.p_defaulter > 0) AS defaulting, count(*) FILTER (cr.level_rank >= 3) AS high_risk
        FROM mart_person_enterprise_links l LEFT JOIN mart_credit_risk cr ON cr.entity_id = l.entity_id
        WHERE l.relation = 'legal_rep' GROUP BY ALL""",
    )
    # on a roster: a record of the person comes from a table that declares a roster relation (relations:)
    q(
        con,
        """CREATE OR REPLACE TEMP TABLE _roster AS SELECT DISTINCT x.entity_id
        FROM (SELECT record_id FROM lake_int_person_records WHERE relation = 'roster') p
        JOIN _xw_per x ON x.record_id = p.record_id""",
    )
    n = create_table(
        con,
        "mart_person_360",
        f"""
        SELECT d.entity_id AS person_id, d.name,
               CASE WHEN length(d.id_number) >= 10
                    THEN left(d.id_number, 6) || repeat('*', length(d.id_number) - 10) || right(d.id_number, 4)
                    WHEN d.id_number IS NOT NULL THEN repeat('*', length(d.id_number)) END AS id_number_masked,
               h.id_hash, year(d.birth_date) AS birth_year, d.sex,
               CASE WHEN length(d.phone) >= 8
                    THEN left(d.phone, length(d.phone) - 8) || '****' || right(d.phone, 4)
                    WHEN d.phone IS NOT NULL THEN '****' END AS phone_masked,
               d.division_code, dv.division_name AS district_name, d.records AS source_records, d.departments,
               coalesce(rp.legal_rep_count, 0) AS legal_rep_count, coalesce(rp.ids, []) AS legal_rep_enterprise_ids,
               coalesce(rp.defaulting, 0) AS defaulting_enterprise_count,
               coalesce(rp.high_risk, 0) AS high_risk_enterprise_count,
               coalesce(ev.defaults, 0) > 0 AS is_defaulter, coalesce(ev.court_cases, 0) AS court_case_count,
               coalesce(ev.insured, 0) AS insured_record_count, coalesce(ev.service_cases, 0) AS service_case_count,
               ro.entity_id IS NOT NULL AS on_street_roster, {r} AS as_of_date
        FROM lake_dim_person d
        LEFT JOIN _id_hash h ON h.entity_id = d.entity_id
        LEFT JOIN dim_division dv ON dv.division_code = d.division_code
        LEFT JOIN _prep rp ON rp.person_id = d.entity_id
        LEFT JOIN _pev ev ON ev.entity_id = d.entity_id
        LEFT JOIN _roster ro ON ro.entity_id = d.entity_id""",
        "person_id",
    )
    return {"mart_person_360": n}


def _run(ctx) -> dict[str, int]:
    if env_key() is None:
        ctx.notes["mart_person_360.id_hash"] = f"{KEY_ENV} is not set: id_hash is null"
    return build_person(ctx.con, ctx.as_of)


MARTS = (
    mart(
        "person",
        ("mart_person_360",),
        (
            "dim_person",
            "int_events",
            "int_person_records",
            "_xw_per",
            "mart_person_enterprise_links",
            "mart_credit_risk",
            "dim_division",
        ),
        lambda ctx: _run(ctx),
    ),
)
