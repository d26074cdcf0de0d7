"""Stable entity ids: an enterprise keeps its id from night to night, and every change of id is recorded.

Splink and the connected components number clusters afresh on every run; exports, dashboards and bureaus
follow an enterprise by its id, so the id must survive the night. Each night's clusters are matched to the
previous night's ids through the records they share (``record_id`` is stable: :mod:`models.canonical`).

The rules, in one place:

1. **Kept** — a cluster takes the previous id that has the most of its records in it. When several clusters
   claim one previous id, the cluster holding the most records of that id keeps it (ties: the cluster whose
   smallest ``record_id`` sorts first); when a cluster could take several previous ids, it takes the one with
   the most records in it (ties: the oldest id, i.e. the smallest number). Pairs are settled greedily by
   shared records, largest first: the maximum-overlap matching a reviewer would draw by hand.
2. **Merged** — a previous id whose records all sit in clusters that kept another id is retired, recorded as
   ``merged`` into the id of the cluster that holds most of its records.
3. **Split** — a cluster with previous records whose ids all went to other clusters gets a new id, recorded
   as ``split`` from the previous id that had most records in it.
4. **New** — a cluster without previous records gets a new id (``new``).
5. **Retired** — a previous id none of whose records exists any more (deleted at the source) is recorded as
   ``retired``.

New ids are minted in a stable order (by each cluster's smallest ``record_id``) from one past the largest
id ever minted, so re-running a night gives the same ids. Ids look like ``E0000000001`` (enterprises) and
``P0000000001`` (persons): opaque, sortable, and never reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

PREFIX = {"enterprise": "E", "person": "P"}
DIGITS = 10

HISTORY_SCHEMA = pl.Schema(
    {
        "entity_type": pl.Utf8(),
        "old_id": pl.Utf8(),
        "new_id": pl.Utf8(),
        "reason": pl.Utf8(),
        "records": pl.Int64(),
    }
)
REASONS = ("new", "merged", "split", "retired")


def format_ids(kind: str, numbers: pl.Expr) -> pl.Expr:
    return pl.lit(PREFIX[kind]) + numbers.cast(pl.Utf8).str.zfill(DIGITS)


def id_number(ids: pl.Expr) -> pl.Expr:
    """The sequence number of an id (``E0000000042`` -> 42)."""
    return ids.str.slice(1).cast(pl.Int64)


@dataclass
class Assignment:
    ids: pl.DataFrame  # record_id, entity_id
    history: pl.DataFrame  # HISTORY_SCHEMA: the id changes of this night
    kept: int
    minted: int


def assign_ids(
    clusters: pl.DataFrame, previous: pl.DataFrame | None, kind: str, last_minted: int = 0
) -> Assignment:
    """``clusters``: ``record_id, cluster`` of tonight's resolution; ``previous``: ``record_id, entity_id`` of
    the last night (None on the first night); ``last_minted``: the largest id number ever minted (retired ids
    included, from the history), so a retired id is never handed out again."""
    clusters = clusters.select("record_id", pl.col("cluster").cast(pl.Int64))
    # each cluster's smallest record id: the stable tie-breaker and minting order
    order = clusters.group_by("cluster").agg(first=pl.col("record_id").min(), size=pl.len())
    if previous is None or previous.height == 0:
        previous = pl.DataFrame(schema={"record_id": pl.Utf8, "entity_id": pl.Utf8})
    prev = previous.select("record_id", old_id="entity_id")
    overlap = (
        clusters.join(prev, on="record_id")
        .group_by("cluster", "old_id")
        .agg(n=pl.len())
        .join(order.select("cluster", "first"), on="cluster")
    )
    kept = _match(overlap)  # cluster, old_id
    taken = order.join(kept, on="cluster", how="left")
    fresh = taken.filter(pl.col("old_id").is_null()).sort("first")
    start = max(last_minted, _max_number(previous)) + 1
    fresh = fresh.with_columns(
        entity_id=format_ids(kind, pl.int_range(start, start + fresh.height, dtype=pl.Int64))
    )
    ids_by_cluster = pl.concat(
        [
            taken.filter(pl.col("old_id").is_not_null()).select("cluster", entity_id="old_id"),
            fresh.select("cluster", "entity_id"),
        ]
    )
    ids = clusters.join(ids_by_cluster, on="cluster").select("record_id", "entity_id")

    # the history of this night
    records_of_new = ids_by_cluster.join(order.select("cluster", "size"), on="cluster")
    best_old = (
        overlap.sort(["cluster", "n", "old_id"], descending=[False, True, False])
        .group_by("cluster", maintain_order=True)
        .first()
        .select("cluster", best_old="old_id")
    )
    new_rows = (
        fresh.join(best_old, on="cluster", how="left")
        .join(records_of_new.select("cluster", "size"), on="cluster")
        .select(
            pl.lit(kind).alias("entity_type"),
            old_id="best_old",
            new_id="entity_id",
            reason=pl.when(pl.col("best_old").is_null()).then(pl.lit("new")).otherwise(pl.lit("split")),
            records=pl.col("size").cast(pl.Int64),
        )
    )
    kept_old = kept.select("old_id")
    lost = prev.select("old_id").unique().join(kept_old, on="old_id", how="anti")
    # where each lost id's records went: the cluster with most of them
    dest = (
        overlap.join(lost, on="old_id")
        .join(ids_by_cluster, on="cluster")
        .sort(["old_id", "n", "first"], descending=[False, True, False])
        .group_by("old_id", maintain_order=True)
        .first()
    )
    lost_counts = prev.join(lost, on="old_id").group_by("old_id").agg(records=pl.len())
    lost_rows = (
        lost.join(dest.select("old_id", "entity_id"), on="old_id", how="left")
        .join(lost_counts, on="old_id")
        .select(
            pl.lit(kind).alias("entity_type"),
            "old_id",
            new_id="entity_id",
            reason=pl.when(pl.col("entity_id").is_null()).then(pl.lit("retired")).otherwise(pl.lit("merged")),
            records=pl.col("records").cast(pl.Int64),
        )
    )
    history = pl.concat([new_rows, lost_rows]).select(list(HISTORY_SCHEMA)).cast(HISTORY_SCHEMA)
    return Assignment(
        ids=ids,
        history=history.sort("reason", "new_id", "old_id", nulls_last=True),
        kept=kept.height,
        minted=fresh.height,
    )


def _max_number(previous: pl.DataFrame) -> int:
    if previous.height == 0:
        return 0
    return int(previous.select(id_number(pl.col("entity_id")).max()).item() or 0)


def _match(overlap: pl.DataFrame) -> pl.DataFrame:
    """``cluster, old_id``: the greedy maximum-overlap matching of clusters to previous ids. Most clusters
    share records with one previous id that no other cluster shares (nothing changed): those are settled at
    once; only the contested ones go through the greedy loop."""
    if overlap.height == 0:
        return pl.DataFrame(schema={"cluster": pl.Int64, "old_id": pl.Utf8})
    per_cluster = overlap.group_by("cluster").len().rename({"len": "c_ids"})
    per_old = overlap.group_by("old_id").len().rename({"len": "o_clusters"})
    scored = overlap.join(per_cluster, on="cluster").join(per_old, on="old_id")
    simple = scored.filter((pl.col("c_ids") == 1) & (pl.col("o_clusters") == 1)).select("cluster", "old_id")
    contested = (
        scored.filter((pl.col("c_ids") > 1) | (pl.col("o_clusters") > 1))
        .with_columns(number=id_number(pl.col("old_id")))
        .sort(["n", "number", "first"], descending=[True, False, False])
    )
    used_c: set[int] = set()
    used_o: set[str] = set()
    chosen_c: list[int] = []
    chosen_o: list[str] = []
    for cluster, old in zip(contested["cluster"].to_list(), contested["old_id"].to_list(), strict=True):
        if cluster in used_c or old in used_o:
            continue
        used_c.add(cluster)
        used_o.add(old)
        chosen_c.append(cluster)
        chosen_o.append(old)
    greedy = pl.DataFrame(
        {"cluster": chosen_c, "old_id": chosen_o}, schema={"cluster": pl.Int64, "old_id": pl.Utf8}
    )
    return pl.concat([simple, greedy])
