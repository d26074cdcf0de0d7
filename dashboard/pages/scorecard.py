"""报送考核: the department scorecard of the latest month and each department's trend (mart_department_scorecard;
the score and grades are quality/scorecard.py's, copied by the marts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import dash
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from dashboard import ui
from dashboard.data import ScopedMarts

PAGE_ID = "scorecard"
PATH = "/scorecard"
TITLE = "报送考核"
METRICS = (
    ("score", "得分"),
    ("timeliness_rate", "及时率"),
    ("completeness_rate", "完整率"),
    ("validity_rate", "标识有效率"),
    ("quarantine_rate", "隔离率"),
)


def _trend(marts: ScopedMarts, grain: str, metric: str) -> go.Figure:
    last = marts.value("scorecard_last_period", grain=grain)
    since = (
        (pd.Timestamp(last) - pd.Timedelta(days=90 if grain == "day" else 730)).date()
        if not ui.is_missing(last)
        else dt.date(2000, 1, 1)
    )
    trend = marts.frame("scorecard_trend", grain=grain, since=since)
    names = marts.department_names()
    fig = go.Figure()
    for i, (dept, part) in enumerate(trend.groupby("department")):
        fig.add_scatter(
            x=part["period"],
            y=part[metric],
            mode="lines+markers",
            name=ui.plot_text(names.get(dept, dept)),
            line={"color": ui.PALETTE[i % 10]},
            marker={"size": 4},
        )
    label = dict(METRICS)[metric]
    if metric == "score":
        for y, grade in ((90, "优"), (75, "良"), (60, "中")):
            fig.add_hline(
                y=y, line_dash="dot", line_color="#9aa7b5", annotation_text=grade, annotation_position="right"
            )
    else:
        fig.update_yaxes(tickformat=".0%")
    fig.update_layout(yaxis_title=label)
    return ui.figure(fig, height=360, dates=True)


def layout(marts: ScopedMarts, query: dict[str, str]) -> html.Div:
    if not marts.has("mart_department_scorecard"):
        return ui.page(PAGE_ID, TITLE, ui.notice("集市中没有 mart_department_scorecard"))
    latest = marts.frame("scorecard_latest")
    names = marts.department_names()
    latest["department_zh"] = latest["department"].map(lambda d: names.get(d, d))
    period = ui.day(latest["period"].iloc[0])[:7] if not latest.empty else "—"
    grain = query.get("grain", "day")
    metric = query.get("metric", "score")
    controls = html.Div(
        [
            dcc.Dropdown(
                id="sc-grain",
                options=ui.options((("day", "按日（近90日）"), ("month", "按月（近两年）"))),
                value=grain,
                clearable=False,
                className="filter",
            ),
            dcc.Dropdown(
                id="sc-metric", options=ui.options(METRICS), value=metric, clearable=False, className="filter"
            ),
        ],
        className="filters",
    )
    table = ui.table(
        latest,
        [
            ("department_zh", "部门"),
            ("department", "department"),
            ("records_received", "报送记录数"),
            ("timeliness_rate", "及时率"),
            ("completeness_rate", "完整率"),
            ("validity_rate", "标识有效率"),
            ("quarantine_rate", "隔离率"),
            ("score", "得分"),
            ("grade", "等级"),
            ("days", "覆盖天数"),
        ],
        formats={
            "records_received": ui.num,
            "timeliness_rate": ui.pct,
            "completeness_rate": ui.pct,
            "validity_rate": ui.pct,
            "quarantine_rate": ui.pct,
            "score": lambda v: ui.num(v, 1),
        },
        table_id="scorecard-table",
        row_class=lambda r: f"grade-{r['grade']}",
    )
    bars = go.Figure(
        go.Bar(
            x=ui.plot_texts(latest["department_zh"]),
            y=latest["score"],
            text=ui.plot_texts(latest["grade"]),
            marker_color=[
                {"优": "#2e9e6a", "良": "#1f5fa8", "中": "#f4b400"}.get(g, "#d32f2f") for g in latest["grade"]
            ],
        )
    )
    bars.update_layout(yaxis_title="得分", yaxis_range=[0, 100])
    return ui.page(
        PAGE_ID,
        TITLE,
        html.Div(
            [
                ui.section(f"{period} 月度考核", table, class_name="section wide"),
                ui.section(
                    "月度得分",
                    ui.graph("scorecard-bars", ui.figure(bars, height=300, legend=False)),
                    class_name="section narrow",
                ),
            ],
            className="row",
        ),
        ui.section(
            "各部门趋势",
            controls,
            html.Div(ui.graph("scorecard-trend", _trend(marts, grain, metric)), id="sc-trend-box"),
        ),
        subtitle="得分 = 100×(0.3×及时率 + 0.3×完整率 + 0.2×标识有效率 + 0.2×(1−隔离率))；优≥90，良≥75，中≥60",
    )


def register(app: dash.Dash, marts: Callable[[], ScopedMarts]) -> None:
    @app.callback(
        Output("sc-trend-box", "children"),
        Input("sc-grain", "value"),
        Input("sc-metric", "value"),
        prevent_initial_call=True,
    )
    def retrend(grain: str, metric: str) -> Any:
        return ui.graph("scorecard-trend", _trend(marts(), grain or "day", metric or "score"))
