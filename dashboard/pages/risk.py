"""信用风险预警: the enterprises whose credit risk level rose, with the reasons, filtered by district, industry
section and level, and how the city's enterprises are distributed over the levels (score and reasons are the
mart's explainable score, :data:`models.marts.contract.CREDIT_RISK`)."""

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

PAGE_ID = "risk"
PATH = "/risk"
TITLE = "信用风险预警"
LEVELS = ("极高", "高", "中", "低")
WINDOWS = ((7, "近7日"), (30, "近30日"), (90, "近90日"), (365, "近一年"))


#: the columns of the warnings list, as shown and exported
WARNING_COLUMNS = (
    ("warned_on", "预警日期"),
    ("name", "企业名称"),
    ("uscc", "统一社会信用代码"),
    ("district_name", "区县"),
    ("industry_section", "行业门类"),
    ("from_level", "原等级"),
    ("to_level", "新等级"),
    ("score", "风险分"),
    ("reasons", "预警原因"),
)
EXPORT_LIMIT = 50_000


def _days(value: Any) -> int:
    try:
        return max(1, min(int(value), 3660))
    except (TypeError, ValueError):
        return 30


def export_warnings(
    marts: ScopedMarts, params: dict[str, Any]
) -> tuple[pd.DataFrame, tuple[tuple[str, str], ...]]:
    """导出: the current warnings of the filters (the list the page shows, without its 500-row cut)."""
    as_of = _as_of(marts)
    if as_of is None:
        return pd.DataFrame(columns=[c for c, _ in WARNING_COLUMNS]), WARNING_COLUMNS
    since = as_of - dt.timedelta(days=_days(params.get("days")) - 1)
    frame = marts.frame(
        "warnings_filtered",
        since=since,
        district=params.get("district") or None,
        section=params.get("section") or None,
        level=params.get("level") or None,
        limit=EXPORT_LIMIT,
    )
    return frame, WARNING_COLUMNS


def _as_of(marts: ScopedMarts) -> dt.date | None:
    d = marts.value("risk_as_of")
    return None if ui.is_missing(d) else pd.Timestamp(d).date()


def _content(
    marts: ScopedMarts, district: str | None, section: str | None, level: str | None, days: int
) -> list[Any]:
    as_of = _as_of(marts)
    if as_of is None:
        return [ui.notice("暂无信用风险数据")]
    since = as_of - dt.timedelta(days=days - 1)
    warnings = marts.frame(
        "warnings_filtered", since=since, district=district, section=section, level=level, limit=500
    )
    dist = marts.frame("risk_distribution", district=district, section=section, level=level)
    by_district = (
        dist.groupby(["district_name", "risk_level"], dropna=False)["enterprises"].sum().reset_index()
    )
    fig_d = go.Figure()
    for lv in reversed(LEVELS):
        part = by_district[by_district["risk_level"] == lv]
        if not part.empty:
            fig_d.add_bar(
                x=ui.plot_texts(part["district_name"].fillna("未知区县")),
                y=part["enterprises"],
                name=lv,
                marker_color=ui.LEVEL_COLORS[lv],
            )
    fig_d.update_layout(barmode="stack", yaxis_title="企业数")
    high = dist[dist["risk_level"].isin(["高", "极高"])]
    by_section = high.groupby("industry_section", dropna=False)["enterprises"].sum().reset_index()
    by_section = by_section.sort_values("enterprises", ascending=True)
    names = (
        dict(marts.frame("sections").itertuples(index=False, name=None))
        if marts.has("dim_industry_section")
        else {}
    )
    labels = [
        f"{sec} {names.get(sec, '')}".strip() if isinstance(sec, str) else "未知"
        for sec in by_section["industry_section"]
    ]
    fig_s = go.Figure(
        go.Bar(
            x=by_section["enterprises"],
            y=ui.plot_texts(labels),
            orientation="h",
            marker_color=ui.LEVEL_COLORS["高"],
            name="高/极高",
        )
    )
    fig_s.update_layout(xaxis_title="高、极高风险企业数")
    totals = dist.groupby("risk_level")["enterprises"].sum()
    cards = [ui.card(f"{lv}风险企业", ui.num(totals.get(lv, 0))) for lv in LEVELS]
    cards.append(
        ui.card(
            "预警（当前仍有效）",
            ui.num(len(warnings)) + ("+" if len(warnings) >= 500 else ""),
            f"{ui.day(since)} 至 {ui.day(as_of)}",
        )
    )
    return [
        html.Div(cards, className="cards"),
        html.Div(
            [
                ui.section(
                    "风险等级分布（按区县）",
                    ui.graph("risk-by-district", ui.figure(fig_d, height=320))
                    if not by_district.empty
                    else ui.notice("所选范围内暂无企业"),
                    class_name="section wide",
                ),
                # an empty chart looks broken: say there is nothing to show instead
                ui.section(
                    "高风险企业（按行业门类）",
                    ui.graph("risk-by-section", ui.figure(fig_s, height=320, legend=False))
                    if not by_section.empty
                    else ui.notice("所选范围内暂无高、极高风险企业"),
                    class_name="section narrow",
                ),
            ],
            className="row",
        ),
        ui.section(
            "预警清单（等级从高到低，最新在前）",
            ui.table(
                warnings,
                WARNING_COLUMNS,
                export=(
                    "risk_warnings",
                    {"days": days, "district": district, "section": section, "level": level},
                ),
                formats={"warned_on": ui.day},
                links={"name": lambda r: ui.entity_href(r["entity_id"])},
                table_id="risk-warnings",
                max_rows=200,
                row_class=lambda r: f"level-{r['to_level']}",
            ),
        ),
    ]


def layout(marts: ScopedMarts, query: dict[str, str]) -> html.Div:
    if not marts.has("mart_credit_risk", "mart_risk_warnings"):
        return ui.page(
            PAGE_ID, TITLE, ui.notice("集市中没有信用风险表（mart_credit_risk、mart_risk_warnings）")
        )
    districts = marts.frame("districts")["district_name"].tolist()
    sections = (
        marts.frame("sections")
        if marts.has("dim_industry_section")
        else pd.DataFrame(columns=["industry_section", "industry_section_name"])
    )
    district, section, level = query.get("district"), query.get("section"), query.get("level")
    days = _days(query.get("days", 30))
    filters = html.Div(
        [
            dcc.Dropdown(
                id="risk-district",
                options=ui.options((d, d) for d in districts),
                value=district,
                placeholder="全部区县",
                className="filter",
            ),
            dcc.Dropdown(
                id="risk-section",
                value=section,
                placeholder="全部行业门类",
                className="filter",
                options=ui.options(
                    (r.industry_section, f"{r.industry_section} {r.industry_section_name}")
                    for r in sections.itertuples()
                ),
            ),
            dcc.Dropdown(
                id="risk-level",
                options=ui.options((lv, lv) for lv in LEVELS),
                value=level,
                placeholder="全部等级",
                className="filter",
            ),
            dcc.Dropdown(
                id="risk-days", options=ui.options(WINDOWS), value=days, clearable=False, className="filter"
            ),
        ],
        className="filters",
    )
    return ui.page(
        PAGE_ID,
        TITLE,
        filters,
        html.Div(_content(marts, district, section, level, days), id="risk-content"),
        subtitle="风险等级升高即预警；风险分由各因子分值相加，原因按分值排序",
    )


def register(app: dash.Dash, marts: Callable[[], ScopedMarts]) -> None:
    @app.callback(
        Output("risk-content", "children"),
        Input("risk-district", "value"),
        Input("risk-section", "value"),
        Input("risk-level", "value"),
        Input("risk-days", "value"),
        prevent_initial_call=True,
    )
    def refilter(district: str | None, section: str | None, level: str | None, days: int | None) -> list[Any]:
        return _content(marts(), district or None, section or None, level or None, _days(days or 30))
