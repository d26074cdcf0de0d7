"""How good tonight's resolution is against a simulated estate's truth: what `qst er-eval` reports.

The scores themselves (pairwise precision/recall/F1, B-cubed) are :mod:`models.resolution.evaluate`; this module
reads the gold crosswalk and the simulator's truth and computes them per kind, in the shape the issue fixed:
``{"enterprise": {"precision", "recall", "f1", "bcubed_f1", "records", "entities"}, "person": {...}}``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from models.gold.build import KINDS, read_gold
from models.resolution.evaluate import scores, truth_for_records


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


def evaluate_gold(home: Path, truth: Path) -> dict[str, dict[str, float | int]]:
    from simulator.estate import load_truth

    truth_records = load_truth(estate_folder(truth)).collect()
    crosswalk = read_gold(home, "entity_crosswalk")
    out: dict[str, dict[str, float | int]] = {}
    for kind in KINDS:
        mine = crosswalk.filter(pl.col("entity_type") == kind)
        truth_ids = truth_for_records(truth_records.filter(pl.col("entity_type") == kind), mine)
        s = scores(mine.select("record_id", cluster="entity_id"), truth_ids)
        out[kind] = {
            "precision": s["precision"],
            "recall": s["recall"],
            "f1": s["f1"],
            "bcubed_f1": s["bcubed_f1"],
            "records": s["records"],
            "entities": s["entities"],
            "clusters": s["clusters"],
            "records_without_truth": s["records_without_truth"],
        }
    return out
