"""A whole night scored against a simulated estate's truth: what the second-city test and bench assert and print.

The pipeline never reads the truth; this module reads both (the lake, the marts, the export packages of a night,
and the estate's ``truth/``) and measures, for any city shape:

- ``rows``: records lost — per source table, the rows the simulator wrote, bronze's live rows, silver's and the
  quarantine's (every quarantined row with a reason);
- ``mentions``: the truth's (record, role, entity) mentions without a canonical record, per source table and
  role, beside those whose row was quarantined;
- ``golden``: per true enterprise, the golden record its registry record resolved to: is its name the registry's
  current name (normalized as silver normalizes names) and its status the true one;
- ``marts``: ``mart_enterprise_360`` rows against the true number of enterprises, the enterprises with a non-zero
  insured (employment) headcount against the true employers of the tables declaring employment, and the golden
  enterprises no registry record resolved to (fragments), by the source tables of their records;
- ``exports``: each bureau's package of the night verified against its manifest;
- ``resolution``: pairwise precision / recall / F1 per kind (:func:`models.gold.evaluation.evaluate_gold`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from lake.delta import read_dataset
from lake.layout import bronze_path, quarantine_mentions_path, quarantine_rows_path, silver_path
from models.exports import load_entitlements, verify_package
from models.gold.build import read_gold
from models.gold.evaluation import evaluate_gold
from models.silver import read_silver
from models.standardize.names import enterprise_name
from simulator.estate import EstateState, load_truth
from simulator.shapes import city_tables, get_shape, registry_table


def _count(path: Path, live_only: bool = False) -> int:
    import pyarrow.dataset as pds

    ds = read_dataset(path)
    if ds is None:
        return 0
    return ds.count_rows(filter=pds.field("_qst_deleted_at").is_null()) if live_only else ds.count_rows()


def rows_accounted(estate: Path, home: Path) -> pl.DataFrame:
    """Per SQL source table: written by the simulator, live in bronze, in silver, quarantined (with a reason)."""
    state = EstateState.load(estate)
    builders, _ = city_tables(get_shape(state.city))
    out = []
    for key, (spec, _) in builders.items():
        dept, asset = spec.department, spec.asset
        q = read_dataset(quarantine_rows_path(home, dept, asset))
        no_reason = 0
        if q is not None:
            reasons = pl.from_arrow(q.to_table(columns=["reasons"])).to_series()
            no_reason = int((reasons.list.len().fill_null(0) == 0).sum())
        out.append(
            {
                "table": key,
                "source": state.rows.get(key, 0),
                "bronze": _count(bronze_path(home, dept, asset), live_only=True),
                "silver": _count(silver_path(home, f"stg_{dept}__{asset}")),
                "quarantined": _count(quarantine_rows_path(home, dept, asset)),
                "quarantined_without_reason": no_reason,
            }
        )
    return pl.DataFrame(out).with_columns(
        lost=(pl.col("source") - pl.col("bronze")).abs()
        + (pl.col("bronze") - pl.col("silver") - pl.col("quarantined")).abs()
        + pl.col("quarantined_without_reason")
    )


def _records(home: Path) -> pl.DataFrame:
    cols = ["record_id", "source_department", "source_table", "source_asset", "source_pk", "role"]
    return pl.concat(
        [
            read_silver(home, "int_enterprise_records", cols).with_columns(entity_type=pl.lit("enterprise")),
            read_silver(home, "int_person_records", cols).with_columns(entity_type=pl.lit("person")),
        ]
    )


def mentions_accounted(estate: Path, home: Path) -> pl.DataFrame:
    """Per source table, role and kind: the truth's mentions, those with a canonical record, those whose row is
    quarantined (the row, or the mention alone), and the rest (``missing``: lost without a word, or filed as the
    other kind: a party a mistyped key sent to the wrong canonical table)."""
    truth = load_truth(estate).collect()
    records = _records(home).select(
        department="source_department",
        table="source_table",
        pk="source_pk",
        role="role",
        entity_type="entity_type",
        found=pl.lit(True),
    )
    quarantined = []
    builders, _t = city_tables(get_shape(EstateState.load(estate).city))
    specs = {(s.department, s.name): s for s, _b in builders.values()}
    for (dept, table), _ in truth.group_by("department", "table"):
        spec = specs.get((str(dept), str(table)))
        if spec is None:
            continue
        q = read_dataset(quarantine_rows_path(home, spec.department, spec.asset))
        if q is not None:
            pks = pl.from_arrow(q.to_table(columns=["source_pk"])).to_series()
            quarantined.append(
                pl.DataFrame(
                    {"department": [str(dept)] * len(pks), "table": [str(table)] * len(pks), "pk": pks},
                    schema={"department": pl.Utf8, "table": pl.Utf8, "pk": pl.Utf8},
                ).with_columns(quarantined=pl.lit(True))
            )
    q_frame = (
        pl.concat(quarantined)
        if quarantined
        else pl.DataFrame(
            schema={"department": pl.Utf8, "table": pl.Utf8, "pk": pl.Utf8, "quarantined": pl.Boolean}
        )
    )
    keys = ["department", "table", "pk", "role", "entity_type"]
    joined = (
        truth.join(records.unique(keys), on=keys, how="left")
        .join(q_frame.unique(["department", "table", "pk"]), on=["department", "table", "pk"], how="left")
        .join(_quarantined_mentions(home), on=keys, how="left")
        .with_columns(quarantined=pl.col("quarantined").fill_null(pl.col("mention_quarantined")))
    )
    return (
        joined.group_by("department", "table", "role", "entity_type")
        .agg(
            truth=pl.len(),
            staged=pl.col("found").fill_null(False).sum(),
            quarantined=(pl.col("found").is_null() & pl.col("quarantined").fill_null(False)).sum(),
            missing=(pl.col("found").is_null() & pl.col("quarantined").is_null()).sum(),
        )
        .sort("department", "table", "role", "entity_type")
    )


def _quarantined_mentions(home: Path) -> pl.DataFrame:
    """The declared mentions staged rows could not give (lake/quarantine/mentions/<table>), keyed as the truth."""
    frames = []
    for table, kind in (("int_enterprise_records", "enterprise"), ("int_person_records", "person")):
        ds = read_dataset(quarantine_mentions_path(home, table))
        if ds is not None:
            cols = ["source_department", "source_table", "source_pk", "role"]
            frames.append(
                pl.from_arrow(ds.to_table(columns=cols))
                .rename({"source_department": "department", "source_table": "table", "source_pk": "pk"})
                .with_columns(entity_type=pl.lit(kind), mention_quarantined=pl.lit(True))
            )
    schema = dict.fromkeys(("department", "table", "pk", "role", "entity_type"), pl.Utf8)
    empty = pl.DataFrame(schema={**schema, "mention_quarantined": pl.Boolean})
    return pl.concat(frames).cast({**schema, "mention_quarantined": pl.Boolean}).unique() if frames else empty


def golden_accuracy(estate: Path, home: Path) -> dict[str, float | int]:
    """Per true enterprise with a registry record: the golden record that record resolved to, its name against
    the registry's current name and its status against the true one."""
    state = EstateState.load(estate)
    dept, table = registry_table(get_shape(state.city))
    truth = load_truth(estate).collect()
    reg = truth.filter(
        (pl.col("department") == dept) & (pl.col("table") == table) & (pl.col("role") == "subject")
    ).select("pk", true_id="entity_id")
    xw = read_gold(home, "entity_crosswalk", ["record_id", "entity_id", "source_department", "source_table"])
    recs = _records(home).filter(
        (pl.col("source_department") == dept)
        & (pl.col("source_table") == table)
        & (pl.col("role") == "subject")
    )
    dim = read_gold(home, "dim_enterprise", ["entity_id", "name", "status"])
    ents = pl.read_parquet(estate / "truth" / "enterprises" / "*.parquet").select(
        true_id="entity_id", true_name="name", true_status="status"
    )
    ents = ents.with_columns(true_name=enterprise_name(pl.col("true_name")).struct.field("normalized"))
    golden = (
        reg.join(recs.select("record_id", pk="source_pk"), on="pk")
        .join(xw.select("record_id", "entity_id"), on="record_id")
        .join(dim, on="entity_id")
        .unique("true_id")
    )
    scored = ents.join(golden, on="true_id", how="left")
    n = scored.height
    name_ok = int((scored["name"] == scored["true_name"]).fill_null(False).sum())
    status_ok = int((scored["status"] == scored["true_status"]).fill_null(False).sum())
    both = int(
        ((scored["name"] == scored["true_name"]) & (scored["status"] == scored["true_status"]))
        .fill_null(False)
        .sum()
    )
    return {
        "enterprises": n,
        "with_golden": int(scored["entity_id"].is_not_null().sum()),
        "name_ok": name_ok,
        "status_ok": status_ok,
        "name_and_status_ok": both,
        "name_share": name_ok / n if n else 1.0,
        "status_share": status_ok / n if n else 1.0,
        "share": both / n if n else 1.0,
    }


def marts_figures(estate: Path, home: Path) -> dict:
    """mart_enterprise_360 against the truth: rows, headcounts, and the fragments (golden enterprises no registry
    record resolved to) by the source tables of their records."""
    state = EstateState.load(estate)
    dept, table = registry_table(get_shape(state.city))
    true_enterprises = (
        pl.scan_parquet(estate / "truth" / "enterprises" / "*.parquet").select(pl.len()).collect().item()
    )
    truth = load_truth(estate).collect()
    true_employers = truth.filter(pl.col("role") == "employer")["entity_id"].n_unique()
    with duckdb.connect(str(home / "marts.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM mart_enterprise_360").fetchone()[0]
        with_headcount, headcount, with_rating, with_penalty = con.execute(
            "SELECT count(*) FILTER (WHERE insured_headcount > 0), coalesce(sum(insured_headcount), 0), "
            "count(*) FILTER (WHERE tax_rating IS NOT NULL), count(*) FILTER (WHERE penalty_count > 0) "
            "FROM mart_enterprise_360"
        ).fetchone()
    xw = read_gold(
        home, "entity_crosswalk", ["entity_id", "entity_type", "source_department", "source_table"]
    )
    ent = xw.filter(pl.col("entity_type") == "enterprise")
    registered = ent.filter((pl.col("source_department") == dept) & (pl.col("source_table") == table))[
        "entity_id"
    ]
    fragments = ent.filter(~pl.col("entity_id").is_in(registered.implode()))
    by_source = (
        fragments.group_by("source_department", "source_table")
        .agg(entities=pl.col("entity_id").n_unique(), records=pl.len())
        .sort("entities", descending=True)
    )
    return {
        "true_enterprises": true_enterprises,
        "mart_enterprise_360_rows": rows,
        "mart_excess_share": (rows - true_enterprises) / true_enterprises,
        "true_employers": true_employers,
        "with_headcount": with_headcount,
        "headcount": headcount,
        "with_tax_rating": with_rating,
        "with_penalty": with_penalty,
        "fragments": fragments["entity_id"].n_unique(),
        "fragments_by_source": by_source.to_dicts(),
    }


def exports_verified(home: Path, exports_yaml: Path, partition: str) -> dict[str, bool]:
    bureaus = load_entitlements(exports_yaml).bureaus
    return {b: verify_package(home / "exports" / b / partition).ok for b in bureaus}


def score_night(estate: Path, home: Path, exports_yaml: Path, partition: str) -> dict:
    """Every figure of the module docstring."""
    rows = rows_accounted(estate, home)
    mentions = mentions_accounted(estate, home)
    return {
        "rows": rows.to_dicts(),
        "records_lost": int(rows["lost"].sum()),
        "mentions": mentions.to_dicts(),
        "mentions_missing": int(mentions["missing"].sum()),
        "golden": golden_accuracy(estate, home),
        "marts": marts_figures(estate, home),
        "exports": exports_verified(home, exports_yaml, partition),
        "resolution": evaluate_gold(home, estate),
    }
