"""趋势预测: each daily indicator with its actual counts, the one-step-ahead forecast band of the recent past, the
30-day forecast, and the days whose count fell outside the band (mart_kpi_daily: models/marts/kpi.py)."""

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

PAGE_ID = "forecast"
PATH = "/forecast"
TITLE = "趋势预测"
SHOWN_DAYS = 120


def _chart(marts: ScopedMarts, indicator: str, name: str) -> go.Figure:
    last = marts.value("kpi_last_day")
    since = (
        (pd.Timestamp(last) - pd.Timedelta(days=SHOWN_DAYS)).date()
        if not ui.is_missing(last)
        else dt.date(2000, 1, 1)
    )
    s = marts.frame("kpi_series", indicator=indicator, since=since)
    band = s.dropna(subset=["lower", "upper"])
    fig = go.Figure()
    fig.add_scatter(
        x=band["day"], y=band["upper"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"
    )
    fig.add_scatter(
        x=band["day"],
        y=band["lower"],
        mode="lines",
        line={"width": 0},
        fill="tonexty",
        fillcolor="rgba(31,95,168,0.15)",
        name="95% 预测区间",
    )
    fig.add_scatter(
        x=s["day"], y=s["forecast"], mode="lines", name="预测", line={"color": "#1f5fa8", "dash": "dot"}
    )
    past = s[~s["is_forecast"].astype(bool)]
    fig.add_scatter(
        x=past["day"],
        y=past["actual"],
        mode="lines+markers",
        name="实际",
        line={"color": "#1d2733", "width": 1.5},
        marker={"size": 4},
    )
    alerts = past[past["alert"].fillna(False).astype(bool)]
    if not alerts.empty:
        fig.add_scatter(
            x=alerts["day"],
            y=alerts["actual"],
            mode="markers",
            name="预警（超出区间）",
            marker={"color": "#d32f2f", "size": 10, "symbol": "diamond"},
        )
    if not ui.is_missing(last):
        fig.add_vline(x=pd.Timestamp(last).timestamp() * 1000, line_dash="dash", line_color="#9aa7b5")
    fig.update_layout(yaxis_title=ui.plot_text(name), hovermode="x unified")
    return ui.figure(fig, height=380, dates=True)


def layout(marts: ScopedMarts, query: dict[str, str]) -> html.Div:
    if not marts.has("mart_kpi_daily"):
        return ui.page(PAGE_ID, TITLE, ui.notice("集市中没有 mart_kpi_daily"))
    indicators = marts.frame("kpi_indicators")
    if indicators.empty:
        return ui.page(PAGE_ID, TITLE, ui.notice("暂无指标数据"))
    names = dict(zip(indicators["indicator"], indicators["indicator_name_zh"], strict=True))
    chosen = query.get("indicator")
    if chosen not in names:
        chosen = "service_cases" if "service_cases" in names else indicators["indicator"].iloc[0]
    last = marts.value("kpi_last_day")
    since = (pd.Timestamp(last) - pd.Timedelta(days=13)).date()
    alerts = marts.frame("kpi_alerts", since=since, limit=100)
    alerts["band"] = [
        f"{ui.num(lo, 0)} – {ui.num(hi, 0)}" for lo, hi in zip(alerts["lower"], alerts["upper"], strict=True)
    ]
    picker = dcc.Dropdown(
        id="fc-indicator",
        options=ui.options(names.items()),
        value=chosen,
        clearable=False,
        className="filter wide-filter",
    )
    return ui.page(
        PAGE_ID,
        TITLE,
        html.Div([picker], className="filters"),
        html.Div(ui.graph("forecast-chart", _chart(marts, chosen, names[chosen])), id="fc-box"),
        ui.section(
            f"近14日预警（实际值超出一步预测的95%区间，{ui.day(since)} 起）",
            ui.table(
                alerts,
                [
                    ("day", "日期"),
                    ("indicator_name_zh", "指标"),
                    ("actual", "实际"),
                    ("forecast", "预测"),
                    ("band", "95%区间"),
                ],
                formats={"day": ui.day, "forecast": lambda v: ui.num(v, 1)},
                table_id="forecast-alerts",
            ),
        ),
        subtitle="负二项回归（星期、法定节假日、调休、趋势）；阴影为95%预测区间，竖线右侧为未来30天",
    )


def register(app: dash.Dash, marts: Callable[[], ScopedMarts]) -> None:
    @app.callback(Output("fc-box", "children"), Input("fc-indicator", "value"), prevent_initial_call=True)
    def rechart(indicator: str) -> Any:
        names = dict(marts().frame("kpi_indicators").itertuples(index=False, name=None))
        return ui.graph("forecast-chart", _chart(marts(), indicator, names.get(indicator, indicator)))
