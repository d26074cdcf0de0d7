"""`qst simulate --advance-days`: the estate moves like a real city's databases do."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from simulator import estate as est


@pytest.fixture(scope="module")
def advanced(tmp_path_factory) -> tuple[Path, dict[str, set]]:
    out = tmp_path_factory.mktemp("advanced")
    est.simulate(out, enterprises=2_000, seed=21)
    before = {t: _keys(out, d, t, k) for d, t, k in PK}
    est.advance(out, 2)
    return out, before


PK = [
    ("samr", "T_SCZT_DJXX", "ZTID"),
    ("service", "BJ_BJXX", "BJBH"),
    ("courts", "AJ_DSR", "ID"),
    ("tax", "SB_ZSXX", "ID"),
    ("samr", "T_JYYC_ML", "ID"),
]


def _q(out: Path, dept: str, sql: str) -> list[tuple]:
    with sqlite3.connect(out / f"{dept}.sqlite") as conn:
        return conn.execute(sql).fetchall()


def _keys(out: Path, dept: str, table: str, key: str) -> set:
    return {r[0] for r in _q(out, dept, f'SELECT "{key}" FROM "{table}"')}


def test_state_moves_forward(advanced):
    out, _ = advanced
    state = est.EstateState.load(out)
    assert state.days_advanced == 2
    assert state.as_of == "2026-11-02"
    assert state.next_enterprise > state.enterprises


def test_new_registrations_and_events_arrive(advanced):
    out, before = advanced
    new_reg = _keys(out, "samr", "T_SCZT_DJXX", "ZTID") - before["T_SCZT_DJXX"]
    assert new_reg
    stamps = [
        r[0]
        for r in _q(
            out,
            "samr",
            "SELECT CLRQ FROM T_SCZT_DJXX WHERE ZTID IN ({})".format(",".join(f"'{k}'" for k in new_reg)),
        )
    ]
    assert all(dt.date(2026, 10, 27) <= dt.date.fromisoformat(s) <= dt.date(2026, 11, 2) for s in stamps)
    new_filings = _keys(out, "tax", "SB_ZSXX", "ID") - before["SB_ZSXX"]
    assert new_filings and min(new_filings) > max(before["SB_ZSXX"]), "increasing-id cursor keeps growing"


def test_updates_carry_fresh_stamps_and_some_arrive_late(advanced):
    out, before = advanced
    rows = _q(out, "samr", "SELECT ZTID, GXSJ FROM T_SCZT_DJXX WHERE GXSJ > '2026-10-31 23:59:59'")
    updated_existing = [r for r in rows if r[0] in before["T_SCZT_DJXX"]]
    assert updated_existing, "existing rows were updated with a new last-updated stamp"
    # late arrivals: rows inserted on day 2 whose stamp is older than day 2
    new_cases = _keys(out, "service", "BJ_BJXX", "BJBH") - before["BJ_BJXX"]
    stamps = [
        r[0]
        for r in _q(
            out,
            "service",
            "SELECT GXSJ FROM BJ_BJXX WHERE BJBH IN ({})".format(",".join(f"'{k}'" for k in new_cases)),
        )
    ]
    assert any(s < "2026-11-01" for s in stamps), "late-arriving rows stamped before the day they arrived"


def test_deletions_are_real_and_recorded(advanced):
    out, before = advanced
    deleted = pl.read_parquet(out / "truth" / "deleted" / "*.parquet")
    assert deleted.height > 0
    for table, key, dept in [("BJ_BJXX", "BJBH", "service"), ("AJ_DSR", "ID", "courts")]:
        now = {str(k) for k in _keys(out, dept, table, key)}
        gone = {str(k) for k in before[table]} - now
        recorded = deleted.filter(pl.col("table") == table)["pk"]
        assert recorded.n_unique() == recorded.len(), "each record is deleted once"
        assert gone <= set(recorded) and not (set(recorded) & now)


def test_new_records_have_truth(advanced):
    out, _ = advanced
    truth = est.load_truth(out).collect()
    for dept, table, key in PK:
        assert {str(k) for k in _keys(out, dept, table, key)} <= set(
            truth.filter(pl.col("table") == table)["pk"]
        )


def test_advancing_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        est.simulate(out, enterprises=300, seed=4)
        est.advance(out, 1)
    dump = [_q(p, "samr", "SELECT * FROM T_SCZT_DJXX ORDER BY ZTID") for p in (a, b)]
    assert dump[0] == dump[1]


def test_advance_needs_an_estate(tmp_path):
    with pytest.raises(FileNotFoundError, match="qst simulate"):
        est.advance(tmp_path / "nothing", 1)


def test_representative_changes_move_the_truth(advanced):
    out, _ = advanced
    changes = pl.read_parquet(out / "truth" / "reassigned" / "*.parquet")
    assert changes.height > 0
    truth = est.load_truth(out).filter(pl.col("role") == "legal_rep").collect()
    persons = pl.read_parquet(out / "truth" / "persons" / "*.parquet").select("person_id", "id_number")
    current = dict(_q(out, "samr", "SELECT ZTID, FDDBRZJHM FROM T_SCZT_DJXX"))
    checked = truth.filter(pl.col("pk").is_in(changes["pk"].implode())).join(
        persons, left_on="entity_id", right_on="person_id"
    )
    assert checked.height == changes.select("pk").n_unique()
    assert all(current[pk] == idn for pk, idn in checked.select("pk", "id_number").iter_rows())
