"""营商环境 / 办件效能: how long the service centre takes against its promised and statutory limits, which items
run overdue, and how long it takes to start a business against the 8.5-working-day target
(mart_service_efficiency, mart_business_startup; every rule is models/marts/service.py's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dash
import plotly.graph_objects as go
from dash import html

from dashboard import ui
from dashboard.data import ScopedMarts

PAGE_ID = "service"
PATH = "/service"
TITLE = "营商环境"
TOP_ITEMS = 15


def _efficiency(marts: ScopedMarts) -> list[Any]:
    items = marts.frame("service_items")
    if items.empty:
        return [ui.notice("暂无办件数据")]
    items["overdue_rate"] = items["overdue_cases"] / items["assessed_cases"].where(
        items["assessed_cases"] > 0
    )
    total_assessed = items["assessed_cases"].sum()
    cards = [
        ui.card("办件量", ui.num(items["cases"].sum()), f"统计截止 {ui.day(items['as_of'].max())}"),
        ui.card("在办件", ui.num(items["open_cases"].sum())),
        ui.card(
            "超期件（超承诺时限）",
            ui.num(items["overdue_cases"].sum()),
            "超期率 " + ui.pct(items["overdue_cases"].sum() / total_assessed if total_assessed else None),
        ),
        ui.card(
            "在办超期件",
            ui.num(items["open_overdue_cases"].sum()),
            None,
            "up" if items["open_overdue_cases"].sum() else "flat",
        ),
        ui.card("超法定时限件", ui.num(items["over_statutory_cases"].sum())),
    ]
    top = items.head(TOP_ITEMS).iloc[::-1]
    labels = ui.plot_texts(top["item_name"].fillna(top["item_code"]))
    fig = go.Figure()
    fig.add_bar(
        y=labels, x=top["processing_days_mean"], orientation="h", name="平均办理用时", marker_color="#1f5fa8"
    )
    fig.add_bar(
        y=labels,
        x=top["processing_days_p90_max"],
        orientation="h",
        name="第90百分位（最长渠道）",
        marker_color="#9ec5ea",
    )
    fig.add_scatter(
        y=labels,
        x=top["promised_days"],
        mode="markers",
        name="承诺时限",
        marker={"symbol": "line-ns-open", "size": 16, "line": {"width": 3}, "color": "#d9822b"},
    )
    fig.add_scatter(
        y=labels,
        x=top["statutory_days"],
        mode="markers",
        name="法定时限",
        marker={"symbol": "line-ns-open", "size": 16, "line": {"width": 3}, "color": "#d32f2f"},
    )
    fig.update_layout(barmode="group", xaxis_title="工作日")
    overdue = items[items["overdue_cases"] > 0].sort_values("overdue_rate", ascending=False)
    return [
        html.Div(cards, className="cards"),
        ui.section(
            f"办件量前{TOP_ITEMS}的事项：办理用时与时限（工作日，按官方节假日和调休计算）",
            ui.graph("service-times", ui.figure(fig, height=80 + 30 * len(top))),
        ),
        ui.section(
            "超期事项（按超期率）",
            ui.table(
                overdue,
                [
                    ("item_name", "事项"),
                    ("department", "办理部门"),
                    ("cases", "办件量"),
                    ("assessed_cases", "可考核件"),
                    ("overdue_cases", "超期件"),
                    ("overdue_rate", "超期率"),
                    ("open_overdue_cases", "在办超期"),
                    ("over_statutory_cases", "超法定时限"),
                    ("promised_days", "承诺时限"),
                    ("statutory_days", "法定时限"),
                    ("satisfaction_avg", "满意度"),
                ],
                formats={"overdue_rate": ui.pct, "satisfaction_avg": lambda v: ui.num(v, 2)},
                table_id="service-overdue",
                max_rows=50,
            ),
        ),
    ]


def _startup(marts: ScopedMarts) -> list[Any]:
    start = marts.frame("business_startup")
    if start.empty:
        return [ui.notice("暂无开办企业数据")]
    start = start.tail(24)
    target = float(start["target_days"].dropna().iloc[-1]) if start["target_days"].notna().any() else 8.5
    fig = go.Figure()
    fig.add_scatter(
        x=start["month"],
        y=start["startup_days_p90"],
        mode="lines",
        line={"width": 0},
        showlegend=False,
        hoverinfo="skip",
    )
    fig.add_scatter(
        x=start["month"],
        y=start["startup_days_median"],
        mode="lines+markers",
        name="中位数",
        line={"color": "#1f5fa8"},
    )
    fig.add_scatter(
        x=start["month"],
        y=start["startup_days_p90"],
        mode="lines",
        name="第90百分位",
        line={"color": "#9ec5ea", "dash": "dot"},
    )
    fig.add_scatter(
        x=start["month"], y=start["startup_days_mean"], mode="lines", name="平均", line={"color": "#2e9e6a"}
    )
    fig.add_hline(
        y=target, line_color="#d32f2f", line_dash="dash", annotation_text=f"目标 {target:g} 个工作日"
    )
    fig.update_layout(yaxis_title="开办用时（工作日）", xaxis_type="category")
    last = start.iloc[-1]
    cards = [
        ui.card(f"{last['month']} 开办企业", ui.num(last["startups"])),
        ui.card("开办用时中位数", f"{ui.num(last['startup_days_median'], 1)} 个工作日"),
        ui.card(f"{target:g}个工作日内完成率", ui.pct(last["within_target_share"])),
        ui.card("三环节齐全", ui.num(last["complete_chain_startups"]), "登记、刻章、申领发票"),
    ]
    return [html.Div(cards, className="cards"), ui.graph("service-startup", ui.figure(fig, height=320))]


def layout(marts: ScopedMarts, query: dict[str, str]) -> html.Div:
    blocks: list[Any] = []
    if marts.has("mart_service_efficiency"):
        blocks.append(ui.section("办件效能", *_efficiency(marts)))
    else:
        blocks.append(ui.notice("集市中没有 mart_service_efficiency"))
    if marts.has("mart_business_startup"):
        blocks.append(ui.section("开办企业时间（按申请月份）", *_startup(marts)))
    else:
        blocks.append(ui.notice("集市中没有 mart_business_startup"))
    return ui.page(
        PAGE_ID,
        "营商环境 · 办件效能",
        *blocks,
        subtitle="办理用时从受理次日起算至办结日（工作日）；超期以承诺时限衡量，在办件也计入",
    )


def register(app: dash.Dash, marts: Callable[[], ScopedMarts]) -> None:
    """No callbacks."""
