"""Checks that guard the gold layer: nothing lost or doubled between silver and the crosswalk, and no entity id
that changes without a record of it. Plain functions over the lake; Dagster runs them as blocking asset checks
(``pipelines/gold.py``) so a crosswalk that lost a record never feeds the marts or the bureau exports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from models.gold.build import DIM_TABLE, SILVER_TABLE, previous_night, read_gold
from models.silver import read_silver


@dataclass
class CheckResult:
    passed: bool
    description: str
    metadata: dict


def crosswalk_complete(home: Path) -> CheckResult:
    """Every canonical enterprise and person record has exactly one row in the crosswalk, and no other row."""
    crosswalk = read_gold(home, "entity_crosswalk", ["record_id", "entity_type"])
    meta: dict = {}
    problems: list[str] = []
    for kind, table in SILVER_TABLE.items():
        silver = read_silver(home, table, columns=["record_id"])
        mine = crosswalk.filter(pl.col("entity_type") == kind)
        missing = silver.join(mine, on="record_id", how="anti")
        extra = mine.join(silver, on="record_id", how="anti")
        doubled = mine.height - mine["record_id"].n_unique()
        meta[kind] = {
            "silver": silver.height,
            "crosswalk": mine.height,
            "missing": missing.height,
            "extra": extra.height,
            "doubled": doubled,
        }
        if missing.height or extra.height or doubled:
            sample = ", ".join(missing["record_id"].head(3).to_list() + extra["record_id"].head(3).to_list())
            problems.append(
                f"{kind}: {missing.height} silver record(s) missing, {extra.height} unknown, "
                f"{doubled} doubled (e.g. {sample})"
            )
    return CheckResult(
        not problems, "; ".join(problems) or "every silver record has exactly one entity id", meta
    )


def id_changes_recorded(home: Path, partition: str) -> CheckResult:
    """Every id of the previous night is still in use tonight or is in tonight's history (merged or retired),
    and every id new tonight is in the history (new or split)."""
    previous = previous_night(home, partition)
    tonight = read_gold(home, "entity_crosswalk", ["entity_type", "entity_id"]).unique()
    history = read_gold(home, "entity_id_history").filter(pl.col("partition").cast(pl.Utf8) == partition)
    scan = previous.scan()
    before = (
        scan.select("entity_type", "entity_id").unique().collect(engine="streaming")
        if scan is not None
        else pl.DataFrame(schema={"entity_type": pl.Utf8, "entity_id": pl.Utf8})
    )
    gone = before.join(tonight, on=["entity_type", "entity_id"], how="anti")
    explained_gone = history.filter(pl.col("reason").is_in(["merged", "retired"])).select(
        "entity_type", entity_id="old_id"
    )
    unexplained_gone = gone.join(explained_gone, on=["entity_type", "entity_id"], how="anti")
    new = tonight.join(before, on=["entity_type", "entity_id"], how="anti")
    explained_new = history.filter(pl.col("reason").is_in(["new", "split"])).select(
        "entity_type", entity_id="new_id"
    )
    unexplained_new = new.join(explained_new, on=["entity_type", "entity_id"], how="anti")
    meta = {
        "previous_night": previous.partition,
        "ids_before": before.height,
        "ids_tonight": tonight.height,
        "gone": gone.height,
        "new": new.height,
        "unexplained_gone": unexplained_gone.height,
        "unexplained_new": unexplained_new.height,
    }
    ok = unexplained_gone.height == 0 and unexplained_new.height == 0
    desc = (
        "every id change is recorded"
        if ok
        else f"{unexplained_gone.height} id(s) vanished and {unexplained_new.height} appeared without a history row "
        f"(e.g. {', '.join(unexplained_gone['entity_id'].head(3).to_list() + unexplained_new['entity_id'].head(3).to_list())})"
    )
    return CheckResult(ok, desc, meta)


def golden_complete(home: Path, kind: str) -> CheckResult:
    """One golden record per entity id of the crosswalk, none without it."""
    ids = (
        read_gold(home, "entity_crosswalk", ["entity_type", "entity_id"])
        .filter(pl.col("entity_type") == kind)
        .select("entity_id")
        .unique()
    )
    golden = read_gold(home, DIM_TABLE[kind], ["entity_id"])
    missing = ids.join(golden, on="entity_id", how="anti").height
    extra = golden.join(ids, on="entity_id", how="anti").height
    doubled = golden.height - golden["entity_id"].n_unique()
    ok = not (missing or extra or doubled)
    return CheckResult(
        ok,
        "one golden record per entity"
        if ok
        else f"{missing} entities without a golden record, {extra} golden records without an entity, "
        f"{doubled} doubled",
        {"entities": ids.height, "golden": golden.height},
    )
