"""The silver layer on disk: staging models and canonical intermediate tables as Delta tables.

- ``HOME/lake/silver/stg_<department>__<asset>`` — one staging model per bronze table (:func:`build_staging`);
- ``HOME/lake/quarantine/rows/<department>/<asset>`` — its quarantined rows (:mod:`models.staging.quarantine`; reconciled by :mod:`quality.quarantine`);
- ``HOME/lake/silver/int_enterprise_records``, ``int_person_records``, ``int_events``, ``int_service_cases`` —
  the union of every staging model's mentions, events and service cases (:func:`build_intermediate`, schemas in :mod:`models.canonical`);
- ``HOME/lake/silver/int_departments`` — the deployment's departments and their titles (:func:`build_departments`).

Each build is a full recompute from what is committed upstream (bronze's live rows; the staging models),
written as one overwrite commit per table: a rerun gives the same table, a crash leaves the previous version
(Delta's atomic commit), and no watermark or side state can drift. Bronze is read a batch at a time and the
output streamed into the writer, so memory is bounded by the batch, not by the table.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from connectors.config_schema import SourcesConfig
from lake.delta import (
    arrow_schema,
    exists,
    open_delta,
    overwrite,
    read_dataset,
    scan_pinned,
    table_dataset,
    to_arrow,
)
from lake.layout import (
    bronze_path,
    quarantine_mentions_path,
    quarantine_rows_path,
    silver_path,
)
from lake.storage import Location
from models import canonical, canonical_changes
from models import staging_changes as changes
from models.staging.quarantine import MENTION_QUARANTINE_SCHEMA, QUARANTINE_SCHEMA, mention_quarantine
from models.staging.spec import StagingSpec
from models.staging.stage import SourceInfo, stage

if TYPE_CHECKING:
    import pyarrow.dataset as pds
    from deltalake import DeltaTable

DEFAULT_BATCH_ROWS = 200_000
#: pyarrow's scanner reads up to 16 batches and 4 files ahead by default: memory that grows with the table
#: (measured: 1.4 GB on a 400k-row table); one ahead keeps it bounded by the batch.
READ_AHEAD = {"batch_readahead": 1, "fragment_readahead": 1}


def _writer_properties():
    from deltalake import WriterProperties

    # bronze's measured settings (connectors/bronze.py): 64k-row groups flush as they go; an early fallback
    # from dictionary encoding for many-valued text columns saves CPU for files no larger
    return WriterProperties(
        compression="SNAPPY", max_row_group_size=65_536, dictionary_page_size_limit=131_072
    )


WRITER_PROPERTIES = _writer_properties()


def source_infos(config: SourcesConfig) -> dict[str, SourceInfo]:
    """What the staging engine needs of each bronze table of ``config``, by ``<department>/<asset>``."""
    infos: dict[str, SourceInfo] = {}
    for dept, table in config.iter_tables():
        tz = dept.source_timezone or config.defaults.source_timezone
        assert table.asset is not None  # TableConfig sets it (from the name by default) when it validates
        infos[f"{dept.key}/{table.asset}"] = SourceInfo(
            dept.key,
            table.asset,
            table.name,
            tuple(table.output_name(c) for c in table.primary_key),
            timezone=tz,
        )
    for dept, drop in config.iter_files():
        tz = dept.source_timezone or config.defaults.source_timezone
        infos[f"{dept.key}/{drop.name}"] = SourceInfo(
            dept.key, drop.name, drop.name, (), is_file_drop=True, timezone=tz
        )
    return infos


@dataclass
class StagingReport:
    model: str
    bronze_rows: int = 0
    staged_rows: int = 0
    quarantined_rows: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: ``full`` (every live row restaged) or ``incremental`` (the rows bronze changed since the last build)
    mode: str = "full"
    #: why a build was full (empty for an incremental one)
    why_full: str = ""
    #: rows bronze wrote since the last build (incremental builds)
    changed_bronze_rows: int = 0
    #: a full build asked for where the last build was by the same rules: rows it found different (None: not
    #: measured)
    drift_rows: int | None = None

    @property
    def rows_per_second(self) -> float:
        return self.bronze_rows / self.seconds if self.seconds else 0.0


def _bronze_batches(table: DeltaTable, batch_rows: int) -> Iterator[pl.DataFrame]:
    """Bronze's live rows, ``batch_rows`` at a time. The dataset is opened here, eagerly: the batches are
    pulled from inside delta-rs's writer, where opening a Delta table would start a second async runtime."""
    import pyarrow.dataset as pds

    scanner = table_dataset(table).scanner(
        filter=pds.field("_qst_deleted_at").is_null(), batch_size=batch_rows, **READ_AHEAD
    )
    return _rebatch(scanner.to_batches(), batch_rows)


def _frame(data: pa.Table | pa.RecordBatch) -> pl.DataFrame:
    """``pl.from_arrow`` of a table or a record batch, which is always a frame (a Series comes only of an
    array, which its signature also takes)."""
    frame = pl.from_arrow(data)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _rebatch(batches: Iterator[pa.RecordBatch], batch_rows: int) -> Iterator[pl.DataFrame]:
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        rows += batch.num_rows
        if rows >= batch_rows:
            yield _frame(pa.Table.from_batches(pending))
            pending, rows = [], 0
    if pending:
        yield _frame(pa.Table.from_batches(pending))


def _open_bronze(path: Location) -> DeltaTable:
    table = open_delta(path)
    if table is None:
        raise FileNotFoundError(f"bronze table {path} does not exist yet: load it first (qst run)")
    return table


def build_staging(
    home: Path,
    spec: StagingSpec,
    info: SourceInfo,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    full: bool = False,
) -> StagingReport:
    """Bring one staging model and its quarantine up to bronze's live rows (the caller reconciles the counts:
    :func:`quality.quarantine.reconcile_staging`): by restaging only the rows bronze changed since the last build
    when that gives the same tables (:mod:`models.staging_changes`), else -- or with ``full`` -- from every row.
    The report says which (``mode``) and why a build was full (``why_full``); a full build asked for where an
    incremental one was possible also reports the rows the two disagree on (``drift_rows``)."""
    started = time.perf_counter()
    home = Path(home)
    bronze = _open_bronze(bronze_path(home, spec.department, spec.asset))
    fingerprint = changes.staging_fingerprint(spec, info)
    target = silver_path(home, spec.name)
    plan = changes.plan(
        bronze,
        open_delta(target),
        open_delta(quarantine_rows_path(home, spec.department, spec.asset)),
        fingerprint,
    )
    report = StagingReport(spec.name, why_full=plan.why_full)
    state = changes.commit_state(plan.bronze_version, fingerprint)
    if plan.changes is not None:
        _incremental_staging(home, spec, info, bronze, plan.changes, state, report, batch_rows)
    if full or plan.changes is None:
        # asked for a full build where an incremental one was possible (the weekly rebuild): the incremental
        # result was just committed; the rows the full build finds different from it are the drift
        kept = open_delta(target) if plan.changes is not None else None
        incremental = report.changed_bronze_rows
        report = StagingReport(spec.name, why_full=plan.why_full or "a full build was asked for")
        _full_staging(home, spec, info, bronze, state, report, batch_rows)
        if kept is not None:
            report.changed_bronze_rows = incremental
            report.drift_rows = changes.drift_rows(target, kept.version())
    report.seconds = time.perf_counter() - started
    return report


def _full_staging(
    home: Path,
    spec: StagingSpec,
    info: SourceInfo,
    bronze: DeltaTable,
    state: object,
    report: StagingReport,
    batch_rows: int,
) -> None:
    report.mode = "full"
    empty = _frame(arrow_schema(bronze).empty_table())
    bronze_frames = _bronze_batches(bronze, batch_rows)
    reasons: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="qst-quarantine-") as spool:
        spool_path = Path(spool) / "quarantined.parquet"
        quarantine_schema = to_arrow(pl.DataFrame(schema=QUARANTINE_SCHEMA)).schema
        import pyarrow.parquet as pq

        writer = pq.ParquetWriter(spool_path, quarantine_schema)
        try:

            def staged_batches() -> Iterator[pa.RecordBatch]:
                for frame in bronze_frames:
                    result = stage(frame, spec, info)
                    report.bronze_rows += frame.height
                    report.staged_rows += result.rows.height
                    if result.quarantined.height:
                        report.quarantined_rows += result.quarantined.height
                        reasons.update(result.quarantined["reasons"].explode().drop_nulls().to_list())
                        writer.write_table(to_arrow(result.quarantined).cast(quarantine_schema))
                    yield from to_arrow(result.rows).to_batches()

            # the staging schema from the first batch (staging an empty frame for it costs a whole pass of
            # expression planning, a tenth of a second per table); from an empty one when bronze is empty
            produced = staged_batches()
            first = next(produced, None)
            if first is None:
                rest: Iterator[pa.RecordBatch] = iter(())
                schema = to_arrow(stage(empty, spec, info).rows).schema
            else:
                schema, rest = first.schema, itertools.chain([first], produced)
            reader = pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in rest))
            overwrite(
                silver_path(home, spec.name),
                reader,
                writer_properties=WRITER_PROPERTIES,
                commit_properties=state,
            )
        finally:
            writer.close()
        quarantined = pq.read_table(spool_path)
        overwrite(
            quarantine_rows_path(home, spec.department, spec.asset), quarantined, commit_properties=state
        )
    report.reasons = dict(reasons.most_common())


def _incremental_staging(
    home: Path,
    spec: StagingSpec,
    info: SourceInfo,
    bronze: DeltaTable,
    changed: changes.BronzeChanges,
    state: object,
    report: StagingReport,
    batch_rows: int,
) -> None:
    """Restage the rows bronze wrote since the last build and replace their keys in the quarantine, then in the
    staging model, each in one MERGE that records the new state (:mod:`models.staging_changes`)."""
    report.mode = "incremental"
    report.changed_bronze_rows = changed.changed_rows
    frames: list[pl.DataFrame] = []
    if changed.changed_rows:
        dataset = table_dataset(bronze, changed.files)
        scanner = dataset.scanner(filter=changed.filter(), batch_size=batch_rows, **READ_AHEAD)
        frames = list(_rebatch(scanner.to_batches(), batch_rows))
    keys = changes.touched_keys(frames, info)
    reasons: Counter[str] = Counter()
    staged_parts: list[pl.DataFrame] = []
    quarantined_parts: list[pl.DataFrame] = []
    for frame in frames:
        live = frame.filter(pl.col("_qst_deleted_at").is_null())
        if live.height == 0:
            continue
        result = stage(live, spec, info)
        report.bronze_rows += live.height
        report.staged_rows += result.rows.height
        staged_parts.append(result.rows)
        if result.quarantined.height:
            report.quarantined_rows += result.quarantined.height
            reasons.update(result.quarantined["reasons"].explode().drop_nulls().to_list())
            quarantined_parts.append(result.quarantined)
    staged = pl.concat(staged_parts, how="vertical_relaxed") if staged_parts else pl.DataFrame()
    quarantined = (
        pl.concat(quarantined_parts, how="vertical_relaxed")
        if quarantined_parts
        else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    )
    for path, rows, props in (
        (quarantine_rows_path(home, spec.department, spec.asset), quarantined, None),
        (silver_path(home, spec.name), staged, WRITER_PROPERTIES),
    ):
        target = open_delta(path)
        assert target is not None  # the plan is incremental only when both tables exist
        changes.merge_rows(target, rows, keys, state, writer_properties=props)

    report.reasons = dict(reasons.most_common())


def warm_up(specs: list[StagingSpec], infos: dict[str, SourceInfo]) -> None:
    """Build the standardizers' lookup tables and patterns (divisions, names, crosswalks) once, up front, by
    staging one made-up row per spec: about a second and a half, paid once per process (a benchmark reports
    it apart)."""
    import pyarrow.dataset  # noqa: F401 - imports pandas: a second the first read would otherwise pay

    for spec in specs:
        columns: dict[str, list[str | int]] = {c: ["深圳市南山区科技园路1号"] for c in spec.bronze_columns()}
        columns |= {"_qst_file": ["warm.csv"], "_qst_line": [1], "ID": ["1"]}
        info = infos[spec.source]
        info = SourceInfo(info.department, info.asset, info.table, ("ID",), timezone=info.timezone)
        stage(pl.DataFrame(columns), spec, info)


def scan_silver(home: Path, name: str) -> pl.LazyFrame:
    """A silver table as a lazy scan pinned at its current Delta version: reading its columns in several passes
    (what the entity resolution does, to hold one group of columns at a time) gives the same rows in the same
    order, even if a writer commits in between."""
    path = silver_path(home, name)
    if not exists(path):
        raise FileNotFoundError(
            f"silver table {name} does not exist under {home}: run the silver assets first"
        )
    return scan_pinned(path)


def read_silver(home: Path, name: str, columns: list[str] | None = None) -> pl.DataFrame:
    """A silver table, whole, or the named columns of it.

    Read by Polars' own Parquet reader from the Delta table's current files (``pl.scan_delta``): on the
    14-million-row canonical table of a 1M-enterprise city that is 5x faster than going through an Arrow table
    and holds half the memory (no Arrow copy beside the Polars frame, nothing kept by Arrow's allocator).
    """
    scan = scan_silver(home, name)
    return (scan.select(columns) if columns is not None else scan).collect()


def sample_silver(home: Path, name: str, max_rows: int = 200_000, seed: int = 0) -> tuple[pl.DataFrame, int]:
    """Up to ``max_rows`` rows of a silver table drawn at random (all of a smaller table), and its row count:
    what the expectation suites validate, so a 45-million-row night never sits in memory."""
    import numpy as np

    dataset = read_dataset(silver_path(home, name))
    if dataset is None:
        raise FileNotFoundError(
            f"silver table {name} does not exist under {home}: run the silver assets first"
        )
    total = dataset.count_rows()
    if total <= max_rows:
        return _frame(dataset.to_table()), total
    indices = np.sort(np.random.default_rng(seed).choice(total, size=max_rows, replace=False))
    return _frame(dataset.take(pa.array(indices))), total


@dataclass
class IntermediateReport:
    table: str
    #: the table's rows after the build
    rows: int = 0
    #: rows built, by source: every row of a full build, the changed source rows' of an incremental one
    by_source: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: declared mentions a staged row could not give (record tables only), by source (as ``by_source``)
    quarantined_mentions: dict[str, int] = field(default_factory=dict)
    #: ``full`` or ``incremental`` (the rows of the source rows bronze changed, models/canonical_changes.py)
    mode: str = "full"
    why_full: str = ""
    #: source rows whose rows an incremental build replaced
    changed_keys: int = 0


def build_intermediate(
    home: Path,
    table: str,
    specs: list[StagingSpec],
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    infos: dict[str, SourceInfo] | None = None,
    full: bool = False,
) -> IntermediateReport:
    """Bring one canonical table (``int_enterprise_records`` ...) up to the staging models of ``specs`` that exist: by
    rebuilding only the rows of the source rows bronze changed since its last build when that gives the same table
    (:mod:`models.canonical_changes`; needs ``infos``, the sources' keys), else -- or with ``full`` -- from every
    staged row, in one overwrite commit streamed a staging batch at a time. A table of records also brings its
    mentions' quarantine (:func:`models.staging.quarantine.mention_quarantine`) along, so that the reconciliation
    (:func:`quality.quarantine.reconcile_mentions`) counts both as committed."""
    started = time.perf_counter()
    home = Path(home)
    feeding = [spec for spec in specs if canonical.feeds(table, spec)]
    staging = {spec.source: open_delta(silver_path(home, spec.name)) for spec in feeding}
    records = table in canonical.RECORD_TABLES
    plan = canonical_changes.plan_canonical(
        home,
        feeding,
        staging,
        open_delta(silver_path(home, table)),
        open_delta(quarantine_mentions_path(home, table)) if records else None,
        table,
        incremental="a full build was asked for"
        if full
        else ""
        if infos
        else "the sources' keys were not given",
    )
    if plan.changes is not None and infos is not None:
        applied = canonical_changes.apply_changes(home, table, plan, infos, staging, batch_rows)
        report = IntermediateReport(
            table,
            by_source=applied.added or {},
            quarantined_mentions=applied.quarantined or {},
            mode="incremental",
            changed_keys=applied.keys,
        )
        table_now = open_delta(silver_path(home, table))
        report.rows = table_now.count() if table_now is not None else 0
    else:
        report = IntermediateReport(table, why_full=plan.why_full)
        _full_intermediate(home, table, feeding, staging, report, batch_rows, plan)
    report.seconds = time.perf_counter() - started
    return report


def _full_intermediate(
    home: Path,
    table: str,
    feeding: list[StagingSpec],
    staging: dict[str, DeltaTable | None],
    report: IntermediateReport,
    batch_rows: int,
    plan: canonical_changes.CanonicalPlan,
) -> None:
    builder = canonical.BUILDERS[table]
    schema = to_arrow(pl.DataFrame(schema=canonical.SCHEMAS[table])).schema
    records = table in canonical.RECORD_TABLES
    mention_quarantine_parts: list[pl.DataFrame] = []
    commit = canonical_changes.state(plan.sources, plan.fingerprint)

    # opened before the writer starts pulling batches (see _bronze_batches)
    datasets: list[tuple[StagingSpec, pds.Dataset | None]] = []
    for spec in feeding:
        model = staging[spec.source]
        datasets.append((spec, None if model is None else table_dataset(model)))

    def batches() -> Iterator[pa.RecordBatch]:
        for spec, dataset in datasets:
            if dataset is None:
                continue
            for batch in dataset.to_batches(batch_size=batch_rows, **READ_AHEAD):
                if batch.num_rows == 0:
                    continue
                frame = _frame(batch)
                out = builder(frame, spec)
                if records:
                    refused = mention_quarantine(frame, spec, table)
                    if refused.height:
                        mention_quarantine_parts.append(refused)
                        counts = report.quarantined_mentions
                        counts[spec.source] = counts.get(spec.source, 0) + refused.height
                if out.height:
                    report.rows += out.height
                    report.by_source[spec.source] = report.by_source.get(spec.source, 0) + out.height
                    yield from to_arrow(out).cast(schema).to_batches()

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    overwrite(silver_path(home, table), reader, writer_properties=WRITER_PROPERTIES, commit_properties=commit)
    if records:
        refused = pl.concat(
            [pl.DataFrame(schema=MENTION_QUARANTINE_SCHEMA), *mention_quarantine_parts], how="vertical"
        )
        overwrite(quarantine_mentions_path(home, table), to_arrow(refused), commit_properties=commit)


def build_departments(home: Path, config: SourcesConfig) -> IntermediateReport:
    """Write the canonical ``int_departments`` (:func:`models.canonical.departments`) from the deployment's
    ``sources.yaml``: one overwrite commit, so the marts read the departments' names as of a lake version."""
    started = time.perf_counter()
    frame = canonical.departments(config)
    overwrite(silver_path(Path(home), canonical.DEPARTMENTS_TABLE), to_arrow(frame))
    return IntermediateReport(
        canonical.DEPARTMENTS_TABLE, rows=frame.height, seconds=time.perf_counter() - started
    )
