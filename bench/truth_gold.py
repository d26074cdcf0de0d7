"""A stand-in gold layer built from the simulator's truth, for benchmarking the marts when entity resolution
cannot run on a large estate (it is being changed, or needs more memory than the machine has).

    .venv/bin/python bench/truth_gold.py --home /tmp/m100k --estate /work/scratch/e100000/estate

Writes ``HOME/lake/gold/{entity_crosswalk,dim_enterprise,dim_person}`` with the columns the marts read: every
canonical record gets its true entity id (perfect resolution), the golden record is the entity's SAMR
registration (else its taxpayer record, else any). Benchmarks only — the pipeline's gold is models/gold.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
from deltalake import DeltaTable, write_deltalake


def build(home: Path, estate: Path) -> None:
    con = duckdb.connect()
    for name in ("int_enterprise_records", "int_person_records"):
        con.register(name, DeltaTable(str(home / "lake" / "silver" / name)).to_pyarrow_dataset())
    con.execute(
        f"CREATE TABLE truth AS SELECT * FROM read_parquet('{estate}/truth/records/*.parquet')"
    ).fetchall()
    xw = """
      SELECT r.record_id, t.entity_type, coalesce(t.entity_id, 'X' || r.record_id) AS entity_id, r.source_department,
             r.source_asset, r.source_table, r.source_pk, r.role, 'truth' AS rule, 1.0 AS match_probability,
             1.0 AS match_weight, NULL::VARCHAR AS levels, 'simulator truth (benchmark stand-in)' AS why
      FROM {table} r LEFT JOIN truth t ON t.department = r.source_department AND t."table" = r.source_table
           AND t.pk = r.source_pk AND t.role = r.role AND t.entity_type = '{kind}'"""
    con.execute(
        "CREATE TABLE xw AS "
        + xw.format(table="int_enterprise_records", kind="enterprise").replace(
            "t.entity_type,", "'enterprise' AS entity_type,"
        )
        + " UNION ALL "
        + xw.format(table="int_person_records", kind="person").replace(
            "t.entity_type,", "'person' AS entity_type,"
        )
    ).fetchall()
    prio = "CASE WHEN r.source_asset = 'registrations' THEN 0 WHEN r.source_asset = 'taxpayers' THEN 1 ELSE 2 END"
    con.execute(f"""CREATE TABLE dim_enterprise AS
        WITH j AS (SELECT x.entity_id, r.*, {prio} AS prio FROM int_enterprise_records r
                   JOIN xw x ON x.record_id = r.record_id AND x.entity_type = 'enterprise'),
        agg AS (SELECT entity_id, count(*) AS records, list(DISTINCT source_department ORDER BY source_department)
                AS departments FROM j GROUP BY ALL),
        best AS (SELECT * FROM j QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY prio, record_id) = 1)
        SELECT b.entity_id, b.name, b.name_comparison, coalesce(b.name_is_branch, false) AS is_branch,
               NULL::VARCHAR AS parent_entity_id, b.uscc, b.regno, b.link_org_code AS org_code, b.tin,
               b.status, b.legal_rep_name, b.legal_rep_id_number, b.record_id AS legal_rep_from, b.address,
               b.division_code, b.phone, b.industry, b.industry_section, b.founded_on, b.registered_capital_wan,
               a.records, a.departments
        FROM best b JOIN agg a USING (entity_id)""").fetchall()
    con.execute("""CREATE TABLE dim_person AS
        WITH j AS (SELECT x.entity_id, r.* FROM int_person_records r
                   JOIN xw x ON x.record_id = r.record_id AND x.entity_type = 'person'),
        agg AS (SELECT entity_id, count(*) AS records, list(DISTINCT source_department ORDER BY source_department)
                AS departments FROM j GROUP BY ALL),
        best AS (SELECT * FROM j QUALIFY row_number() OVER (PARTITION BY entity_id
                 ORDER BY id_number_status = 'valid' DESC, record_id) = 1)
        SELECT b.entity_id, b.name, b.name_comparison, b.id_number, b.id_number_birth_date AS birth_date,
               b.id_number_sex AS sex, b.phone, b.address, b.division_code, a.records, a.departments
        FROM best b JOIN agg a USING (entity_id)""").fetchall()
    for name, table in (
        ("entity_crosswalk", "xw"),
        ("dim_enterprise", "dim_enterprise"),
        ("dim_person", "dim_person"),
    ):
        path = home / "lake" / "gold" / name
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(str(path), con.sql(f"SELECT * FROM {table}").to_arrow_table())
        print(name, con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--estate", required=True, type=Path)
    args = parser.parse_args()
    t0 = time.perf_counter()
    build(args.home, args.estate)
    print(f"truth gold in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
