"""Vectorized parsing of the dates legacy systems write (docs/domain/legacy-estate.md, "Dates") — Polars expressions.

One function reads every form found in the estate, in any column type (text, integers, floats, dates,
datetimes; typed values are read through their text form):

- ``'YYYYMMDD'`` (also as an integer), ``'YYYYMMDDHHMMSS'`` (14 digits);
- ``'YYYY-MM-DD'``, ``'YYYY/M/D'``, ``'YYYY.M.D'``, ``'YYYY年M月D日'``, each optionally followed by a time
  ``H:M[:S[.fraction]]`` or ``H时M分[S秒]`` (``T`` or blanks in between) and an offset (``Z``, ``+08:00``);
  full-width digits are folded first;
- Excel serial day numbers (1900 date system: serial 1 = 1900-01-01, the fictitious 1900-02-29 = 60 is
  rejected, a fraction is the time of day), as an integer, a float or numeric text of 5 integer digits
  (:func:`excel_serial_to_date` converts any serial);
- epoch integers: 9–10 digits are seconds, 12–13 digits milliseconds (told apart by magnitude; a fraction
  is allowed);
- sentinels ``'1900-01-01'``, ``'0000-00-00'``, ``'9999-12-31'`` in any of these spellings (``19000101``,
  ``0000/0/0``, ``9999年12月31日 00:00:00`` ...), the zero date of any form (year 0000) and the number 0.

How numbers are told apart: an integer of 8 digits is ``YYYYMMDD`` and of 14 digits ``YYYYMMDDHHMMSS``;
5 digits an Excel serial (1927-05-18 .. 2173-10-13); 9–10 digits epoch seconds; 12–13 digits epoch
milliseconds; 1–4 digits (more likely a year or a count: '2019' is not 1905-07-11), 6, 7 and 11 digits
are 'invalid'. Serial and epoch results must also fall inside ``plausible`` (default 1900-01-01 ..
2100-12-31), so that a stray number is not taken for a date; a date written out in full is accepted
whatever its year.

Time zones: the result is a *naive local* (wall-clock) value. Text without an offset is taken as written.
Values that denote an instant — epoch integers, text with ``Z``/``+hh:mm``, time-zone-aware datetime
columns — are converted to wall-clock time in ``tz`` (default: the city's, :data:`lake.city.DEFAULT_TIMEZONE`;
a zone database name, so Shanghai's 1986–1991 daylight saving is handled), or left in UTC with ``tz=None``. Callers attach the zone when they need an
aware timestamp: ``.dt.replace_time_zone(tz)`` (then to UTC for Delta, DESIGN.md).

Results are structs ``{value, status}``; ``status`` is one of :data:`DATE_STATUSES`: 'ok', 'sentinel'
(a "no date" placeholder: value null), 'invalid' (not a date: value null), 'missing' (null or a null
marker, see :mod:`models.standardize.nulls`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from lake.city import DEFAULT_TIMEZONE
from models.standardize.identifiers import FULLWIDTH_TO_ASCII
from models.standardize.nulls import IntoExpr, Stages, as_expr, keep_name, nullify

DATE_STATUSES = ("ok", "sentinel", "invalid", "missing")
#: "No date" placeholders besides the zero date (year 0000), which is always a sentinel.
SENTINEL_DATES: tuple[dt.date, ...] = (dt.date(1900, 1, 1), dt.date(9999, 12, 31))
#: Window in which Excel serials and epoch numbers are believed to be dates.
PLAUSIBLE_RANGE: tuple[dt.date, dt.date] = (dt.date(1900, 1, 1), dt.date(2100, 12, 31))
DEFAULT_TZ = DEFAULT_TIMEZONE
#: Excel's largest serial (9999-12-31) in the 1900 date system.
EXCEL_SERIAL_MAX = 2_958_465

_DAY_US = 86_400_000_000
_EXCEL_EPOCH_OFFSET = 25_569  # serial of 1970-01-01 (serials >= 61, i.e. counted from 1899-12-30)

_NUMBER_RE = r"^(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?$"
_CIVIL_RE = (
    r"^(?P<y>[0-9]{4})\s*[-/.年]\s*(?P<m>[0-9]{1,2})\s*[-/.月]\s*(?P<d>[0-9]{1,2})\s*[日号]?"
    r"(?:\s*T?\s*(?P<H>[0-9]{1,2})\s*[:时点]\s*(?P<M>[0-9]{1,2})"
    r"(?:\s*[:分]\s*(?P<S>[0-9]{1,2})(?:[.,](?P<f>[0-9]{1,9}))?\s*秒?|\s*分)?)?"
    r"\s*(?P<z>Z|[+-][0-9]{2}:?[0-9]{2})?$"
)
_PERIOD_RE = r"^(?P<y>[0-9]{4})(?:(?P<m6>[0-9]{2})|\s*[-/.年]\s*(?P<m>[0-9]{1,2})\s*月?)$"


F = pl.field


def _days_in_month(y: pl.Expr, m: pl.Expr) -> pl.Expr:
    leap = ((y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))).cast(pl.Int32)
    return pl.when(m == 2).then(28 + leap).when(m.is_in([4, 6, 9, 11])).then(30).otherwise(31)


def _excel_serial_to_datetime(serial: pl.Expr, max_serial: float = EXCEL_SERIAL_MAX) -> pl.Expr:
    """Naive datetime of a Float64 Excel serial (1900 system), null outside ``[1, max_serial + 1)`` or 60.

    ``serial`` should be a leaf expression (``pl.field``/``pl.col``): it is used several times.
    """
    days = serial.floor()
    ok = (serial >= 1) & (serial < max_serial + 1) & (days != 60)
    # serials below 60 count from 1899-12-31; from 61 on, Excel's phantom 1900-02-29 shifts them by one
    since_1970 = (
        pl.when(days < 60).then(days - (_EXCEL_EPOCH_OFFSET - 1)).otherwise(days - _EXCEL_EPOCH_OFFSET)
    )
    ms = ((serial - days) * 86_400_000).round(0)  # Excel keeps times to about a millisecond
    micros = (since_1970 * _DAY_US + ms * 1000).cast(pl.Int64, strict=False)
    return pl.when(ok).then(pl.from_epoch(micros, time_unit="us"))


def _instant_to_local(micros: pl.Expr, tz: str | None) -> pl.Expr:
    """Naive wall-clock datetime in ``tz`` of microseconds since the epoch (UTC if tz is None)."""
    utc = pl.from_epoch(micros, time_unit="us")
    if tz is None:
        return utc
    return utc.dt.replace_time_zone("UTC").dt.convert_time_zone(tz).dt.replace_time_zone(None)


def _text(source: pl.Expr) -> pl.Expr:
    return nullify(source).str.replace_many(FULLWIDTH_TO_ASCII)


def _is_sentinel(y: pl.Expr, m: pl.Expr, d: pl.Expr | None, sentinels: Sequence[dt.date]) -> pl.Expr:
    """Year 0000, or (y, m[, d]) equal to one of ``sentinels``."""
    same = [(y == s.year) & (m == s.month) & (pl.lit(True) if d is None else d == s.day) for s in sentinels]
    return pl.any_horizontal([y == 0, *same])


def _parse_stages(
    source: pl.Expr, sentinels: Sequence[dt.date], tz: str | None, plausible: tuple[dt.date, dt.date]
) -> Stages:
    """Stages ending with the fields ``text``, ``status`` and ``value`` (naive local datetime when 'ok')."""
    s = Stages(text=_text(source))
    s.add(number=F("text").str.extract_groups(_NUMBER_RE), civil=F("text").str.extract_groups(_CIVIL_RE))
    s.add(
        int=F("number").struct.field("int"),
        frac=F("number").struct.field("frac"),
        **{f"{g}_txt": F("civil").struct.field(g) for g in ("y", "m", "d", "H", "M", "S", "f", "z")},
    )

    # numbers: YYYYMMDD, YYYYMMDDHHMMSS, Excel serials, epoch seconds / milliseconds
    s.add(
        is_number=F("int").is_not_null(),
        digits=F("int").str.len_bytes(),
        whole=F("frac").is_null() | F("frac").str.contains(r"^0+$"),
        int_value=F("int").cast(pl.Int64, strict=False),
        float_value=(F("int") + "." + F("frac").fill_null("0")).cast(pl.Float64, strict=False),
        is_civil_text=F("y_txt").is_not_null(),
    )
    s.add(
        is_zero=F("is_number") & (F("int_value") == 0) & F("whole"),
        ymd14=F("is_number") & F("whole") & (F("digits") == 14),
        from_digits=F("is_number") & F("whole") & F("digits").is_in([8, 14]),
        epoch_s=F("is_number") & F("digits").is_between(9, 10),
        epoch_ms=F("is_number") & F("digits").is_between(12, 13),
    )

    # written-out dates, and 8/14-digit numbers, as civil components
    def component(field: str, start: int, default: int | None) -> pl.Expr:
        written = F(f"{field}_txt").cast(pl.Int32, strict=False)
        packed = F("int").str.slice(start, 2 if start else 4).cast(pl.Int32, strict=False)
        if default is not None:
            written = written.fill_null(default)
            packed = pl.when(F("ymd14")).then(packed).otherwise(default)
        return pl.when(F("is_civil_text")).then(written).when(F("from_digits")).then(packed)

    s.add(
        y=component("y", 0, None),
        m=component("m", 4, None),
        d=component("d", 6, None),
        hh=component("H", 8, 0),
        mi=component("M", 10, 0),
        ss=component("S", 12, 0),
        micro=F("f_txt").str.slice(0, 6).str.pad_end(6, "0").cast(pl.Int32, strict=False).fill_null(0),
        is_civil=F("is_civil_text") | F("from_digits"),
        is_serial=F("is_number") & (F("digits") == 5),
        has_zone=F("z_txt").is_not_null() & F("is_civil_text"),
        zone_digits=F("z_txt").str.replace_all(r"[^0-9]", ""),
    )
    s.add(
        civil_ok=(
            F("is_civil")
            & F("y").is_between(1, 9999)
            & F("m").is_between(1, 12)
            & F("d").is_between(1, _days_in_month(F("y"), F("m")))
            & F("hh").is_between(0, 23)
            & F("mi").is_between(0, 59)
            & F("ss").is_between(0, 59)
        ).fill_null(False),
        civil_sentinel=(F("is_civil") & _is_sentinel(F("y"), F("m"), F("d"), sentinels)).fill_null(False),
        zone_seconds=pl.when(F("z_txt") == "Z")
        .then(0)
        .otherwise(
            F("zone_digits").str.slice(0, 2).cast(pl.Int64, strict=False) * 3600
            + F("zone_digits").str.slice(2, 2).cast(pl.Int64, strict=False) * 60
        )
        * pl.when(F("z_txt").str.starts_with("-")).then(-1).otherwise(1),
        serial_dt=_excel_serial_to_datetime(F("float_value")),
    )

    def guarded(name: str, fallback: int) -> pl.Expr:
        return pl.when(F("civil_ok")).then(F(name)).otherwise(fallback)

    s.add(
        civil_dt=pl.datetime(
            guarded("y", 1970),
            guarded("m", 1),
            guarded("d", 1),
            guarded("hh", 0),
            guarded("mi", 0),
            guarded("ss", 0),
            guarded("micro", 0),
            time_unit="us",
        )
    )
    # offsets and epoch numbers are instants: converted to wall-clock time in tz
    s.add(
        instant_us=pl.when(F("epoch_s") & F("whole"))
        .then(F("int_value") * 1_000_000)
        .when(F("epoch_s"))
        .then((F("float_value") * 1_000_000).round(0).cast(pl.Int64, strict=False))
        .when(F("epoch_ms") & F("whole"))
        .then(F("int_value") * 1_000)
        .when(F("epoch_ms"))
        .then((F("float_value") * 1_000).round(0).cast(pl.Int64, strict=False))
        .when(F("civil_ok") & F("has_zone"))
        .then(F("civil_dt").dt.epoch("us") - F("zone_seconds") * 1_000_000),
        inferred=F("is_serial") | F("epoch_s") | F("epoch_ms"),
    )
    s.add(
        parsed=pl.when(F("civil_ok") & F("has_zone").not_())
        .then(F("civil_dt"))
        .when(F("is_serial"))
        .then(F("serial_dt"))
        .when(F("instant_us").is_not_null())
        .then(_instant_to_local(F("instant_us"), tz))
    )
    s.add(day=F("parsed").dt.date())
    s.add(
        status=pl.when(F("text").is_null())
        .then(pl.lit("missing"))
        .when(F("is_zero") | F("civil_sentinel"))
        .then(pl.lit("sentinel"))
        .when(F("inferred") & F("day").is_in(list(sentinels)))
        .then(pl.lit("sentinel"))
        .when(F("parsed").is_not_null() & (F("inferred").not_() | F("day").is_between(*plausible)))
        .then(pl.lit("ok"))
        .otherwise(pl.lit("invalid"))
    )
    return s.add(value=pl.when(F("status") == "ok").then(F("parsed")))


def parse_datetime(
    expr: IntoExpr,
    *,
    sentinels: Sequence[dt.date] = SENTINEL_DATES,
    tz: str | None = DEFAULT_TZ,
    plausible: tuple[dt.date, dt.date] = PLAUSIBLE_RANGE,
) -> pl.Expr:
    """Any legacy date/time form → ``{value: Datetime('us'), naive local wall-clock time, status}``.

    A date without a time is midnight. See the module docstring for the forms, sentinels and time zones.
    """
    source = as_expr(expr)
    s = _parse_stages(source, sentinels, tz, plausible)
    return s.result(source, value=F("value"), status=F("status"))


def parse_date(
    expr: IntoExpr,
    *,
    sentinels: Sequence[dt.date] = SENTINEL_DATES,
    tz: str | None = DEFAULT_TZ,
    plausible: tuple[dt.date, dt.date] = PLAUSIBLE_RANGE,
) -> pl.Expr:
    """Any legacy date form → ``{value: Date, status}`` (a time part is validated, then dropped)."""
    source = as_expr(expr)
    s = _parse_stages(source, sentinels, tz, plausible)
    return s.result(source, value=F("value").dt.date(), status=F("status"))


def parse_yyyymm(
    expr: IntoExpr,
    *,
    sentinels: Sequence[dt.date] = SENTINEL_DATES,
    tz: str | None = DEFAULT_TZ,
    plausible: tuple[dt.date, dt.date] = PLAUSIBLE_RANGE,
) -> pl.Expr:
    """A period (tax period 税款所属期 ``'202410'``, ``'2024-10'``, ``'2024年10月'``, the integer 202410)
    → ``{value: Date, the first day of the month, status}``.

    A full date that :func:`parse_date` reads (written out, ``YYYYMMDD``, a typed date) gives the first day
    of its month; other numbers (serials, epochs, ``'20241'``) are 'invalid' here. Year 0000 and the months
    of :data:`SENTINEL_DATES` (``190001``, ``999912``) are sentinels.
    """
    source = as_expr(expr)
    s = _parse_stages(source, sentinels, tz, plausible)
    s.add(period=F("text").str.extract_groups(_PERIOD_RE))
    s.add(
        py=F("period").struct.field("y").cast(pl.Int32, strict=False),
        pm=F("period")
        .struct.field("m6")
        .fill_null(F("period").struct.field("m"))
        .cast(pl.Int32, strict=False),
    )
    s.add(
        is_period=F("py").is_not_null(),
        period_ok=(F("py").is_between(1, 9999) & F("pm").is_between(1, 12)).fill_null(False),
        period_sentinel=_is_sentinel(F("py"), F("pm"), None, sentinels).fill_null(False),
    )
    s.add(
        period_status=pl.when(
            F("is_period").not_()
            & (F("is_civil") | F("is_number").not_() | F("is_zero") | F("text").is_null())
        )
        .then(F("status"))
        .when(F("is_period").not_())
        .then(pl.lit("invalid"))
        .when(F("period_sentinel"))
        .then(pl.lit("sentinel"))
        .when(F("period_ok"))
        .then(pl.lit("ok"))
        .otherwise(pl.lit("invalid"))
    )
    month = pl.date(
        pl.when(F("period_ok")).then(F("py")).otherwise(1970),
        pl.when(F("period_ok")).then(F("pm")).otherwise(1),
        1,
    )
    return s.result(
        source,
        value=pl.when(F("is_period") & (F("period_status") == "ok"))
        .then(month)
        .when(F("is_period").not_() & (F("period_status") == "ok"))
        .then(F("value").dt.date().dt.month_start()),
        status=F("period_status"),
    )


#: A bare year as departments write it: 2025, '2025', '2025年', '2025年度' (a float read from a sheet: 2025.0).
_YEAR_RE = r"^([0-9]{4})(?:\.0+|年度?)?$"
#: ``X_status`` of a year (no sentinel: a year of 1900 or 9999 is simply not a plausible one, 'invalid').
YEAR_STATUSES = ("ok", "invalid", "missing")


def parse_year(expr: IntoExpr, *, plausible: tuple[dt.date, dt.date] = PLAUSIBLE_RANGE) -> pl.Expr:
    """A bare year (a tax rating's 评价年度 ``ND = 2025``) → ``{value: Date, January 1 of the year, status}``.

    Why a date: an event needs one (a rating is dated by its year, as :func:`parse_yyyymm` dates a period by
    its month's first day). Full-width digits are folded; ``status`` is 'ok' for a year after the plausible
    range's first (1900, a placeholder) up to its last, 'invalid' for anything else written, 'missing' for
    nothing (or a null marker)."""
    source = as_expr(expr)
    s = Stages(text=nullify(source).str.replace_many(FULLWIDTH_TO_ASCII).str.replace_all(r"\s", ""))
    s.add(year=F("text").str.extract(_YEAR_RE, 1).cast(pl.Int32, strict=False))
    s.add(ok=F("year").is_between(plausible[0].year + 1, plausible[1].year).fill_null(False))
    status = pl.when(F("text").is_null()).then(pl.lit("missing")).when(F("ok")).then(pl.lit("ok"))
    return s.result(
        source,
        value=pl.when(F("ok")).then(pl.date(F("year"), 1, 1)),
        status=status.otherwise(pl.lit("invalid")),
    )


def excel_serial_to_datetime(expr: IntoExpr, *, max_serial: float = EXCEL_SERIAL_MAX) -> pl.Expr:
    """Excel serial (1900 system; number or numeric text) → naive Datetime('us'); null when not a serial.

    Valid serials are 1 (1900-01-01) .. ``max_serial`` (default 9999-12-31) except 60, Excel's fictitious
    1900-02-29. The fraction is the time of day, rounded to the millisecond.
    """
    source = as_expr(expr)
    s = Stages(serial=nullify(source).cast(pl.Float64, strict=False))
    return s.result(source, _excel_serial_to_datetime(F("serial"), max_serial))


def excel_serial_to_date(expr: IntoExpr, *, max_serial: float = EXCEL_SERIAL_MAX) -> pl.Expr:
    """Excel serial (1900 system; number or numeric text) → Date; null when not a serial (see above)."""
    source = as_expr(expr)
    return keep_name(excel_serial_to_datetime(source, max_serial=max_serial).dt.date(), source)


__all__ = [
    "DATE_STATUSES",
    "DEFAULT_TZ",
    "EXCEL_SERIAL_MAX",
    "PLAUSIBLE_RANGE",
    "SENTINEL_DATES",
    "excel_serial_to_date",
    "excel_serial_to_datetime",
    "parse_date",
    "parse_datetime",
    "parse_yyyymm",
]
