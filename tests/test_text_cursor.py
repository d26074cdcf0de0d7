"""Timestamp cursors held as TEXT in a SQLite source (issue 15): a new city's tables, two nights and more.

Before the fix the first night loaded the text as text, the scorecard failed that night and every
incremental table the next (``str - timedelta``); declaring the type afterwards failed the same way. Now
an undeclared text cursor is refused before reading, a declared one loads real timestamps night after
night, and a cursor bronze already stored as text is schema drift whose way out keeps every row.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from connectors import bronze
from connectors.config import sources_from_dict
from connectors.config_schema import SourcesConfig
from connectors.extract import load_table
from connectors.readers import SourceReadError, open_table
from lake.delta import read_dataset
from lake.layout import bronze_path
from pipelines.bronze_cli import recast_cursor
from quality import scorecard as sc

SH = ZoneInfo("Asia/Shanghai")
NIGHT1 = dt.datetime(2026, 11, 2, 2, tzinfo=SH)
NIGHT2 = dt.datetime(2026, 11, 3, 2, tzinfo=SH)
NIGHT3 = dt.datetime(2026, 11, 4, 2, tzinfo=SH)


def _source(root: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(root / "newcity.sqlite")
    conn.execute('CREATE TABLE T_X ("ID" INTEGER PRIMARY KEY, "MC" TEXT, "GXSJ" TEXT)')
    conn.executemany(
        "INSERT INTO T_X VALUES (?, ?, ?)",
        [(1, "甲", "2026-11-01 08:00:00"), (2, "乙", "2026-11-01 09:30:00"), (3, "丙", "not a time")],
    )
    conn.commit()
    return conn


def _config(root: Path, *, declared: bool, mode: str = "incremental") -> SourcesConfig:
    table: dict = {"name": "T_X", "asset": "x", "primary_key": ["ID"], "mode": mode}
    if mode == "incremental":
        table |= {"cursor": "GXSJ", "cursor_kind": "timestamp"}
    if declared:
        table["columns"] = {"GXSJ": {"type": "timestamp"}}
    return sources_from_dict(
        {
            "version": 1,
            "departments": {
                "newcity": {"connection": {"sqlite": str(root / "newcity.sqlite")}, "tables": [table]}
            },
        },
        base_dir=root,
    )


def _load(config: SourcesConfig, home: Path, now: dt.datetime):
    dept, table = next(iter(config.iter_tables()))
    return load_table(config, dept, table, home, batch_id=f"night-{now:%m%d}", now=now)


def _bronze(home: Path) -> pl.DataFrame:
    ds = read_dataset(bronze_path(home, "newcity", "x"))
    assert ds is not None
    frame = pl.from_arrow(ds.to_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.sort("ID")


def _source_now(config: SourcesConfig) -> pl.DataFrame:
    dept, table = next(iter(config.iter_tables()))
    stream = open_table(dept, table, config.defaults, engine="sqlalchemy")
    frame = pl.from_arrow(pa.Table.from_batches(list(stream.batches), schema=stream.schema))
    assert isinstance(frame, pl.DataFrame)
    return frame.sort("ID")


def _same_as_source(config: SourcesConfig, home: Path) -> None:
    source = _source_now(config)
    live = _bronze(home).filter(pl.col("_qst_deleted_at").is_null()).select(source.columns)
    assert live.height == live.get_column("ID").n_unique(), "a row doubled"
    assert live.equals(source)


def test_declared_text_cursor_loads_timestamps_over_nights(tmp_path):
    conn = _source(tmp_path)
    config = _config(tmp_path, declared=True)
    home = tmp_path / "home"
    first = _load(config, home, NIGHT1)
    assert first.rows_inserted == 3 and first.reconciled
    assert bronze.stored_type(bronze_path(home, "newcity", "x"), "GXSJ") == pa.timestamp("us", tz="UTC")
    stored = _bronze(home)
    assert stored.get_column("GXSJ").to_list()[0] == dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC)
    assert stored.get_column("_qst_flags").to_list() == [None, None, "bad_date:GXSJ"]
    card = sc.scorecard(home, config, {}, dt.date(2026, 11, 1))  # the night-1 scorecard no longer fails
    assert card.get_column("records_received").to_list() == [2]
    # night 2: a new row, an update, a late row inside the lookback, one untouched
    conn.execute("INSERT INTO T_X VALUES (4, '丁', '2026-11-02 10:00:00')")
    conn.execute("UPDATE T_X SET MC = '乙2', GXSJ = '2026-11-02 11:00:00' WHERE ID = 2")
    conn.execute("INSERT INTO T_X VALUES (5, '戊', '2026-10-31 23:00:00')")
    conn.commit()
    second = _load(config, home, NIGHT2)
    assert second.since == "2026-10-29 01:30:00+00:00"  # max cursor (09:30 local) minus the 3d lookback
    assert (second.rows_inserted, second.rows_updated) == (2, 1)
    _same_as_source(config, home)
    third = _load(config, home, NIGHT3)  # nothing new: nothing changes
    assert (third.rows_inserted, third.rows_updated) == (0, 0)
    _same_as_source(config, home)


def test_undeclared_text_cursor_is_refused_before_reading(tmp_path):
    _source(tmp_path)
    config = _config(tmp_path, declared=False)
    home = tmp_path / "home"
    with pytest.raises(SourceReadError) as err:
        _load(config, home, NIGHT1)
    message = str(err.value)
    assert message.startswith("department 'newcity', table 'T_X', column 'GXSJ': refused before reading:")
    assert "columns: {GXSJ: {type: timestamp}}" in message
    assert (err.value.department, err.value.table, err.value.column) == ("newcity", "T_X", "GXSJ")
    assert read_dataset(bronze_path(home, "newcity", "x")) is None  # nothing read, nothing written


def test_text_id_cursor_is_refused_before_reading(tmp_path):
    conn = sqlite3.connect(tmp_path / "newcity.sqlite")
    conn.execute('CREATE TABLE T_X ("ID" INTEGER PRIMARY KEY, "XH" TEXT)')
    conn.execute("INSERT INTO T_X VALUES (1, '9')")
    conn.commit()
    table = {"name": "T_X", "asset": "x", "primary_key": ["ID"], "mode": "incremental"}
    config = sources_from_dict(
        {
            "version": 1,
            "departments": {
                "newcity": {
                    "connection": {"sqlite": str(tmp_path / "newcity.sqlite")},
                    "tables": [table | {"cursor": "XH", "cursor_kind": "id"}],
                }
            },
        },
        base_dir=tmp_path,
    )
    with pytest.raises(SourceReadError, match="column 'XH': refused before reading: the id cursor is TEXT"):
        _load(config, tmp_path / "home", NIGHT1)


def _text_bronze(tmp_path: Path) -> tuple[sqlite3.Connection, Path]:
    """Bronze as the loader before the fix left it: the cursor stored as text (same columns, same hashes)."""
    conn = _source(tmp_path)
    home = tmp_path / "home"
    _load(_config(tmp_path, declared=False, mode="snapshot"), home, NIGHT1)
    assert bronze.stored_type(bronze_path(home, "newcity", "x"), "GXSJ") == pa.string()
    return conn, home


def test_stored_text_cursor_then_declared_is_drift_with_the_way_out(tmp_path, monkeypatch):
    conn, home = _text_bronze(tmp_path)
    path = bronze_path(home, "newcity", "x")
    # the source deletes a row: bronze keeps it, flagged -- what a fresh read could never rebuild
    conn.execute("DELETE FROM T_X WHERE ID = 1")
    conn.commit()
    _load(_config(tmp_path, declared=False, mode="snapshot"), home, NIGHT2)
    before = _bronze(home)
    assert before.height == 3 and before.get_column("_qst_deleted_at").null_count() == 2
    # the scorecard of the text-cursor days does not fail: it reads the text as the loader would
    config = _config(tmp_path, declared=True)
    card = sc.scorecard(home, config, {}, dt.date(2026, 11, 1))
    assert card.get_column("records_received").to_list() == [1]  # row 2 (row 1 is deleted, row 3 no day)
    # undeclared: the reader's own error says what to declare
    with pytest.raises(SourceReadError, match=r"declare how to parse it|Declare how to parse it"):
        _load(_config(tmp_path, declared=False), home, NIGHT3)
    # declared: schema drift naming the column, both types and the way out; nothing written
    version = bronze.table_info(path)["version"]
    with pytest.raises(bronze.SchemaDriftError) as err:
        _load(config, home, NIGHT3)
    message = str(err.value)
    assert "column 'GXSJ': string -> timestamp[us, tz=UTC] (declared)" in message
    assert "qst recast-cursor newcity x" in message
    assert bronze.table_info(path)["version"] == version
    # the way out
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "version: 1\ndepartments:\n  newcity:\n"
        f"    connection: {{sqlite: {tmp_path / 'newcity.sqlite'}}}\n"
        "    tables:\n      - {name: T_X, asset: x, primary_key: [ID], mode: incremental, cursor: GXSJ,\n"
        "         columns: {GXSJ: {type: timestamp}}}\n",
        encoding="utf-8",
    )
    args = ["newcity", "x", "--home", str(home), "--sources", str(sources)]
    result = CliRunner().invoke(recast_cursor, args)
    assert result.exit_code == 0, result.output
    assert "recast to timestamp[us, tz=UTC]" in result.output and "in 3 rows, none lost" in result.output
    after = _bronze(home)
    keep = ["ID", "MC", "_qst_deleted_at", "_qst_extracted_at", "_qst_batch_id"]
    assert after.select(keep).equals(before.select(keep))  # every row, deleted ones and lineage kept
    assert after.get_column("GXSJ").to_list()[1] == dt.datetime(2026, 11, 1, 1, 30, tzinfo=dt.UTC)
    assert after.get_column("_qst_flags").to_list()[2] == "bad_date:GXSJ"
    again = CliRunner().invoke(recast_cursor, args)
    assert again.exit_code == 0 and "nothing to do" in again.output
    # the next night loads: the re-read rows hash as they are stored, so nothing is rewritten
    night = _load(config, home, NIGHT3)
    assert (night.rows_inserted, night.rows_updated, night.rows_read) == (0, 0, 2)
    conn.execute("INSERT INTO T_X VALUES (6, '己', '2026-11-03 08:00:00')")
    conn.commit()
    night = _load(config, home, NIGHT3 + dt.timedelta(days=1))
    assert (night.rows_inserted, night.rows_updated) == (1, 0)
    _same_as_source(config, home)
    assert _bronze(home).height == 4  # the deleted row is still there, flagged
