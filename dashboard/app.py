"""The 全视通 decision dashboard: a Dash app over the marts file, one page per question a leader or duty officer
asks in the morning.

Why Dash: a Python data team writes and extends it in Python only (layouts, callbacks, Plotly figures), and it
serves React, plotly.js and its own bundles from the installed packages (``serve_locally``), so it works in a
city network with no internet: no CDN, no web fonts, no map tiles. Pages are rendered on the server in one
round trip (the router callback queries the marts and returns the page with its figures), which keeps each page
ready well under two seconds on the marts of a million enterprises.

Routing is a plain ``dcc.Location`` callback rather than Dash's ``use_pages`` registry: the registry is global
to the process, while :func:`create_app` takes the home folder and may be called more than once (tests,
benchmark). Each page module has ``PATH``, ``TITLE``, ``layout(marts, query)`` and ``register(app, marts)``;
``marts`` is a :class:`~dashboard.data.ScopedMarts` of the signed-in user (``register`` gets a function that
returns the one of the request being served), so every query a page runs is bound to the user's scope.

Who may see what is :mod:`dashboard.security` (sign-in, sessions, CSRF, headers) and :mod:`dashboard.auth`
(users and roles); what they saw is written to :mod:`dashboard.audit`'s log, which leaders read on 审计日志.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs

import dash
from dash import ALL, Input, Output, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import exports, security, ui
from dashboard.audit import AuditLog
from dashboard.auth import Access, UserStore
from dashboard.data import Marts, MartsUnavailableError, Scope, ScopedMarts
from dashboard.pages import abnormal, audit_log, enterprise, forecast, overview, risk, scorecard, service
from lake.layout import dashboard_audit_path, dashboard_users_path

log = logging.getLogger(__name__)

PAGES: tuple[ModuleType, ...] = (overview, enterprise, risk, abnormal, scorecard, service, forecast)
#: pages only some roles open (the route refuses the others, whatever link or URL they come from)
RESTRICTED: dict[ModuleType, Callable[[Access], bool]] = {audit_log: lambda a: a.reads_audit}
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


def render(module: ModuleType, marts: ScopedMarts, search: str | None = None) -> html.Div:
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


def scope_of(access: Access) -> Scope:
    return Scope(access.whole_city, access.divisions, access.masked)


def _shell(pages: tuple[ModuleType, ...]) -> html.Div:
    """The frame around every page, for the signed-in user: the pages they may open, who they are, sign-out."""
    access = security.access_or_none()  # None: Dash validating the layout at its first request
    shown = [p for p in pages if access and RESTRICTED.get(p, lambda a: True)(access)]
    nav = html.Nav(
        [dcc.Link(p.TITLE, href=p.PATH, id=f"nav-{p.PAGE_ID}", className="nav-link") for p in shown],
        className="nav",
    )
    who: list = []
    if access is not None:
        scope = "全市" if access.whole_city else f"授权区县 {len(access.divisions)} 个"
        who = [
            html.Span(
                f"{access.display_name or access.user}（{access.role_zh} · {scope}）",
                id="who",
                className="who",
            ),
            dcc.Input(type="hidden", name=security.CSRF_FIELD, value=security.csrf_token()),
            html.Button("退出", id="sign-out", type="submit", className="sign-out"),
        ]
    return html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            dcc.Download(id="export-download"),
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
                    html.Form(who, action="/logout", method="POST", className="who-box"),
                ],
                className="top",
            ),
            html.Main(dcc.Loading(html.Div(id="content"), type="dot", delay_show=400), className="main"),
        ],
        className="shell",
    )


def create_app(
    home: Path | str,
    *,
    users: UserStore | None = None,
    audit: AuditLog | None = None,
    local_token: str | None = None,
    behind_tls_proxy: bool = False,
) -> dash.Dash:
    """The dashboard over ``home/marts.duckdb`` (read-only; a new night's file is picked up without restart),
    signed in against ``users`` (default: the home's users file) and audited to ``audit`` (default: the home's
    audit log). ``local_token``: a one-time sign-in token for a loopback server without users (the demo);
    ``behind_tls_proxy``: Secure cookies, and the client's address from the proxy's ``X-Forwarded-For``."""
    marts = Marts(home)
    users = users or UserStore(dashboard_users_path(home))
    audit = audit or AuditLog(dashboard_audit_path(home))
    app = dash.Dash(
        __name__,
        title="全视通 · 决策驾驶舱",
        update_title=None,
        assets_folder=str(ASSETS),
        serve_locally=True,
        suppress_callback_exceptions=True,
        index_string=INDEX,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
        csrf_token_name=security.CSRF_COOKIE,
        csrf_header_name=security.CSRF_HEADER,
    )
    guard = security.Guard(users, audit, local_token, secure_cookies=behind_tls_proxy)

    def scoped() -> ScopedMarts:
        """The marts as the user of the request being served may read them, with the request's audit."""
        access = security.current_access()
        return ScopedMarts(marts, scope_of(access), lambda action, **what: guard.record(action, **what))

    every_page = (*PAGES, audit_log)
    by_path = {p.PATH: p for p in every_page}
    app.layout = lambda: _shell(every_page)

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
        access = security.current_access()
        if not RESTRICTED.get(module, lambda a: True)(access):
            guard.record("denied", reason="page", path=module.PATH)
            return ui.page(
                "denied", "无权访问", ui.notice(f"{access.role_zh}无权查看“{module.TITLE}”", "warn")
            ), _build_line(marts)
        if module is audit_log:
            return audit_log.layout(audit, _query(search), guard.record), _build_line(marts)
        return render(module, scoped(), search), _build_line(marts)

    @app.callback(
        Output("export-download", "data"),
        Input({"type": "export", "key": ALL, "params": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def export(clicks: list[int | None]) -> dict:
        trigger = ctx.triggered_id
        if not isinstance(trigger, dict) or not ctx.triggered[0].get("value"):
            raise PreventUpdate  # a button laid out, not clicked
        return exports.download(scoped(), str(trigger.get("key")), str(trigger.get("params")))

    for module in PAGES:
        module.register(app, scoped)
    audit_log.register(app, audit, guard.record)
    guard.csp = security.content_security_policy(list(app.csp_hashes()))
    security.install(app.server, guard)
    if behind_tls_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.server.wsgi_app = ProxyFix(app.server.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    # the name standardizer loads its division and character tables on first use (about a second): not on the
    # first duty officer's search
    threading.Thread(target=enterprise.comparison_form, args=("深圳市预热科技有限公司",), daemon=True).start()
    return app
