"""The gold layer on disk: entity resolution run over silver, with ids carried from the night before.

- ``HOME/lake/gold/entity_crosswalk`` — every canonical enterprise and person record → its entity id, with how
  it was linked (the deterministic rule, or the Splink match probability, weight and comparison levels, or a
  reviewer's must-link) in ``rule``, ``match_probability``, ``match_weight``, ``levels`` and ``why``;
- ``HOME/lake/gold/entity_id_history`` — every id change (new, merged, split, retired) with the night and run
  (rules: :mod:`models.gold.identity`);
- ``HOME/lake/gold/review_queue`` — one item per pair of entities a decision could change, ranked by consequence
  and explained in Chinese (:mod:`models.gold.queue`);
- ``HOME/lake/gold/names_seen`` — the names each enterprise record has borne, night after night: a name it bore
  before is a former name tonight (:mod:`models.gold.names_seen`);
- ``HOME/lake/gold/dim_enterprise``, ``dim_person`` — the golden records (:mod:`models.gold.survivorship`), the
  sources ranked as the run's staging specs declare (``authority:``).

State is derived from committed data: each crosswalk commit carries the night it was built for
(``qst.partition``), and a night's ids are matched against the newest crosswalk of an *earlier* night, read
by Delta time travel — so re-running a night gives the same ids, and a crash leaves the last good version.
The history is replaced per night (``replace_where``), so a rerun neither doubles nor loses its rows.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa

from lake.delta import append, delta_table, exists, overwrite, read_frame, replace_where, to_arrow
from lake.layout import gold_path
from lake.storage import Location, storage_options
from models.gold import names_seen
from models.gold.consequence import EVENTS_TABLE
from models.gold.identity import HISTORY_SCHEMA, assign_ids, id_number
from models.gold.queue import open_items, review_items, review_queue
from models.gold.review import SHOWN, read_decisions
from models.silver import read_silver, scan_silver

log = logging.getLogger(__name__)

KINDS = ("enterprise", "person")
SILVER_TABLE = {"enterprise": "int_enterprise_records", "person": "int_person_records"}
#: Every silver table the gold step reads: the records, and the events the review queue's consequences count.
SILVER_INPUTS = (*SILVER_TABLE.values(), EVENTS_TABLE)
DIM_TABLE = {"enterprise": "dim_enterprise", "person": "dim_person"}
GOLD_TABLES = (
    "entity_crosswalk",
    "entity_id_history",
    "review_queue",
    "names_seen",
    "dim_enterprise",
    "dim_person",
)
PARTITION_KEY = "qst.partition"

CROSSWALK_SCHEMA = pl.Schema(
    {
        "record_id": pl.Utf8(),
        "entity_type": pl.Utf8(),
        "entity_id": pl.Utf8(),
        "source_department": pl.Utf8(),
        "source_asset": pl.Utf8(),
        "source_table": pl.Utf8(),
        "source_pk": pl.Utf8(),
        "role": pl.Utf8(),
        "rule": pl.Utf8(),
        "match_probability": pl.Float64(),
        "match_weight": pl.Float64(),
        "levels": pl.Utf8(),
        "why": pl.Utf8(),
    }
)
HISTORY_TABLE_SCHEMA = pl.Schema(
    {
        "partition": pl.Date(),
        "run_id": pl.Utf8(),
        **HISTORY_SCHEMA,
        "recorded_at": pl.Datetime("us", "UTC"),
    }
)


def scan_gold(home: Path, name: str, version: int | None = None) -> pl.LazyFrame:
    """A gold table as a lazy scan (at ``version``, default the newest): Polars' reader, no Arrow copy (see
    read_silver); what the steps that must not hold a whole table stream from."""
    path = gold_path(home, name)
    if not exists(path):
        raise FileNotFoundError(
            f"gold table {name} does not exist under {home}: run entity resolution first "
            "(qst run --until gold)"
        )
    return pl.scan_delta(str(path), version=version, storage_options=storage_options(path))


def read_gold(
    home: Path, name: str, columns: list[str] | None = None, version: int | None = None
) -> pl.DataFrame:
    scan = scan_gold(home, name, version)
    return (scan.select(columns) if columns is not None else scan).collect()


# --------------------------------------------------------------------------------------------------------
# the previous night
# --------------------------------------------------------------------------------------------------------
@dataclass
class Previous:
    """The newest crosswalk of an earlier night, read one kind at a time when needed: at 1M the crosswalk holds
    20.8M records, and holding both kinds through the resolution cost 4 GB of the night's peak."""

    partition: str | None
    version: int | None
    last_minted: dict[str, int]  # per kind, the largest id number ever minted before this night
    home: Path | None = None

    def scan(self) -> pl.LazyFrame | None:
        """``record_id, entity_type, entity_id`` of that night's crosswalk; None on the first night."""
        if self.home is None or self.version is None:
            return None
        return scan_gold(self.home, "entity_crosswalk", self.version).select(
            "record_id", "entity_type", "entity_id"
        )

    def ids(self, kind: str) -> pl.DataFrame | None:
        """``record_id, entity_id`` of ``kind``'s records that night; None on the first night."""
        scan = self.scan()
        if scan is None:
            return None
        return scan.filter(pl.col("entity_type") == kind).select("record_id", "entity_id").collect()


def previous_night(home: Path, partition: str) -> Previous:
    """The newest crosswalk committed for a night before ``partition`` and the largest id minted before it."""
    path = gold_path(home, "entity_crosswalk")
    last = dict.fromkeys(KINDS, 0)
    if not exists(path):
        return Previous(None, None, last)
    table = delta_table(path)
    best: tuple[str, int] | None = None
    for commit in table.history():
        night = commit.get(PARTITION_KEY)
        if night is None or str(night) >= partition:
            continue
        version = int(commit["version"])
        if best is None or (str(night), version) > best:
            best = (str(night), version)
    history = _read_history(home)
    if history is not None:
        earlier = history.filter(pl.col("partition") < dt.date.fromisoformat(partition))
        for kind in KINDS:
            ids = earlier.filter(pl.col("entity_type") == kind)
            numbers = pl.concat([ids["old_id"], ids["new_id"]]).drop_nulls()
            if numbers.len():
                last[kind] = int(numbers.to_frame("i").select(id_number(pl.col("i")).max()).item())
    if best is None:
        return Previous(None, None, last)
    night, version = best
    previous = Previous(night, version, last, home)
    try:
        largest = _largest_ids(previous)
    except Exception as exc:
        log.warning(
            "crosswalk version %s (night %s) cannot be read (%s); using the newest", version, night, exc
        )
        previous.version = delta_table(path).version()
        largest = _largest_ids(previous)
    for kind, number in largest.items():
        last[kind] = max(last[kind], number)
    return previous


def _largest_ids(previous: Previous) -> dict[str, int]:
    """The largest id number of each kind in the previous crosswalk (one streaming pass, nothing held)."""
    scan = previous.scan()
    assert scan is not None
    top = (
        scan.group_by("entity_type").agg(top=id_number(pl.col("entity_id")).max()).collect(engine="streaming")
    )
    return {kind: int(n) for kind, n in top.iter_rows() if n is not None}


def _read_history(home: Path) -> pl.DataFrame | None:
    return read_frame(gold_path(home, "entity_id_history"))


# --------------------------------------------------------------------------------------------------------
# resolution
# --------------------------------------------------------------------------------------------------------
@dataclass
class KindReport:
    records: int = 0
    entities: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    kept: int = 0
    minted: int = 0
    changes: dict[str, int] = field(default_factory=dict)
    review_pairs: int = 0  # rows of the review queue (open items and decided ones)
    review_open: int = 0  # items a reviewer still has to decide
    conflicts: int = 0
    seconds: float = 0.0


@dataclass
class GoldReport:
    partition: str
    previous_partition: str | None
    kinds: dict[str, KindReport] = field(default_factory=dict)
    seconds: float = 0.0
    #: names enterprise records bore on an earlier night and not tonight (:mod:`models.gold.names_seen`)
    former_names: int = 0
    queue_seconds: float = 0.0  # the review queue (both kinds), after resolution


def _why(rule: pl.Expr, p: pl.Expr, w: pl.Expr, levels: pl.Expr) -> pl.Expr:
    from models.resolution.deterministic import ENTERPRISE_KEYS, PERSON_KEYS
    from models.resolution.names import RULE, WHY

    reasons = {r.name: f"{r.name}: {r.why}" for r in (*ENTERPRISE_KEYS, *PERSON_KEYS)} | {
        RULE: f"{RULE}: {WHY}"
    }
    return (
        pl.when(rule == "splink")
        .then(pl.format("splink: match probability {}, weight {}, levels {}", p.round(4), w.round(2), levels))
        .when(rule == "must_link")
        .then(pl.lit("must_link: a reviewer's decision"))
        .when(rule.is_null())
        .then(pl.lit("no link: the only record of its entity"))
        .otherwise(rule.replace_strict(reasons, default=rule))
    )


def resolve_kind(
    home: Path,
    kind: str,
    decisions: pl.DataFrame,
    related: pl.DataFrame | None = None,
    former_names: pl.DataFrame | None = None,
):
    """Deterministic pass, then Splink: ``(records read, Resolution)``. Silver is read a group of columns at a
    time (:func:`models.resolution.probabilistic.prepare_silver`): the 14 million enterprise records of the 1M city
    are never in memory whole. ``former_names``: names records bore on earlier nights (:mod:`.names_seen`)."""
    from models.resolution.probabilistic import prepare_silver, resolve_prepared

    prepared = prepare_silver(home, kind, related, former_names)  # type: ignore[arg-type]
    count = prepared.rows.height
    return count, resolve_prepared(
        prepared, decisions=decisions.select("record_id_l", "record_id_r", "decision")
    )


def build_gold(home: Path, partition: str, run_id: str = "manual") -> GoldReport:
    """Resolve enterprises, then persons (legal representatives compare by the enterprise they represent),
    carry ids from the previous night, and write the crosswalk, the id history, the review queue and the
    golden records."""
    from deltalake import CommitProperties

    started = time.perf_counter()
    home = Path(home)
    previous = previous_night(home, partition)
    report = GoldReport(partition, previous.partition)
    decisions = read_decisions(home)
    meta = CommitProperties(custom_metadata={PARTITION_KEY: partition, "qst.run_id": run_id})
    histories: list[pl.DataFrame] = []
    items: dict[str, pl.DataFrame] = {}
    related = None
    # the names seen first, and written at once (a rerun gives the same table): the 14M names of the 1M city are
    # not held through the resolution
    formers = _update_names_seen(home, dt.date.fromisoformat(partition), meta)
    report.former_names = 0 if formers is None else formers.height
    spool = Path(tempfile.mkdtemp(prefix="qst-gold-"))
    try:
        for kind in KINDS:
            t0 = time.perf_counter()
            count, resolution = resolve_kind(
                home,
                kind,
                decisions.filter(pl.col("entity_type") == kind),
                related,
                formers if kind == "enterprise" else None,
            )
            if kind == "enterprise":
                related = resolution.records.select("record_id", "cluster")
            assignment = assign_ids(
                resolution.records.select("record_id", "cluster"),
                previous.ids(kind),
                kind,
                previous.last_minted[kind],
            )
            # streamed to disk and held there until both kinds are done: the enterprise crosswalk (14M rows at 1M,
            # with a sentence per record) is never one frame in memory
            spooled = spool / f"{kind}.parquet"
            _crosswalk_of(home, kind, resolution, assignment).sink_parquet(spooled, engine="streaming")
            by_rule = pl.scan_parquet(spooled).group_by("rule").len().collect()
            if (written := int(by_rule["len"].sum())) != count:
                raise RuntimeError(f"gold: {kind} crosswalk has {written} rows for {count} records")
            histories.append(assignment.history)
            items[kind] = review_items(
                resolution.pairs,
                assignment.ids,
                kind,
                decisions,
                keyed=resolution.records.select("record_id", "keyed"),
            )
            kr = KindReport(
                records=count,
                entities=assignment.ids["entity_id"].n_unique(),
                by_rule=dict(by_rule.fill_null("none").sort("len", "rule", descending=True).iter_rows()),
                kept=assignment.kept,
                minted=assignment.minted,
                changes=dict(assignment.history.group_by("reason").len().iter_rows()),
                conflicts=resolution.conflicts.height,
                seconds=time.perf_counter() - t0,
            )
            report.kinds[kind] = kr
            del resolution, assignment

        files = [spool / f"{kind}.parquet" for kind in KINDS]
        overwrite(gold_path(home, "entity_crosswalk"), _spooled(files), commit_properties=meta)
        crosswalk_ids = pl.scan_parquet(files).select("record_id", "entity_type", "entity_id")
        now = dt.datetime.now(dt.UTC)
        history = (
            pl.concat(histories)
            .with_columns(
                partition=pl.lit(dt.date.fromisoformat(partition)),
                run_id=pl.lit(run_id),
                recorded_at=pl.lit(now, pl.Datetime("us", "UTC")),
            )
            .select(list(HISTORY_TABLE_SCHEMA))
            .cast(HISTORY_TABLE_SCHEMA)
        )
        _replace_night(gold_path(home, "entity_id_history"), history, partition, meta)
        t0 = time.perf_counter()
        queue = build_queue(home, partition, items, crosswalk_ids)
        report.queue_seconds = time.perf_counter() - t0
        for kind, kr in report.kinds.items():
            kind_queue = queue.filter(pl.col("entity_type") == kind)
            kr.review_pairs, kr.review_open = kind_queue.height, open_items(kind_queue).height
        overwrite(gold_path(home, "review_queue"), queue, commit_properties=meta)
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def _crosswalk_of(home: Path, kind: str, resolution, assignment) -> pl.LazyFrame:
    """``kind``'s crosswalk rows (:data:`CROSSWALK_SCHEMA`): each record's lineage, entity id, the rule that linked
    it and, for a Splink link, the comparison levels of the pair its probability came from, and the sentence why."""
    best_levels = (
        resolution.pairs.filter(pl.col("status").is_in(["linked", "must_link"]))
        .sort("match_probability", descending=True, nulls_last=True)
        .pipe(
            lambda p: pl.concat(
                [
                    p.select(record_id="record_id_l", levels="levels"),
                    p.select(record_id="record_id_r", levels="levels"),
                ]
            )
        )
        .group_by("record_id", maintain_order=True)
        .first()
    )
    # Splink compares profiles (records with the same cluster and compared values), named by one record:
    # the other records of a profile get the levels of the pair their probability came from
    profile_levels = (
        resolution.pairs.filter(pl.col("status").is_in(["linked", "must_link"]))
        .join(resolution.records.select(record_id_l="record_id", cluster="cluster"), on="record_id_l")
        .select("cluster", "match_probability", profile_levels="levels")
        .unique(["cluster", "match_probability"], keep="first", maintain_order=True)
    )
    lineage = scan_silver(home, SILVER_TABLE[kind]).select(
        "record_id", "source_department", "source_asset", "source_table", "source_pk", "role"
    )
    return (
        lineage.join(assignment.ids.lazy(), on="record_id")
        .join(
            resolution.records.lazy().select(
                "record_id", "cluster", "rule", "match_probability", "match_weight"
            ),
            on="record_id",
        )
        .join(best_levels.lazy(), on="record_id", how="left")
        .join(profile_levels.lazy(), on=["cluster", "match_probability"], how="left", nulls_equal=False)
        .with_columns(levels=pl.coalesce("levels", "profile_levels"))
        .with_columns(
            entity_type=pl.lit(kind),
            levels=pl.when(pl.col("rule") == "splink").then(pl.col("levels")),
        )
        .with_columns(
            why=_why(pl.col("rule"), pl.col("match_probability"), pl.col("match_weight"), pl.col("levels"))
        )
        .select(list(CROSSWALK_SCHEMA))
        .cast(CROSSWALK_SCHEMA)
    )


def _update_names_seen(home: Path, night: dt.date, meta) -> pl.DataFrame | None:
    """Tonight's former names of enterprise records (:mod:`.names_seen`), after writing tonight's names into the
    table; None when the canonical table has no name columns."""
    tonight, seen = names_seen_frames(home)
    if tonight is None:
        return None
    formers = names_seen.former_names(seen, tonight, night)
    overwrite(gold_path(home, "names_seen"), names_seen.observe(seen, tonight, night), commit_properties=meta)
    return formers


def _spooled(files: list[Path]) -> pa.RecordBatchReader:
    """The spooled crosswalks as one stream of Delta-ready batches (plain strings, as :func:`lake.delta.to_arrow`)."""
    import pyarrow.parquet as pq

    schema = to_arrow(pl.read_parquet(files[0], n_rows=0)).schema

    def batches():
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=256_000):
                yield batch.cast(schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def names_seen_frames(home: Path) -> tuple[pl.LazyFrame | None, pl.LazyFrame | None]:
    """Tonight's enterprise names (``record_id`` and the name columns; None when the canonical table has no
    name columns) and the names seen on earlier nights (None before the first night), both lazy: read by the
    streaming engine where they are used (:mod:`.names_seen`)."""
    from models.resolution.names import NAME_COLUMNS

    scan = scan_silver(home, SILVER_TABLE["enterprise"])
    names = scan.collect_schema().names()
    if not set(NAME_COLUMNS) <= set(names):
        return None, None
    shown = ["name"] if "name" in names else []
    seen = scan_gold(home, "names_seen") if exists(gold_path(home, "names_seen")) else None
    return scan.select("record_id", *shown, *NAME_COLUMNS), seen


def build_queue(
    home: Path, partition: str, items: Mapping[str, pl.DataFrame], crosswalk: pl.DataFrame | pl.LazyFrame
) -> pl.DataFrame:
    """Tonight's review queue of every kind (:mod:`models.gold.queue`) from its ``items``: the representative
    records' attributes, the consequence of each item's entities and how often their names occur, read for the
    items only (``crosswalk``: tonight's, every kind)."""
    from models.gold.consequence import consequences, name_counts
    from models.resolution.splink_settings import MODELS
    from models.silver import scan_silver

    ids = {
        k: crosswalk.lazy().filter(pl.col("entity_type") == k).select("record_id", "entity_id").collect()
        for k in items
    }
    wanted = {k: pl.concat([f["l_entity_id"], f["r_entity_id"]]).unique() for k, f in items.items()}
    stakes = consequences(home, ids, wanted, dt.date.fromisoformat(partition))
    queues = []
    for kind, kind_items in items.items():
        reps = pl.concat([kind_items["record_id_l"], kind_items["record_id_r"]]).unique()
        scan = scan_silver(home, SILVER_TABLE[kind])
        schema = scan.collect_schema().names()
        records = (
            scan.filter(pl.col("record_id").is_in(reps.implode()))
            .select("record_id", *(c for c in SHOWN[kind] if c in schema), "name_comparison")
            .collect()
        )
        names = name_counts(home, kind, records["name_comparison"], ids[kind])
        threshold = MODELS[kind]["threshold"]
        queues.append(review_queue(kind_items, records, stakes[kind], names, kind, threshold))
    return pl.concat(queues, how="diagonal_relaxed")


def _replace_night(path: Location, frame: pl.DataFrame, partition: str, meta) -> None:
    """Replace one night's rows of a table partitioned by night (an append on the first write)."""
    if not exists(path):
        append(path, frame, partition_by=["partition"], commit_properties=meta)
        return
    replace_where(path, frame, f"partition = '{partition}'", commit_properties=meta)


def describe(report: GoldReport) -> str:
    lines = [
        (
            f"gold for {report.partition} (ids carried from {report.previous_partition or 'nothing: first night'})"
            f" in {report.seconds:.1f}s (the review queue {report.queue_seconds:.1f}s)"
        )
    ]
    for kind, k in report.kinds.items():
        lines.append(
            f"  {kind}: {k.records:,} records -> {k.entities:,} entities; kept {k.kept:,} ids, minted "
            f"{k.minted:,}; changes {json.dumps(k.changes)}; {k.review_open:,} items to review ({k.review_pairs:,} in the queue); "
            f"rules {json.dumps(k.by_rule)} ({k.seconds:.1f}s)"
        )
    return "\n".join(lines)


def known_records(home: Path, kind: str, record_ids: list[str]) -> set[str]:
    """Which of ``record_ids`` are records of ``kind`` in silver (a decision about an unknown record is refused)."""
    records = read_silver(home, SILVER_TABLE[kind], columns=["record_id"])
    return set(records.filter(pl.col("record_id").is_in(record_ids))["record_id"])
