"""经营异常分布: where and in which industries enterprises are put on the abnormal-operations list, month by
month, and why (mart_abnormal_distribution)."""

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

PAGE_ID = "abnormal"
PATH = "/abnormal"
TITLE = "经营异常分布"
WINDOWS = ((12, "近12个月"), (24, "近24个月"), (60, "近5年"), (0, "全部"))


#: the columns of the per-district totals, as shown and exported
DISTRICT_COLUMNS = (
    ("district_name", "区县"),
    ("division_code", "区划代码"),
    ("listings", "列入次数"),
    ("still_listed", "仍在名录中"),
)


def _months(value: Any) -> int:
    try:
        months = int(value)
    except (TypeError, ValueError):
        return 24
    return months if 0 <= months <= 1200 else 24


def export_by_district(
    marts: ScopedMarts, params: dict[str, Any]
) -> tuple[pd.DataFrame, tuple[tuple[str, str], ...]]:
    """导出: listings per district over the window the page shows."""
    span = _range(marts, _months(params.get("months")))
    if span is None:
        return pd.DataFrame(columns=[c for c, _ in DISTRICT_COLUMNS]), DISTRICT_COLUMNS
    return marts.frame("abnormal_by_district", from_month=span[0], to_month=span[1]), DISTRICT_COLUMNS


def _range(marts: ScopedMarts, months: int) -> tuple[dt.date, dt.date] | None:
    r = marts.frame("abnormal_months").iloc[0]
    if ui.is_missing(r["last_month"]):
        return None
    last = pd.Timestamp(r["last_month"]).date()
    first = pd.Timestamp(r["first_month"]).date()
    if months:
        start = (pd.Timestamp(last) - pd.DateOffset(months=months - 1)).date()
        first = max(first, start)
    return first, last


def _content(marts: ScopedMarts, district: str | None, months: int) -> list[Any]:
    span = _range(marts, months)
    if span is None:
        return [ui.notice("暂无经营异常名录数据")]
    first, last = span
    out: list[Any] = [html.Div(f"列入月份 {first:%Y-%m} 至 {last:%Y-%m}", className="subtitle")]
    monthly = marts.frame("abnormal_by_month_district", from_month=first, to_month=last)
    if district:
        code = marts.value("abnormal_division_code", district=district)
        detail = marts.frame(
            "district_abnormal_distribution", division_code=code, from_month=first, to_month=last
        )
        fig = go.Figure()
        for i, (sec, part) in enumerate(detail.groupby("industry_section", dropna=False)):
            label = (
                f"{sec} {part['industry_section_name'].iloc[0] or ''}".strip()
                if isinstance(sec, str)
                else "未知"
            )
            fig.add_bar(
                x=part["month"], y=part["listings"], name=ui.plot_text(label), marker_color=ui.PALETTE[i % 10]
            )
        fig.update_layout(barmode="stack", yaxis_title="列入次数")
        out.append(
            ui.section(
                f"{district}：按月、按行业门类",
                ui.graph("abnormal-trend", ui.figure(fig, height=340, dates=True)),
            )
        )
    else:
        top = monthly.groupby("district_name")["listings"].sum().sort_values(ascending=False)
        fig = go.Figure()
        for i, name in enumerate(top.index):
            part = monthly[monthly["district_name"] == name]
            fig.add_scatter(
                x=part["month"],
                y=part["listings"],
                mode="lines+markers",
                name=ui.plot_text(name or "未知区县"),
                line={"color": ui.PALETTE[i % 10]},
                marker={"size": 4},
            )
        fig.update_layout(yaxis_title="列入次数")
        out.append(
            ui.section(
                "各区县按月列入次数", ui.graph("abnormal-trend", ui.figure(fig, height=340, dates=True))
            )
        )
    grid = marts.frame("abnormal_by_district_section", from_month=first, to_month=last)
    if district:
        grid = grid[grid["district_name"] == district]
    pivot = grid.pivot_table(
        index="district_name", columns="industry_section", values="listings", aggfunc="sum", fill_value=0
    )
    heat = go.Figure(
        go.Heatmap(
            z=pivot.values,
            x=ui.plot_texts(pivot.columns),
            y=ui.plot_texts(pivot.index),
            colorscale="OrRd",
            hovertemplate="%{y} 门类%{x}：%{z} 次<extra></extra>",
            colorbar={"title": "次数"},
        )
    )
    reasons = marts.frame("abnormal_by_reason", from_month=first, to_month=last)
    pie = go.Figure(
        go.Pie(
            labels=ui.plot_texts(reasons["reason"].fillna("未注明")),
            values=reasons["listings"],
            hole=0.45,
            sort=False,
        )
    )
    by_district = marts.frame("abnormal_by_district", from_month=first, to_month=last)
    out += [
        html.Div(
            [
                ui.section(
                    "区县 × 行业门类",
                    ui.graph("abnormal-heatmap", ui.figure(heat, height=360, legend=False)),
                    class_name="section wide",
                ),
                ui.section(
                    "列入原因",
                    ui.graph("abnormal-reasons", ui.figure(pie, height=360)),
                    class_name="section narrow",
                ),
            ],
            className="row",
        ),
        ui.section(
            "各区县合计",
            ui.table(
                by_district,
                DISTRICT_COLUMNS,
                table_id="abnormal-districts",
                export=("abnormal_by_district", {"months": months}),
            ),
        ),
    ]
    return out


def layout(marts: ScopedMarts, query: dict[str, str]) -> html.Div:
    if not marts.has("mart_abnormal_distribution"):
        return ui.page(PAGE_ID, TITLE, ui.notice("集市中没有 mart_abnormal_distribution"))
    districts = marts.frame("abnormal_districts")["district_name"].tolist()
    district = query.get("district")
    months = _months(query.get("months", 24))
    filters = html.Div(
        [
            dcc.Dropdown(
                id="abn-district",
                options=ui.options((d, d) for d in districts),
                value=district,
                placeholder="全部区县",
                className="filter",
            ),
            dcc.Dropdown(
                id="abn-months",
                options=ui.options(WINDOWS),
                value=months,
                clearable=False,
                className="filter",
            ),
        ],
        className="filters",
    )
    return ui.page(
        PAGE_ID,
        TITLE,
        filters,
        html.Div(_content(marts, district, months), id="abn-content"),
        subtitle="经营异常名录列入情况：按区县、行业门类与时间",
    )


def register(app: dash.Dash, marts: Callable[[], ScopedMarts]) -> None:
    @app.callback(
        Output("abn-content", "children"),
        Input("abn-district", "value"),
        Input("abn-months", "value"),
        prevent_initial_call=True,
    )
    def refilter(district: str | None, months: int | None) -> list[Any]:
        return _content(marts(), district or None, _months(months if months is not None else 24))
