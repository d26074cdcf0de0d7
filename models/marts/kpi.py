"""趋势预测: the daily indicators of the duty officer's screen, a 30-day forecast with its interval, and an
alert when a day's actual count falls outside what the recent past made plausible.

**Counts** are per calendar day (the city's time zone) from ``int_events`` (see :data:`INDICATORS`: which event
categories — ``event_category``, :mod:`models.events`, never a deployment's event type — and which of their dates), plus two that ``int_events`` cannot give: overdue service cases (the per-case rule
of :func:`models.marts.service.case_facts`, dated by the day a case went overdue) and deregistrations (the
registry carries no deregistration date: a ``business_registration`` event whose status is ``deregistered``,
dated by the last update of its subject's record in ``int_enterprise_records`` — exact for a night whose change
was the deregistration, smeared over the past on a first load; canonical tables only, so any city's registry
counts). Tax
filings, social contributions and credit ratings are dated by their period (a month, a year), not by a day,
and are not daily indicators. A day with no event counts 0; an indicator's series starts at its first event.

**Which indicators exist** is the deployment's: an indicator is forecast when ``int_events`` holds an event of one
of its categories, i.e. some spec declares it and its table delivered (:func:`indicators_for`); the others are
left out with a note in the build report (a city without an environmental bureau has no ``env_penalties``),
never a failure. Why the lake rather than the specs: the marts read the lake at pinned versions and never the
deployment's files, so a rebuild as of an earlier version sees what was declared then.

**The forecast** (``method``: ``nb_glm`` or a fallback) and its interval: :mod:`models.marts.forecast` — a
negative-binomial regression on the last :data:`~models.marts.forecast.FIT_DAYS` days with the official calendar's
day types and a trend, the interval 95%.

**Alerts**: for each of the last :data:`BACKTEST_DAYS` days the model is refitted on the days before it (a
one-step-ahead backtest, exactly what the forecast would have said that morning); ``alert`` is true when the
actual is outside that interval — with a 95% interval, about one false alert per indicator every twenty days.
For a rare indicator (a mean under 0.025 a day) the interval is [0, 0] and every event is an alert: on
such a day an event is the unusual thing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lake.city import city_timezone
from models.events import PENALTY_CATEGORIES
from models.marts.common import MartContext, frame_table, mart, sql_str
from models.marts.forecast import FIT_DAYS, LEVEL, series_forecast

HORIZON_DAYS = 30
BACKTEST_DAYS = 90
HISTORY_DAYS = 365


@dataclass(frozen=True)
class Indicator:
    key: str
    name_zh: str
    name_en: str
    #: the event categories counted (:mod:`models.events`); empty: the indicator is computed another way
    categories: tuple[str, ...] = ()
    date: str = "event_date"
    #: count distinct values of this column instead of rows (a court case has one event per party)
    distinct: str | None = None


INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "new_registrations",
        "新设立登记（按成立日期）",
        "New business registrations, by founding date",
        ("business_registration",),
    ),
    Indicator(
        "deregistrations",
        "注销登记（按记录最后更新日）",
        "Deregistered registrations, by the record's last update",
    ),
    Indicator("new_tax_registrations", "新办税务登记", "New taxpayer registrations", ("tax_registration",)),
    Indicator(
        "new_abnormal_listings",
        "新列入经营异常名录",
        "New abnormal-operations listings",
        ("abnormal_listing",),
    ),
    Indicator(
        "abnormal_removals",
        "移出经营异常名录",
        "Removals from the abnormal-operations list",
        ("abnormal_listing",),
        date="end_date",
    ),
    Indicator(
        "admin_penalties",
        "行政处罚（市场监管、生态环境）",
        "Administrative penalties (SAMR and environment)",
        PENALTY_CATEGORIES,
    ),
    Indicator("samr_penalties", "市场监管行政处罚", "SAMR administrative penalties", ("market_penalty",)),
    Indicator("env_penalties", "生态环境行政处罚", "Environmental penalties", ("environmental_penalty",)),
    Indicator("court_cases_filed", "法院立案数", "Court cases filed", ("court_case",), distinct="reference"),
    Indicator(
        "court_cases_closed",
        "法院结案数",
        "Court cases closed",
        ("court_case",),
        date="end_date",
        distinct="reference",
    ),
    Indicator(
        "new_judgment_defaulters",
        "新增失信被执行人（按立案日期）",
        "New judgment defaulters, by filing date",
        ("judgment_default",),
    ),
    Indicator("new_tax_arrears", "新增欠税", "New tax arrears", ("tax_arrears",)),
    Indicator(
        "new_insurance_enrollments",
        "新增参保人员",
        "New social insurance enrollments",
        ("insurance_enrollment",),
    ),
    Indicator("service_cases", "办件申请量", "Service cases applied for", ("service_case",)),
    Indicator(
        "service_cases_finished", "办结量", "Service cases finished", ("service_case",), date="end_date"
    ),
    Indicator(
        "overdue_service_cases",
        "新增超期办件（超承诺时限）",
        "Service cases going beyond their promised limit",
    ),
)
INDICATOR_BY_KEY = {i.key: i for i in INDICATORS}
#: Every category some indicator counts.
INDICATOR_CATEGORIES: tuple[str, ...] = tuple(sorted({c for i in INDICATORS for c in i.categories}))


def indicators_for(present: Collection[str] | None) -> tuple[tuple[Indicator, ...], dict[str, str]]:
    """The event indicators to compute given the categories ``present`` in ``int_events`` (None: all of them),
    and why each other one is left out (indicator key -> note)."""
    counted = [i for i in INDICATORS if i.categories]
    if present is None:
        return tuple(counted), {}
    kept = tuple(i for i in counted if set(i.categories) & set(present))
    notes = {
        i.key: f"no event of category {' / '.join(i.categories)} in int_events (no spec declares one, or its "
        "table delivered nothing): indicator left out"
        for i in counted
        if i not in kept
    }
    return kept, notes


COUNTS_SCHEMA = pl.Schema({"indicator": pl.Utf8(), "day": pl.Date(), "actual": pl.Int64()})
KPI_SCHEMA = pl.Schema(
    {
        "day": pl.Date(),
        "indicator": pl.Utf8(),
        "indicator_name_zh": pl.Utf8(),
        "actual": pl.Int64(),
        "forecast": pl.Float64(),
        "lower": pl.Float64(),
        "upper": pl.Float64(),
        "is_forecast": pl.Boolean(),
        "alert": pl.Boolean(),
        "method": pl.Utf8(),
        "as_of": pl.Date(),
    }
)


# ------------------------------------------------------------------------------------------------------------
# counts
# ------------------------------------------------------------------------------------------------------------
def _lazy(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def default_as_of(events: pl.DataFrame | pl.LazyFrame) -> dt.date | None:
    """The last day at least two indicators have an event on: robust to one department's future-dated typos
    (a registration date of next month) that a plain maximum would take for today."""
    lf = _lazy(events).filter(
        pl.col("event_category").is_in(INDICATOR_CATEGORIES) & pl.col("event_date").is_not_null()
    )
    per_day = lf.group_by("event_date").agg(pl.col("event_category").n_unique().alias("n"))
    return per_day.filter(pl.col("n") >= 2).select(pl.col("event_date").max()).collect().item()


def event_counts(
    events: pl.DataFrame | pl.LazyFrame,
    start: dt.date,
    end: dt.date,
    indicators: tuple[Indicator, ...] = INDICATORS,
) -> pl.DataFrame:
    """Events per indicator and day in ``[start, end]`` (days without events absent), in :data:`COUNTS_SCHEMA`.
    ``events`` has ``event_category``, ``event_date``, ``end_date`` and ``reference`` of ``int_events``."""
    lf = _lazy(events)
    parts = []
    for date_col in ("event_date", "end_date"):
        plain = [i for i in indicators if i.categories and i.date == date_col and i.distinct is None]
        categories = sorted({c for i in plain for c in i.categories})
        if categories:
            per_category = (
                lf.filter(
                    pl.col("event_category").is_in(categories) & pl.col(date_col).is_between(start, end)
                )
                .group_by("event_category", pl.col(date_col).alias("day"))
                .agg(pl.len().alias("n"))
            )
            mapping = pl.LazyFrame(
                [(i.key, c) for i in plain for c in i.categories],
                schema={"indicator": pl.Utf8, "event_category": pl.Utf8},
                orient="row",
            )
            parts.append(
                per_category.join(mapping, on="event_category")
                .group_by("indicator", "day")
                .agg(pl.col("n").sum().alias("actual"))
            )
        for ind in indicators:
            if not (ind.categories and ind.date == date_col) or ind.distinct is None:
                continue
            col = pl.col(ind.distinct)
            parts.append(
                lf.filter(
                    pl.col("event_category").is_in(ind.categories) & pl.col(date_col).is_between(start, end)
                )
                .group_by(pl.col(date_col).alias("day"))
                .agg((col.drop_nulls().n_unique() + col.null_count()).alias("actual"))
                .with_columns(indicator=pl.lit(ind.key))
            )
    if not parts:
        return pl.DataFrame(schema=COUNTS_SCHEMA)
    return pl.concat([p.select(list(COUNTS_SCHEMA)).cast(COUNTS_SCHEMA) for p in pl.collect_all(parts)])


def overdue_counts(cases: pl.DataFrame | pl.LazyFrame, as_of: dt.date, start: dt.date) -> pl.DataFrame:
    """Service cases that went beyond their promised limit, per day (``overdue_on``), in :data:`COUNTS_SCHEMA`."""
    from models.marts.service import case_facts

    return (
        case_facts(cases, as_of)
        .filter(pl.col("overdue_on").is_between(start, as_of))
        .group_by(pl.col("overdue_on").alias("day"))
        .agg(pl.len().alias("actual"))
        .with_columns(indicator=pl.lit("overdue_service_cases"))
        .select(list(COUNTS_SCHEMA))
        .collect()
        .cast(COUNTS_SCHEMA)
    )


def deregistration_counts(
    registrations: pl.DataFrame | pl.LazyFrame, as_of: dt.date, start: dt.date
) -> pl.DataFrame:
    """Deregistered registrations per day of their last update, in :data:`COUNTS_SCHEMA`. ``registrations``:
    ``status`` and ``updated_at`` of each registration (:func:`registration_statuses`)."""
    lf = _lazy(registrations)
    dtype = lf.collect_schema()["updated_at"]
    day = pl.col("updated_at")
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        day = day.dt.convert_time_zone(city_timezone())
    day = day.dt.date() if isinstance(dtype, pl.Datetime) else day.cast(pl.Date)
    return (
        lf.filter(pl.col("status") == DEREGISTERED)
        .select(day.alias("day"))
        .filter(pl.col("day").is_between(start, as_of))
        .group_by("day")
        .agg(pl.len().alias("actual"))
        .with_columns(indicator=pl.lit("deregistrations"))
        .select(list(COUNTS_SCHEMA))
        .collect()
        .cast(COUNTS_SCHEMA)
    )


#: The canonical status of a deregistered entity (the crosswalks' ``status`` vocabulary).
DEREGISTERED = "deregistered"
#: The event category whose status is a registration's: the registry may be any department's table.
REGISTRATION_CATEGORY = "business_registration"


def registration_statuses(events: pl.LazyFrame, records: pl.LazyFrame) -> pl.LazyFrame:
    """``status`` and ``updated_at`` of every registration: the ``business_registration`` events of
    ``int_events`` (their declared ``status``) with the ``updated_at`` of their subject's record in
    ``int_enterprise_records``. Why both: the event says which records are registrations (a category, never a
    table name), the record when it last changed (events carry no update time)."""
    regs = events.filter(pl.col("event_category") == REGISTRATION_CATEGORY).select(
        "subject_record_id", "status"
    )
    return regs.join(
        records.select(pl.col("record_id").alias("subject_record_id"), "updated_at"),
        on="subject_record_id",
        how="inner",
    ).select("status", "updated_at")


# ------------------------------------------------------------------------------------------------------------
# the mart
# ------------------------------------------------------------------------------------------------------------
def mart_kpi_daily(
    events: pl.DataFrame | pl.LazyFrame,
    *,
    as_of: dt.date | None = None,
    cases: pl.DataFrame | pl.LazyFrame | None = None,
    registrations: pl.DataFrame | pl.LazyFrame | None = None,
    history_days: int = HISTORY_DAYS,
    horizon_days: int = HORIZON_DAYS,
    backtest_days: int = BACKTEST_DAYS,
    fit_days: int = FIT_DAYS,
    level: float = LEVEL,
    categories: Collection[str] | None = None,
) -> pl.DataFrame:
    """One row per indicator and day, in :data:`KPI_SCHEMA`: the last ``history_days`` days up to ``as_of``
    with their actual counts (the last ``backtest_days`` of them with the one-step-ahead forecast, interval
    and alert), then ``horizon_days`` forecast days (``is_forecast``, actual null). ``cases``
    (``int_service_cases``) and ``registrations`` (:func:`registration_statuses`) add the overdue and
    deregistration indicators; without them those indicators are left out. ``as_of`` defaults to
    :func:`default_as_of`; events after it are not counted. ``categories``: the event categories the
    deployment has (:func:`indicators_for`; None: every indicator)."""
    if as_of is None:
        as_of = default_as_of(events)
    if as_of is None:
        return pl.DataFrame(schema=KPI_SCHEMA)
    backtest_days = min(backtest_days, history_days)
    first = as_of - dt.timedelta(days=history_days + fit_days - 1)
    kept, _ = indicators_for(categories)
    counts = [event_counts(events, first, as_of, kept)]
    wanted = list(kept)
    if cases is not None:
        counts.append(overdue_counts(cases, as_of, first))
        wanted.append(INDICATOR_BY_KEY["overdue_service_cases"])
    if registrations is not None:
        counts.append(deregistration_counts(registrations, as_of, first))
        wanted.append(INDICATOR_BY_KEY["deregistrations"])
    by_indicator = {key: grp for (key,), grp in pl.concat(counts).group_by("indicator")}

    days = np.arange(np.datetime64(first, "D"), np.datetime64(as_of, "D") + 1)
    frames = []
    for ind in wanted:
        y = np.zeros(len(days))
        grp = by_indicator.get(ind.key)
        if grp is not None:
            y[(grp["day"].to_numpy().astype("datetime64[D]") - days[0]).astype(np.int64)] = grp[
                "actual"
            ].to_numpy()
        frames.append(
            series_forecast(
                y,
                days,
                history_days=history_days,
                horizon_days=horizon_days,
                backtest_days=backtest_days,
                fit_days=fit_days,
                level=level,
            ).with_columns(indicator=pl.lit(ind.key), indicator_name_zh=pl.lit(ind.name_zh))
        )
    if not frames:
        return pl.DataFrame(schema=KPI_SCHEMA)
    out = pl.concat(frames).with_columns(as_of=pl.lit(as_of, pl.Date))
    return out.select(list(KPI_SCHEMA)).cast(KPI_SCHEMA)


EVENT_COLUMNS = ["event_category", "event_date", "end_date", "reference"]


def read_kpi_inputs(home: Path | str) -> dict[str, pl.LazyFrame]:
    """The silver columns the KPI mart needs, lazily from a home folder (only the event types it counts are
    read from ``int_events``, the largest table of the lake, with the categories it holds)."""
    from lake.delta import read_dataset
    from lake.layout import silver_path
    from models.marts.service import CASE_COLUMNS

    def scan(name: str, columns: list[str]) -> pl.LazyFrame:
        dataset = read_dataset(silver_path(Path(home), name))
        if dataset is None:
            raise FileNotFoundError(
                f"silver table {name} does not exist under {home}: run the silver assets first"
            )
        return pl.scan_pyarrow_dataset(dataset).select(columns)

    return {
        "events": scan("int_events", EVENT_COLUMNS).filter(
            pl.col("event_category").is_in(INDICATOR_CATEGORIES)
        ),
        "cases": scan("int_service_cases", CASE_COLUMNS),
        "registrations": registration_statuses(
            scan("int_events", ["event_category", "subject_record_id", "status"]),
            scan("int_enterprise_records", ["record_id", "updated_at"]),
        ),
    }


def build_kpi_mart(home: Path | str, as_of: dt.date | None = None) -> pl.DataFrame:
    """:func:`mart_kpi_daily` from a home folder's silver, with every indicator."""
    inputs = read_kpi_inputs(home)
    events = inputs["events"].collect()
    return mart_kpi_daily(
        events,
        as_of=as_of,
        cases=inputs["cases"],
        registrations=inputs["registrations"],
        categories=set(events["event_category"].unique()),
    )


COMMENTS: dict[str, dict] = {
    "mart_kpi_daily": {
        "table": "每日指标与趋势预测：各指标每日实际值、一步预测及95%区间、超出区间预警，及未来30天预测 / Daily "
        "indicators with one-step-ahead backtest forecasts, 95% intervals, alerts when the actual leaves "
        "the interval, and a 30-day forecast (negative-binomial regression on the official calendar)",
        "columns": {
            "day": f"日期 / Day ({city_timezone()})",
            "indicator": "指标键 / Indicator key",
            "indicator_name_zh": "指标名称 / Indicator name",
            "actual": "实际值（预测日为空）/ Actual count, null on forecast days",
            "forecast": "预测值（回测日为前一日所作一步预测）/ Forecast mean; on past days the one-step-ahead "
            "forecast made from the days before",
            "lower": "95%预测区间下限 / Lower bound of the 95% interval",
            "upper": "95%预测区间上限 / Upper bound of the 95% interval",
            "is_forecast": "是否为未来预测日 / Day after as_of (forecast only)",
            "alert": "预警：实际值超出一步预测区间 / Actual outside the one-step-ahead interval; null when not tested",
            "method": "预测方法：nb_glm 负二项回归 | mean_short 序列过短按均值 | all_zero 全为零 | no_data / "
            "Forecast method or fallback",
            "as_of": "统计截止日期 / Last day with actual counts",
        },
    },
}


def _build(ctx: MartContext) -> dict[str, int]:
    """In the marts build: the same inputs as :func:`read_kpi_inputs`, from the lake versions the build pinned
    (the cases from the service marts' working table)."""
    events = ctx.con.sql(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM lake_int_events WHERE event_category IN "
        f"({', '.join(sql_str(c) for c in INDICATOR_CATEGORIES)})"
    ).pl()
    categories = set(events["event_category"].unique())
    for key, note in indicators_for(categories)[1].items():
        ctx.notes[f"mart_kpi_daily.{key}"] = note
    cases = ctx.con.sql("SELECT * FROM _service_cases").pl()
    registrations = ctx.con.sql(
        "SELECT e.status, r.updated_at FROM lake_int_events e JOIN lake_int_enterprise_records r "
        f"ON r.record_id = e.subject_record_id WHERE e.event_category = {sql_str(REGISTRATION_CATEGORY)}"
    ).pl()
    if registrations.is_empty():
        registrations = None
        ctx.notes["mart_kpi_daily.deregistrations"] = (
            f"no {REGISTRATION_CATEGORY} event in int_events: indicator left out"
        )
    frame = mart_kpi_daily(
        events, as_of=ctx.as_of, cases=cases, registrations=registrations, categories=categories
    )
    return {"mart_kpi_daily": frame_table(ctx.con, "mart_kpi_daily", frame)}


MARTS = (
    mart(
        "kpi",
        ("mart_kpi_daily",),
        ("int_events", "int_enterprise_records", "_service_cases"),
        lambda ctx: _build(ctx),
        comments=COMMENTS,
    ),
)
