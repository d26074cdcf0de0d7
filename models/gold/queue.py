"""The review queue: what a reviewer is shown each morning, one item per pair of tonight's entities, the items
whose decision matters most first, each explained in Chinese.

Why items, not record pairs. Splink scores pairs of *records* (of profiles, named by a representative record), so
one borderline question — are these two enterprises one? — arrives as many pairs: the registry's and the tax
bureau's copies of one enterprise each against a court party's record, or pairs whose two records ended in one
entity anyway (another pair, the name pass or a key linked them). At 1M enterprises that made a queue of 431,071
record pairs (119,879 after the name pass) no team could work; as items it is 0.3 % of the golden enterprises and
0.5 % of the persons (docs/benchmarks.md). A reviewer decides about two *entities*, so:

* the record pairs of the review band, the pairs the ambiguity guard or a key conflict held back, and the pairs a
  decision touched are collapsed into one item per pair of tonight's entities; the strongest pair stands for the
  item (its records, levels and probability are shown; ``pairs`` counts the pairs behind it);
* an item whose two sides are one entity tonight is dropped (no decision is needed), unless a decision is in
  force on it (the reviewer sees what their decision did: ``same_entity``);
* an item between two entities that each hold a validated key (two different USCCs, two resident IDs) is dropped:
  no decision can change its golden records (a must-link is refused, a cannot-link changes nothing), so asking
  would waste the reviewer's time;
* an item a decision covers (any decision in force whose records lie in its two entities, mapped through
  tonight's crosswalk, so a decision keeps covering its entities as records come and go) is no longer open: it
  stays in the table with the decision, for ``qst review list --all``.

Ranked by consequence (:mod:`models.gold.consequence`), then by uncertainty. Enterprises: those with risk events
first, then by insured headcount's order of magnitude (a 1,200-person employer before a 150-person one, but
two employers of a few hundred are not told apart by headcount alone), then by the number of risk events. Persons:
those with risk events of their own or of the enterprises they are tied to first, then by their number of records.
Then, in both, the most uncertain first: the match weight nearest the link threshold's (the pair the model is
least sure which side of the line it belongs on). Items that share an entity are one question and are shown
together, at the place of the most consequential (``group``, ``group_items``: :func:`_grouped`); ``rank`` numbers
the open items 1, 2 ... in the order shown.
"""

from __future__ import annotations

import math

import polars as pl

from models.gold.explain import explain

#: Pair statuses that can make an item (see :class:`models.resolution.probabilistic.Resolution`).
QUEUED = ("review", "ambiguous", "must_link", "cannot_link")
_SIDE = {"l": "record_id_l", "r": "record_id_r"}


def open_items(queue: pl.DataFrame) -> pl.DataFrame:
    """The items a person still has to look at: undecided, and still two entities."""
    return queue.filter(~pl.col("same_entity") & pl.col("decision").is_null())


def open_groups(queue: pl.DataFrame) -> int:
    """How many questions the open items make: their groups (items sharing an entity, :func:`_grouped`), each
    kind's counted apart."""
    return open_items(queue).select(pl.struct("entity_type", "group").n_unique()).item()


def _pair_key(a: str, b: str) -> list[pl.Expr]:
    """The unordered key of a pair of entities (which side is which does not matter)."""
    return [pl.min_horizontal(a, b).alias("__a"), pl.max_horizontal(a, b).alias("__b")]


def _decided_items(decisions: pl.DataFrame | None, ent: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Per pair of tonight's entities the latest decision in force on any two of their records: ``__a, __b``
    (:func:`_pair_key`), the decided records and their entities, the decision."""
    schema = pl.Schema(
        {
            "__a": pl.Utf8(),
            "__b": pl.Utf8(),
            "decided_l": pl.Utf8(),
            "decided_r": pl.Utf8(),
            "decided_l_entity": pl.Utf8(),
            "decided_r_entity": pl.Utf8(),
            "decision": pl.Utf8(),
            "reviewer": pl.Utf8(),
            "decided_at": pl.Datetime("us", "UTC"),
        }
    )
    if decisions is None or decisions.height == 0:
        return pl.DataFrame(schema=schema)
    mapped = (
        decisions.filter(pl.col("entity_type") == kind)
        .join(ent.rename({"record_id": "record_id_l", "entity_id": "decided_l_entity"}), on="record_id_l")
        .join(ent.rename({"record_id": "record_id_r", "entity_id": "decided_r_entity"}), on="record_id_r")
        .rename({"record_id_l": "decided_l", "record_id_r": "decided_r"})
    )
    return (
        mapped.with_columns(_pair_key("decided_l_entity", "decided_r_entity"))
        .sort("decided_at", maintain_order=True)
        .group_by("__a", "__b", maintain_order=True)
        .last()
        .select(list(schema))
        .cast(schema)
    )


def review_items(
    pairs: pl.DataFrame,
    ids: pl.DataFrame,
    kind: str,
    decisions: pl.DataFrame | None = None,
    keyed: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per pair of tonight's entities (``l_entity_id``, ``r_entity_id``; equal for a decided pair now one
    entity): the strongest of its record pairs (``record_id_l`` in ``l_entity_id``, ``record_id_r``,
    ``match_probability``, ``match_weight``, ``levels``, ``status``), ``pairs`` behind it, the decision in force
    (``decision``, ``reviewer``, ``decided_at``) and ``same_entity``. ``pairs``: the resolution's pairs frame;
    ``ids``: tonight's ``record_id, entity_id``; ``decisions``: :func:`models.gold.review.read_decisions`;
    ``keyed``: ``record_id, keyed`` (does the record's entity hold a validated key).

    Nothing here is ordered by an id: entity ids are numbered from sorted record ids, and a record id begins with
    its department's name, so an order by either would change with what a city calls its departments. Each
    item keeps its pair's own sides and the pairs frame's order (the resolution's, by source key), the strongest
    pair first among equals by that order; items only a decision makes come last, oldest decision first."""
    ent = ids.select("record_id", "entity_id")
    queued = pairs.filter(pl.col("status").is_in(QUEUED))
    for s, col in _SIDE.items():
        queued = queued.join(
            ent.rename({"record_id": col, "entity_id": f"{s}_entity_id"}), on=col, maintain_order="left"
        )
    items = (
        queued.with_columns(_pair_key("l_entity_id", "r_entity_id"))
        .sort("match_probability", descending=True, nulls_last=True, maintain_order=True)
        .group_by("__a", "__b", maintain_order=True)
        .agg(pl.all().first(), pairs=pl.len().cast(pl.Int64))
        .with_row_index("__i")
    )
    decided = _decided_items(decisions, ent, kind).with_row_index("__j")
    items = (
        items.join(decided, on=["__a", "__b"], how="full", coalesce=True)
        .sort("__i", "__j", nulls_last=True)
        .with_columns(
            record_id_l=pl.coalesce("record_id_l", "decided_l"),
            record_id_r=pl.coalesce("record_id_r", "decided_r"),
            l_entity_id=pl.coalesce("l_entity_id", "decided_l_entity"),
            r_entity_id=pl.coalesce("r_entity_id", "decided_r_entity"),
            pairs=pl.col("pairs").fill_null(0),
            status=pl.coalesce("status", pl.lit("decided")),
        )
        .with_columns(same_entity=pl.col("l_entity_id") == pl.col("r_entity_id"))
        .drop("__a", "__b", "__i", "__j", "decided_l", "decided_r", "decided_l_entity", "decided_r_entity")
    )
    if keyed is not None:
        for s, col in _SIDE.items():
            side = keyed.select("record_id", "keyed").rename({"record_id": col, "keyed": f"{s}_keyed"})
            items = items.join(side, on=col, how="left", maintain_order="left")
        both_keyed = pl.col("l_keyed").fill_null(False) & pl.col("r_keyed").fill_null(False)
        items = items.filter(~both_keyed | pl.col("decision").is_not_null()).drop("l_keyed", "r_keyed")
    return items.filter(~pl.col("same_entity") | pl.col("decision").is_not_null()).with_columns(
        entity_type=pl.lit(kind)
    )


def _ranking(kind: str) -> tuple[list[pl.Expr], list[bool]]:
    """The consequence keys of :func:`review_queue`'s order (see the module's docstring), most consequential first."""
    if kind == "enterprise":
        magnitude = pl.col("headcount").cast(pl.Float64).log10().floor().fill_null(-1.0)
        return [pl.col("risk_events") > 0, magnitude, pl.col("risk_events")], [True, True, True]
    return [(pl.col("risk_events") + pl.col("tied_risk_events")) > 0, pl.col("records")], [True, True]


def _grouped(queue: pl.DataFrame, is_open: pl.Expr) -> pl.DataFrame:
    """Number the open items of ``queue`` (sorted, open first) into groups and give them their ``rank``.

    A group is a connected set of open items (entities as nodes, items as edges): a court party's record that
    resembles two same-named enterprises, or three records of one name in three entities, make two or three items
    that are one question (which of these are one enterprise?). The group is shown together, at the place of its
    most consequential item: ``group`` numbers the groups 1, 2 ... in that order, ``group_items`` is its size, and
    ``rank`` numbers the open items in the order they are shown."""
    from models.resolution.graph import components

    shown = queue.with_row_index("__at").with_columns(__open=is_open)
    items = shown.filter("__open")
    if items.height == 0:
        return queue.with_columns(
            rank=pl.lit(None, pl.Int64), group=pl.lit(None, pl.Int64), group_items=pl.lit(None, pl.Int64)
        )
    nodes = pl.concat([items["l_entity_id"], items["r_entity_id"]]).unique().to_frame("e").with_row_index("n")
    ends = items.select("__at", "l_entity_id", "r_entity_id")
    for side in ("l", "r"):
        ends = ends.join(nodes.rename({"e": f"{side}_entity_id", "n": side}), on=f"{side}_entity_id")
    ends = ends.sort("__at")
    label = components(nodes.height, ends["l"].to_numpy(), ends["r"].to_numpy())
    groups = ends.select("__at", __g=pl.Series(label[ends["l"].to_numpy()], dtype=pl.Int64))
    groups = groups.with_columns(__first=pl.col("__at").min().over("__g"), group_items=pl.len().over("__g"))
    return (
        shown.join(groups, on="__at", how="left")
        .sort([pl.col("__open").not_(), "__first", "__at"])
        .with_columns(
            rank=pl.when("__open").then(pl.int_range(1, pl.len() + 1)).cast(pl.Int64),
            group=pl.col("__first").rank("dense").cast(pl.Int64),
            group_items=pl.col("group_items").cast(pl.Int64),
        )
        .drop("__at", "__open", "__g", "__first")
    )


def review_queue(
    items: pl.DataFrame,
    records: pl.DataFrame,
    consequence: pl.DataFrame,
    names: pl.DataFrame,
    kind: str,
    threshold: float,
) -> pl.DataFrame:
    """The queue of ``kind``: :func:`review_items` with both representative records' attributes side by side
    (``l_name``, ``r_name`` ... from ``records``: ``record_id``, :data:`models.gold.review.SHOWN`,
    ``name_comparison``), the consequence of the two entities together (``consequence``: per ``entity_id``, the
    columns of :data:`models.gold.consequence.COLUMNS`: risk events and records summed, headcount the larger),
    how often each side's name occurs (``names``: :func:`models.gold.consequence.name_counts`), the ``rank`` of
    each open item and its ``explanation_zh``; open items first, in rank order. ``threshold``: the link threshold
    of the kind's model (uncertainty is the distance of the match weight from its weight)."""
    out = items
    for s, col in _SIDE.items():
        out = out.join(
            records.rename({c: f"{s}_{c}" for c in records.columns if c != "record_id"}).rename(
                {"record_id": col}
            ),
            on=col,
            how="left",
            maintain_order="left",
        )
        out = out.join(
            consequence.rename({c: f"{s}_{c}" for c in consequence.columns}),
            on=f"{s}_entity_id",
            how="left",
            maintain_order="left",
        )
        out = out.join(
            names.rename({c: f"{s}_{c}" for c in names.columns}),
            on=f"{s}_name_comparison",
            how="left",
            maintain_order="left",
        )
    summed = [c for c in consequence.columns if c not in ("entity_id", "headcount")]
    other = pl.when(pl.col("same_entity")).then(pl.lit(0))
    out = out.with_columns(
        (pl.col(f"l_{c}").fill_null(0) + other.otherwise(pl.col(f"r_{c}")).fill_null(0)).alias(c)
        for c in summed
    )
    if "headcount" in consequence.columns:
        out = out.with_columns(headcount=pl.max_horizontal("l_headcount", "r_headcount"))
    at = math.log2(threshold / (1 - threshold))
    keys, descending = _ranking(kind)
    is_open = ~pl.col("same_entity") & pl.col("decision").is_null()
    out = (
        out.with_columns(uncertainty=(pl.col("match_weight") - at).abs())
        .sort(
            [is_open, *keys, "uncertainty"],
            descending=[True, *descending, False],
            nulls_last=True,
            maintain_order=True,  # ties keep the items' order (see review_items: never an id's)
        )
        .drop("uncertainty", *(f"{s}_{c}" for s in _SIDE for c in consequence.columns if c != "entity_id"))
        .pipe(_grouped, is_open)
    )
    return out.with_columns(
        explanation_zh=pl.Series(
            [explain(r, kind, threshold) for r in out.iter_rows(named=True)], dtype=pl.Utf8
        )
    )
