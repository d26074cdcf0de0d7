"""The department scorecard (quality/scorecard.py) on real lakes: a simulated city loaded night after night,
and a tiny department of our own whose every figure is computed by hand."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from connectors.config import load_sources, sources_from_dict
from connectors.config_schema import SourcesConfig
from connectors.extract import load_file_drop, load_table
from models import silver
from models.staging.spec import StagingSpec, load_specs
from quality import scorecard as sc
from quality.quarantine import reconcile_staging
from simulator import estate as est
from simulator.mess import MessProfile

SH = ZoneInfo("Asia/Shanghai")
RATES = ["timeliness_rate", "completeness_rate", "valid_identifier_rate", "quarantine_rate"]


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), SH)


def _load_all(config: SourcesConfig, home: Path, now: dt.datetime, only: set[str] | None = None) -> None:
    batch = f"night-{now:%Y%m%dT%H%M}"
    for dept, table in config.iter_tables():
        if only is None or table.name in only:
            load_table(config, dept, table, home, batch_id=batch, now=now, reconcile=False)
    for dept, drop in config.iter_files():
        if only is None or drop.name in only:
            load_file_drop(dept, drop, home, batch_id=batch, now=now)


def _build_silver(config: SourcesConfig, home: Path, specs: dict[str, StagingSpec]) -> None:
    for source, info in silver.source_infos(config).items():
        if source in specs:
            silver.build_staging(home, specs[source], info)
            rec = reconcile_staging(home, specs[source])
            assert rec.ok, rec.describe()


def _row(card: pl.DataFrame, asset: str) -> dict:
    rows = card.filter(pl.col("asset") == asset).to_dicts()
    assert len(rows) == 1, (asset, rows)
    return rows[0]


# ==================================================================================================
# A simulated city, three nights
# ==================================================================================================
NIGHT_DAYS = [dt.date(2026, 10, 31), dt.date(2026, 11, 1), dt.date(2026, 11, 2)]  # the day each night loads


def _source_state(config: SourcesConfig) -> dict[str, set[tuple]]:
    """Every source row as (primary key..., cursor) -- read from the departments' SQLite files, not bronze."""
    state: dict[str, set[tuple]] = {}
    for dept, table in config.iter_tables():
        cols = [*table.primary_key, *([table.cursor] if table.mode == "incremental" else [])]
        sql = f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{table.name}"'
        with sqlite3.connect(dept.connection.sqlite) as conn:
            state[f"{dept.key}/{table.asset}"] = {tuple(r) for r in conn.execute(sql)}
    return state


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """300 enterprises (a quarter of the day's new rows arrive 1-3 days late), loaded at 02:00 on three
    nights with a day of change before each of the last two; what the sources held at each night is kept
    as the oracle. Silver is built once, after the last night."""
    root = tmp_path_factory.mktemp("city")
    out, home = root / "estate", root / "home"
    est.simulate(out, enterprises=300, seed=1, profile=MessProfile.with_overrides({"late_arrival": 0.25}))
    config = load_sources(out / "sources.yaml")
    snapshots = []
    for i, day in enumerate(NIGHT_DAYS):
        if i:
            est.advance(out, 1)
        snapshots.append(_source_state(config))
        _load_all(config, home, _at(day + dt.timedelta(days=1), 2))
    specs = load_specs()
    _build_silver(config, home, specs)
    cards = {day: sc.scorecard(home, config, specs, day) for day in NIGHT_DAYS}
    return config, home, specs, snapshots, cards


def test_timeliness_matches_what_the_sources_held_each_night(city):
    """Per timestamp-cursor table and day: received = source rows stamped that day; on time = those the
    source already held, with that stamp, at the night that loads the day; late = the rest (they arrived
    in a later night). Rows stamped before the first load's day are not scored."""
    config, home, specs, snapshots, cards = city
    late_total = 0
    for i, day in enumerate(NIGHT_DAYS):
        card = cards[day]
        for dept, table in config.iter_tables():
            if table.mode != "incremental" or table.cursor_kind != "timestamp":
                continue
            source = f"{dept.key}/{table.asset}"
            now = {
                r for r in snapshots[-1][source] if r[-1] is not None and str(r[-1])[:10] == day.isoformat()
            }
            on_time = now & snapshots[i][source]
            row = card.filter((pl.col("department") == dept.key) & (pl.col("asset") == table.asset)).row(
                0, named=True
            )
            assert row["timeliness_scored"] is True
            assert (row["records_received"], row["on_time"], row["late"]) == (
                len(now),
                len(on_time),
                len(now) - len(on_time),
            ), (day, source)
            if i == 1:
                late_total += row["late"]
    assert late_total > 0, "the estate must have late arrivals for the day the second night loaded"
    before = sc.scorecard(home, config, specs, dt.date(2026, 10, 29))
    stamped = before.filter(pl.col("kind") == "timestamp")
    assert stamped["records_received"].sum() > 0, "rows stamped before the first night still exist"
    assert not stamped["timeliness_scored"].any()
    assert stamped["on_time"].is_null().all() and stamped["late"].is_null().all()
    assert stamped["timeliness_rate"].is_null().all()


def test_id_cursor_and_snapshot_tables_count_what_each_night_landed(city):
    _, _, _, snapshots, cards = city
    for i, day in enumerate(NIGHT_DAYS):
        filings = _row(cards[day].filter(pl.col("department") == "tax"), "filings")
        # the rows that night landed; the first night's are the initial history, received on no day
        new_ids = snapshots[i]["tax/filings"] - snapshots[i - 1]["tax/filings"] if i else set()
        assert filings["records_received"] == len(new_ids)
        assert filings["on_time"] == len(new_ids) and filings["late"] == 0
        if i:
            assert len(new_ids) > 0
        ratings = _row(cards[day].filter(pl.col("department") == "tax"), "credit_ratings")
        assert ratings["records_received"] == 0  # the simulator never changes the ratings
        assert ratings["timeliness_rate"] is None and ratings["score"] is None and ratings["grade"] is None


def test_rates_scores_and_grades_are_consistent(city):
    _, _, _, _, cards = city
    card = pl.concat(cards.values())
    assert card.height == 3 * 15
    for c in RATES:
        values = card[c].drop_nulls()
        assert values.len() > 0 and ((values >= 0) & (values <= 1)).all(), c
    scores = card["score"].drop_nulls()
    assert scores.len() > 0 and ((scores >= 0) & (scores <= 100)).all()
    for r in card.iter_rows(named=True):
        assert (r["score"] is None) == all(r[c] is None for c in RATES)
        assert (r["score"] is None) == (r["records_received"] == 0)  # every table here has a spec
        assert r["grade"] == sc.grade(r["score"])
        if r["staged"] is not None:  # silver was rebuilt after the last load: it has seen every row
            assert r["staged"] == r["records_received"]
        if r["timeliness_rate"] is not None:
            assert r["timeliness_rate"] == pytest.approx(r["on_time"] / r["records_received"])
    late_day = cards[NIGHT_DAYS[1]]
    assert (late_day["timeliness_rate"].drop_nulls() < 1).any(), "some table of the day had late rows"


def test_department_summary_pools_the_tables(city):
    _, _, _, _, cards = city
    card = cards[NIGHT_DAYS[1]]
    totals = sc.department_summary(card)
    assert sorted(totals["department"]) == sorted(card["department"].unique())
    assert (totals["asset"] == "*").all() and (totals["table"] == "*").all()
    for t in totals.iter_rows(named=True):
        tables = card.filter(pl.col("department") == t["department"])
        assert t["records_received"] == tables["records_received"].sum()
        scored = tables.filter(pl.col("timeliness_scored"))
        if scored.height:
            assert t["on_time"] == scored["on_time"].sum() and t["late"] == scored["late"].sum()
        if t["mandatory_slots"]:
            assert t["completeness_rate"] == pytest.approx(
                tables["mandatory_filled"].sum() / tables["mandatory_slots"].sum()
            )
    samr = _row(totals.filter(pl.col("department") == "samr"), "*")
    assert samr["on_time"] + samr["late"] == samr["records_received"] > 0


def test_scorecard_is_idempotent_and_stored_per_day(city, tmp_path):
    config, home, specs, _, cards = city
    day = NIGHT_DAYS[1]
    again = sc.scorecard(home, config, specs, day)
    assert again.equals(cards[day])
    store = tmp_path / "store"
    first = pl.concat([cards[day], sc.department_summary(cards[day])])
    path = sc.write_scorecard(store, first)
    assert path == store / "lake" / "quality" / "scorecard"
    sc.write_scorecard(store, cards[NIGHT_DAYS[2]])
    sc.write_scorecard(store, first)  # a rerun of the same day replaces it
    stored = sc.read_scorecard(store)
    assert stored.filter(pl.col("day") == day).height == first.height
    assert stored.filter(pl.col("day") == NIGHT_DAYS[2]).height == cards[NIGHT_DAYS[2]].height
    got = stored.filter(pl.col("day") == day).sort("department", "asset")
    assert got.equals(first.sort("department", "asset"))
    totals = got.filter(pl.col("asset") == "*")
    assert totals.height == first["department"].n_unique()


# ==================================================================================================
# A department of our own, every figure by hand
# ==================================================================================================
D = dt.date(2026, 11, 10)
V1, V2 = "91440306078260486A", "91440307MA02KBKH48"  # valid USCCs
INVALID, MASKED = "91440306078260486B", "914403********486A"

SPEC = StagingSpec.model_validate(
    {
        "source": "demo/records",
        "grain": "one row per record (ID)",
        "columns": {
            "name": {"from": "MC", "as": "enterprise_name"},
            "uscc": {"from": "DM", "as": "uscc"},
            "decided_on": {"from": "RQ", "as": "date"},
        },
        "quarantine": [{"reason": "no_name_no_identifier", "all_missing": ["name", "uscc"]}],
        "mandatory": ["name", "uscc", "decided_on"],
    }
)


def _stamp(day: dt.date, hour: int, minute: int = 0) -> str:
    return f"{day.isoformat()} {hour:02d}:{minute:02d}:00"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    db = root / "demo.sqlite"
    drops = root / "drops"
    drops.mkdir()
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE T_REC ("ID" VARCHAR(10) PRIMARY KEY, "MC" VARCHAR(100), "DM" VARCHAR(30), "RQ" VARCHAR(10),
                            "GXSJ" DATETIME);
        CREATE TABLE T_LOG ("ID" BIGINT PRIMARY KEY, "MC" VARCHAR(100));
        CREATE TABLE T_SNAP ("K" VARCHAR(10) PRIMARY KEY, "V" VARCHAR(10));
    """)
    rec = "INSERT INTO T_REC VALUES (?, ?, ?, ?, ?)"
    early = D - dt.timedelta(days=5)
    conn.executemany(
        rec,
        [
            ("H1", "深圳市甲科技有限公司", V1, "2026-11-01", _stamp(early, 10)),
            ("H2", "深圳市乙贸易有限公司", V2, "2026-11-01", _stamp(early, 11)),
        ],
    )
    conn.executemany("INSERT INTO T_LOG VALUES (?, ?)", [(1, "a"), (2, "b"), (3, "c")])
    conn.executemany("INSERT INTO T_SNAP VALUES (?, ?)", [("k1", "1"), ("k2", "2")])
    conn.commit()
    _roster(drops / "roster_1.csv", 3)
    config = sources_from_dict(
        {
            "version": 1,
            "departments": {
                "demo": {
                    "connection": {"sqlite": str(db)},
                    "tables": [
                        {
                            "name": "T_REC",
                            "asset": "records",
                            "primary_key": ["ID"],
                            "mode": "incremental",
                            "cursor": "GXSJ",
                        },
                        {
                            "name": "T_LOG",
                            "asset": "log",
                            "primary_key": ["ID"],
                            "mode": "incremental",
                            "cursor": "ID",
                            "cursor_kind": "id",
                        },
                        {"name": "T_SNAP", "asset": "snap", "primary_key": ["K"], "mode": "snapshot"},
                    ],
                    "files": [{"name": "rosters", "folder": str(drops), "pattern": "*.csv", "format": "csv"}],
                }
            },
        },
        base_dir=root,
    )
    home = root / "home"
    # the first load: the night of D-1
    _load_all(config, home, _at(D, 2))
    # day D at the department
    conn.executemany(
        rec,
        [
            ("R1", "深圳市丙科技有限公司", V1, "2026-11-10", _stamp(D, 9)),  # complete, valid
            ("R2", "深圳市丁科技有限公司", INVALID, "2026-11-10", _stamp(D, 10)),  # complete, invalid USCC
            ("R3", "深圳市戊科技有限公司", MASKED, None, _stamp(D, 11)),  # name only (masked, no date)
            ("R4", None, None, "2026-11-10", _stamp(D, 12)),  # quarantined
            ("R5", "深圳市己科技有限公司", V1, "2026-11-10", _stamp(D, 14)),  # deleted before it is scored
        ],
    )
    conn.execute(
        'UPDATE T_REC SET "MC" = ?, "GXSJ" = ? WHERE "ID" = ?',
        ("深圳市甲新科技有限公司", _stamp(D, 13), "H1"),
    )
    conn.executemany("INSERT INTO T_LOG VALUES (?, ?)", [(4, "d"), (5, "e")])
    conn.execute('UPDATE T_SNAP SET "V" = ? WHERE "K" = ?', ("9", "k2"))
    conn.execute("INSERT INTO T_SNAP VALUES ('k3', '3')")
    conn.commit()
    _roster(drops / "roster_2.csv", 2)
    load_file_drop(*next(iter(config.iter_files())), home, batch_id="sensor", now=_at(D, 15))  # the sensor
    _load_all(config, home, _at(D + dt.timedelta(days=1), 2), only={"T_REC", "T_LOG", "T_SNAP"})  # on time
    # after the night: a record of D's evening and a late id row, caught up at 07:00 (after the deadline)
    conn.execute(rec, ("R6", "深圳市庚科技有限公司", V2, "2026-11-10", _stamp(D, 23, 30)))
    conn.execute('DELETE FROM T_REC WHERE "ID" = ?', ("R5",))
    conn.execute("INSERT INTO T_LOG VALUES (6, 'f')")
    conn.commit()
    _load_all(config, home, _at(D + dt.timedelta(days=1), 7), only={"T_REC", "T_LOG"})
    # the next day: a record of D arrives a night late, and D+1's own id row
    conn.execute(rec, ("R7", "深圳市辛科技有限公司", None, "2026-11-10", _stamp(D, 15)))
    conn.execute("INSERT INTO T_LOG VALUES (7, 'g')")
    conn.commit()
    conn.close()
    _load_all(config, home, _at(D + dt.timedelta(days=2), 2))
    specs = {SPEC.source: SPEC}
    _build_silver(config, home, specs)
    return config, home, specs


def _roster(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["姓名", "身份证号"])
        for i in range(n):
            w.writerow([f"人{i}", ""])


def test_hand_checked_day(demo):
    config, home, specs = demo
    card = sc.scorecard(home, config, specs, D)
    rec = _row(card, "records")
    # received: R1 R2 R3 R4, H1 (updated on D: it moved from D-5), R6 (07:00), R7 (a night late); R5 deleted
    assert rec["records_received"] == 7
    assert (rec["on_time"], rec["late"]) == (5, 2)
    assert rec["timeliness_rate"] == pytest.approx(5 / 7)
    assert (rec["staged"], rec["quarantined"]) == (7, 1)
    assert rec["quarantine_rate"] == pytest.approx(1 / 7)
    # mandatory name, uscc, decided_on: R1 3, R2 3, R3 1 (masked USCC has no value), R4 0 (quarantined),
    # H1 3, R6 3, R7 2
    assert (rec["mandatory_slots"], rec["mandatory_filled"]) == (21, 15)
    assert rec["completeness_rate"] == pytest.approx(15 / 21)
    # USCCs present outside quarantine: R1 R2(invalid) R3(masked) H1 R6; R7 has none
    assert (rec["identifier_values"], rec["identifier_valid"], rec["identifier_masked"]) == (5, 3, 1)
    assert rec["valid_identifier_rate"] == pytest.approx(3 / 5)
    # 100 x (0.3 x 5/7 + 0.3 x 5/7 + 0.2 x 3/5 + 0.2 x 6/7) = 72.0
    assert rec["score"] == pytest.approx(72.0) and rec["grade"] == "中"
    assert rec["first_load_at"] == _at(D, 2).astimezone(dt.UTC)
    assert rec["deadline"] == _at(D + dt.timedelta(days=1), 6).astimezone(dt.UTC)

    log = _row(card, "log")  # id cursor, no staging spec: received and timeliness only
    assert (log["records_received"], log["on_time"], log["late"]) == (3, 2, 1)
    assert all(
        log[c] is None for c in ("staged", "completeness_rate", "valid_identifier_rate", "quarantine_rate")
    )
    assert log["score"] == pytest.approx(100 * 2 / 3, abs=0.05) and log["grade"] == "中"

    snap = _row(card, "snap")  # one changed row and one new one; the unchanged row is not received
    assert (snap["records_received"], snap["on_time"], snap["late"]) == (2, 2, 0)

    roster = _row(card, "rosters")  # the file loaded at 15:00 on D; the first load's file is history
    assert roster["records_received"] == 2 and roster["timeliness_scored"] is False
    assert roster["on_time"] is None and roster["timeliness_rate"] is None and roster["score"] is None

    total = _row(sc.department_summary(card), "*")
    assert total["records_received"] == 7 + 3 + 2 + 2
    assert (total["on_time"], total["late"]) == (5 + 2 + 2, 2 + 1)
    assert total["timeliness_rate"] == pytest.approx(9 / 12)
    assert total["completeness_rate"] == pytest.approx(15 / 21)
    expected = 100 * (0.3 * 9 / 12 + 0.3 * 15 / 21 + 0.2 * 3 / 5 + 0.2 * 6 / 7)
    assert total["score"] == pytest.approx(round(expected, 1)) and total["grade"] == "中"


def test_grace_moves_the_deadline(demo):
    config, home, specs = demo
    card = sc.scorecard(home, config, specs, D, grace=dt.timedelta(hours=6))
    assert (_row(card, "records")["on_time"], _row(card, "records")["late"]) == (
        6,
        1,
    )  # R6 (07:00) is on time
    assert (_row(card, "log")["on_time"], _row(card, "log")["late"]) == (3, 0)
    strict = sc.scorecard(home, config, specs, D, grace=dt.timedelta(0))
    assert _row(strict, "records")["on_time"] == 5  # the 02:00 load is on time even without grace


def test_days_around_the_first_load(demo):
    config, home, specs = demo
    history = sc.scorecard(home, config, specs, D - dt.timedelta(days=5))
    rec = _row(history, "records")
    assert rec["records_received"] == 1  # H2; H1 moved to D when it was updated
    assert rec["timeliness_scored"] is False and rec["on_time"] is None
    assert rec["completeness_rate"] == 1.0 and rec["valid_identifier_rate"] == 1.0
    assert rec["score"] == 100.0 and rec["grade"] == "优"  # scored on quality alone, re-weighted
    assert _row(history, "log")["records_received"] == 0  # the id table's first load is history
    first_night = sc.scorecard(home, config, specs, D - dt.timedelta(days=1))
    rec = _row(first_night, "records")
    assert rec["timeliness_scored"] is True and rec["records_received"] == 0
    assert rec["timeliness_rate"] is None and rec["score"] is None and rec["grade"] is None
    assert (
        _row(first_night, "log")["records_received"] == 0
        and _row(first_night, "snap")["records_received"] == 0
    )
    next_day = sc.scorecard(home, config, specs, D + dt.timedelta(days=1))
    assert (_row(next_day, "log")["records_received"], _row(next_day, "log")["on_time"]) == (1, 1)  # row 7


def test_silver_not_rebuilt_is_not_blamed_on_the_department(demo, tmp_path):
    """Received rows silver has not seen (bronze loaded after the last silver build) are left out of the
    quality components; a missing staging model leaves them all out."""
    config, home, specs = demo
    import shutil

    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    shutil.rmtree(silver.silver_path(copy, SPEC.name))
    rec = _row(sc.scorecard(copy, config, specs, D), "records")
    assert rec["records_received"] == 7 and rec["staged"] == 1  # only R4, in quarantine
    assert rec["quarantine_rate"] == 1.0 and rec["completeness_rate"] == 0.0


def test_grade_boundaries():
    assert [sc.grade(s) for s in (100.0, 90.0, 89.9, 75.0, 74.9, 60.0, 59.9, 0.0, None)] == [
        "优",
        "优",
        "良",
        "良",
        "中",
        "中",
        "差",
        "差",
        None,
    ]
    assert sum(sc.WEIGHTS.values()) == pytest.approx(1.0)
