"""趋势预测: the daily KPI mart's actual counts against the raw source tables of a simulated estate, the
forecast's and the alerts' invariants, the official calendar in the forecast, and series that must not crash
it (empty, all zero, short, flat)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import chinese_calendar
import numpy as np
import polars as pl
import pytest
from conftest import estate_rows

from lake.delta import read_dataset
from lake.layout import quarantine_rows_path
from models.marts.forecast import forecast
from models.marts.kpi import (
    COMMENTS,
    INDICATORS,
    KPI_SCHEMA,
    build_kpi_mart,
    default_as_of,
    event_counts,
    mart_kpi_daily,
)

pytestmark = pytest.mark.xdist_group("silver_estate")
D = dt.date
HISTORY = 365


@pytest.fixture(scope="module")
def estate(silver_estate) -> tuple[Path, Path, dt.date]:
    estate_dir, home = silver_estate(enterprises=400, seed=31)
    as_of = D.fromisoformat(json.loads((estate_dir / "estate.json").read_text())["as_of"])
    return estate_dir, home, as_of


@pytest.fixture(scope="module")
def mart(estate) -> pl.DataFrame:
    _, home, as_of = estate
    return build_kpi_mart(home, as_of)


def quarantined(home: Path, department: str, asset: str) -> set[str]:
    dataset = read_dataset(quarantine_rows_path(home, department, asset))
    return set() if dataset is None else set(pl.from_arrow(dataset.to_table())["source_pk"])


def iso(text) -> D | None:
    return None if text in (None, "") else D.fromisoformat(str(text)[:10])


def ymd(text) -> D | None:  # '2019/3/1' and '2019年3月1日'
    m = re.fullmatch(r"(\d{4})[/年](\d{1,2})[/月](\d{1,2})日?", text or "")
    return None if m is None else D(int(m[1]), int(m[2]), int(m[3]))


def raw_counts(estate) -> dict[str, Counter]:
    """Per indicator, the count per day straight from the departments' SQLite tables (rows silver quarantined
    left out, as the pipeline leaves them out of int_events)."""
    estate_dir, home, _ = estate

    def rows(dept, asset, sql):
        q = quarantined(home, dept, asset)
        return [r[1:] for r in estate_rows(estate_dir, dept, sql) if str(r[0]) not in q]

    out: dict[str, Counter] = {}
    out["new_registrations"] = Counter(
        iso(d) for (d,) in rows("samr", "registrations", "SELECT ZTID, CLRQ FROM T_SCZT_DJXX")
    )
    abnormal = rows("samr", "abnormal_operations", "SELECT ID, LRRQ, YCRQ FROM T_JYYC_ML")
    out["new_abnormal_listings"] = Counter(iso(a) for a, _ in abnormal)
    out["abnormal_removals"] = Counter(iso(r) for _, r in abnormal if r)
    samr = Counter(iso(d) for (d,) in rows("samr", "penalties", "SELECT CFID, JDRQ FROM T_XZCF"))
    env = Counter(ymd(d) for (d,) in rows("env", "penalties", 'SELECT "记录编号", "处罚日期" FROM HB_XZCF'))
    out["samr_penalties"], out["env_penalties"], out["admin_penalties"] = samr, env, samr + env
    parties = rows("courts", "case_parties", "SELECT ID, AH, LARQ, JARQ FROM AJ_DSR")
    out["court_cases_filed"] = Counter(d for _, d in {(ah, ymd(f)) for ah, f, _ in parties})
    out["court_cases_closed"] = Counter(d for _, d in {(ah, ymd(c)) for ah, _, c in parties if c})
    cases = rows("service", "service_cases", "SELECT BJBH, SQSJ, BJSJ FROM BJ_BJXX")
    out["service_cases"] = Counter(iso(a) for a, _ in cases)
    out["service_cases_finished"] = Counter(iso(c) for _, c in cases if c)
    return out


def test_actual_counts_equal_the_source_tables(estate, mart):
    _, _, as_of = estate
    first = as_of - dt.timedelta(days=HISTORY - 1)
    expected = raw_counts(estate)
    past = mart.filter(~pl.col("is_forecast"))
    for key, counter in expected.items():
        got = dict(past.filter(pl.col("indicator") == key).select("day", "actual").iter_rows())
        assert len(got) == HISTORY and min(got) == first and max(got) == as_of, key
        want = {d: counter.get(d, 0) for d in got}
        assert got == want, key
        assert sum(want.values()) > 0, f"{key}: nothing in the last year, the comparison means nothing"


def is_workday(d: D) -> bool:
    return chinese_calendar.is_workday(d)


def test_overdue_cases_per_day_equal_a_case_by_case_count(estate, mart):
    estate_dir, home, as_of = estate
    q = quarantined(home, "service", "service_cases")
    expected: Counter = Counter()
    for pk, accepted, completed, promised in estate_rows(
        estate_dir, "service", "SELECT BJBH, SLSJ, BJSJ, CNSX FROM BJ_BJXX"
    ):
        if pk in q or iso(accepted) is None:
            continue
        start, end = iso(accepted), iso(completed) or as_of
        # walk the working days after acceptance: the (promised+1)-th one is the day it goes overdue
        d, k = start, 0
        while d < end:
            d += dt.timedelta(days=1)
            k += is_workday(d) if d.year >= 2004 else d.weekday() < 5
            if k == int(promised) + 1:
                expected[d] += 1
                break
    got = mart.filter((pl.col("indicator") == "overdue_service_cases") & ~pl.col("is_forecast"))
    got = dict(got.select("day", "actual").iter_rows())
    assert got == {d: expected.get(d, 0) for d in got}
    assert sum(got.values()) > 0


def test_forecast_and_alert_invariants(estate, mart):
    _, _, as_of = estate
    assert mart.schema == pl.Schema(KPI_SCHEMA)
    assert set(mart.columns) == set(COMMENTS["mart_kpi_daily"]["columns"])
    assert set(mart["indicator"]) == {i.key for i in INDICATORS}
    ahead = mart.filter(pl.col("is_forecast"))
    assert ahead.group_by("indicator").len()["len"].to_list() == [30] * len(INDICATORS)
    assert ahead["day"].min() == as_of + dt.timedelta(days=1) and ahead["day"].max() == as_of + dt.timedelta(
        days=30
    )
    assert ahead["actual"].is_null().all() and ahead["alert"].is_null().all()
    with_forecast = mart.filter(pl.col("forecast").is_not_null())
    assert (
        (with_forecast["lower"] <= with_forecast["forecast"])
        & (with_forecast["forecast"] <= with_forecast["upper"])
        & (with_forecast["lower"] >= 0)
    ).all()
    past = mart.filter(~pl.col("is_forecast"))
    assert (past["alert"].is_null() == past["forecast"].is_null()).all()
    tested = past.filter(pl.col("alert").is_not_null())
    assert tested.group_by("indicator").len()["len"].max() == 90
    outside = (tested["actual"] < tested["lower"]) | (tested["actual"] > tested["upper"])
    assert (tested["alert"] == outside).all()
    # a 95% interval: alerts are the exception (discrete counts make it at most about 5%, plus real surprises)
    assert tested["alert"].mean() < 0.1


def events_frame(
    days: list[D], event_category: str = "service_case", reference: list[str] | None = None
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_category": [event_category] * len(days),
            "event_date": days,
            "end_date": [None] * len(days),
            "reference": reference or [None] * len(days),
        },
        schema={"event_category": pl.Utf8, "event_date": pl.Date, "end_date": pl.Date, "reference": pl.Utf8},
    )


def daily(start: D, end: D, per_day) -> list[D]:
    out = []
    d = start
    while d <= end:
        out += [d] * per_day(d)
        d += dt.timedelta(days=1)
    return out


def methods(frame: pl.DataFrame, indicator: str = "service_cases") -> set[str]:
    return set(frame.filter(pl.col("indicator") == indicator)["method"].drop_nulls())


def test_empty_and_all_zero_and_short_series_do_not_crash():
    as_of = D(2026, 10, 31)
    empty = mart_kpi_daily(events_frame([]), as_of=as_of)
    assert empty.height == len([i for i in INDICATORS if i.categories]) * (HISTORY + 30)
    assert methods(empty) == {"no_data"} and (empty["forecast"].drop_nulls() == 0).all()
    assert mart_kpi_daily(events_frame([])).height == 0  # no as_of to be found: an empty mart

    short = mart_kpi_daily(events_frame(daily(D(2026, 10, 22), as_of, lambda d: 3)), as_of=as_of)
    assert methods(short) == {"mean_short"}
    assert short.filter(pl.col("indicator") == "new_registrations")[
        "method"
    ].drop_nulls().unique().to_list() == ["no_data"]
    # one event long ago: the fit window is all zero
    old = mart_kpi_daily(events_frame([D(2026, 1, 2)]), as_of=as_of)
    ahead = old.filter((pl.col("indicator") == "service_cases") & pl.col("is_forecast"))
    assert set(ahead["method"]) == {"all_zero"} and (ahead["upper"] == 0).all()


def test_flat_series_and_a_spike():
    as_of = D(2026, 6, 30)
    days = daily(D(2025, 6, 1), as_of, lambda d: 50 if d == as_of else 5)
    out = mart_kpi_daily(events_frame(days), as_of=as_of).filter(pl.col("indicator") == "service_cases")
    assert methods(out) == {"nb_glm"}
    ahead = out.filter(pl.col("is_forecast"))
    assert np.allclose(ahead["forecast"], 5, rtol=0.25)
    alerts = out.filter(pl.col("alert"))["day"].to_list()
    assert alerts == [as_of]


def test_the_forecast_knows_the_official_calendar():
    """A window-only service: busy on working days (make-up weekends included), quiet on weekends and closed
    on holidays. The forecast over the 2026 National Day must follow the official calendar."""
    rng = np.random.default_rng(5)
    as_of = D(2026, 9, 18)

    def per_day(d: D) -> int:
        return int(
            rng.poisson(40 if is_workday(d) else (0.5 if chinese_calendar.get_holiday_detail(d)[1] else 4))
        )

    days = daily(D(2025, 9, 1), as_of, per_day)
    ahead = mart_kpi_daily(events_frame(days), as_of=as_of).filter(
        (pl.col("indicator") == "service_cases") & pl.col("is_forecast")
    )
    f = dict(zip(ahead["day"], ahead["forecast"], strict=True))
    assert f[D(2026, 9, 20)] > 25  # a make-up Sunday is a working day
    assert f[D(2026, 10, 5)] < 5  # a holiday Monday is not
    assert f[D(2026, 10, 10)] > 25  # the make-up Saturday after National Day
    assert f[D(2026, 10, 12)] > 25 and f[D(2026, 10, 11)] < 10


def test_counts_court_cases_once_per_case_number():
    frame = events_frame([D(2026, 1, 5)] * 3 + [D(2026, 1, 6)], "court_case", ["A", "A", "B", None])
    counts = event_counts(frame, D(2026, 1, 1), D(2026, 1, 31))
    got = {
        r["day"]: r["actual"]
        for r in counts.filter(pl.col("indicator") == "court_cases_filed").iter_rows(named=True)
    }
    assert got == {D(2026, 1, 5): 2, D(2026, 1, 6): 1}


def test_default_as_of_ignores_one_departments_future_dates():
    frame = pl.concat(
        [
            events_frame([D(2026, 10, 30), D(2026, 10, 31)]),
            events_frame([D(2026, 10, 31)], "business_registration"),
            events_frame([D(2026, 11, 14)], "tax_registration"),
        ]
    )
    assert default_as_of(frame) == D(2026, 10, 31)


def test_forecast_interval_is_a_95_percent_interval_on_poisson_counts():
    rng = np.random.default_rng(11)
    days = np.arange(np.datetime64("2025-01-01"), np.datetime64("2025-06-30"))
    covered = []
    for _ in range(40):
        y = rng.poisson(12, len(days) + 30).astype(float)
        _mu, lo, hi, method = forecast(y[:-30], days, days[-1] + np.arange(1, 31))
        assert method == "nb_glm"
        covered.append(np.mean((y[-30:] >= lo) & (y[-30:] <= hi)))
    assert 0.93 <= np.mean(covered) <= 0.995


def test_deregistrations_per_day_equal_the_registry_staging_model(estate, mart):
    """The deregistration indicator reads the canonical tables (registration events and their records' update
    time), never the registry's staging model: on the simulated city the figures are the staging model's."""
    from lake.city import city_timezone
    from models.silver import read_silver

    _, home, _ = estate
    registry = read_silver(home, "stg_samr__registrations", ["status", "updated_at"])
    days = registry.filter(pl.col("status") == "deregistered").select(
        pl.col("updated_at").dt.convert_time_zone(city_timezone()).dt.date().alias("day")
    )
    expected = Counter(days["day"].to_list())
    got = mart.filter((pl.col("indicator") == "deregistrations") & ~pl.col("is_forecast"))
    got = dict(got.select("day", "actual").iter_rows())
    assert got == {d: expected.get(d, 0) for d in got}
    assert sum(got.values()) > 0
