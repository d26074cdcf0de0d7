"""The review queue of borderline pairs, and the reviewers' decisions that the next run honours.

A pair is borderline when the model is unsure: its match probability lies between the review threshold and
the match threshold, or it cleared the match threshold but would have bridged two groups that each have
evidence of their own (the engine's ambiguity guard, :mod:`models.resolution.probabilistic`). A reviewer sees
both records side by side with the comparison levels and weight, and records a decision:

* ``must_link`` — the two records are one entity (the next run joins their clusters);
* ``cannot_link`` — they are two entities (the next run keeps them apart, unless a validated identifier says
  they are one: an identifier outranks a reviewer, and the run reports the conflict).

Decisions are kept in a Delta table (``HOME/lake/review/decisions``), appended, never edited: the latest
decision on a pair (in either order) is the one in force, so a reviewer can change their mind and the trail
of who decided what, when and why stays.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from lake.delta import append, read_frame
from lake.layout import decisions_path

DECISIONS = ("must_link", "cannot_link")
DECISION_SCHEMA = pl.Schema(
    {
        "entity_type": pl.Utf8(),
        "record_id_l": pl.Utf8(),
        "record_id_r": pl.Utf8(),
        "decision": pl.Utf8(),
        "reviewer": pl.Utf8(),
        "note": pl.Utf8(),
        "decided_at": pl.Datetime("us", "UTC"),
    }
)
#: What a reviewer sees of each side, per kind (canonical columns).
SHOWN = {
    "enterprise": (
        "name",
        "uscc",
        "uscc_status",
        "regno",
        "tin",
        "address",
        "division_code",
        "phone",
        "legal_rep_name",
        "status",
    ),
    "person": (
        "name",
        "id_number",
        "id_number_status",
        "id_number_birth_date",
        "phone",
        "address",
        "division_code",
        "employer_name",
    ),
}


def record_decision(
    home: Path,
    entity_type: str,
    left: str,
    right: str,
    decision: str,
    reviewer: str,
    note: str = "",
    known_records: set[str] | None = None,
) -> dict:
    """Append one decision; ``known_records`` (when given) must contain both record ids."""
    if entity_type not in ("enterprise", "person"):
        raise ValueError(f"entity type must be enterprise or person, not {entity_type!r}")
    decision = decision.replace("-", "_")
    if decision not in DECISIONS:
        raise ValueError(f"decision must be must-link or cannot-link, not {decision!r}")
    if left == right:
        raise ValueError("a decision needs two different records")
    if not reviewer.strip():
        raise ValueError("say who decided (--by)")
    if known_records is not None:
        missing = [r for r in (left, right) if r not in known_records]
        if missing:
            raise ValueError(
                f"no {entity_type} record {', '.join(missing)} in the lake (record ids look like "
                "<department>.<asset>:<source key>:<role>, see qst review list)"
            )
    row = {
        "entity_type": entity_type,
        "record_id_l": left,
        "record_id_r": right,
        "decision": decision,
        "reviewer": reviewer.strip(),
        "note": note,
        "decided_at": dt.datetime.now(dt.UTC),
    }
    frame = pl.DataFrame([row], schema=DECISION_SCHEMA)
    append(decisions_path(home), frame)
    return row


def open_pairs(queue: pl.DataFrame) -> pl.DataFrame:
    """The pairs of the review queue a person still has to look at: undecided, and still two entities (a pair
    whose records ended in one entity anyway needs no decision)."""
    return queue.filter(~pl.col("same_entity") & pl.col("decision").is_null())


def read_decisions(home: Path, entity_type: str | None = None) -> pl.DataFrame:
    """The decisions in force: the latest per unordered pair (``record_id_l < record_id_r`` afterwards)."""
    frame = read_frame(decisions_path(home))
    if frame is None:
        return pl.DataFrame(schema=DECISION_SCHEMA)
    if entity_type is not None:
        frame = frame.filter(pl.col("entity_type") == entity_type)
    lo = pl.min_horizontal("record_id_l", "record_id_r")
    hi = pl.max_horizontal("record_id_l", "record_id_r")
    return (
        frame.with_columns(record_id_l=lo, record_id_r=hi)
        .sort("decided_at")
        .group_by("entity_type", "record_id_l", "record_id_r", maintain_order=True)
        .last()
        .select(list(DECISION_SCHEMA))
        .sort("entity_type", "record_id_l", "record_id_r")
    )


def review_queue(
    pairs: pl.DataFrame,
    records: pl.DataFrame,
    ids: pl.DataFrame,
    kind: str,
    decisions: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The pairs a reviewer should look at (statuses ``review`` and ``ambiguous``, and pairs already decided,
    so the reviewer sees what their decision did), most uncertain first: both records' attributes side by side
    (``l_name``, ``r_name`` ...), both records' entity ids tonight, the probability, weight and comparison
    levels, and the decision in force."""
    shown = [c for c in SHOWN[kind] if c in records.columns]
    queue = pairs.filter(pl.col("status").is_in(["review", "ambiguous", "must_link", "cannot_link"]))
    side = records.select("record_id", *shown).join(
        ids.select("record_id", "entity_id"), on="record_id", how="left"
    )
    for s in ("l", "r"):
        queue = queue.join(
            side.rename({c: f"{s}_{c}" for c in side.columns if c != "record_id"}).rename(
                {"record_id": f"record_id_{s}"}
            ),
            on=f"record_id_{s}",
            how="left",
        )
    lo = pl.min_horizontal("record_id_l", "record_id_r")
    hi = pl.max_horizontal("record_id_l", "record_id_r")
    queue = queue.with_columns(pair_l=lo, pair_r=hi)
    if decisions is not None and decisions.height:
        queue = queue.join(
            decisions.filter(pl.col("entity_type") == kind).select(
                pair_l="record_id_l",
                pair_r="record_id_r",
                decision="decision",
                reviewer="reviewer",
                decided_at="decided_at",
            ),
            on=["pair_l", "pair_r"],
            how="left",
        )
    else:
        queue = queue.with_columns(
            decision=pl.lit(None, pl.Utf8),
            reviewer=pl.lit(None, pl.Utf8),
            decided_at=pl.lit(None, pl.Datetime("us", "UTC")),
        )
    return (
        queue.drop("pair_l", "pair_r")
        .with_columns(
            entity_type=pl.lit(kind),
            same_entity=pl.col("l_entity_id") == pl.col("r_entity_id"),
            uncertainty=(pl.col("match_probability") - 0.5).abs(),
        )
        .sort(["uncertainty", "record_id_l", "record_id_r"])
        .drop("uncertainty")
    )
