"""总览: what a leader reads first each morning: yesterday's key indicators and their change, the new credit
warnings, and whether the data is fresh (when each department last delivered, when the lake was built)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import dash
import pandas as pd
import plotly.graph_objects as go
from dash import html

from dashboard import ui
from dashboard.data import ScopedMarts

PAGE_ID = "overview"
PATH = "/"
TITLE = "总览"
#: the indicators shown as cards, in this order (keys of mart_kpi_daily); the others stay on 趋势预测
CARD_INDICATORS = (
    "new_registrations",
    "deregistrations",
    "new_abnormal_listings",
    "admin_penalties",
    "court_cases_filed",
    "new_judgment_defaulters",
    "service_cases",
    "overdue_service_cases",
)


def _kpi_cards(marts: ScopedMarts) -> list[Any]:
    if not marts.has("mart_kpi_daily"):
        return [ui.notice("集市中没有每日指标表 mart_kpi_daily")]
    kpi = marts.frame("kpi_latest")
    if kpi.empty:
        return [ui.notice("暂无每日指标")]
    shown = kpi.set_index("indicator")
    order = [k for k in CARD_INDICATORS if k in shown.index] or list(shown.index[:8])
    cards = []
    for key in order:
        r = shown.loc[key]
        delta, cls = ui.change(r["actual"], r["previous_actual"])
        note = f"较前日 {delta}；近7日均值 {ui.num(r['week_mean'], 1)}"
        if not ui.is_missing(r["alert"]) and bool(r["alert"]):
            note += " · ⚠ 超出预测区间"
            cls += " alert"
        cards.append(
            ui.card(r["indicator_name_zh"], ui.num(r["actual"]), note, cls, href=f"/forecast?indicator={key}")
        )
    day = ui.day(kpi["day"].iloc[0])
    return [
        html.Div(f"统计日 {day}（北京时间自然日）", className="subtitle"),
        html.Div(cards, className="cards"),
    ]


def _warnings(marts: ScopedMarts) -> list[Any]:
    if not marts.has("mart_risk_warnings"):
        return [ui.notice("集市中没有风险预警表 mart_risk_warnings")]
    as_of = marts.value("warnings_as_of")
    if ui.is_missing(as_of):
        return [ui.notice("暂无风险预警")]
    as_of = pd.Timestamp(as_of).date()
    since = as_of - dt.timedelta(days=29)
    by_day = marts.frame("warnings_by_day", since=since)
    fig = go.Figure()
    for level in ("极高", "高", "中", "低"):
        part = by_day[by_day["to_level"] == level]
        if not part.empty:
            fig.add_bar(
                x=part["warned_on"],
                y=part["warnings"],
                name=ui.plot_text(level),
                marker_color=ui.LEVEL_COLORS[level],
            )
    fig.update_layout(barmode="stack", xaxis_title=None, yaxis_title="预警数")
    recent = marts.frame("top_warnings", since=as_of - dt.timedelta(days=6), limit=10)
    today = int(by_day.loc[pd.to_datetime(by_day["warned_on"]).dt.date == as_of, "warnings"].sum())
    week = int(
        by_day.loc[
            pd.to_datetime(by_day["warned_on"]).dt.date > as_of - dt.timedelta(days=7), "warnings"
        ].sum()
    )
    return [
        html.Div(
            [
                ui.card("今日新增预警", ui.num(today), f"统计日 {ui.day(as_of)}", href="/risk"),
                ui.card("近7日新增预警", ui.num(week), "风险等级升高的企业", href="/risk"),
            ],
            className="cards",
        ),
        ui.graph(
            "overview-warnings", ui.figure(fig, height=260, title="近30日新增预警（按新等级）", dates=True)
        ),
        ui.table(
            recent,
            [
                ("warned_on", "预警日期"),
                ("name", "企业名称"),
                ("uscc", "统一社会信用代码"),
                ("district_name", "区县"),
                ("from_level", "原等级"),
                ("to_level", "新等级"),
                ("score", "风险分"),
                ("reasons", "原因"),
            ],
            formats={"warned_on": ui.day},
            links={"name": lambda r: ui.entity_href(r["entity_id"])},
            table_id="overview-warnings-table",
        ),
    ]


def _freshness(marts: ScopedMarts) -> list[Any]:
    out: list[Any] = []
    if marts.has("meta_build"):
        info = marts.frame("build_info").iloc[0]
        out.append(
            html.Div(
                [
                    ui.card("集市构建时间", ui.when(info["built_at"])),
                    ui.card(
                        "湖最近提交",
                        ui.when(info["lake_committed_at"]),
                        f"读取湖表 {ui.num(info['lake_tables'])} 张",
                    ),
                    ui.card("统计截止日", ui.day(info["as_of_date"])),
                ],
                className="cards",
            )
        )
    if marts.has("mart_department_scorecard"):
        depts = marts.frame("department_last_delivery")
        names = marts.department_names()
        depts["department_zh"] = depts["department"].map(lambda d: names.get(d, d))
        out.append(
            ui.table(
                depts,
                [
                    ("department_zh", "部门"),
                    ("department", "department"),
                    ("last_delivered_on", "最近报送日"),
                    ("score", "当日考核得分"),
                    ("grade", "等级"),
                ],
                formats={"last_delivered_on": ui.day, "score": lambda v: ui.num(v, 1)},
                table_id="freshness-table",
            )
        )
    return out or [ui.notice("暂无构建信息")]


def layout(marts: ScopedMarts, query: dict[str, str]) -> html.Div:
    return ui.page(
        PAGE_ID,
        "总览",
        ui.section("关键指标", *_kpi_cards(marts)),
        html.Div(
            [
                ui.section("新增信用风险预警", *_warnings(marts), class_name="section wide"),
                ui.section("数据新鲜度", *_freshness(marts), class_name="section narrow"),
            ],
            className="row",
        ),
        subtitle="每日关键指标、新增预警与各部门数据报送情况",
    )


def register(app: dash.Dash, marts: Callable[[], ScopedMarts]) -> None:
    """No callbacks: the page is rendered in one round trip."""
