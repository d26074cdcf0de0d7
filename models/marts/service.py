"""办件效能 and 营商环境: how fast the government service centre handles its cases, and how long it takes to start
a business, measured the way the supervisors (电子监察, 好差评) and the 营商环境 evaluation measure them.

Every per-case rule is in :func:`case_facts` and nowhere else; the marts only aggregate it, and the daily
KPIs (:mod:`models.marts.kpi`) count its ``overdue_on`` days.

**Processing time** (办理用时) is :func:`models.marts.calendar.working_days` from the acceptance day (受理,
``accepted_at``) to the completion day (办结, ``completed_at``), both on the city's calendar: the official
working days after the acceptance day up to and including the completion day (same day = 0). The legal clock
starts at acceptance, not at application (行政许可法 art. 42). Pauses of the clock for 公示, 听证 or 专家评审
are not recorded in BJ_BJXX, so they count as processing time.

**Finished** cases are those with a completion time: 办结 with a decision and 退件 (returned without one); both
ended the applicant's wait, so both count in the processing-time figures (``returned_cases`` says how many).

**Overdue** (超期) is measured against the **promised** limit (承诺时限, ``promised_days``): the limit the centre
publishes and the electronic supervision system (电子监察) flags with its red light; it is the stricter of the
two. Beyond the **statutory** limit (法定时限, ``statutory_days``) is a breach of law and is counted separately
(``over_statutory_*``). A case with a limit of ``L`` working days is overdue when its processing time is more
than ``L`` — finished late, or still open on ``as_of`` with ``working_days(accepted, as_of) > L`` (open cases
count: leaving them out would flatter exactly the worst items). It went overdue on ``overdue_on``, the
``L+1``-th working day after acceptance. A case without an acceptance day or a limit cannot be assessed: it is
in no overdue numerator or denominator (``assessed_cases``).

**Satisfaction** (好差评) is the 1–5 score where one was given (other values ignored): average, share
satisfied (4–5: 满意, 非常满意) and share of bad reviews (1–2: 差评).

Percentiles are linear interpolations (NumPy's default); the group's ``statutory_days`` and
``promised_days`` are the most frequent limit of its cases (each case is assessed against its own).

**Starting a business** (开办企业, target 8.5 working days: registration, company seal, first invoices). The
simulated estate represents it as service cases only: every enterprise founded in the last three years has a
企业设立登记 (SX0001) case applied ten calendar days before its founding date; seal (公章刻制备案 SX0301) and
invoice (发票申领 SX0401) cases exist, but as ordinary cases of older enterprises, almost never right after a
registration. A start-up is therefore one SX0001 case of an enterprise applicant; its seal and invoice steps are
that applicant's (same valid USCC, else same comparison name) first SX0301 and SX0401 cases applied within
:data:`STARTUP_WINDOW_DAYS` calendar days from the registration's application day. The start-up time is the
working days from the registration's **application** day (申请: the applicant's clock, as the 营商环境
evaluation counts it) to the last completion among the steps found; ``complete_chain`` says whether all three
were found and finished — when not, the figure is the time of the steps that exist (a lower bound of the full
procedure), never an invented one. Working days are whole days, so within the 8.5-day target means at most 8.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from models.marts.calendar import add_working_days, local_date, working_days
from models.marts.common import MartContext, frame_table, mart, q
from models.standardize.codes import STARTUP_STEPS, service_item_departments, startup_items

STARTUP_TARGET_DAYS = 8.5
STARTUP_WINDOW_DAYS = 30

#: The department of an item the deployment's ``crosswalks/service_item_departments.csv`` has no row for
#: (:func:`models.standardize.codes.service_item_departments`): shown as such and noted, never guessed.
UNMAPPED_DEPARTMENT = ("unmapped", "未映射部门")

#: The columns of the canonical ``int_service_cases`` the marts read (:mod:`models.canonical`).
CASE_COLUMNS = [
    "case_id",
    "item_code",
    "item_name",
    "channel",
    "applicant_type",
    "applicant_uscc",
    "applicant_uscc_status",
    "applicant_name_comparison",
    "applied_at",
    "accepted_at",
    "completed_at",
    "statutory_days",
    "promised_days",
    "case_status",
    "satisfaction",
]

FACT_SCHEMA = pl.Schema(
    {
        "case_id": pl.Utf8(),
        "item_code": pl.Utf8(),
        "item_name": pl.Utf8(),
        "channel": pl.Utf8(),
        "applicant_type": pl.Utf8(),
        "applicant_key": pl.Utf8(),
        "applied_on": pl.Date(),
        "accepted_on": pl.Date(),
        "completed_on": pl.Date(),
        "case_status": pl.Utf8(),
        "is_finished": pl.Boolean(),
        "is_returned": pl.Boolean(),
        "processing_days": pl.Int32(),
        "statutory_days": pl.Int32(),
        "promised_days": pl.Int32(),
        "elapsed_days": pl.Int32(),
        "is_overdue": pl.Boolean(),
        "is_over_statutory": pl.Boolean(),
        "overdue_on": pl.Date(),
        "satisfaction": pl.Int8(),
    }
)


def _lazy(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def _local_date(schema: pl.Schema, name: str) -> pl.Expr:
    return local_date(name, schema[name])


def default_as_of(cases: pl.DataFrame | pl.LazyFrame) -> dt.date | None:
    """The day the cases describe when no ``as_of`` is given: the latest acceptance or completion day."""
    lf = _lazy(cases)
    schema = lf.collect_schema()
    return (
        lf.select(
            pl.max_horizontal(
                _local_date(schema, "accepted_at").max(), _local_date(schema, "completed_at").max()
            )
        )
        .collect()
        .item()
    )


def case_facts(cases: pl.DataFrame | pl.LazyFrame, as_of: dt.date | None) -> pl.LazyFrame:
    """One row per service case with every per-case rule of the module docstring applied, in
    :data:`FACT_SCHEMA`. ``cases`` has the :data:`CASE_COLUMNS` of ``int_service_cases``; ``as_of``
    is None only when they have no day at all (:func:`default_as_of` of no cases), the as-of rules then null."""
    lf = _lazy(cases)
    schema = lf.collect_schema()
    as_of_lit = pl.lit(as_of, pl.Date)
    key = pl.coalesce(
        pl.when(pl.col("applicant_uscc_status") == "valid").then(pl.col("applicant_uscc")),
        pl.lit("name:") + pl.col("applicant_name_comparison"),
    )
    score = pl.col("satisfaction").cast(pl.Int64, strict=False)
    out = (
        lf.select(
            pl.col("case_id").cast(pl.Utf8),
            pl.col("item_code").cast(pl.Utf8),
            pl.col("item_name").cast(pl.Utf8),
            pl.col("channel").cast(pl.Utf8),
            pl.col("applicant_type").cast(pl.Utf8),
            key.alias("applicant_key"),
            _local_date(schema, "applied_at").alias("applied_on"),
            _local_date(schema, "accepted_at").alias("accepted_on"),
            _local_date(schema, "completed_at").alias("completed_on"),
            pl.col("case_status").cast(pl.Utf8),
            pl.col("statutory_days").cast(pl.Int32),
            pl.col("promised_days").cast(pl.Int32),
            pl.when(score.is_between(1, 5)).then(score).cast(pl.Int8).alias("satisfaction"),
        )
        .with_columns(
            is_finished=pl.col("completed_on").is_not_null(),
            is_returned=pl.col("case_status") == "returned",
            processing_days=working_days("accepted_on", "completed_on"),
        )
        .with_columns(
            # finished: its processing time; open: the working days it has been waiting on as_of
            elapsed_days=pl.when(pl.col("is_finished"))
            .then(pl.col("processing_days"))
            .otherwise(working_days("accepted_on", as_of_lit)),
        )
        .with_columns(
            is_overdue=pl.col("elapsed_days") > pl.col("promised_days"),
            is_over_statutory=pl.col("elapsed_days") > pl.col("statutory_days"),
        )
        .with_columns(
            overdue_on=pl.when(pl.col("is_overdue")).then(
                add_working_days("accepted_on", pl.col("promised_days") + 1)
            ),
        )
    )
    return out.select([pl.col(c).cast(t) for c, t in FACT_SCHEMA.items()])


def _p(expr: pl.Expr, q: float) -> pl.Expr:
    return expr.quantile(q, interpolation="linear")


def _most_frequent(combos: pl.DataFrame, keys: list[str], column: str) -> pl.DataFrame:
    """Per group of ``keys``, the most frequent non-null ``column`` (ties: the smallest) from the counts
    ``combos`` (``len`` per combination)."""
    return (
        combos.filter(pl.col(column).is_not_null())
        .group_by(*keys, column)
        .agg(pl.col("len").sum())
        .sort([*keys, "len", column], descending=[False] * len(keys) + [True, False], nulls_last=True)
        .group_by(keys, maintain_order=True)
        .first()
        .select(*keys, column)
    )


def departments() -> pl.DataFrame:
    """Which department decides each service item (item_code, department, department_name_zh): the
    deployment's data, since item codes and the departments deciding them are a city's own."""
    return service_item_departments()


def unmapped_items(efficiency: pl.DataFrame) -> list[str]:
    """The service items of :func:`mart_service_efficiency` the deployment maps to no department."""
    rows = efficiency.filter(pl.col("department") == UNMAPPED_DEPARTMENT[0])
    return sorted(set(rows["item_code"].drop_nulls()))


def mart_service_efficiency(cases: pl.DataFrame | pl.LazyFrame, as_of: dt.date | None = None) -> pl.DataFrame:
    """办件效能: one row per service item, department and channel (see the module docstring; an item decides
    in one department, so the grain is item and channel, the department joined by :func:`departments`; an item
    without one is :data:`UNMAPPED_DEPARTMENT`)."""
    if as_of is None:
        as_of = default_as_of(cases)
    facts = case_facts(cases, as_of).collect().lazy()
    keys = ["item_code", "channel"]
    finished = pl.col("is_finished")
    days = pl.col("processing_days")  # null unless finished
    stats = facts.group_by(keys).agg(
        pl.len().cast(pl.Int64).alias("cases"),
        finished.sum().cast(pl.Int64).alias("finished_cases"),
        pl.col("is_returned").sum().cast(pl.Int64).alias("returned_cases"),
        (~finished).sum().cast(pl.Int64).alias("open_cases"),
        days.mean().alias("processing_days_mean"),
        _p(days, 0.5).alias("processing_days_median"),
        _p(days, 0.9).alias("processing_days_p90"),
        days.max().cast(pl.Int32).alias("processing_days_max"),
        pl.col("is_overdue").count().cast(pl.Int64).alias("assessed_cases"),
        pl.col("is_overdue").sum().cast(pl.Int64).alias("overdue_cases"),
        (pl.col("is_overdue") & ~finished).sum().cast(pl.Int64).alias("open_overdue_cases"),
        pl.col("is_over_statutory").count().cast(pl.Int64).alias("_assessed_s"),
        pl.col("is_over_statutory").sum().cast(pl.Int64).alias("over_statutory_cases"),
        pl.col("satisfaction").count().cast(pl.Int64).alias("rated_cases"),
        pl.col("satisfaction").cast(pl.Float64).mean().alias("satisfaction_avg"),
        (pl.col("satisfaction") >= 4).sum().alias("_satisfied"),
        (pl.col("satisfaction") <= 2).sum().alias("_bad"),
        pl.col("applied_on").min().alias("first_applied_on"),
        pl.col("applied_on").max().alias("last_applied_on"),
    )
    counts = facts.group_by(*keys, "item_name", "statutory_days", "promised_days").len()
    out, combos = pl.collect_all([stats, counts])
    for column in ("item_name", "statutory_days", "promised_days"):
        out = out.join(_most_frequent(combos, keys, column), on=keys, how="left", nulls_equal=True)
    out = out.join(departments(), on="item_code", how="left").with_columns(
        pl.col("department").fill_null(UNMAPPED_DEPARTMENT[0]),
        pl.col("department_name_zh").fill_null(UNMAPPED_DEPARTMENT[1]),
        overdue_rate=_ratio("overdue_cases", "assessed_cases"),
        over_statutory_rate=_ratio("over_statutory_cases", "_assessed_s"),
        satisfied_share=_ratio("_satisfied", "rated_cases"),
        bad_review_share=_ratio("_bad", "rated_cases"),
        as_of=pl.lit(as_of, pl.Date),
    )
    return out.select(list(COMMENTS["mart_service_efficiency"]["columns"])).sort(
        "item_code", "channel", nulls_last=True
    )


def _ratio(num: str, den: str) -> pl.Expr:
    return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den))


def business_startup_cases(
    cases: pl.DataFrame | pl.LazyFrame, as_of: dt.date | None = None, items: dict[str, str] | None = None
) -> pl.DataFrame:
    """开办企业, one row per start-up (a 企业设立登记 case whose applicant is an enterprise mention) with its steps. ``items``:
    the service item of each step (default: the deployment's, :func:`models.standardize.codes.startup_items`);
    without them there is no start-up to find."""
    items = startup_items() if items is None else items
    if not items:  # an item code no case has: the same (typed) frame, with no row
        items = dict.fromkeys(STARTUP_STEPS, "")
    if as_of is None:
        as_of = default_as_of(cases)
    facts = case_facts(cases, as_of).filter(pl.col("applicant_key").is_not_null())
    # an enterprise applicant: the case's applicant key comes from its enterprise mention (canonical.service_cases)
    reg = facts.filter(pl.col("item_code") == items["registration"])
    reg = reg.select(
        "case_id",
        "applicant_key",
        "channel",
        "applied_on",
        "completed_on",
        pl.col("processing_days").alias("registration_days"),
    )
    window_end = pl.col("applied_on").dt.offset_by(f"{STARTUP_WINDOW_DAYS}d")

    def step(name: str) -> pl.LazyFrame:
        cands = facts.filter(pl.col("item_code") == items[name]).select(
            "applicant_key",
            pl.col("case_id").alias("_step_case"),
            pl.col("applied_on").alias("_step_applied"),
            pl.col("completed_on").alias("_step_completed"),
        )
        hits = (
            reg.select("case_id", "applicant_key", "applied_on")
            .join(cands, on="applicant_key")
            .filter(pl.col("_step_applied").is_between(pl.col("applied_on"), window_end))
            .sort("case_id", "_step_applied", "_step_case")
            .group_by("case_id")
            .first()
        )
        return hits.select(
            "case_id",
            pl.col("_step_case").alias(f"{name}_case_id"),
            pl.col("_step_completed").alias(f"{name}_completed_on"),
        )

    out = reg.join(step("seal"), on="case_id", how="left").join(step("invoice"), on="case_id", how="left")
    has = {s: pl.col(f"{s}_case_id").is_not_null() for s in ("seal", "invoice")}
    done = {s: pl.col(f"{s}_completed_on").is_not_null() for s in ("seal", "invoice")}
    # the steps found must all be finished for the start-up to be finished
    finished = (
        pl.col("completed_on").is_not_null()
        & (~has["seal"] | done["seal"])
        & (~has["invoice"] | done["invoice"])
    )
    end = pl.max_horizontal("completed_on", "seal_completed_on", "invoice_completed_on")
    out = (
        out.with_columns(
            has_seal=has["seal"],
            has_invoice=has["invoice"],
            complete_chain=has["seal"] & has["invoice"] & finished,
            is_finished=finished,
            finished_on=pl.when(finished).then(end),
        )
        .with_columns(
            startup_days=working_days("applied_on", "finished_on"),
        )
        .with_columns(
            within_target=pl.col("startup_days") <= STARTUP_TARGET_DAYS,
            as_of=pl.lit(as_of, pl.Date),
        )
    )
    return (
        out.rename({"case_id": "registration_case_id"})
        .select(list(COMMENTS["mart_business_startup_cases"]["columns"]))
        .sort("registration_case_id")
        .collect()
    )


def mart_business_startup(
    cases: pl.DataFrame | pl.LazyFrame | None = None,
    as_of: dt.date | None = None,
    *,
    startups: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """开办企业 per month of application: start-ups, how many finished within the 8.5-working-day target, and
    the mean, median and 90th percentile of the start-up time (see the module docstring). Pass the result of
    :func:`business_startup_cases` as ``startups`` to avoid computing it twice."""
    if startups is None:
        if cases is None:
            raise ValueError("mart_business_startup needs the service cases or the start-ups")
        startups = business_startup_cases(cases, as_of)
    finished = pl.col("is_finished")
    days = pl.col("startup_days").filter(finished)
    out = (
        startups.lazy()
        .group_by(pl.col("applied_on").dt.strftime("%Y-%m").alias("month"))
        .agg(
            pl.len().cast(pl.Int64).alias("startups"),
            finished.sum().cast(pl.Int64).alias("finished_startups"),
            pl.col("complete_chain").sum().cast(pl.Int64).alias("complete_chain_startups"),
            pl.col("has_seal").sum().cast(pl.Int64).alias("with_seal_step"),
            pl.col("has_invoice").sum().cast(pl.Int64).alias("with_invoice_step"),
            days.mean().alias("startup_days_mean"),
            _p(days, 0.5).alias("startup_days_median"),
            _p(days, 0.9).alias("startup_days_p90"),
            pl.col("within_target").filter(finished).sum().cast(pl.Int64).alias("within_target_startups"),
            pl.col("registration_days").mean().alias("registration_days_mean"),
            pl.col("as_of").first(),
        )
        .with_columns(
            within_target_share=_ratio("within_target_startups", "finished_startups"),
            target_days=pl.lit(STARTUP_TARGET_DAYS),
        )
    )
    return out.select(list(COMMENTS["mart_business_startup"]["columns"])).sort("month").collect()


def read_service_cases(home: Path | str) -> pl.DataFrame:
    """The canonical cases' columns the marts need, from a home folder's silver."""
    from models.silver import read_silver

    return read_silver(Path(home), "int_service_cases", columns=CASE_COLUMNS)


def build_service_marts(home: Path | str, as_of: dt.date | None = None) -> dict[str, pl.DataFrame]:
    """Every mart of this module from a home folder: ``{table name: frame}`` (names as in :data:`COMMENTS`)."""
    cases = read_service_cases(home)
    if as_of is None:
        as_of = default_as_of(cases)
    startups = business_startup_cases(cases, as_of)
    return {
        "mart_service_efficiency": mart_service_efficiency(cases, as_of),
        "mart_business_startup": mart_business_startup(startups=startups),
        "mart_business_startup_cases": startups,
    }


_LIMITS = "工作日 / working days"
COMMENTS: dict[str, dict] = {
    "mart_service_efficiency": {
        "table": "办件效能：按事项、部门、渠道统计办件量、办理用时（工作日，按官方节假日及调休计算）、超期率与满意度 / "
        "Service-case efficiency per service item, department and channel: volumes, processing time in "
        "official working days, overdue rates against the promised and statutory limits, satisfaction",
        "columns": {
            "item_code": "事项编码 / Service item code",
            "item_name": "事项名称 / Service item name",
            "department": "办理部门（英文键）/ Department deciding the item (key)",
            "department_name_zh": "办理部门 / Department deciding the item",
            "channel": "受理渠道：窗口、网办、移动端 / Channel: window, online, mobile app",
            "statutory_days": f"法定时限（最常见值，{_LIMITS}）/ Statutory limit, most frequent value",
            "promised_days": f"承诺时限（最常见值，{_LIMITS}）/ Promised limit, most frequent value",
            "cases": "办件量 / Cases",
            "finished_cases": "已办结件数（含退件）/ Finished cases, returned ones included",
            "returned_cases": "退件数 / Cases returned without a decision",
            "open_cases": "在办件数 / Cases still open on as_of",
            "processing_days_mean": "平均办理用时（受理次日起至办结日的工作日数）/ Mean processing time: working "
            "days after the acceptance day up to and including the completion day",
            "processing_days_median": "办理用时中位数（工作日）/ Median processing time, working days",
            "processing_days_p90": "办理用时第90百分位（工作日）/ 90th percentile of processing time, working days",
            "processing_days_max": "最长办理用时（工作日）/ Longest processing time, working days",
            "assessed_cases": "可考核件数（有受理日期与承诺时限）/ Cases with an acceptance day and a promised limit",
            "overdue_cases": "超期件数（超承诺时限，含在办超期）/ Cases beyond the promised limit, open ones included",
            "overdue_rate": "超期率（超期件数 / 可考核件数）/ Overdue rate: overdue_cases / assessed_cases",
            "open_overdue_cases": "在办超期件数 / Open cases already beyond the promised limit",
            "over_statutory_cases": "超法定时限件数 / Cases beyond the statutory limit",
            "over_statutory_rate": "超法定时限率 / Share of assessable cases beyond the statutory limit",
            "rated_cases": "评价件数 / Cases with a satisfaction score",
            "satisfaction_avg": "平均满意度（1–5）/ Mean satisfaction score, 1 to 5",
            "satisfied_share": "满意率（4–5分占比）/ Share of scores 4 or 5",
            "bad_review_share": "差评率（1–2分占比）/ Share of scores 1 or 2 (bad reviews)",
            "first_applied_on": "最早申请日期 / First application day",
            "last_applied_on": "最晚申请日期 / Last application day",
            "as_of": "统计截止日期 / Day the figures describe",
        },
    },
    "mart_business_startup": {
        "table": "开办企业时间：按申请月份统计企业开办用时（工作日）与8.5个工作日目标达成情况 / Time to start a business per "
        "month of application against the 8.5-working-day target",
        "columns": {
            "month": "申请月份 / Month of the registration application (YYYY-MM)",
            "startups": "开办企业数（企业设立登记办件）/ Start-ups: business registration cases",
            "finished_startups": "已完成开办数（已找到的环节均已办结）/ Start-ups whose steps found are all finished",
            "complete_chain_startups": "登记、刻章、申领发票三环节齐全并办结数 / Start-ups with registration, seal and "
            "invoice steps all found and finished",
            "with_seal_step": "含公章刻制环节数 / Start-ups with a company seal case",
            "with_invoice_step": "含发票申领环节数 / Start-ups with an invoice case",
            "startup_days_mean": "平均开办用时（申请次日起至最后环节办结日的工作日数）/ Mean start-up time: working days "
            "after the application day up to the last step's completion",
            "startup_days_median": "开办用时中位数（工作日）/ Median start-up time, working days",
            "startup_days_p90": "开办用时第90百分位（工作日）/ 90th percentile of start-up time, working days",
            "within_target_startups": "8.5个工作日内完成数 / Finished start-ups within 8.5 working days",
            "within_target_share": "8.5个工作日内完成率 / Share of finished start-ups within 8.5 working days",
            "registration_days_mean": "设立登记平均办理用时（受理起，工作日）/ Mean processing time of the registration "
            "case itself, from acceptance",
            "target_days": "目标时限（工作日）/ Target, working days",
            "as_of": "统计截止日期 / Day the figures describe",
        },
    },
    "mart_business_startup_cases": {
        "table": "开办企业明细：每个企业设立登记办件及其刻章、发票环节 / One row per start-up (business registration "
        "case) with its seal and invoice steps",
        "columns": {
            "registration_case_id": "设立登记办件编号 / Business registration case id",
            "applicant_key": "申请人标识（有效统一社会信用代码，或比对用名称）/ Applicant: valid USCC, else comparison name",
            "channel": "受理渠道 / Channel of the registration case",
            "applied_on": "申请日期 / Application day of the registration",
            "completed_on": "设立登记办结日期 / Completion day of the registration",
            "registration_days": "设立登记办理用时（受理起，工作日）/ Registration processing time from acceptance",
            "seal_case_id": "公章刻制办件编号 / Company seal case id",
            "seal_completed_on": "公章刻制办结日期 / Completion day of the seal case",
            "invoice_case_id": "发票申领办件编号 / Invoice case id",
            "invoice_completed_on": "发票申领办结日期 / Completion day of the invoice case",
            "has_seal": "是否找到公章刻制环节 / Seal step found",
            "has_invoice": "是否找到发票申领环节 / Invoice step found",
            "complete_chain": "三环节齐全并办结 / All three steps found and finished",
            "is_finished": "已找到的环节均已办结 / Every step found is finished",
            "finished_on": "开办完成日期（已找到环节的最晚办结日）/ Last completion among the steps found",
            "startup_days": "开办用时（申请次日起至完成日的工作日数）/ Working days after the application day up to "
            "finished_on",
            "within_target": "是否在8.5个工作日内 / Within the 8.5-working-day target",
            "as_of": "统计截止日期 / Day the figures describe",
        },
    },
}


# --------------------------------------------------------------------------------------------------------
# in the marts build (models/marts/graph.py): the cases once, as a working table the KPI mart reads too
# --------------------------------------------------------------------------------------------------------
def _read_cases(ctx: MartContext) -> None:
    """The service cases as a working table, from the canonical ``int_service_cases``. A city none of whose specs
    declares ``service_cases`` has it empty: the reason is noted and the service marts are built empty (a page
    says so), never left out of the file."""
    cols = ", ".join(f'"{c}"' for c in CASE_COLUMNS)
    q(ctx.con, f"CREATE OR REPLACE TEMP TABLE _service_cases AS SELECT {cols} FROM lake_int_service_cases")
    if q(ctx.con, "SELECT count(*) FROM _service_cases")[0][0] == 0:
        ctx.notes["_service_cases"] = (
            "no service cases in the lake (silver/int_service_cases is empty: no staging spec declares "
            "service_cases, or its tables have no rows)"
        )


def _build(ctx: MartContext) -> dict[str, int]:
    cases = ctx.con.sql("SELECT * FROM _service_cases").pl()
    items = startup_items()
    startups = business_startup_cases(cases, ctx.as_of, items)
    if not items:
        ctx.notes["mart_business_startup"] = (
            "no crosswalks/service_startup_steps.csv in the deployment: which service items start a business "
            "is not declared, so the start-up marts are empty"
        )
    efficiency = mart_service_efficiency(cases, ctx.as_of)
    if unmapped := unmapped_items(efficiency):
        ctx.notes["mart_service_efficiency.department"] = (
            f"service items without a department in the deployment's crosswalks/service_item_departments.csv "
            f"(shown as {UNMAPPED_DEPARTMENT[0]!r}): {', '.join(unmapped)}"
        )
    frames = {
        "mart_service_efficiency": efficiency,
        "mart_business_startup": mart_business_startup(startups=startups),
        "mart_business_startup_cases": startups,
    }
    return {name: frame_table(ctx.con, name, frame) for name, frame in frames.items()}


MARTS = (
    mart(
        "service_cases",
        ("_service_cases",),
        ("int_service_cases",),
        lambda ctx: _read_cases(ctx),
    ),
    mart(
        "service_efficiency", tuple(COMMENTS), ("_service_cases",), lambda ctx: _build(ctx), comments=COMMENTS
    ),
)
