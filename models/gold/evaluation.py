"""How good tonight's resolution is against a truth: what `qst er-eval` reports.

The truth is a simulated estate (its ``truth/`` folder, records deleted since generation left out) or a plain
Parquet file in :data:`models.resolution.evaluate.TRUTH_COLUMNS`, e.g. a clerically reviewed sample of a real
city. Truth records that reached no canonical record count against recall (``truth_missing``).

The scores themselves (pairwise precision/recall/F1, B-cubed) are :mod:`models.resolution.evaluate`; this module
reads the gold crosswalk and the simulator's truth and computes them per kind, in the shape the issue fixed:
``{"enterprise": {"precision", "recall", "f1", "bcubed_f1", "records", "entities"}, "person": {...}}``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from models.gold.build import KINDS, read_gold
from models.resolution.evaluate import (
    evidence_ceiling,
    evidence_columns,
    name_only,
    read_truth_file,
    scores,
    truth_for_records,
    truth_missing,
)


def estate_folder(truth: Path) -> Path:
    """The estate folder from either the estate or its ``truth/`` folder."""
    truth = Path(truth)
    if (truth / "truth").is_dir():
        return truth
    if truth.name == "truth" and truth.is_dir():
        return truth.parent
    raise FileNotFoundError(
        f"{truth} is neither a simulated estate nor its truth/ folder "
        "(qst simulate writes DIR/truth/records/*.parquet)"
    )


def load_truth_records(truth: Path) -> pl.DataFrame:
    """The truth rows of a Parquet file, or of a simulated estate as it is now (deleted source rows out)."""
    truth = Path(truth)
    if truth.is_file():
        return read_truth_file(truth)
    from simulator.estate import load_truth

    folder = estate_folder(truth)
    records = load_truth(folder).collect()
    deleted = sorted((folder / "truth" / "deleted").glob("*.parquet"))
    if deleted:
        gone = pl.read_parquet(deleted, columns=["department", "table", "pk"]).unique()
        records = records.join(gone, on=["department", "table", "pk"], how="anti")
    return records


def _names_and_alone(home: Path, kind: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``record_id, name_comparison`` of ``kind``'s canonical records, and ``record_id`` of those known by their
    name alone (nothing else to compare)."""
    from models.resolution.probabilistic import TABLES
    from models.silver import scan_silver

    scan = scan_silver(home, TABLES[kind])
    wanted = evidence_columns(kind)
    present = [c for c in wanted if c in scan.collect_schema().names()]
    records = scan.select("record_id", "name_comparison", *present).collect()
    return records.select("record_id", "name_comparison"), records.filter(name_only(records, wanted)).select(
        "record_id"
    )


def evaluate_gold(home: Path, truth: Path) -> dict[str, dict[str, float | int]]:
    """Scores per kind, with the evidence ceiling (``ceiling_recall``, ``ceiling_f1``: what is within reach when
    a record known by its name alone stays alone, :func:`models.resolution.evaluate.evidence_ceiling`)."""
    truth_records = load_truth_records(truth)
    crosswalk = read_gold(home, "entity_crosswalk")
    out: dict[str, dict[str, float | int]] = {}
    for kind in KINDS:
        mine = crosswalk.filter(pl.col("entity_type") == kind)
        of_kind = truth_records.filter(pl.col("entity_type") == kind)
        truth_ids = truth_for_records(of_kind, mine)
        lost = truth_missing(of_kind, mine)
        s = scores(mine.select("record_id", cluster="entity_id"), truth_ids, lost)
        ceiling = evidence_ceiling(truth_ids, *_names_and_alone(home, kind))
        out[kind] = {
            "precision": s["precision"],
            "recall": s["recall"],
            "f1": s["f1"],
            "bcubed_f1": s["bcubed_f1"],
            "records": s["records"],
            "entities": s["entities"],
            "clusters": s["clusters"],
            "records_without_truth": s["records_without_truth"],
            "truth_missing": s["truth_missing"],
            "ceiling_recall": ceiling["recall"],
            "ceiling_f1": ceiling["f1"],
            "name_only_records": ceiling["name_only_records"],
            "shared_name_only_records": ceiling["shared_name_only_records"],
        }
    return out
