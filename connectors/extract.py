"""One night's load of one source table or file drop into bronze — plain functions, no Dagster.

This is where the pieces meet: the watermark comes from what bronze committed
(:func:`connectors.bronze.watermark`), the reader streams what changed since then minus the look-back
window (:func:`connectors.readers.open_table`), and the writer upserts it
(:func:`connectors.bronze.upsert_batches`). Because the only state is the committed Delta table,
killing the process anywhere and running again converges to the source: rows already committed are
re-read at most once more and merged by primary key, never doubled.

Deletes are found by a key snapshot (all primary keys of the source, nothing else) every
``key_snapshot_every_days``; the time of the last one is read back from the Delta history, again
derived from committed data. A first load (the table held no rows before it) takes no key snapshot:
every row in bronze was just read, so there is nothing to find yet; the next run takes it (its
``last_key_snapshot`` is still unset).

:class:`TableLoadReport` carries the seconds spent per phase (``timings``): ``watermark``, the writer's
phases (see :class:`connectors.bronze.LoadResult` -- ``read`` is the time spent waiting for the reader),
``key_snapshot`` and ``reconcile``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow as pa
import sqlalchemy as sa

from connectors import bronze
from connectors.config_schema import DepartmentConfig, FileDropConfig, SourcesConfig, TableConfig
from connectors.filedrops import DropFile, list_drop_files, read_drop_file
from connectors.readers import SourceReadError, open_table, planned_cursor
from lake.delta import append, read_dataset
from lake.layout import bronze_path, quarantine_files_path
from lake.storage import Location

UTC = dt.UTC


@dataclass
class TableLoadReport:
    """What one load did, for the Dagster UI, the CLI summary and the reconciliation check."""

    department: str
    table: str
    asset: str
    mode: str
    reader: str = ""
    since: str | None = None
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_marked_deleted: int = 0
    key_snapshot: bool = False
    source_rows: int | None = None
    bronze_live_rows: int | None = None
    drift: list[dict] = field(default_factory=list)
    version: int | None = None
    seconds: float = 0.0
    first_load: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def reconciled(self) -> bool:
        return self.source_rows is not None and self.source_rows == self.bronze_live_rows

    def as_dict(self) -> dict:
        return asdict(self)


def _engine(dept: DepartmentConfig, environ: Mapping[str, str] | None) -> sa.Engine:
    return sa.create_engine(dept.resolve_url(environ))


def count_source_rows(
    dept: DepartmentConfig, table: TableConfig, environ: Mapping[str, str] | None = None
) -> int:
    """``COUNT(*)`` of the source table — what bronze's live rows must equal after a load."""
    engine = _engine(dept, environ)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(f"SELECT COUNT(*) FROM {table.qualified_source(engine.dialect.name)}")
                ).scalar_one()
            )
    except sa.exc.SQLAlchemyError as exc:
        raise SourceReadError(
            f"department {dept.key!r}, table {table.name!r}: cannot count rows "
            f"({type(exc.orig if isinstance(exc, sa.exc.StatementError) and exc.orig else exc).__name__})"
        ) from None
    finally:
        engine.dispose()


def _stored_cursor_fits(stored: pa.DataType, cursor_kind: str) -> bool:
    if cursor_kind == "id":
        return pa.types.is_integer(stored) or pa.types.is_decimal(stored)
    return pa.types.is_timestamp(stored) or pa.types.is_date(stored)


def check_stored_cursor(
    dept: DepartmentConfig, table: TableConfig, path: Location, environ: Mapping[str, str] | None = None
) -> None:
    """Refuse, before anything is read, a bronze cursor column whose stored type no watermark can be
    computed from (text, from nights before the cursor's ``type`` was declared).

    Why here: the watermark (``max(cursor)`` minus the lookback) is the first thing a load computes from
    bronze, so without this check the table fails with a ``TypeError`` deep in the night. The source is
    reflected only when bronze is wrong: if the configuration still delivers an unusable cursor, the
    reader's own error (what to declare) comes first; if it now declares a date or timestamp, the error
    is schema drift with the way out -- :func:`connectors.bronze.recast_text_column`, run by
    ``qst recast-cursor`` (see "Cursors" in :mod:`connectors.config`).
    """
    assert table.cursor is not None and table.asset is not None  # an incremental table's rules
    cursor = table.output_name(table.cursor)
    stored = bronze.stored_type(path, cursor)
    kind = table.cursor_kind or "timestamp"
    if stored is None or _stored_cursor_fits(stored, kind):
        return
    planned, problem = planned_cursor(dept, table, environ)
    declared = planned.arrow_type
    if problem is not None:
        raise SourceReadError(
            f"department {dept.key!r}, table {table.name!r}, column {table.cursor!r}: refused before "
            f"reading: {problem}",
            department=dept.key,
            table=table.name,
            column=table.cursor,
        )
    way_out = (
        f"bronze holds the {kind} cursor as text from nights before its type was declared; convert the "
        f"stored values once (no row is lost; unparseable ones become null and are flagged bad_date): "
        f"qst recast-cursor {dept.key} {table.asset}"
        if kind == "timestamp" and (pa.types.is_string(stored) or pa.types.is_large_string(stored))
        else f"a {kind} cursor must be stored as "
        + ("an integer" if kind == "id" else "a date or timestamp")
        + "; this type change needs a decision, see the cursor section of connectors/config.py"
    )
    raise bronze.SchemaDriftError(
        f"{dept.key}/{table.asset}", [(cursor, str(stored), f"{declared} (declared)", way_out)]
    )


def _key_snapshot_due(path: Location, table: TableConfig, now: dt.datetime) -> bool:
    every = table.key_snapshot_every_days
    if not every:
        return False
    if every == 1:  # the default: every run (a run is a night; reruns of the night check again)
        return True
    last = bronze.last_key_snapshot(path)
    return last is None or now - last >= dt.timedelta(days=every) - dt.timedelta(hours=1)


def load_table(
    config: SourcesConfig,
    dept: DepartmentConfig,
    table: TableConfig,
    home: Path,
    *,
    batch_id: str,
    now: dt.datetime | None = None,
    environ: Mapping[str, str] | None = None,
    engine: Literal["auto", "fast", "sqlalchemy"] = "auto",
    reconcile: bool = True,
    max_rows_per_commit: int = bronze.DEFAULT_MAX_ROWS_PER_COMMIT,
) -> TableLoadReport:
    """Bring bronze up to date with one source table."""
    started = time.perf_counter()
    now = now or dt.datetime.now(UTC)
    defaults = config.defaults
    assert table.asset is not None  # TableConfig's rules require one
    path = bronze_path(home, dept.key, table.asset)
    report = TableLoadReport(dept.key, table.name, table.asset, table.mode)
    pk = [table.output_name(c) for c in table.primary_key]
    source = f"{dept.key}.{table.name}"
    timings: dict[str, float] = {}
    if table.mode == "snapshot":
        stream = open_table(dept, table, defaults, engine=engine, environ=environ)
        result = bronze.replace_snapshot(
            path,
            stream.batches,
            stream.schema,
            primary_key=pk,
            source=source,
            batch_id=batch_id,
            extracted_at=now,
            max_rows_per_commit=max_rows_per_commit,
        )
    else:
        assert table.cursor is not None  # TableConfig's rules: an incremental table has a cursor
        cursor = table.output_name(table.cursor)
        mark = time.perf_counter()
        check_stored_cursor(dept, table, path, environ)
        since = bronze.watermark(path, cursor)
        timings["watermark"] = time.perf_counter() - mark
        lookback = table.effective_lookback(defaults)
        if since is not None and lookback is not None:
            assert isinstance(since, dt.date)  # check_stored_cursor: a date or timestamp column
            since = since - lookback
        report.since = None if since is None else str(since)
        stream = open_table(dept, table, defaults, since=since, engine=engine, environ=environ)
        result = bronze.upsert_batches(
            path,
            stream.batches,
            stream.schema,
            primary_key=pk,
            source=source,
            batch_id=batch_id,
            extracted_at=now,
            max_rows_per_commit=max_rows_per_commit,
        )
        if not result.first_load and _key_snapshot_due(path, table, now):
            mark = time.perf_counter()
            keys = open_table(
                dept, table, defaults, columns=list(table.primary_key), engine=engine, environ=environ
            )
            report.rows_marked_deleted = bronze.mark_deleted(
                path, keys.batches, primary_key=pk, at=now, batch_id=batch_id
            )
            report.key_snapshot = True
            timings["key_snapshot"] = time.perf_counter() - mark
    timings.update(result.timings)
    report.reader = stream.reader
    report.first_load = result.first_load
    report.rows_read = result.rows_read
    report.rows_inserted = result.rows_inserted
    report.rows_updated = result.rows_updated
    report.rows_unchanged = result.rows_unchanged
    report.drift = [asdict(d) for d in result.drift]
    mark = time.perf_counter()
    if reconcile:
        report.source_rows = count_source_rows(dept, table, environ)
    info = bronze.table_info(path)
    timings["reconcile"] = time.perf_counter() - mark
    report.timings = timings
    report.version = info.get("version")
    report.bronze_live_rows = info.get("rows_live")
    report.seconds = time.perf_counter() - started
    return report


# ------------------------------------------------------------------------------------------------
# File drops
# ------------------------------------------------------------------------------------------------
FILE_KEY = ["_qst_file", "_qst_line"]
FILE_SHA = "_qst_file_sha256"
QUARANTINE_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("sha256", pa.string()),
        ("reason", pa.string()),
        ("quarantined_at", pa.timestamp("us", tz="UTC")),
        ("batch_id", pa.string()),
    ]
)


@dataclass
class FileDropReport:
    department: str
    drop: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)
    rows: int = 0
    blank_lines: int = 0
    seconds: float = 0.0


def _column_values(path: Location, column: str) -> set[str]:
    """Distinct values of one column of a committed Delta table (empty when there is none)."""
    dataset = read_dataset(path)
    if dataset is None or column not in dataset.schema.names:
        return set()
    return set(dataset.to_table(columns=[column]).column(column).unique().to_pylist())


def _pad_to_bronze(table: pa.Table, path: Location) -> pa.Table:
    """A roster that lacks some of the drop's columns still loads: the missing ones are null text.
    (Files from street offices vary; a column that is not text in bronze is left to drift rules.)"""
    dataset = read_dataset(path)
    if dataset is None:
        return table
    for f in dataset.schema:
        text = pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        if text and f.name not in table.column_names and not f.name.startswith("_qst_"):
            table = table.append_column(pa.field(f.name, f.type), pa.nulls(table.num_rows, f.type))
    return table


def pending_drop_files(dept: DepartmentConfig, drop: FileDropConfig, home: Path) -> list[DropFile]:
    """Files in the drop folder that bronze has neither loaded nor quarantined (by content hash)."""
    done = _column_values(bronze_path(home, dept.key, drop.name), FILE_SHA)
    done |= _column_values(quarantine_files_path(home, dept.key, drop.name), "sha256")
    return [f for f in list_drop_files(drop) if f.sha256 not in done]


def load_file_drop(
    dept: DepartmentConfig, drop: FileDropConfig, home: Path, *, batch_id: str, now: dt.datetime | None = None
) -> FileDropReport:
    """Load every new file of a drop: each file once (its sha256 is kept in bronze); a file that cannot
    be parsed goes to the file quarantine with the reason, and the others still load."""
    started = time.perf_counter()
    now = now or dt.datetime.now(UTC)
    report = FileDropReport(dept.key, drop.name)
    path = bronze_path(home, dept.key, drop.name)
    pending = {f.sha256 for f in pending_drop_files(dept, drop, home)}
    for file in list_drop_files(drop):
        if file.sha256 not in pending:
            report.skipped.append(file.name)
            continue
        parsed = read_drop_file(drop, file)
        if parsed.error is not None or parsed.table is None:
            reason = parsed.error or "no table"
            report.quarantined.append({"file": file.name, "reason": reason})
            append(
                str(quarantine_files_path(home, dept.key, drop.name)),
                pa.table(
                    {
                        "file": [file.name],
                        "sha256": [file.sha256],
                        "reason": [reason],
                        "quarantined_at": [now],
                        "batch_id": [batch_id],
                    },
                    schema=QUARANTINE_SCHEMA,
                ),
            )
            continue
        table = parsed.table.append_column(
            FILE_SHA, pa.array([file.sha256] * parsed.table.num_rows, pa.string())
        )
        table = _pad_to_bronze(table, path)
        try:
            bronze.upsert_batches(
                path,
                table.to_batches(),
                table.schema,
                primary_key=FILE_KEY,
                source=f"{dept.key}.{drop.name}",
                batch_id=batch_id,
                extracted_at=now,
            )
        except bronze.SchemaDriftError as exc:  # this file does not fit the drop's table: the others go on
            reason = str(exc)
            report.quarantined.append({"file": file.name, "reason": reason})
            append(
                str(quarantine_files_path(home, dept.key, drop.name)),
                pa.table(
                    {
                        "file": [file.name],
                        "sha256": [file.sha256],
                        "reason": [reason],
                        "quarantined_at": [now],
                        "batch_id": [batch_id],
                    },
                    schema=QUARANTINE_SCHEMA,
                ),
            )
            continue
        report.loaded.append(file.name)
        report.rows += table.num_rows
        report.blank_lines += parsed.blank_lines
    report.seconds = time.perf_counter() - started
    return report
