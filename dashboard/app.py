"""The 全视通 decision dashboard: a Dash app over the marts file, one page per question a leader or duty officer
asks in the morning.

Why Dash: a Python data team writes and extends it in Python only (layouts, callbacks, Plotly figures), and it
serves React, plotly.js and its own bundles from the installed packages (``serve_locally``), so it works in a
city network with no internet: no CDN, no web fonts, no map tiles. Pages are rendered on the server in one
round trip (the router callback queries the marts and returns the page with its figures), which keeps each page
ready well under two seconds on the marts of a million enterprises.

Routing is a plain ``dcc.Location`` callback rather than Dash's ``use_pages`` registry: the registry is global
to the process, while :func:`create_app` takes the home folder and may be called more than once (tests,
benchmark). Each page module has ``PATH``, ``TITLE``, ``layout(marts, query)`` and ``register(app, marts)``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs

import dash
from dash import Input, Output, dcc, html

from dashboard import ui
from dashboard.data import Marts, MartsUnavailableError
from dashboard.pages import abnormal, enterprise, forecast, overview, risk, scorecard, service

log = logging.getLogger(__name__)

PAGES: tuple[ModuleType, ...] = (overview, enterprise, risk, abnormal, scorecard, service, forecast)
ASSETS = Path(__file__).resolve().parent / "assets"

INDEX = """<!DOCTYPE html>
<html lang="zh-CN">
<head>{%metas%}<title>{%title%}</title>{%favicon%}{%css%}</head>
<body>{%app_entry%}<footer>{%config%}{%scripts%}{%renderer%}</footer></body>
</html>"""


def _query(search: str | None) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items() if v and v[0].strip()}


def _build_line(marts: Marts) -> str:
    try:
        if not marts.has("meta_build"):
            return "集市未构建"
        info = marts.frame("build_info").iloc[0]
        return f"数据截至 {ui.day(info['as_of_date'])} · 集市构建于 {ui.when(info['built_at'])}"
    except MartsUnavailableError as exc:
        return str(exc)


def render(module: ModuleType, marts: Marts, search: str | None = None) -> html.Div:
    """A page laid out on the marts, with the build's notes on the tables it read under its title."""
    try:
        with marts.recording() as used:
            content = module.layout(marts, _query(search))
        notes = marts.notes(used)
    except MartsUnavailableError as exc:
        return ui.page(module.PAGE_ID, module.TITLE, ui.notice(str(exc), "warn"))
    if notes and isinstance(content.children, list):
        content.children.insert(1, ui.build_notes(notes))
    return content


def create_app(home: Path | str) -> dash.Dash:
    """The dashboard over ``home/marts.duckdb`` (read-only; a new night's file is picked up without restart)."""
    marts = Marts(home)
    app = dash.Dash(
        __name__,
        title="全视通 · 决策驾驶舱",
        update_title=None,
        assets_folder=str(ASSETS),
        serve_locally=True,
        suppress_callback_exceptions=True,
        index_string=INDEX,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    by_path = {p.PATH: p for p in PAGES}
    nav = html.Nav(
        [dcc.Link(p.TITLE, href=p.PATH, id=f"nav-{p.PAGE_ID}", className="nav-link") for p in PAGES],
        className="nav",
    )
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            html.Header(
                [
                    html.Div(
                        [
                            html.Span("全视通", className="brand"),
                            html.Span("城市决策驾驶舱", className="brand-sub"),
                        ],
                        className="brand-box",
                    ),
                    nav,
                    html.Div(id="build-line", className="build-line"),
                ],
                className="top",
            ),
            html.Main(dcc.Loading(html.Div(id="content"), type="dot", delay_show=400), className="main"),
        ],
        className="shell",
    )

    @app.callback(
        Output("content", "children"),
        Output("build-line", "children"),
        Input("url", "pathname"),
        Input("url", "search"),
    )
    def route(pathname: str | None, search: str | None):
        module = by_path.get((pathname or "/").rstrip("/") or "/")
        if module is None:
            return ui.page(
                "missing", "页面不存在", ui.notice(f"没有这个页面：{pathname}", "warn")
            ), _build_line(marts)
        return render(module, marts, search), _build_line(marts)

    for module in PAGES:
        module.register(app, marts)
    # the name standardizer loads its division and character tables on first use (about a second): not on the
    # first duty officer's search
    threading.Thread(target=enterprise.comparison_form, args=("深圳市预热科技有限公司",), daemon=True).start()
    return app
