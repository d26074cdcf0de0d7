"""Vectorized date parsing (models/standardize/dates.py): every form of docs/domain/legacy-estate.md."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from conftest import estate_column
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.standardize.dates import (
    EXCEL_SERIAL_MAX,
    excel_serial_to_date,
    excel_serial_to_datetime,
    parse_date,
    parse_datetime,
    parse_year,
    parse_yyyymm,
)
from models.standardize.nulls import NULL_MARKERS

HYPO = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHANGHAI = ZoneInfo("Asia/Shanghai")
EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 0 for serials >= 61 in the 1900 system


def run(fn, values, dtype=None, **kwargs) -> list:
    series = pl.Series(values) if dtype is None else pl.Series(values, dtype=dtype)
    return pl.DataFrame({"x": series}).select(fn("x", **kwargs))["x"].to_list()


def pairs(fn, values, dtype=None, **kwargs) -> list[tuple]:
    return [(r["value"], r["status"]) for r in run(fn, values, dtype, **kwargs)]


MARCH_1 = dt.date(2019, 3, 1)


# ------------------------------------------------------------------------------------------------
# Every format of docs/domain/legacy-estate.md
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "20190301",  # 'YYYYMMDD' (tax DJRQ)
        "2019-03-01",  # 'YYYY-MM-DD'
        "2019/3/1",
        "2019/03/01",  # 'YYYY/M/D' (courts LARQ)
        "2019年3月1日",
        "2019年03月01日",  # 'YYYY年M月D日' (environment 处罚日期, courts 立案时间)
        "2019-03-01 12:34:56",
        "2019-03-01T12:34:56",
        "2019/3/1 8:05",
        "2019-03-01 00:00:00.0",
        "2019.3.1",
        "２０１９年３月１日",
        " 2019-03-01 ",
        "2019年3月1日 12时30分",
        "2019年3月1日12:30:15",
        "43525",  # Excel serial as text
        "43525.75",  # with a time of day
        "1551398400",  # epoch seconds (2019-03-01 00:00 UTC = 08:00 in Shanghai)
        "1551398400000",  # epoch milliseconds
        "20190301123456",  # YYYYMMDDHHMMSS
    ],
)
def test_every_text_format_parses(text):
    assert pairs(parse_date, [text]) == [(MARCH_1, "ok")]


def test_datetimes_keep_their_time():
    got = pairs(
        parse_datetime,
        [
            "2019-03-01 12:34:56",
            "2019/3/1 8:05",
            "43525.75",
            "1551398400",
            "1551398400123",
            "20190301123456",
            "2019-03-01 12:34:56.123456789",
            "2019年3月1日 12时30分",
            "2019年3月1日12:30:15秒",
        ],
    )
    assert got == [
        (dt.datetime(2019, 3, 1, 12, 34, 56), "ok"),
        (dt.datetime(2019, 3, 1, 8, 5), "ok"),
        (dt.datetime(2019, 3, 1, 18, 0), "ok"),
        (dt.datetime(2019, 3, 1, 8, 0), "ok"),
        (dt.datetime(2019, 3, 1, 8, 0, 0, 123000), "ok"),
        (dt.datetime(2019, 3, 1, 12, 34, 56), "ok"),
        (dt.datetime(2019, 3, 1, 12, 34, 56, 123456), "ok"),
        (dt.datetime(2019, 3, 1, 12, 30), "ok"),
        (dt.datetime(2019, 3, 1, 12, 30, 15), "ok"),
    ]


def test_integer_columns_yyyymmdd_excel_serials_and_epochs():
    values = [20190301, 43525, 1551398400, 1551398400000, 0, None]
    assert pairs(parse_date, values, pl.Int64) == [(MARCH_1, "ok")] * 4 + [
        (None, "sentinel"),
        (None, "missing"),
    ]
    assert pairs(parse_date, [43525.5, 20190301.0], pl.Float64) == [(MARCH_1, "ok")] * 2


def test_typed_dates_and_datetimes():
    assert pairs(parse_date, [MARCH_1, dt.date(1900, 1, 1), None], pl.Date) == [
        (MARCH_1, "ok"),
        (None, "sentinel"),
        (None, "missing"),
    ]
    naive = [dt.datetime(2019, 3, 1, 20, 0), dt.datetime(9999, 12, 31)]
    assert pairs(parse_datetime, naive, pl.Datetime("us")) == [(naive[0], "ok"), (None, "sentinel")]
    assert pairs(parse_date, naive, pl.Datetime("ms")) == [(MARCH_1, "ok"), (None, "sentinel")]
    exact = [dt.datetime(2019, 3, 1, 20, 0, 0, 123456)]
    assert pairs(parse_datetime, exact, pl.Datetime("ns")) == [(exact[0], "ok")]
    # an aware value is an instant: shown as Shanghai wall-clock time (20:00 UTC = 04:00 next day)
    aware = pl.DataFrame({"x": [dt.datetime(2019, 3, 1, 20, 0)]}).select(
        parse_datetime(pl.col("x").dt.replace_time_zone("UTC")),
        d=parse_date(pl.col("x").dt.replace_time_zone("UTC")),
    )
    assert aware.row(0) == (
        {"value": dt.datetime(2019, 3, 2, 4, 0), "status": "ok"},
        {"value": dt.date(2019, 3, 2), "status": "ok"},
    )


def test_offsets_and_epochs_are_instants_converted_to_the_local_wall_clock():
    values = ["2019-03-01T12:00:00Z", "2019-03-01 12:00:00+08:00", "2019-03-01 12:00:00 -0500", "1551398400"]
    assert [v for v, _ in pairs(parse_datetime, values)] == [
        dt.datetime(2019, 3, 1, 20),
        dt.datetime(2019, 3, 1, 12),
        dt.datetime(2019, 3, 2, 1),
        dt.datetime(2019, 3, 1, 8),
    ]
    assert [v for v, _ in pairs(parse_datetime, values, tz=None)] == [
        dt.datetime(2019, 3, 1, 12),
        dt.datetime(2019, 3, 1, 4),
        dt.datetime(2019, 3, 1, 17),
        dt.datetime(2019, 3, 1),
    ]
    # China kept daylight saving time 1986-1991: 1988-07-01 00:00 UTC was 09:00 in Shanghai
    summer = int(dt.datetime(1988, 7, 1, tzinfo=dt.UTC).timestamp())
    assert pairs(parse_datetime, [str(summer)]) == [(dt.datetime(1988, 7, 1, 9), "ok")]


# ------------------------------------------------------------------------------------------------
# Sentinels, null markers, invalid values
# ------------------------------------------------------------------------------------------------
SENTINELS = [
    "1900-01-01",
    "0000-00-00",
    "9999-12-31",
    "19000101",
    "00000000",
    "99991231",
    "1900/1/1",
    "0000/0/0",
    "9999年12月31日",
    "1900-01-01 00:00:00",
    "0000-00-00 00:00:00",
    "9999-12-31 23:59:59",
    "1900年01月01日",
    "0",
    "000",
    "2958465",
]


@pytest.mark.parametrize("fn", [parse_date, parse_datetime])
def test_sentinels_are_null_with_status_sentinel(fn):
    got = pairs(fn, SENTINELS[:-1])
    assert got == [(None, "sentinel")] * (len(SENTINELS) - 1)
    # Excel's last serial is 9999-12-31 but lies outside the 5-digit serial range parse_date infers
    assert pairs(fn, ["2958465"]) == [(None, "invalid")]
    assert run(excel_serial_to_date, [1]) == [dt.date(1900, 1, 1)]
    assert run(excel_serial_to_date, [EXCEL_SERIAL_MAX]) == [dt.date(9999, 12, 31)]


def test_sentinels_are_configurable():
    assert pairs(parse_date, ["1900-01-01", "1970-01-01", "0000-00-00"], sentinels=[dt.date(1970, 1, 1)]) == [
        (dt.date(1900, 1, 1), "ok"),
        (None, "sentinel"),
        (None, "sentinel"),
    ]


@pytest.mark.parametrize("fn", [parse_date, parse_datetime, parse_yyyymm])
def test_null_markers_are_missing(fn):
    markers = [*list(NULL_MARKERS), "   ", "\u3000", "\t\u3000 ", None]
    assert pairs(fn, markers, pl.Utf8) == [(None, "missing")] * len(markers)


@pytest.mark.parametrize(
    "text",
    [
        "2019-02-29",
        "2019-13-01",
        "2019-00-10",
        "2019-04-31",
        "2019/2/30",
        "2019年2月30日",
        "20190230",
        "20191301",
        "2019-03-01 24:00:00",
        "2019-03-01 12:60",
        "2019-03-01 12:00:60",
        "abc",
        "2019",
        "2019030",
        "12345678901",
        "123456",
        "1234567",
        "60",
        "1",
        "30",
        "9999",
        "-1",
        "0.5",
        "19-3-1",
        "2019--03-01",
        "01/03/2019",
        "12019-03-01",
        "99999999999999999999999",
        "20190301123460",
    ],
)
def test_invalid_values(text):
    assert pairs(parse_date, [text]) == [(None, "invalid")]


def test_leap_days():
    assert pairs(parse_date, ["2020-02-29", "2000-02-29", "1900-02-29", "2100-02-29", "20240229"]) == [
        (dt.date(2020, 2, 29), "ok"),
        (dt.date(2000, 2, 29), "ok"),
        (None, "invalid"),
        (None, "invalid"),
        (dt.date(2024, 2, 29), "ok"),
    ]


def test_numbers_outside_the_plausible_window_are_invalid():
    late = str(int(dt.datetime(2150, 1, 1, tzinfo=dt.UTC).timestamp()))
    assert pairs(parse_date, [late, "99999", "10000"]) == [
        (None, "invalid"),
        (None, "invalid"),
        (dt.date(1927, 5, 18), "ok"),
    ]
    window = (dt.date(1950, 1, 1), dt.date(2200, 1, 1))
    assert pairs(parse_date, [late, "10000", "99999"], plausible=window) == [
        (dt.date(2150, 1, 1), "ok"),
        (None, "invalid"),
        (dt.date(2173, 10, 13), "ok"),
    ]
    # a date written out in full is taken whatever its year
    assert pairs(parse_date, ["2150-01-01", "1850-06-01"]) == [
        (dt.date(2150, 1, 1), "ok"),
        (dt.date(1850, 6, 1), "ok"),
    ]


# ------------------------------------------------------------------------------------------------
# Excel serials (1900 date system)
# ------------------------------------------------------------------------------------------------
def test_excel_serial_landmarks():
    serials = [1, 2, 59, 60, 61, 25569, 43525, 0, -5, EXCEL_SERIAL_MAX + 1, None]
    assert run(excel_serial_to_date, serials, pl.Int64) == [
        dt.date(1900, 1, 1),
        dt.date(1900, 1, 2),
        dt.date(1900, 2, 28),
        None,
        dt.date(1900, 3, 1),
        dt.date(1970, 1, 1),
        MARCH_1,
        None,
        None,
        None,
        None,
    ]
    assert run(excel_serial_to_date, ["43525", " 43525.9 ", "x", "无"]) == [MARCH_1, MARCH_1, None, None]
    assert run(excel_serial_to_datetime, [43525.25, 43525 + 1 / 3, 43525.999999], pl.Float64) == [
        dt.datetime(2019, 3, 1, 6),
        dt.datetime(2019, 3, 1, 8),
        dt.datetime(2019, 3, 1, 23, 59, 59, 914000),
    ]


@HYPO
@given(st.lists(st.dates(dt.date(1927, 5, 18), dt.date(2100, 12, 31)), min_size=1, max_size=50))
def test_excel_serials_round_trip(days):
    serials = [(d - EXCEL_EPOCH).days for d in days]
    assert run(excel_serial_to_date, serials, pl.Int64) == days
    assert pairs(parse_date, serials, pl.Int64) == [(d, "ok") for d in days]
    assert pairs(parse_date, [str(s) for s in serials]) == [(d, "ok") for d in days]
    assert pairs(parse_date, [float(s) for s in serials], pl.Float64) == [(d, "ok") for d in days]


# ------------------------------------------------------------------------------------------------
# Hypothesis: every format of every date, epochs, invalid components
# ------------------------------------------------------------------------------------------------
FORMATS = [
    lambda d: d.strftime("%Y%m%d"),
    lambda d: d.strftime("%Y-%m-%d"),
    lambda d: f"{d.year:04d}/{d.month}/{d.day}",
    lambda d: f"{d.year:04d}年{d.month}月{d.day}日",
    lambda d: d.strftime("%Y-%m-%d") + " 13:14:15",
    lambda d: f"{d.year:04d}.{d.month:02d}.{d.day:02d}",
]


@HYPO
@given(st.lists(st.dates(dt.date(1000, 1, 1), dt.date(9999, 12, 30)), min_size=1, max_size=40))
def test_every_format_of_random_dates(days):
    expected = [(None, "sentinel") if d == dt.date(1900, 1, 1) else (d, "ok") for d in days]
    assert pairs(parse_date, [fmt(d) for fmt in FORMATS for d in days]) == expected * len(FORMATS)


@HYPO
@given(
    st.lists(st.tuples(st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32)), min_size=1, max_size=60)
)
def test_components_are_valid_exactly_when_python_builds_the_date(triples):
    texts = [f"{y:04d}-{m:02d}-{d:02d}" for y, m, d in triples]
    for (y, m, d), (value, status) in zip(triples, pairs(parse_date, texts), strict=True):
        try:
            expected = dt.date(y, m, d)
        except ValueError:
            expected = None
        if y == 0 or expected in (dt.date(1900, 1, 1), dt.date(9999, 12, 31)):
            assert (value, status) == (None, "sentinel")
        elif expected is None:
            assert (value, status) == (None, "invalid")
        else:
            assert (value, status) == (expected, "ok")


@HYPO
@given(st.lists(st.datetimes(dt.datetime(1974, 1, 1), dt.datetime(2099, 12, 31)), min_size=1, max_size=40))
def test_epochs_give_shanghai_wall_clock_time(moments):
    utc = [m.replace(tzinfo=dt.UTC) for m in moments]
    seconds = [int(u.timestamp()) for u in utc]
    millis = [int(u.timestamp() * 1000) // 1 for u in utc]
    local_s = [dt.datetime.fromtimestamp(s, SHANGHAI).replace(tzinfo=None) for s in seconds]
    local_ms = [
        dt.datetime.fromtimestamp(ms / 1000, SHANGHAI).replace(tzinfo=None, microsecond=(ms % 1000) * 1000)
        for ms in millis
    ]
    assert pairs(parse_datetime, seconds, pl.Int64) == [(v, "ok") for v in local_s]
    assert pairs(parse_datetime, millis, pl.Int64) == [(v, "ok") for v in local_ms]
    assert pairs(parse_date, [str(s) for s in seconds]) == [(v.date(), "ok") for v in local_s]


@HYPO
@given(st.lists(st.datetimes(dt.datetime(1901, 1, 1), dt.datetime(2099, 12, 31)), min_size=1, max_size=40))
def test_written_datetimes_round_trip(moments):
    moments = [m.replace(microsecond=0) for m in moments]
    formats = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%d%H%M%S")
    texts = [m.strftime(fmt) for fmt in formats for m in moments]
    assert pairs(parse_datetime, texts) == [(m, "ok") for m in moments] * len(formats)


# ------------------------------------------------------------------------------------------------
# Periods
# ------------------------------------------------------------------------------------------------
def test_bare_years_are_their_january_first():
    jan = dt.date(2025, 1, 1)
    got = pairs(
        parse_year,
        [
            "2025",
            "2025年",
            "2025年度",
            " ２０２５ ",
            "2025.0",
            "25",
            "1900",
            "9999",
            "2025年10月",
            "x",
            "NULL",
            None,
        ],
    )
    assert got == [
        (jan, "ok"),
        (jan, "ok"),
        (jan, "ok"),
        (jan, "ok"),
        (jan, "ok"),
        (None, "invalid"),
        (None, "invalid"),  # the placeholder year
        (None, "invalid"),
        (None, "invalid"),  # a month is a period, not a year
        (None, "invalid"),
        (None, "missing"),
        (None, "missing"),
    ]
    assert pairs(parse_year, [2025, None, 1899], dtype=pl.Int64) == [
        (jan, "ok"),
        (None, "missing"),
        (None, "invalid"),
    ]


def test_periods():
    got = pairs(
        parse_yyyymm,
        [
            "202410",
            "2024-10",
            "2024/1",
            "2024年1月",
            "2024年10月",
            " 202410 ",
            "202413",
            "202400",
            "000000",
            "190001",
            "999912",
            "2024-10-15",
            "20241",
            "x",
            None,
            "20241015",
            "0",
            "45566",
            "0000-00-00",
        ],
    )
    assert got == [
        (dt.date(2024, 10, 1), "ok"),
        (dt.date(2024, 10, 1), "ok"),
        (dt.date(2024, 1, 1), "ok"),
        (dt.date(2024, 1, 1), "ok"),
        (dt.date(2024, 10, 1), "ok"),
        (dt.date(2024, 10, 1), "ok"),
        (None, "invalid"),
        (None, "invalid"),
        (None, "sentinel"),
        (None, "sentinel"),
        (None, "sentinel"),
        (dt.date(2024, 10, 1), "ok"),
        (None, "invalid"),
        (None, "invalid"),
        (None, "missing"),
        (dt.date(2024, 10, 1), "ok"),
        (None, "sentinel"),
        (None, "invalid"),
        (None, "sentinel"),
    ]
    assert pairs(parse_yyyymm, [202410, 190001], pl.Int64) == [
        (dt.date(2024, 10, 1), "ok"),
        (None, "sentinel"),
    ]
    assert pairs(parse_yyyymm, [dt.date(2024, 10, 15)], pl.Date) == [(dt.date(2024, 10, 1), "ok")]


# ------------------------------------------------------------------------------------------------
# Composition, naming, engines
# ------------------------------------------------------------------------------------------------
def test_composes_in_one_select_and_streams():
    lf = pl.LazyFrame(
        {"a": ["2019-03-01", "0000-00-00", None], "b": [43525, 0, None], "c": ["202410", "x", ""]}
    )
    exprs = [
        parse_date("a"),
        parse_datetime("b"),
        parse_yyyymm("c"),
        excel_serial_to_date("b").alias("serial"),
    ]
    eager = lf.collect().select(exprs)
    assert eager.columns == ["a", "b", "c", "serial"]
    assert lf.select(exprs).collect(engine="streaming").equals(eager)
    assert eager["a"].struct.field("status").to_list() == ["ok", "sentinel", "missing"]


# ------------------------------------------------------------------------------------------------
# The simulator's columns
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def estate(simulated_estate) -> Path:
    return simulated_estate(
        enterprises=2_500,
        seed=6,
        only=[
            "samr.T_SCZT_DJXX",
            "tax.DJ_NSRXX",
            "tax.SB_ZSXX",
            "courts.AJ_DSR",
            "courts.SXBZXR",
            "social.SB_GRCBXX",
            "env.HB_XZCF",
        ],
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dept", "table", "col"),
    [
        ("samr", "T_SCZT_DJXX", "CLRQ"),
        ("samr", "T_SCZT_DJXX", "HZRQ"),
        ("tax", "DJ_NSRXX", "DJRQ"),
        ("courts", "AJ_DSR", "LARQ"),
        ("courts", "AJ_DSR", "JARQ"),
        ("courts", "SXBZXR", "LASJ"),
        ("env", "HB_XZCF", "处罚日期"),
        ("social", "SB_GRCBXX", "CBRQ"),
        ("samr", "T_SCZT_DJXX", "GXSJ"),
    ],
)
def test_simulator_date_columns_parse_without_invalid_values(estate, dept, table, col):
    values = estate_column(estate, dept, table, col)
    out = run(parse_date, values, pl.Int64 if col == "CBRQ" else pl.Utf8)
    statuses = [r["status"] for r in out]
    assert "invalid" not in statuses, [v for v, s in zip(values, statuses, strict=True) if s == "invalid"][:5]
    assert statuses.count("ok") > 0.5 * len(statuses)
    for v, r in zip(values, out, strict=True):
        if r["status"] != "ok":
            continue
        if col == "CBRQ":  # Excel serial day numbers
            assert r["value"] == EXCEL_EPOCH + dt.timedelta(days=v)
        elif col == "DJRQ":
            assert r["value"] == dt.datetime.strptime(v, "%Y%m%d").date()
        elif col in ("LARQ", "JARQ"):
            assert r["value"] == dt.datetime.strptime(v, "%Y/%m/%d").date()
        elif col in ("处罚日期", "LASJ"):
            assert r["value"] == dt.datetime.strptime(v, "%Y年%m月%d日").date()
        else:
            assert r["value"] == dt.date.fromisoformat(v[:10])


@pytest.mark.slow
def test_simulator_sentinels_and_periods(estate):
    statuses = [r["status"] for r in run(parse_date, estate_column(estate, "samr", "T_SCZT_DJXX", "HZRQ"))]
    assert statuses.count("sentinel") > 0  # 0000-00-00 / 1900-01-01 at a 1% rate
    periods = run(parse_yyyymm, estate_column(estate, "tax", "SB_ZSXX", "SSQ"))
    assert {r["status"] for r in periods} == {"ok"}
    assert all(r["value"].day == 1 for r in periods)
