"""The department scorecard (报送考核): how well each department submitted its data for one day.

One row per (reporting day D, department, source table or file drop), computed from committed data only --
bronze's lineage columns, the staging models and their quarantine tables -- so a rerun over the same lake
gives the same rows and there is no side state to drift. D is a calendar day in the city's time zone. This
docstring *is* the definition: leaders and departments argue over it, so every number below is exact.

Received records
================
What the department submitted *for* day D depends on what its table can tell:

**Incremental tables with a timestamp cursor** (``cursor_kind: timestamp``; ``kind = 'timestamp'``).
    ``records_received`` = bronze's live rows (``_qst_deleted_at`` is null) whose cursor stamp -- the
    department's own "last updated" column -- falls on D (local time). A row changed later gets a new
    stamp *and* a new ``_qst_extracted_at`` together, so it moves to the day of its new stamp: each
    version of a row is counted once, on the day the department says it made it. A row deleted at the
    source since is no longer counted (the department withdrew it). A row whose stamp is null belongs to
    no day.

    **On time** when it was in bronze by the **deadline** of D: the nightly load at 02:00 on D+1 plus a grace
    period (``grace``, default 4 hours), i.e. ``_qst_extracted_at <= D+1 06:00`` local. **Late** otherwise:
    it arrived in a later night (the loader re-reads a look-back window, so a row stamped days back is
    still picked up -- and counted late for *its* day).

**Incremental tables with an id cursor, and snapshot tables** (``kind = 'id'`` / ``'snapshot'``).
    There is no per-record stamp, so a record is attributed to the night it landed: ``records_received``
    = live rows whose ``_qst_extracted_at`` falls in D's **nightly window**, D+1 00:00 to D+2 00:00 local
    (the night that loads D, whatever time it ran). On a snapshot table that is the rows that were new or
    changed in that night's snapshot (unchanged rows are not rewritten, so they keep their old time).
    **On time** when extracted by D's deadline (the load ran by D+1 06:00); a catch-up load later on D+1
    is late.

**File drops** (``kind = 'file_drop'``).
    A file is loaded (by the sensor, within a minute of its arrival, or by the next nightly run) once.
    ``records_received`` = live rows of the files loaded after D-1's deadline and up to D's deadline
    (D 06:00 < ``_qst_extracted_at`` <= D+1 06:00 local): the files that arrived in time for D. A roster has
    no due day in ``sources.yaml``, so it can never be late: timeliness is *not scored* for file drops
    (null), rather than a meaningless 100 %.

**Initial history.** A table's first load (the earliest ``_qst_extracted_at`` among all its rows, deleted
ones included; ``first_load_at``) brings its whole history at once. Timeliness is scored for D only when
that first load ran by D's deadline (``timeliness_scored``): the night the platform first pulls a table
counts -- its records were there in time -- and no day before it does, since nobody could have delivered
to a platform that was not pulling yet (otherwise every historical day would be 100 % late). On those
earlier days the received records still get the quality components. For id-cursor, snapshot and file-drop
tables the first load's rows cannot be attributed to any day at all, so they are never received: only rows
landed *after* the first load count.

Quality of what was received
============================
The received rows are looked up, at the *same version* (primary key as text ``source_pk`` and
``_qst_row_hash``), in the staging model ``stg_<department>__<asset>`` and its quarantine table. ``staged``
counts the received rows found in either -- all of them once silver has been rebuilt after the last bronze
load. Rows silver has not seen yet (``records_received - staged``) are left out of the quality components
instead of being blamed on the department; ``quarantined`` counts the received rows in quarantine.

``completeness_rate`` (完整率)
    ``mandatory_filled / mandatory_slots``: ``mandatory_slots`` = number of the spec's ``mandatory`` fields
    x ``staged``; ``mandatory_filled`` = over the staged rows, the mandatory fields that are non-null in the
    staging model (a quarantined row fills none). Equivalently the share of rows filling each mandatory
    field, averaged over the fields. A masked identifier has no usable value, so it is not filled; an
    invalid one is (validity judges it). Null without mandatory fields.
``valid_identifier_rate`` (标识有效率)
    ``identifier_valid / identifier_values`` over the identifier columns of the spec
    (``spec.identifier_columns``: USCC, organization code, registration number, TIN, resident ID) of the
    staged rows that are *not* quarantined (quarantine is scored separately): ``identifier_values`` counts
    the values present (``X_status`` is valid, invalid or masked; ``missing`` is completeness's business),
    ``identifier_valid`` those that pass the check algorithm. **Masked counts as not valid**: a masked ID
    (``110101********1234``) cannot link a record to anyone, and masking is the platform's job on the way
    out (the bureau exports), not the department's on the way in. ``identifier_masked`` is shown apart, so a
    department whose law requires masking can make its case with the number. Null without values.
``quarantine_rate`` (隔离率)
    ``quarantined / staged``.

Score and grade
===============
With ``T`` = timeliness_rate = ``on_time / records_received``, ``C`` = completeness_rate,
``V`` = valid_identifier_rate, ``Q`` = quarantine_rate::

    score = 100 x (0.3 T + 0.3 C + 0.2 V + 0.2 (1 - Q)) / (sum of the weights of the terms that are not null)

rounded to one decimal; a component that is null (not measurable that day: nothing received, a file drop's
timeliness, no mandatory field, no identifier, no staging spec) is left out and the other weights scaled up,
so a department is neither rewarded nor punished for what does not apply. Nothing received: no score and no
grade (a quiet day is not a zero). Grade, read from the rounded score (what is shown is what is graded):
**优** >= 90, **良** >= 75, **中** >= 60, **差** < 60.

Why these weights: **timeliness (0.3) and completeness (0.3)** are the submission obligation itself --
deliver by the deadline, fill the fields agreed in the data catalogue -- and both are fully in the
department's hands; late or empty data makes every downstream product (the night's early warnings, the
bureau exports) wrong for everyone. **Validity (0.2)** is what makes a record linkable across departments,
but departments inherit legacy identifiers they cannot always correct, so it weighs less. **Clean rows
(0.2)**: a quarantined row is lost to silver, and it is already counted as all-missing in completeness; a
higher weight would count one defect twice over.

Department totals
=================
:func:`department_summary` pools the table rows of each department and day (``asset = table = '*'``): counts
are summed and the rates recomputed from the sums -- timeliness ``sum(on_time) / sum(on_time + late)`` over
the tables where timeliness is scored, completeness ``sum(filled) / sum(slots)``, validity and quarantine
likewise -- so every record weighs the same and a small perfect table cannot mask a large poor one. The score
applies the same formula to the pooled rates.

Storage
=======
:func:`write_scorecard` writes ``HOME/lake/quality/scorecard`` (Delta), replacing exactly the days present in
the frame (``mode="overwrite"`` with a ``day IN (...)`` predicate: one atomic commit), so rerunning a day
never doubles its rows. A day's row changes as late records arrive, so the nightly run should recompute the
trailing days (at least the loader's look-back window) along with the day that just ended.

Memory is bounded by a day's records: bronze is read with pyarrow dataset filters on the cursor or on
``_qst_extracted_at`` (row groups outside the day are skipped), and only its key and lineage columns; the
staging model and the quarantine table only in the row groups of the loads that wrote the received rows
(their ``_qst_extracted_at`` / ``_qst_batch_id``), and only the key and the scored columns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from connectors.config_schema import SourcesConfig
from connectors.conversion import coerce
from connectors.types import TIMESTAMP_UTC, TypeChoice
from lake.city import city_zone
from lake.delta import delta_table, read_dataset, replace_where
from lake.layout import bronze_path, quarantine_rows_path, scorecard_path, silver_path
from lake.storage import Location
from models.scorecard import GRADES, SCORECARD_SCHEMA, SILVER_COUNTS, UTC_TS, WEIGHTS, with_rates
from models.silver import source_infos
from models.staging.spec import StagingSpec
from models.staging.stage import SourceInfo, source_pk

__all__ = [
    "DEFAULT_GRACE",
    "GRADES",
    "NIGHTLY_LOAD",
    "SCORECARD_SCHEMA",
    "WEIGHTS",
    "deadline",
    "department_summary",
    "department_totals",
    "grade",
    "read_scorecard",
    "scorecard",
    "write_scorecard",
]

#: When the nightly load runs on D+1 (the schedule of ``pipelines/bronze.py``).
NIGHTLY_LOAD = dt.time(2, 0)
DEFAULT_GRACE = dt.timedelta(hours=4)
TOTAL = "*"

EXTRACTED = "_qst_extracted_at"
DELETED = "_qst_deleted_at"
ROW_HASH = "_qst_row_hash"
BATCH = "_qst_batch_id"


def _local(day: dt.date, at: dt.time = dt.time(0)) -> dt.datetime:
    return dt.datetime.combine(day, at, tzinfo=city_zone())  # the city's calendar


def deadline(day: dt.date, grace: dt.timedelta = DEFAULT_GRACE) -> dt.datetime:
    """When day ``day``'s records must be in bronze: the nightly load on the next day plus ``grace`` (UTC)."""
    return (_local(day + dt.timedelta(days=1), NIGHTLY_LOAD) + grace).astimezone(dt.UTC)


def grade(score: float | None) -> str | None:
    """优 / 良 / 中 / 差 for a (rounded) score; None without a score."""
    if score is None:
        return None
    return next(g for low, g in GRADES if score >= low)


# --------------------------------------------------------------------------------------------------
# What was received
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    department: str
    asset: str
    table: str
    kind: str  # timestamp | id | snapshot | file_drop
    cursor: str | None  # bronze column of a timestamp cursor
    info: SourceInfo
    zone: str | None = None  # the department's source_timezone: how a cursor stored as text reads


def _sources(config: SourcesConfig) -> list[_Source]:
    infos = source_infos(config)
    out: list[_Source] = []
    for dept, table in config.iter_tables():
        if table.mode == "snapshot":
            kind, cursor = "snapshot", None
        elif table.cursor_kind == "id":
            kind, cursor = "id", None
        else:
            assert table.cursor is not None  # TableConfig's rules: an incremental table has a cursor
            kind, cursor = "timestamp", table.output_name(table.cursor)
        assert table.asset is not None  # TableConfig's rules require one
        info = infos[f"{dept.key}/{table.asset}"]
        zone = dept.effective_timezone(config.defaults).key
        out.append(_Source(dept.key, table.asset, table.name, kind, cursor, info, zone))
    for dept, drop in config.iter_files():
        out.append(
            _Source(dept.key, drop.name, drop.name, "file_drop", None, infos[f"{dept.key}/{drop.name}"])
        )
    return out


def _scalar(moment: dt.datetime, dtype: pa.DataType) -> pa.Scalar:
    """``moment`` (aware) as a scalar comparable with a column of ``dtype`` (naive timestamps are UTC)."""
    if not pa.types.is_timestamp(dtype):
        raise TypeError(f"expected a timestamp column, got {dtype}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if dtype.tz is None:
        return pa.scalar(moment.astimezone(dt.UTC).replace(tzinfo=None), type=dtype)
    return pa.scalar(moment.astimezone(dt.UTC), type=dtype)


def _any_of(column: str, values: list, dtype: pa.DataType):
    """``column IN values`` as equalities, which pyarrow checks against the Parquet row-group statistics
    (a day's received rows come from a handful of loads, so few row groups are read); None for too many."""
    import pyarrow.dataset as pds

    if not values or len(values) > 64 or any(v is None for v in values):
        return None
    expr = None
    for v in values:
        term = pds.field(column) == (
            _scalar(v, dtype) if pa.types.is_timestamp(dtype) else pa.scalar(v, dtype)
        )
        expr = term if expr is None else expr | term
    return expr


def _first_load(path: Location, dataset) -> dt.datetime | None:
    """The earliest ``_qst_extracted_at`` of all rows (deleted ones too): when the table was first loaded.

    The Delta log's per-file minimum (millisecond precision) narrows the read to the row groups within a
    millisecond of it; the exact value comes from the data."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pds

    actions = pl.from_arrow(delta_table(path).get_add_actions(flatten=True))
    if isinstance(actions, pl.Series):
        actions = actions.struct.unnest()
    stat = f"min.{EXTRACTED}"
    dtype = dataset.schema.field(EXTRACTED).type
    flt = None
    if actions.height and stat in actions.columns:
        files = actions.filter(pl.col("num_records").fill_null(1) > 0)
        if files.height and files.get_column(stat).null_count() == 0:
            low = files.get_column(stat).min()
            assert isinstance(low, dt.datetime)  # the minimum of a timestamp column without nulls
            flt = pds.field(EXTRACTED) <= _scalar(low + dt.timedelta(milliseconds=1), dtype)
    values = dataset.to_table(columns=[EXTRACTED], filter=flt).column(EXTRACTED)
    first = pc.min(values).as_py()
    if first is None and flt is not None:  # statistics that do not match the data: read it all
        first = pc.min(dataset.to_table(columns=[EXTRACTED]).column(EXTRACTED)).as_py()
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=dt.UTC)
    return first


def _text_cursor_on(text: pa.ChunkedArray, day: dt.date, zone: str) -> pa.Array:
    """Which rows' text cursor stamps fall on ``day`` (local): the text parsed by the reader's own rule for
    a declared ``type: timestamp`` (naive text in the department's ``source_timezone``; unparseable: no day).

    Why: bronze still holds text cursors loaded before their type was declared (the loader refuses to go
    on until they are recast, see :func:`connectors.extract.check_stored_cursor`); the scorecard of those
    days is computed on the same typed values the recast will store, instead of failing the night."""
    import pyarrow.compute as pc

    choice = TypeChoice("timestamp", TIMESTAMP_UTC, "sqlite_text", source_kind="string")
    stamps = coerce(text, choice, zone=zone).values
    start = _scalar(_local(day), TIMESTAMP_UTC)
    end = _scalar(_local(day + dt.timedelta(days=1)), TIMESTAMP_UTC)
    return pc.fill_null(pc.and_(pc.greater_equal(stamps, start), pc.less(stamps, end)), False)


@dataclass
class _Received:
    rows: pl.DataFrame  # source_pk, _qst_row_hash, _qst_extracted_at, _qst_batch_id, on_time (bool)
    first_load_at: dt.datetime | None
    scored: bool


def _received(home: Path, source: _Source, day: dt.date, grace: dt.timedelta) -> _Received:
    import pyarrow.dataset as pds

    empty = pl.DataFrame(
        schema={
            "source_pk": pl.Utf8,
            ROW_HASH: pl.Int64,
            EXTRACTED: UTC_TS,
            BATCH: pl.Utf8,
            "on_time": pl.Boolean,
        }
    )
    path = bronze_path(home, source.department, source.asset)
    dataset = read_dataset(path)
    if dataset is None:
        return _Received(empty, None, False)
    first = _first_load(path, dataset)
    if first is None:
        return _Received(empty, None, False)
    due = deadline(day, grace)
    schema = dataset.schema
    ex_type = schema.field(EXTRACTED).type
    flt = pds.field(DELETED).is_null()
    text_cursor: str | None = None
    if source.kind == "timestamp":
        cursor = source.cursor
        ctype = schema.field(cursor).type
        if pa.types.is_date(ctype):
            flt &= (pds.field(cursor) >= pa.scalar(day, ctype)) & (
                pds.field(cursor) < pa.scalar(day + dt.timedelta(days=1), ctype)
            )
        elif pa.types.is_timestamp(ctype):
            start, end = _local(day), _local(day + dt.timedelta(days=1))
            flt &= (pds.field(cursor) >= _scalar(start, ctype)) & (pds.field(cursor) < _scalar(end, ctype))
        elif pa.types.is_string(ctype) or pa.types.is_large_string(ctype):
            text_cursor = cursor  # parsed below, as the loader now would (see _text_cursor_on)
        else:
            raise TypeError(
                f"bronze table {source.department}/{source.asset}: the timestamp cursor {cursor!r} "
                f"is stored as {ctype}, not a date, timestamp or text"
            )
    else:
        if source.kind == "file_drop":
            start, end = deadline(day - dt.timedelta(days=1), grace), due
            flt &= (pds.field(EXTRACTED) > _scalar(start, ex_type)) & (
                pds.field(EXTRACTED) <= _scalar(end, ex_type)
            )
        else:
            start, end = _local(day + dt.timedelta(days=1)), _local(day + dt.timedelta(days=2))
            flt &= (pds.field(EXTRACTED) >= _scalar(start, ex_type)) & (
                pds.field(EXTRACTED) < _scalar(end, ex_type)
            )
        flt &= pds.field(EXTRACTED) > _scalar(first, ex_type)  # the first load is the initial history
    info = source.info
    keys = ["_qst_file", "_qst_line"] if info.is_file_drop else list(info.primary_key)
    wanted = [*keys, ROW_HASH, EXTRACTED, BATCH, *([text_cursor] if text_cursor else [])]
    table = dataset.to_table(columns=list(dict.fromkeys(wanted)), filter=flt)
    if text_cursor is not None:
        table = table.filter(_text_cursor_on(table.column(text_cursor), day, source.zone or city_zone().key))
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    rows = frame.select(
        source_pk=source_pk(info),
        **{
            ROW_HASH: pl.col(ROW_HASH),
            EXTRACTED: pl.col(EXTRACTED).cast(UTC_TS),
            BATCH: pl.col(BATCH).cast(pl.Utf8),
        },
    )
    rows = rows.with_columns(on_time=pl.col(EXTRACTED) <= due)
    scored = source.kind != "file_drop" and first <= due
    return _Received(rows.cast(empty.schema), first, scored)


# --------------------------------------------------------------------------------------------------
# Their quality in silver
# --------------------------------------------------------------------------------------------------
def _silver_counts(home: Path, spec: StagingSpec, received: pl.DataFrame) -> dict[str, int]:
    import pyarrow.dataset as pds

    counts = dict.fromkeys(SILVER_COUNTS, 0)
    if received.height == 0:
        return counts
    key = ["source_pk", ROW_HASH]
    wanted = received.select(key).unique()
    ids = spec.identifier_columns
    scored_columns = list(dict.fromkeys([*spec.mandatory, *(f"{c}_status" for c in ids)]))
    staged = pl.DataFrame(schema={"source_pk": pl.Utf8, ROW_HASH: pl.Int64})
    dataset = read_dataset(silver_path(home, spec.name))
    if dataset is not None:
        names = dataset.schema.names
        flt = None
        if EXTRACTED in names:  # the same version carries the same extraction time: skip other row groups
            ex_type = dataset.schema.field(EXTRACTED).type
            times = received.get_column(EXTRACTED)
            flt = _any_of(EXTRACTED, times.unique().sort().to_list(), ex_type)
            if flt is None:
                low, high = times.min(), times.max()
                # received has rows (above), and bronze's extraction time is never null
                assert isinstance(low, dt.datetime) and isinstance(high, dt.datetime)
                flt = (pds.field(EXTRACTED) >= _scalar(low, ex_type)) & (
                    pds.field(EXTRACTED) <= _scalar(high, ex_type)
                )
        columns = [*key, *(c for c in scored_columns if c in names)]
        frame = pl.from_arrow(dataset.to_table(columns=columns, filter=flt))
        assert isinstance(frame, pl.DataFrame)
        for c in scored_columns:  # a spec newer than its staging model: the column is not filled yet
            if c not in frame.columns:
                frame = frame.with_columns(pl.lit(None, pl.Utf8).alias(c))
        staged = frame.join(wanted, on=key, how="semi", nulls_equal=True)
    quarantined = 0
    qset = read_dataset(quarantine_rows_path(home, spec.department, spec.asset))
    if qset is not None and all(k in qset.schema.names for k in key):
        flt = None
        if BATCH in qset.schema.names:  # quarantined by the same version: written by the same load
            flt = _any_of(
                BATCH, received.get_column(BATCH).unique().sort().to_list(), qset.schema.field(BATCH).type
            )
        q = pl.from_arrow(qset.to_table(columns=key, filter=flt))
        assert isinstance(q, pl.DataFrame)
        quarantined = wanted.join(q.unique(), on=key, how="semi", nulls_equal=True).height
    counts["staged"] = staged.height + quarantined
    counts["quarantined"] = quarantined
    counts["mandatory_slots"] = len(spec.mandatory) * counts["staged"]
    if staged.height:
        if spec.mandatory:
            counts["mandatory_filled"] = int(
                staged.select(
                    pl.sum_horizontal([pl.col(c).is_not_null().sum() for c in spec.mandatory])
                ).item()
            )
        for c in ids:
            status = staged.get_column(f"{c}_status")
            counts["identifier_values"] += int(status.is_in(["valid", "invalid", "masked"]).sum())
            counts["identifier_valid"] += int((status == "valid").sum())
            counts["identifier_masked"] += int((status == "masked").sum())
    return counts


def scorecard(
    home: Path,
    config: SourcesConfig,
    specs: dict[str, StagingSpec],
    day: dt.date,
    *,
    grace: dt.timedelta = DEFAULT_GRACE,
) -> pl.DataFrame:
    """The scorecard of reporting day ``day``: one row per configured table and file drop (see the module
    docstring). A table without a staging spec (``specs`` by ``<department>/<asset>``) gets its received
    and timeliness figures; its silver components are null."""
    home = Path(home)
    due = deadline(day, grace)
    rows: list[dict] = []
    for source in _sources(config):
        got = _received(home, source, day, grace)
        received = got.rows
        on_time = int(received.get_column("on_time").sum()) if got.scored else None
        row: dict = {
            "day": day,
            "department": source.department,
            "asset": source.asset,
            "table": source.table,
            "kind": source.kind,
            "first_load_at": got.first_load_at,
            "deadline": due,
            "timeliness_scored": got.scored,
            "records_received": received.height,
            "on_time": on_time,
            "late": None if on_time is None else received.height - on_time,
        }
        spec = specs.get(f"{source.department}/{source.asset}")
        row.update(_silver_counts(home, spec, received) if spec is not None else dict.fromkeys(SILVER_COUNTS))
        rows.append(row)
    schema = {
        k: v
        for k, v in SCORECARD_SCHEMA.items()
        if k
        not in (
            "timeliness_rate",
            "completeness_rate",
            "valid_identifier_rate",
            "quarantine_rate",
            "score",
            "grade",
        )
    }
    return with_rates(pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema))


def department_totals(card: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The department total rows of ``card`` for ``day``: what a leader reads first, and what a run reports."""
    return card.filter((pl.col("asset") == TOTAL) & (pl.col("day") == day))


def department_summary(frame: pl.DataFrame) -> pl.DataFrame:
    """One total row per (day, department) of a scorecard frame (``asset = table = '*'``): counts summed,
    rates recomputed from the sums (every record weighs the same), scored with the same formula."""
    tables = frame.filter(pl.col("asset") != TOTAL)

    def total(c: str) -> pl.Expr:  # null when no table has the count (e.g. no spec anywhere)
        return pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum())

    scored = pl.col("timeliness_scored").fill_null(False)
    grouped = tables.group_by("day", "department", maintain_order=True).agg(
        asset=pl.lit(TOTAL),
        table=pl.lit(TOTAL),
        kind=pl.lit(None, pl.Utf8),
        first_load_at=pl.col("first_load_at").min(),
        deadline=pl.col("deadline").first(),
        timeliness_scored=scored.any(),
        records_received=pl.col("records_received").sum(),
        on_time=pl.when(scored.any()).then(pl.col("on_time").filter(scored).sum()),
        late=pl.when(scored.any()).then(pl.col("late").filter(scored).sum()),
        **{c: total(c) for c in SILVER_COUNTS},
    )
    return with_rates(grouped)


#: How many days before the night's own day are scored again each night: a day's figures change while late
#: rows still arrive, and the loader's look-back (3 days by default) is how long they can.
RESCORE_DAYS = 3


def nightly_scorecard(
    home: Path,
    config: SourcesConfig,
    specs: dict[str, StagingSpec],
    day: dt.date,
    *,
    rescore_days: int = RESCORE_DAYS,
    grace: dt.timedelta = DEFAULT_GRACE,
) -> pl.DataFrame:
    """What a night writes: the scorecards of ``day`` and the ``rescore_days`` days before it, each with its
    department totals."""
    frames = []
    for back in range(rescore_days, -1, -1):
        card = scorecard(home, config, specs, day - dt.timedelta(days=back), grace=grace)
        frames += [card, department_summary(card)]
    return pl.concat(frames, how="vertical_relaxed")


# --------------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------------
def write_scorecard(home: Path, frame: pl.DataFrame) -> Location:
    """Write ``frame`` to ``HOME/lake/quality/scorecard``, replacing exactly the rows of the days it holds
    (one atomic commit), so a rerun for a day never doubles its rows. Returns the table's path."""
    path = scorecard_path(home)
    frame = frame.select(list(SCORECARD_SCHEMA)).cast(SCORECARD_SCHEMA)
    days = sorted(set(frame.get_column("day").to_list()))
    if not days:
        return path
    if None in days:
        raise ValueError("every scorecard row needs its day")
    predicate = "day IN (" + ", ".join(f"'{d.isoformat()}'" for d in days) + ")"
    if isinstance(path, Path):
        path.mkdir(parents=True, exist_ok=True)
    replace_where(path, frame, predicate)
    return path


def read_scorecard(home: Path) -> pl.DataFrame:
    """Every stored scorecard row, by day, department and table (a department's total row after its tables)."""
    dataset = read_dataset(scorecard_path(home))
    if dataset is None:
        return pl.DataFrame(schema=SCORECARD_SCHEMA)
    frame = pl.from_arrow(dataset.to_table())
    assert isinstance(frame, pl.DataFrame)
    return (
        frame.select(list(SCORECARD_SCHEMA))
        .cast(SCORECARD_SCHEMA)
        .sort("day", "department", pl.col("asset") == TOTAL, "asset")
    )
