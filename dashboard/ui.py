"""Presentation helpers shared by the pages: Chinese number and date formats, cards, tables and the charts'
common look. Presentation only: every number shown comes from the marts unchanged (rounded for display).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html

from lake.city import city_timezone
from models.events import CATEGORIES

#: System fonts only (the dashboard works offline): the first one installed wins.
FONT_STACK = (
    '"PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", '
    '"WenQuanYi Micro Hei", "WenQuanYi Zen Hei", sans-serif'
)
LEVEL_COLORS = {"低": "#4caf50", "中": "#f4b400", "高": "#f57c00", "极高": "#d32f2f"}
PALETTE = [
    "#1f5fa8",
    "#d9822b",
    "#2e9e6a",
    "#c0392b",
    "#7b5ea7",
    "#8c6d31",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
]
#: plotly.js options: no logo, no link to the cloud editor; everything stays on this machine.
GRAPH_CONFIG = {
    "displaylogo": False,
    "showLink": False,
    "showSendToCloud": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["sendDataToCloud", "lasso2d", "select2d"],
}
STATUS_ZH = {"active": "存续", "revoked": "吊销", "deregistered": "注销", "moved_out": "迁出"}
#: The Chinese name of each event category (the marts' timeline groups by category, never by a city's event
#: types: models/events.py holds the closed vocabulary every deployment declares its events in).
EVENT_CATEGORY_ZH = {c.key: c.name_zh for c in CATEGORIES}


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    if isinstance(value, list | tuple | np.ndarray):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def num(value: Any, digits: int = 0) -> str:
    """1234567 -> '1,234,567'; missing -> '—'."""
    if is_missing(value):
        return "—"
    return f"{float(value):,.{digits}f}" if digits else f"{round(float(value)):,}"


def pct(value: Any, digits: int = 1) -> str:
    """0.1234 -> '12.3%'."""
    return "—" if is_missing(value) else f"{float(value) * 100:.{digits}f}%"


def yuan(value: Any) -> str:
    """An amount in yuan, in 万元 above ten thousand."""
    if is_missing(value):
        return "—"
    v = float(value)
    return f"{v / 10_000:,.2f} 万元" if abs(v) >= 10_000 else f"{v:,.2f} 元"


def day(value: Any) -> str:
    if is_missing(value):
        return "—"
    if isinstance(value, str):
        return value[:10]
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.strftime("%Y-%m-%d")
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def when(value: Any) -> str:
    """A timestamp shown in Beijing time."""
    if is_missing(value):
        return "—"
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(city_timezone())
    return ts.strftime("%Y-%m-%d %H:%M") + (" (北京时间)" if ts.tzinfo is not None else "")


def change(current: Any, before: Any) -> tuple[str, str]:
    """'↑12 (+3.4%)' and a css class (up/down/flat) for a count against the one before."""
    if is_missing(current) or is_missing(before):
        return "—", "flat"
    d = float(current) - float(before)
    rel = "" if float(before) == 0 else f" ({d / float(before):+.1%})"
    if d > 0:
        return f"↑{num(d)}{rel}", "up"
    if d < 0:
        return f"↓{num(-d)}{rel}", "down"
    return "持平", "flat"


def text(value: Any) -> str:
    if is_missing(value):
        return "—"
    if isinstance(value, list | tuple | np.ndarray):
        return "、".join(str(v) for v in value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return num(value)
    return str(value)


def page(page_id: str, title: str, *children: Any, subtitle: str | None = None) -> html.Div:
    """The frame of a page: its id (the browser tests wait for it), a title and the content."""
    head = [html.H2(title)]
    if subtitle:
        head.append(html.Div(subtitle, className="subtitle"))
    return html.Div(
        [html.Div(head, className="page-head"), *children], id=f"page-{page_id}", className="page"
    )


def card(
    label: str, value: str, note: str | None = None, note_class: str = "flat", href: str | None = None
) -> html.Div:
    body = [html.Div(label, className="card-label"), html.Div(value, className="card-value")]
    if note is not None:
        body.append(html.Div(note, className=f"card-note {note_class}"))
    inner = dcc.Link(body, href=href, className="card-link") if href else html.Div(body)
    return html.Div(inner, className="card")


def section(title: str, *children: Any, class_name: str = "section") -> html.Section:
    return html.Section([html.H3(title), *children], className=class_name)


def notice(message: str, kind: str = "info") -> html.Div:
    return html.Div(message, className=f"notice notice-{kind}")


def build_notes(notes: list[tuple[str, str]]) -> html.Div:
    """The build's notes on what a page shows (a table empty on this city, a column not reported), so an empty
    chart is explained rather than mistaken for zero."""
    return html.Div(
        [html.Strong("本市数据说明："), html.Ul([html.Li(f"{subject}：{note}") for subject, note in notes])],
        className="notice notice-info build-notes",
    )


#: every ASCII punctuation character: CommonMark (and Remarkable, the table's renderer) takes each one literally
#: when a backslash precedes it
_MD_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def md_text(value: str) -> str:
    """``value`` as literal Markdown text: every ASCII punctuation character backslash-escaped, so no link,
    autolink (``<http://...>``), emphasis, HTML tag or entity can form from data, and whitespace collapsed to
    single spaces, so no block (code, list, heading) can either. The only Markdown in a table cell is the
    link this module writes around it."""
    return _MD_PUNCTUATION.sub(r"\\\1", " ".join(value.split()))


def plot_text(value: Any) -> str:
    """A value shown by plotly.js (trace names, category ticks, hover text, pie labels): plotly reads
    ``<a href>``, ``<br>``, ``<b>`` ... in these, so ``&``, ``<`` and ``>`` are written as entities, which
    it shows as the characters themselves."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plot_texts(values: Iterable[Any]) -> list[str]:
    return [plot_text(v) for v in values]


def export_button(key: str, params: dict[str, Any]) -> html.Button:
    """The 导出 Excel button of a table: the export ``key`` (:data:`dashboard.exports.EXPORTS`) and the
    parameters the server runs it with again, under the user's scope (nothing of the table is sent back)."""
    return html.Button(
        "导出 Excel",
        # ASCII only: Dash finds the clicked button by comparing the browser's JSON of the id with its own, which
        # escapes non-ASCII characters (a Chinese search text would make the click go unnoticed)
        id={"type": "export", "key": key, "params": json.dumps(params, ensure_ascii=True, sort_keys=True)},
        className="export-button",
        title="按当前条件导出（记入审计日志）",
    )


def table(
    frame: pd.DataFrame,
    columns: Sequence[tuple[str, str]],
    *,
    formats: dict[str, Any] | None = None,
    links: dict[str, Any] | None = None,
    max_rows: int = 1000,
    table_id: str | None = None,
    row_class: Any = None,
    page_size: int = 15,
    export: tuple[str, dict[str, Any]] | None = None,
) -> Any:
    """A table of ``frame``: ``columns`` is [(column, Chinese header)], ``formats`` a formatter per column
    (default :func:`text`), ``links`` a function per column giving the href of the cell.

    One ``dash_table.DataTable`` (paged and sortable in the browser), not an html table: Dash renders every
    html element as a component of its own, and a few hundred rows of html cells froze the browser for seconds.
    ``row_class`` gives a row's level or grade (``"level-高"``), coloured by :data:`ROW_STYLES`; ``export``: the
    export key and parameters of its 导出 Excel button (:func:`export_button`).

    Every cell is text: a linked cell is Markdown (the table's only way to link) whose text is escaped by
    :func:`md_text` and whose target is the page's own URL, so a name can never become a link or markup."""
    from dash import dash_table

    formats = formats or {}
    links = links or {}
    if frame is None or frame.empty:
        return notice("暂无数据")
    records = []
    for rec in frame.head(max_rows).to_dict("records"):
        row = {}
        for col, _ in columns:
            shown = formats.get(col, text)(rec.get(col))
            if col in links and not is_missing(rec.get(col)):
                shown = f"[{md_text(shown)}]({links[col](rec)})"
            row[col] = shown
        if row_class is not None:
            row["_class"] = row_class(rec)
        records.append(row)
    spec = [
        {"id": col, "name": head, **({"presentation": "markdown"} if col in links else {})}
        for col, head in columns
    ]
    more = (
        []
        if len(frame) <= max_rows
        else [html.Div(f"仅显示前 {max_rows} 行，共 {num(len(frame))} 行", className="table-note")]
    )
    attrs = {"id": table_id} if table_id else {}
    return html.Div(
        [
            *([export_button(*export)] if export else []),
            dash_table.DataTable(
                data=records,
                columns=spec,
                page_size=page_size,
                sort_action="native",
                markdown_options={"link_target": "_self"},
                style_as_list_view=True,
                cell_selectable=False,
                style_table={"overflowX": "auto"},
                style_cell={
                    "fontFamily": FONT_STACK,
                    "fontSize": "13px",
                    "textAlign": "left",
                    "padding": "5px 8px",
                    "whiteSpace": "normal",
                    "height": "auto",
                    "maxWidth": "420px",
                    "border": "none",
                    "borderBottom": "1px solid #dde3ea",
                },
                style_header={"backgroundColor": "#f0f3f7", "color": "#5d6b7a", "fontWeight": 600},
                style_data_conditional=[
                    {"if": {"filter_query": f'{{_class}} = "{cls}"'}, **style}
                    for cls, style in ROW_STYLES.items()
                ],
            ),
            *more,
        ],
        className="table-wrap",
        **attrs,
    )


#: Row colours of :func:`table` by ``row_class``.
ROW_STYLES = {
    "level-极高": {"backgroundColor": "#fdecea"},
    "level-高": {"backgroundColor": "#fff3e0"},
    "grade-差": {"color": "#b71c1c"},
}


def figure(
    fig: go.Figure, *, height: int = 320, title: str | None = None, legend: bool = True, dates: bool = False
) -> go.Figure:
    """The common look; ``dates``: the x axis is a date axis, labelled the Chinese way (plotly.js ships its
    month names in English only unless a locale bundle is loaded)."""
    fig.update_layout(
        height=height,
        margin={"l": 48, "r": 16, "t": 40 if title else 16, "b": 40},
        font={"family": FONT_STACK, "size": 12, "color": "#1d2733"},
        title={"text": title, "x": 0.01} if title else None,
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
        colorway=PALETTE,
        showlegend=legend,
        legend={"orientation": "h", "y": -0.18, "x": 0},
        hoverlabel={"font": {"family": FONT_STACK}},
        separators=".,",
    )
    fig.update_xaxes(gridcolor="#eef1f5", zeroline=False)
    fig.update_yaxes(gridcolor="#eef1f5", zeroline=False)
    if dates:
        fig.update_xaxes(
            hoverformat="%Y-%m-%d",
            tickformatstops=[
                {"dtickrange": [None, 86_400_000], "value": "%-m月%-d日 %H:%M"},
                {"dtickrange": [86_400_000, "M1"], "value": "%-m月%-d日"},
                {"dtickrange": ["M1", "M12"], "value": "%Y年%-m月"},
                {"dtickrange": ["M12", None], "value": "%Y年"},
            ],
        )
    return fig


def graph(graph_id: str, fig: go.Figure) -> dcc.Graph:
    height = fig.layout.height or 320
    return dcc.Graph(
        id=graph_id, figure=fig, config=GRAPH_CONFIG, className="chart", style={"height": f"{height}px"}
    )


def entity_href(entity_id: Any) -> str:
    """The 一企一档 URL of an enterprise (the id URL-encoded: it is data)."""
    return "/enterprise?" + urlencode({"id": str(entity_id)})


def options(values: Iterable[tuple[Any, str]]) -> list[dict[str, Any]]:
    return [{"value": v, "label": label} for v, label in values]
