"""What a wrong link would cost, per entity: the figures by which the review queue ranks its items and that its
Chinese explanation quotes (:mod:`models.gold.review`).

Why these figures: a reviewer's hour is best spent where a wrong merge or a wrong split changes what the city
acts on. For an enterprise that is its **risk events** (风险事件: penalties, court cases, defaulter listings,
arrears, abnormal listings — :data:`models.events.RISK_CATEGORIES`, from the canonical ``int_events`` by the
crosswalk: the risk score and the bureaus' exports read them) and its **insured headcount** (a large employer's
golden record is read by the social-insurance and labour bureaus; the figure is the marts' own rule,
:mod:`models.headcount`, so the queue ranks by the number the dashboard shows). For a person it is the person's own
risk events, the risk events of the enterprises its records are tied to (a legal representative, an employee:
``related_record_id``), and its number of records (a person known to many departments).

Everything is computed for the entities of tonight's queue only (``wanted``), from tonight's crosswalk (gold is
being written: the marts do not exist yet), reading silver a few columns at a time: at 1M enterprises the queue's
entities are a few thousand of 14 million records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import duckdb
import polars as pl

from lake.delta import read_dataset
from lake.layout import silver_path
from models.events import RISK_CATEGORIES
from models.headcount import build_headcount, latest_headcount
from models.silver import scan_silver

#: The canonical events the consequence of a review item counts (a table the gold step reads: declared upstream of
#: it in pipelines/gold.py, so no worker resolves before it is built).
EVENTS_TABLE = "int_events"

SILVER = {"enterprise": "int_enterprise_records", "person": "int_person_records"}
#: The columns of each kind's consequence frame, beside ``entity_id``.
COLUMNS: dict[str, pl.Schema] = {
    "enterprise": pl.Schema({"records": pl.Int64(), "risk_events": pl.Int64(), "headcount": pl.Int64()}),
    "person": pl.Schema({"records": pl.Int64(), "risk_events": pl.Int64(), "tied_risk_events": pl.Int64()}),
}


def _subset(crosswalk: pl.DataFrame, entities: pl.Series) -> pl.DataFrame:
    return crosswalk.select("record_id", "entity_id").filter(pl.col("entity_id").is_in(entities.implode()))


def risk_events(home: Path, kind: str, crosswalk: pl.DataFrame) -> pl.DataFrame:
    """``entity_id, risk_events``: the risk events whose subject is a record of ``crosswalk`` (``record_id,
    entity_id``), counted per entity (entities without any are absent)."""
    events = (
        scan_silver(home, EVENTS_TABLE)
        .filter((pl.col("subject_kind") == kind) & pl.col("event_category").is_in(RISK_CATEGORIES))
        .select(record_id="subject_record_id")
        .collect()
    )
    return (
        events.join(crosswalk, on="record_id").group_by("entity_id").agg(risk_events=pl.len().cast(pl.Int64))
    )


def headcount(home: Path, enterprises: pl.DataFrame, persons: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """``entity_id, headcount``: each enterprise's insured headcount as of ``day`` by the marts' rule
    (:mod:`models.headcount`), for the enterprises of ``enterprises`` (``record_id, entity_id``); ``persons``: every
    person record's entity (the rule counts employed persons when no record reports a headcount)."""
    con = duckdb.connect()
    try:
        for name in ("int_enterprise_records", "int_person_records"):
            dataset = read_dataset(silver_path(home, name))
            if dataset is None:
                raise FileNotFoundError(f"silver table {name} does not exist under {home}")
            con.register(f"lake_{name}", dataset)
        con.register("_xw_ent", enterprises.to_arrow())
        con.register("_xw_per", persons.select("record_id", "entity_id").to_arrow())
        build_headcount(con, day)
        latest_headcount(con)
        frame = con.sql("SELECT entity_id, insured_headcount AS headcount FROM _hc_latest").pl()
    finally:
        con.close()
    return frame.cast({"entity_id": pl.Utf8, "headcount": pl.Int64})


def person_ties(home: Path, persons: pl.DataFrame, enterprises: pl.DataFrame) -> pl.DataFrame:
    """``entity_id, enterprise_id``: the enterprises the records of ``persons`` (``record_id, entity_id``) are tied
    to by a declared relation (``related_record_id``: the enterprise a legal representative represents, an
    employee's employer), by ``enterprises`` (every enterprise record's entity)."""
    related = (
        scan_silver(home, SILVER["person"])
        .filter(pl.col("related_record_id").is_not_null())
        .select("record_id", "related_record_id")
        .collect()
        .join(persons, on="record_id")
    )
    return (
        related.join(
            enterprises.select(related_record_id="record_id", enterprise_id="entity_id"),
            on="related_record_id",
        )
        .select("entity_id", "enterprise_id")
        .unique()
    )


def consequences(
    home: Path, crosswalks: Mapping[str, pl.DataFrame], wanted: Mapping[str, pl.Series], day: dt.date
) -> dict[str, pl.DataFrame]:
    """Per kind, ``entity_id`` and :data:`COLUMNS` for the ``wanted`` entities (every one, zeros where nothing
    counts; a headcount is null where none is known). ``crosswalks``: tonight's ``record_id, entity_id`` of every
    record, per kind."""
    home = Path(home)
    out: dict[str, pl.DataFrame] = {}
    ent_xw, per_xw = crosswalks["enterprise"], crosswalks["person"]
    ties = person_ties(home, _subset(per_xw, wanted["person"]), ent_xw)
    ent_ids = pl.concat([wanted["enterprise"], ties["enterprise_id"]]).unique()
    ent_sub = _subset(ent_xw, ent_ids)
    ent_risk = risk_events(home, "enterprise", ent_sub)
    ent_records = ent_sub.group_by("entity_id").agg(records=pl.len().cast(pl.Int64))
    base = wanted["enterprise"].unique().to_frame("entity_id")
    out["enterprise"] = (
        base.join(ent_records, on="entity_id", how="left")
        .join(ent_risk, on="entity_id", how="left")
        .join(
            headcount(
                home, ent_sub.filter(pl.col("entity_id").is_in(base["entity_id"].implode())), per_xw, day
            ),
            on="entity_id",
            how="left",
        )
        .with_columns(pl.col("records", "risk_events").fill_null(0))
    )
    per_sub = _subset(per_xw, wanted["person"])
    tied = (
        ties.join(ent_risk.rename({"entity_id": "enterprise_id"}), on="enterprise_id")
        .group_by("entity_id")
        .agg(tied_risk_events=pl.col("risk_events").sum().cast(pl.Int64))
    )
    out["person"] = (
        wanted["person"]
        .unique()
        .to_frame("entity_id")
        .join(per_sub.group_by("entity_id").agg(records=pl.len().cast(pl.Int64)), on="entity_id", how="left")
        .join(risk_events(home, "person", per_sub), on="entity_id", how="left")
        .join(tied, on="entity_id", how="left")
        .with_columns(pl.col("records", "risk_events", "tied_risk_events").fill_null(0))
    )
    return {k: f.select("entity_id", *COLUMNS[k]).cast(COLUMNS[k]) for k, f in out.items()}


def name_counts(home: Path, kind: str, names: pl.Series, crosswalk: pl.DataFrame) -> pl.DataFrame:
    """``name_comparison, name_records, name_entities``: how often each of ``names`` (the compared form of a name)
    occurs in the city — on how many of ``kind``'s records, and of how many of tonight's entities (``crosswalk``:
    every record's ``record_id, entity_id``). A name borne by 37 records of 12 enterprises says less about a pair
    than one borne by two records."""
    wanted = names.drop_nulls().unique()
    records = (
        scan_silver(home, SILVER[kind])
        .filter(pl.col("name_comparison").is_in(wanted.implode()))
        .select("record_id", "name_comparison")
        .collect()
    )
    return (
        records.join(crosswalk.select("record_id", "entity_id"), on="record_id", how="left")
        .group_by("name_comparison")
        .agg(
            name_records=pl.len().cast(pl.Int64),
            name_entities=pl.col("entity_id").n_unique().cast(pl.Int64),
        )
    )
