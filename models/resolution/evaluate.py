"""How good a resolution is, against the simulator's truth: pairwise precision, recall and F1, and B-cubed.

Pairwise: a pair of records is predicted linked when both are in one predicted cluster, truly linked when both
refer to one true entity; precision = true links among the predicted, recall = predicted among the true. The
counts come from the contingency of (predicted cluster, true entity) without listing pairs: TP = Σ C(n_ij, 2),
predicted = Σ_i C(n_i, 2), true = Σ_j C(n_j, 2), so a million records cost a group-by, not 10^12 pairs.
B-cubed: per record, precision = |its cluster ∩ its entity| / |its cluster|, recall = ... / |its entity|,
averaged over records; it weighs every record alike, where pairwise weighs big clusters quadratically.

Both frames join on ``record_id``; predicted records without truth are left out (counted in
``records_without_truth``). Truth records that reached no record at all (``missing``: quarantined, or dropped
on the way) count against recall, each as a cluster of its own (``truth_missing``): a mention lost before
resolution is a link not made. A report says what it measured.

The truth is a plain table (:data:`TRUTH_COLUMNS`), one row per (source record, entity it refers to):
``department``, ``table`` (the source table), ``pk`` (the primary key as text; a composite key joined with ``|``
in key order; a file-drop row ``FILE#N``), ``role`` (the mention's role: subject, legal_rep, party ...),
``entity_type`` (enterprise | person) and ``entity_id`` (any text naming the true entity). The simulator writes
it for its estates; a city scores itself with a truth file of its own (a clerical sample).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl


def _pairs(n: pl.Expr) -> pl.Expr:
    return (n * (n - 1) // 2).sum()


TRUTH_COLUMNS: dict[str, pl.DataType] = {
    "department": pl.Utf8(),
    "table": pl.Utf8(),
    "pk": pl.Utf8(),
    "role": pl.Utf8(),
    "entity_type": pl.Utf8(),
    "entity_id": pl.Utf8(),
}


def read_truth_file(path: Path) -> pl.DataFrame:
    """A truth Parquet file in :data:`TRUTH_COLUMNS` (other columns ignored); an error names what is missing."""
    schema = pl.read_parquet_schema(path)
    absent = [c for c in TRUTH_COLUMNS if c not in schema]
    if absent:
        raise ValueError(
            f"{path}: truth file lacks column(s) {', '.join(absent)}; "
            f"a truth file has {', '.join(TRUTH_COLUMNS)} (models/resolution/evaluate.py)"
        )
    return pl.read_parquet(path, columns=list(TRUTH_COLUMNS)).cast(TRUTH_COLUMNS)  # type: ignore[arg-type]


def scores(
    predicted: pl.DataFrame, truth: pl.DataFrame, missing: pl.DataFrame | None = None
) -> dict[str, float | int]:
    """``predicted``: ``record_id, cluster``; ``truth``: ``record_id, entity_id``; ``missing``: ``entity_id``
    of truth records no predicted record stands for (each scored as a cluster of its own)."""
    joined = predicted.select("record_id", "cluster").join(
        truth.select("record_id", "entity_id"), on="record_id"
    )
    scored = predicted.height - joined.height
    lost = 0 if missing is None else missing.height
    if lost:
        assert missing is not None
        joined = pl.concat(
            [
                joined.cast({"cluster": pl.Utf8}),
                missing.select(
                    record_id=pl.lit("missing:") + pl.int_range(pl.len()).cast(pl.Utf8),
                    cluster=pl.lit("missing:") + pl.int_range(pl.len()).cast(pl.Utf8),
                    entity_id=pl.col("entity_id").cast(joined.schema["entity_id"]),
                ),
            ]
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
        "records": joined.height - lost,
        "entities": joined["entity_id"].n_unique(),
        "clusters": joined["cluster"].n_unique() - lost,
        "records_without_truth": scored,
        "truth_missing": lost,
    }


def _record_keys(truth_records: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """``record_id, source_department, table, source_pk, role`` of canonical ``records``, ``table`` the truth's
    name of the source table. A source table the truth does not name is the truth table it extends (file drops
    split by format: ``street_rosters_csv`` and ``street_rosters_excel`` are the truth's ``street_rosters``),
    found by name so that no department is known here."""
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
    return records.select("record_id", "source_department", "role", "source_pk", table=table_expr)


def truth_for_records(truth_records: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """``record_id, entity_id`` of canonical ``records`` from the truth (:data:`TRUTH_COLUMNS`)."""
    return (
        _record_keys(truth_records, records)
        .join(
            truth_records.select("department", "table", "pk", "role", "entity_id"),
            left_on=["source_department", "table", "source_pk", "role"],
            right_on=["department", "table", "pk", "role"],
        )
        .select("record_id", "entity_id")
    )


def truth_missing(truth_records: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """The truth rows (:data:`TRUTH_COLUMNS`) that no record of ``records`` stands for: mentions that never
    reached resolution (quarantined, or lost), which count against recall."""
    keys = _record_keys(truth_records, records).select(
        department="source_department", table="table", pk="source_pk", role="role"
    )
    return truth_records.join(keys, on=["department", "table", "pk", "role"], how="anti")


def name_only(records: pl.DataFrame, evidence: list[str]) -> pl.Series:
    """Per record: true when none of the ``evidence`` columns holds a value — the record carries a name and
    nothing else a resolver could compare (a court party written down by name only)."""
    present = [c for c in evidence if c in records.columns]
    if not present:
        return pl.Series("name_only", [True] * records.height, dtype=pl.Boolean)
    return records.select(name_only=pl.all_horizontal([pl.col(c).is_null() for c in present]))["name_only"]


def evidence_ceiling(truth: pl.DataFrame, records: pl.DataFrame, alone: pl.DataFrame) -> dict[str, float]:
    """The best pairwise recall (and F1 at precision 1) within reach of the records' evidence. A record known by
    its name alone can be linked only when that name belongs to one entity of the kind in the whole table; when
    the city's namesakes share it (张伟), linking it is a guess. So: every record grouped exactly as the truth,
    except name-only records whose name several true entities bear, each left a cluster of its own. A score is
    read against this, not against 1.0. ``truth``: ``record_id, entity_id``; ``records``: ``record_id,
    name_comparison``; ``alone``: ``record_id`` of the name-only records (:func:`name_only`)."""
    named = truth.join(records.select("record_id", "name_comparison"), on="record_id", how="left")
    namesakes = named.group_by("name_comparison").agg(owners=pl.col("entity_id").n_unique())
    guess = (
        named.join(alone.select("record_id"), on="record_id", how="semi")
        .join(namesakes, on="name_comparison", how="left")
        .filter(pl.col("name_comparison").is_null() | (pl.col("owners") > 1))
    )
    rest = truth.join(guess.select("record_id"), on="record_id", how="anti")
    true = truth.group_by("entity_id").agg(n=pl.len()).select(_pairs(pl.col("n"))).item() or 0
    reachable = rest.group_by("entity_id").agg(n=pl.len()).select(_pairs(pl.col("n"))).item() or 0
    recall = reachable / true if true else 1.0
    return {
        "recall": recall,
        "f1": 2 * recall / (1 + recall) if recall else 0.0,
        "name_only_records": alone.height,
        "shared_name_only_records": guess.height,
    }


def evidence_columns(kind: str) -> list[str]:
    """The columns of ``kind``'s canonical table a resolver can compare besides the name (keys and compared
    values, not their status flags): a record with none of them is known by its name alone."""
    from models.resolution.deterministic import ENTERPRISE_KEYS, PERSON_KEYS, key_columns
    from models.resolution.probabilistic import COLUMNS

    rules = ENTERPRISE_KEYS if kind == "enterprise" else PERSON_KEYS
    skip = {"record_id", "name_comparison", "name_is_branch"}
    return sorted(
        c
        for c in {*key_columns(rules), *COLUMNS[kind]}
        if c not in skip and not c.endswith(("_status", "_kind"))
    )
