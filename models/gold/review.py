"""The reviewers' decisions, which every later run honours (what a reviewer is shown: :mod:`models.gold.queue`).

A pair is borderline when the model is unsure: its match probability lies between the review threshold and
the match threshold, or it cleared the match threshold but would have bridged two groups that each have
evidence of their own (the engine's ambiguity guard, :mod:`models.resolution.probabilistic`). The queue shows
one item per pair of entities, both representative records side by side, and the reviewer records a decision
about those two records:

* ``must_link`` — the two records are one entity (every later run joins their clusters);
* ``cannot_link`` — they are two entities (every later run keeps them apart, unless a validated identifier says
  they are one: an identifier outranks a reviewer, and the run reports the conflict).

Why by record, not by entity id: record ids are the source's keys (``<department>.<asset>:<key>:<role>``) and
stay the same night after night, while an entity id can be retired by the very merge a decision causes. So a
decision holds on every later night, whatever the ids become, and the queue maps it to tonight's entities.

Decisions are kept in a Delta table (``HOME/lake/review/decisions``) apart from gold, which is rebuilt every
night: appended, never edited; the latest decision on a pair (in either order) is the one in force, so a
reviewer can change their mind and the trail of who decided what, when and why stays.
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
