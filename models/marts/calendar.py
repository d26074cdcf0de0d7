"""Working days on the official calendar: the one rule every time limit of the marts is counted with.

Chinese administrative time limits (办件的法定时限 and 承诺时限, the 8.5-day target to start a business) are
counted in working days (工作日, 行政许可法 art. 82), and the official calendar is not Monday to Friday: the
State Council publishes each year which days are statutory holidays (法定节假日) and which weekend days are
make-up working days (调休上班). Counting with Monday to Friday is wrong by up to a week around the Spring
Festival and National Day, exactly when backlogs build up.

**The rule** (:func:`working_days`, the only place it is written): the working days from ``start`` to
``end`` are the official working days *after* the start day up to and *including* the end day,

    working_days(start, end) = #{ d : start < d <= end and d is a working day }

so a case accepted and completed on the same day took 0 working days, accepted on a Friday and completed the
next Monday took 1, and completed on a Saturday after a Friday acceptance took 0 (the Saturday is not counted).
It is null when either date is null or outside the calendar, or when ``end`` is before ``start``. The start
day is not counted, as with every legal period (民法典 art. 201: 开始的当日不计入); the same rule gives the
deadline of a limit of ``n`` working days (:func:`add_working_days`): a case is within the limit exactly when
``working_days(start, end) <= n``.

How it is fast: :func:`dim_calendar` is a table of days (1990-01-01 .. 2030-12-31: service cases and
registrations of the 1990s still exist) with ``workday_index``, the number of working days from the
calendar's first day up to and including that day. The working days between two dates are then two lookups
and a subtraction: a ``gather`` on the day number in a Polars expression (no join, no Python per row), or two
joins on ``dim_calendar`` in DuckDB::

    SELECT e.workday_index - s.workday_index AS working_days
    FROM cases c JOIN dim_calendar s ON s.date = c.accepted_on JOIN dim_calendar e ON e.date = c.completed_on

**Outside the official years** (``chinese_calendar`` knows 2004 to 2026; see ``calendar_source``) every
Monday to Friday counts as a working day and no day as a holiday: before 2004 and from 2027 on, counts ignore
holidays and make-up days until the library is updated with the next year's State Council notice (published
each November: update ``chinesecalendar`` then). Dates outside 1990..2030 (sentinels such as 1900-01-01 or
9999-12-31) give null, never a number of days.

Timestamps become days on the city's calendar with :func:`local_date`: the UTC offset of the city's time zone per
UTC day (from ``zoneinfo``: +8 hours, +9 in the summer times of 1986–1991) looked up like the working-day
index, because Polars' general time-zone conversion costs about half a second per million timestamps.
"""

from __future__ import annotations

import datetime as dt
import functools

import chinese_calendar
import polars as pl

from lake.city import city_zone
from models.marts.common import frame_table, mart

CALENDAR_START = dt.date(1990, 1, 1)
CALENDAR_END = dt.date(2030, 12, 31)

#: chinese_calendar's holiday names, in the words of the State Council notices.
HOLIDAY_NAMES_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}

CALENDAR_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "weekday": pl.Int8(),
        "is_workday": pl.Boolean(),
        "is_holiday": pl.Boolean(),
        "is_makeup_workday": pl.Boolean(),
        "holiday_name": pl.Utf8(),
        "day_type": pl.Utf8(),
        "calendar_source": pl.Utf8(),
        "workday_index": pl.Int32(),
    }
)

COMMENTS = {
    "dim_calendar": {
        "table": "工作日历（国务院办公厅节假日安排，含调休上班日）/ Official working-day calendar with statutory "
        "holidays and make-up working days; working days between two dates = difference of workday_index",
        "columns": {
            "date": "日期 / Calendar day",
            "weekday": "星期（1=周一 … 7=周日）/ ISO weekday, 1 = Monday",
            "is_workday": "是否工作日（含调休上班日）/ Official working day, make-up working days included",
            "is_holiday": "是否法定节假日（含调休放假日）/ Day off of an official public holiday period",
            "is_makeup_workday": "是否调休上班日 / Weekend day worked to make up for a holiday",
            "holiday_name": "节日名称（放假日或其调休上班日）/ Holiday whose day off or make-up day this is",
            "day_type": "日期类型：workday 工作日 | weekend 周末 | holiday 节假日 | makeup_workday 调休上班 / Day type",
            "calendar_source": "official 官方日历 | weekdays 无官方数据时按周一至周五 / Source of the day's status",
            "workday_index": "累计工作日序号（自1990-01-01起，含当日）/ Working days from 1990-01-01 up to and "
            "including this day",
        },
    },
}

_EPOCH = dt.date(1970, 1, 1)
_FIRST = (CALENDAR_START - _EPOCH).days
_DAYS = (CALENDAR_END - CALENDAR_START).days + 1


def official_years() -> range:
    """The years the installed ``chinese_calendar`` has the State Council's schedule for."""
    years = sorted({d.year for d in chinese_calendar.holidays})
    return range(years[0], years[-1] + 1)


@functools.cache
def dim_calendar() -> pl.DataFrame:
    """One row per day of 1990-01-01 .. 2030-12-31 in :data:`CALENDAR_SCHEMA` (see the module docstring)."""
    years = official_years()
    first, last = dt.date(years.start, 1, 1), dt.date(years.stop - 1, 12, 31)
    holidays = pl.DataFrame(
        {"date": list(chinese_calendar.holidays), "_h": list(chinese_calendar.holidays.values())},
        schema={"date": pl.Date, "_h": pl.Utf8},
    )
    workdays = pl.DataFrame(
        {"date": list(chinese_calendar.workdays), "_w": list(chinese_calendar.workdays.values())},
        schema={"date": pl.Date, "_w": pl.Utf8},
    )
    days = pl.DataFrame({"date": pl.date_range(CALENDAR_START, CALENDAR_END, "1d", eager=True)})
    official = pl.col("date").is_between(first, last)
    weekend = pl.col("weekday") >= 6
    frame = (
        days.with_columns(weekday=pl.col("date").dt.weekday().cast(pl.Int8))
        .join(holidays, on="date", how="left")
        .join(workdays, on="date", how="left")
        .with_columns(
            is_holiday=official & pl.col("_h").is_not_null(),
            is_makeup_workday=official & pl.col("_w").is_not_null() & weekend,
        )
        .with_columns(
            is_workday=(~weekend & ~pl.col("is_holiday")) | pl.col("is_makeup_workday"),
            holiday_name=pl.when(official).then(pl.coalesce("_h", "_w")).replace(HOLIDAY_NAMES_ZH),
            calendar_source=pl.when(official).then(pl.lit("official")).otherwise(pl.lit("weekdays")),
        )
        .with_columns(
            day_type=pl.when(pl.col("is_makeup_workday"))
            .then(pl.lit("makeup_workday"))
            .when(pl.col("is_holiday"))
            .then(pl.lit("holiday"))
            .when(pl.col("is_workday"))
            .then(pl.lit("workday"))
            .otherwise(pl.lit("weekend")),
            workday_index=pl.col("is_workday").cast(pl.Int32).cum_sum(),
        )
    )
    return frame.select(list(CALENDAR_SCHEMA)).cast(CALENDAR_SCHEMA)


@functools.cache
def _index_series() -> pl.Series:
    return dim_calendar()["workday_index"]


@functools.cache
def _workday_dates() -> pl.Series:
    """The date of the k-th working day of the calendar at position k - 1."""
    cal = dim_calendar()
    return cal.filter(pl.col("is_workday"))["date"]


def _expr(value: pl.Expr | str) -> pl.Expr:
    return pl.col(value) if isinstance(value, str) else value


def _day_number(date: pl.Expr | str) -> pl.Expr:
    return _expr(date).cast(pl.Date).cast(pl.Int32) - _FIRST


def workday_index(date: pl.Expr | str) -> pl.Expr:
    """``dim_calendar``'s ``workday_index`` of a date expression (null outside the calendar)."""
    n = _day_number(date)
    inside = n.is_between(0, _DAYS - 1)
    return pl.when(inside).then(pl.lit(_index_series()).gather(n.clip(0, _DAYS - 1)))


def is_workday(date: pl.Expr | str) -> pl.Expr:
    """Whether a date is an official working day (null outside the calendar)."""
    n = _day_number(date)
    return pl.when(n.is_between(0, _DAYS - 1)).then(
        pl.lit(dim_calendar()["is_workday"]).gather(n.clip(0, _DAYS - 1))
    )


def working_days(start: pl.Expr | str, end: pl.Expr | str) -> pl.Expr:
    """The working days after ``start`` up to and including ``end`` (dates); the module's one rule."""
    s, e = _expr(start).cast(pl.Date), _expr(end).cast(pl.Date)
    return pl.when(e >= s).then(workday_index(e) - workday_index(s)).cast(pl.Int32)


def add_working_days(start: pl.Expr | str, n: pl.Expr | str | int) -> pl.Expr:
    """The date of the ``n``-th working day after ``start`` (``start`` itself for 0): the deadline of a limit of
    ``n`` working days, the last day on which ``working_days(start, end) <= n``'s ``end`` is a working day.
    Null for a negative or null ``n`` and beyond the calendar."""
    count = pl.lit(n) if isinstance(n, int) else _expr(n)
    k = workday_index(start) + count.cast(pl.Int32)
    dates = _workday_dates()
    nth = pl.lit(dates).gather((k - 1).clip(0, dates.len() - 1))
    return (
        pl.when(count == 0).then(_expr(start).cast(pl.Date)).when((count > 0) & (k <= dates.len())).then(nth)
    )


@functools.cache
def _utc_offsets_us() -> pl.Series:
    """The city's UTC offset (microseconds) at noon UTC of each calendar day."""
    zone = city_zone()
    noon = dt.datetime.combine(CALENDAR_START, dt.time(12), tzinfo=dt.UTC)
    offsets: list[int] = []
    for k in range(_DAYS):
        offset = (noon + dt.timedelta(days=k)).astimezone(zone).utcoffset()
        assert offset is not None  # an aware datetime (in a ZoneInfo) always has one
        offsets.append(int(offset.total_seconds()) * 1_000_000)
    return pl.Series(offsets, dtype=pl.Int64)


def local_date(timestamp: pl.Expr | str, dtype: pl.DataType) -> pl.Expr:
    """The city's calendar day of a timestamp column of type ``dtype``: a time-zone-aware one is
    shifted by the city's offset of its UTC day (exact but for the hour of a 1986-1991 summer-time switch),
    a naive one is taken as local time already, a date stays a date."""
    col = _expr(timestamp)
    if not isinstance(dtype, pl.Datetime):
        return col.cast(pl.Date)
    if dtype.time_zone is None:
        return col.dt.date()
    day_us = 86_400_000_000
    us = col.dt.epoch("us")
    n = us.floordiv(day_us) - _FIRST
    offset = (
        pl.when(n.is_between(0, _DAYS - 1))
        .then(pl.lit(_utc_offsets_us()).gather(n.clip(0, _DAYS - 1)))
        .otherwise(8 * 3_600_000_000)
    )
    return (us + offset).floordiv(day_us).cast(pl.Int32).cast(pl.Date)


def working_days_py(start: dt.date, end: dt.date) -> int | None:
    """:func:`working_days` for two Python dates (for checks and small tools, not for frames)."""
    frame = pl.DataFrame({"s": [start], "e": [end]}, schema={"s": pl.Date, "e": pl.Date})
    return frame.select(working_days("s", "e")).item()


MARTS = (
    mart(
        "calendar",
        ("dim_calendar",),
        (),
        lambda ctx: {"dim_calendar": frame_table(ctx.con, "dim_calendar", dim_calendar())},
        comments=COMMENTS,
    ),
)
