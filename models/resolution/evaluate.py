"""How good a resolution is, against the simulator's truth: pairwise precision, recall and F1, and B-cubed.

Pairwise: a pair of records is predicted linked when both are in one predicted cluster, truly linked when both
refer to one true entity; precision = true links among the predicted, recall = predicted among the true. The
counts come from the contingency of (predicted cluster, true entity) without listing pairs: TP = Σ C(n_ij, 2),
predicted = Σ_i C(n_i, 2), true = Σ_j C(n_j, 2), so a million records cost a group-by, not 10^12 pairs.
B-cubed: per record, precision = |its cluster ∩ its entity| / |its cluster|, recall = ... / |its entity|,
averaged over records; it weighs every record alike, where pairwise weighs big clusters quadratically.

Both frames join on ``record_id``; records missing from either side are left out (and counted in
``records_without_truth``), so a report says what it measured.
"""

from __future__ import annotations

import polars as pl


def _pairs(n: pl.Expr) -> pl.Expr:
    return (n * (n - 1) // 2).sum()


def scores(predicted: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float | int]:
    """``predicted``: ``record_id, cluster``; ``truth``: ``record_id, entity_id``."""
    joined = predicted.select("record_id", "cluster").join(
        truth.select("record_id", "entity_id"), on="record_id"
    )
    cells = joined.group_by("cluster", "entity_id").agg(n=pl.len())
    tp = cells.select(_pairs(pl.col("n"))).item() or 0
    pred = joined.group_by("cluster").agg(n=pl.len()).select(_pairs(pl.col("n"))).item() or 0
    true = joined.group_by("entity_id").agg(n=pl.len()).select(_pairs(pl.col("n"))).item() or 0
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    b = (
        joined.join(cells, on=["cluster", "entity_id"])
        .join(joined.group_by("cluster").agg(c=pl.len()), on="cluster")
        .join(joined.group_by("entity_id").agg(e=pl.len()), on="entity_id")
        .select(p=(pl.col("n") / pl.col("c")).mean(), r=(pl.col("n") / pl.col("e")).mean())
    )
    bp, br = (b["p"][0], b["r"][0]) if joined.height else (1.0, 1.0)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f1": 2 * bp * br / (bp + br) if bp + br else 0.0,
        "records": joined.height,
        "entities": joined["entity_id"].n_unique(),
        "clusters": joined["cluster"].n_unique(),
        "records_without_truth": predicted.height - joined.height,
    }


def truth_for_records(truth_records: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """``record_id, entity_id`` of canonical ``records`` from the simulator's truth (``department, table, pk,
    role, entity_id``). A source table the truth does not name is the truth table it extends (file drops split
    by format: ``street_rosters_csv`` and ``street_rosters_excel`` are the truth's ``street_rosters``), found
    by name so that no department is known here."""
    known = truth_records.select("department", "table").unique()
    tables = records.select("source_department", "source_table").unique()
    mapping = {}
    for dept, table in tables.iter_rows():
        of_dept = known.filter(pl.col("department") == dept)["table"].to_list()
        if table in of_dept:
            continue
        base = max((t for t in of_dept if table.startswith(f"{t}_")), key=len, default=None)
        if base is not None:
            mapping[(dept, table)] = base
    table_expr: pl.Expr = pl.col("source_table")
    for (dept, table), base in mapping.items():
        table_expr = (
            pl.when((pl.col("source_department") == dept) & (pl.col("source_table") == table))
            .then(pl.lit(base))
            .otherwise(table_expr)
        )
    keys = records.select("record_id", "source_department", "role", "source_pk", table=table_expr)
    return keys.join(
        truth_records.select("department", "table", "pk", "role", "entity_id"),
        left_on=["source_department", "table", "source_pk", "role"],
        right_on=["department", "table", "pk", "role"],
    ).select("record_id", "entity_id")
