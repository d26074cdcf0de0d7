"""The official working-day calendar of the marts: known days of the State Council's schedules, the one
working-day rule, and the same answers from Polars and from DuckDB."""

from __future__ import annotations

import datetime as dt
import random

import chinese_calendar
import duckdb
import polars as pl
import pytest

from models.marts.calendar import (
    CALENDAR_END,
    CALENDAR_START,
    COMMENTS,
    add_working_days,
    dim_calendar,
    is_workday,
    local_date,
    official_years,
    working_days,
    working_days_py,
)

D = dt.date


def day(d: dt.date) -> dict:
    return dim_calendar().filter(pl.col("date") == d).row(0, named=True)


def test_calendar_is_contiguous_and_indexed():
    cal = dim_calendar()
    assert cal["date"][0] == CALENDAR_START and cal["date"][-1] == CALENDAR_END
    assert cal.height == (CALENDAR_END - CALENDAR_START).days + 1 and cal["date"].is_unique().all()
    assert cal["workday_index"].diff().drop_nulls().is_in([0, 1]).all()
    assert (cal["workday_index"] == cal["is_workday"].cast(pl.Int32).cum_sum()).all()
    assert set(COMMENTS["dim_calendar"]["columns"]) == set(cal.columns)


@pytest.mark.parametrize(
    ("date", "workday", "day_type", "holiday"),
    [
        (D(2024, 2, 4), True, "makeup_workday", "春节"),  # a Sunday worked for the 2024 Spring Festival
        (D(2024, 2, 10), False, "holiday", "春节"),
        (D(2024, 9, 29), True, "makeup_workday", "国庆节"),  # a Sunday worked for National Day
        (D(2024, 10, 12), True, "makeup_workday", "国庆节"),  # and a Saturday
        (D(2024, 9, 28), False, "weekend", None),
        (D(2024, 10, 8), True, "workday", None),
        (
            D(2026, 2, 14),
            True,
            "makeup_workday",
            "春节",
        ),  # 2026 Spring Festival: 15-23 Feb off, 14 and 28 worked
        (D(2026, 2, 15), False, "holiday", "春节"),
        (D(2026, 2, 23), False, "holiday", "春节"),
        (D(2026, 2, 24), True, "workday", None),
        (D(2026, 2, 28), True, "makeup_workday", "春节"),
    ],
)
def test_known_days(date, workday, day_type, holiday):
    row = day(date)
    assert (row["is_workday"], row["day_type"], row["holiday_name"]) == (workday, day_type, holiday)
    assert row["calendar_source"] == "official"


def test_national_day_2024_is_seven_days_off():
    week = dim_calendar().filter(pl.col("date").is_between(D(2024, 10, 1), D(2024, 10, 7)))
    assert week["is_holiday"].all() and not week["is_workday"].any()
    assert set(week["holiday_name"]) == {"国庆节"}


def test_outside_the_official_years_monday_to_friday():
    years = official_years()
    assert years.start == 2004 and years.stop - 1 >= 2026
    new_year_2027 = day(D(2027, 1, 1))  # a Friday: no schedule known yet, so a working day
    assert new_year_2027["is_workday"] and new_year_2027["calendar_source"] == "weekdays"
    assert not day(D(2003, 10, 4))["is_workday"] and day(D(2003, 10, 1))["is_workday"]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (D(2024, 9, 27), D(2024, 9, 30), 2),  # Friday -> Monday over a make-up Sunday
        (D(2024, 9, 30), D(2024, 10, 8), 1),  # across National Day
        (D(2024, 9, 30), D(2024, 10, 6), 0),  # completed during the holiday
        (D(2024, 2, 2), D(2024, 2, 4), 1),  # the make-up Sunday counts
        (D(2026, 2, 13), D(2026, 2, 24), 2),  # the 2026 Spring Festival: Feb 14 and 24
        (D(2026, 2, 13), D(2026, 3, 2), 7),  # ... 24-27, the make-up 28th, March 2
        (D(2024, 11, 15), D(2024, 11, 16), 0),  # Friday -> Saturday: the Saturday is not counted
        (D(2024, 11, 15), D(2024, 11, 18), 1),
        (D(2026, 5, 6), D(2026, 5, 6), 0),  # same day
        (D(2026, 5, 7), D(2026, 5, 6), None),  # end before start
        (D(1900, 1, 1), D(2026, 5, 6), None),  # a sentinel date
    ],
)
def test_working_days(start, end, expected):
    assert working_days_py(start, end) == expected


def test_working_days_equal_a_day_by_day_count_with_chinese_calendar():
    rng = random.Random(7)
    pairs = []
    for _ in range(400):
        s = D(2004, 1, 1) + dt.timedelta(days=rng.randrange(0, 8000))
        pairs.append((s, s + dt.timedelta(days=rng.randrange(0, 60))))
    frame = pl.DataFrame(pairs, schema={"s": pl.Date, "e": pl.Date}, orient="row")
    got = frame.select(working_days("s", "e")).to_series().to_list()
    expected = [
        sum(chinese_calendar.is_workday(s + dt.timedelta(days=k)) for k in range(1, (e - s).days + 1))
        for s, e in pairs
    ]
    assert got == expected


def test_deadline_is_the_nth_working_day():
    frame = pl.DataFrame(
        {"s": [D(2024, 9, 30), D(2026, 2, 13), D(2026, 2, 13), D(2024, 11, 15), None], "n": [1, 1, 3, 0, 2]}
    )
    got = frame.select(add_working_days("s", "n")).to_series().to_list()
    assert got == [D(2024, 10, 8), D(2026, 2, 14), D(2026, 2, 25), D(2024, 11, 15), None]
    rng = random.Random(3)
    starts = [D(2005, 1, 1) + dt.timedelta(days=rng.randrange(0, 7500)) for _ in range(300)]
    limits = [rng.randrange(0, 30) for _ in starts]
    out = (
        pl.DataFrame({"s": starts, "n": limits})
        .with_columns(d=add_working_days("s", "n"))
        .with_columns(
            wd=working_days("s", "d"),
            before=working_days("s", pl.col("d") - pl.duration(days=1)),
            workday=is_workday("d"),
        )
    )
    assert (out["wd"] == out["n"]).all()
    later = out.filter(pl.col("n") > 0)
    assert (later["before"] == later["n"] - 1).all() and later["workday"].all()


def test_duckdb_gives_the_same_answer():
    cases = pl.DataFrame(
        {
            "accepted_on": [D(2024, 9, 27), D(2026, 2, 13), D(2024, 11, 15)],
            "completed_on": [D(2024, 9, 30), D(2026, 3, 2), D(2024, 11, 16)],
        }
    )
    con = duckdb.connect()
    con.register("dim_calendar", dim_calendar().to_arrow())
    con.register("cases", cases.to_arrow())
    sql = """SELECT e.workday_index - s.workday_index AS working_days
             FROM cases c JOIN dim_calendar s ON s.date = c.accepted_on JOIN dim_calendar e ON e.date = c.completed_on
             ORDER BY c.accepted_on"""
    got = [r[0] for r in con.execute(sql).fetchall()]
    expected = (
        cases.sort("accepted_on").select(working_days("accepted_on", "completed_on")).to_series().to_list()
    )
    assert got == expected == [2, 0, 7]


def test_local_date_is_the_shanghai_day():
    rng = random.Random(5)
    stamps = [
        dt.datetime(1990, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randrange(0, 40 * 365 * 86400))
        for _ in range(2000)
    ]
    stamps += [
        dt.datetime(1991, 7, 1, 15, 30, tzinfo=dt.UTC),  # 00:30 the next day in the 1991 summer time
        dt.datetime(2026, 2, 14, 16, 0, tzinfo=dt.UTC),  # midnight in Shanghai
        dt.datetime(1985, 3, 1, 20, 0, tzinfo=dt.UTC),
        None,
    ]
    frame = pl.DataFrame({"ts": stamps}, schema={"ts": pl.Datetime("us", "UTC")})
    got = frame.select(local_date("ts", frame.schema["ts"])).to_series().to_list()
    expected = (
        frame.select(pl.col("ts").dt.convert_time_zone("Asia/Shanghai").dt.date()).to_series().to_list()
    )
    assert got == expected
    assert got[-4:-1] == [D(1991, 7, 2), D(2026, 2, 15), D(1985, 3, 2)]
    naive = pl.DataFrame({"ts": [dt.datetime(2026, 2, 14, 23, 59)]})
    assert naive.select(local_date("ts", naive.schema["ts"])).item() == D(2026, 2, 14)
