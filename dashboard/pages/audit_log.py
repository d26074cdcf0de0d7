"""审计日志: who viewed which enterprise's file, searched for what, exported which table, signed in or failed
to -- for leaders only (the router refuses other roles). Read-only: the page reads the log
(:mod:`dashboard.audit`) and offers nothing that writes it but the entry recording that it was read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import ui
from dashboard.audit import ACTIONS, AuditLog, verify
from dashboard.auth import ROLES

PAGE_ID = "audit"
PATH = "/audit"
TITLE = "审计日志"
SHOWN = 500
#: the Chinese names of what an entry records
WHAT_ZH = {
    "entity_id": "实体编号",
    "uscc": "统一社会信用代码",
    "name": "名称",
    "q": "查询内容",
    "how": "方式",
    "results": "结果数",
    "entity_ids": "结果实体",
    "found": "找到",
    "table": "导出项",
    "title": "表格",
    "params": "条件",
    "rows": "行数",
    "reason": "原因",
    "path": "页面",
    "detail": "说明",
    "role": "角色",
    "districts": "区县",
    "by": "操作人",
    "action_filter": "按操作筛选",
    "user_filter": "按用户筛选",
}


def _what(what: Any) -> str:
    if not isinstance(what, dict):
        return ui.text(what)
    parts = []
    for key, value in what.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, dict):
            value = "，".join(f"{k}={v}" for k, v in value.items() if v not in (None, ""))
        elif isinstance(value, list):
            value = "、".join(str(v) for v in value[:5]) + ("…" if len(value) > 5 else "")
        elif isinstance(value, bool):
            value = "是" if value else "否"
        parts.append(f"{WHAT_ZH.get(key, key)}：{value}")
    return "；".join(parts)


def layout(log: AuditLog, query: dict[str, str], record: Callable[..., None]) -> html.Div:
    action = query.get("action") or None
    user = query.get("user") or None
    record("view_audit", action_filter=action, user_filter=user)
    entries = log.read(SHOWN, action=action, user=user)
    checked = verify(log.path)
    status = (
        ui.notice(
            f"日志完整性：校验通过，共 {ui.num(checked.entries)} 条；末条哈希 {checked.head[:16]}…",
            "info",
        )
        if checked.ok
        else ui.notice(f"日志完整性：校验失败（{checked.problem}）", "warn")
    )
    frame = pd.DataFrame(
        [
            {
                "at": ui.when(e.get("at")),
                "user": e.get("user"),
                "role": ROLES.get(str(e.get("role")), e.get("role") or "—"),
                "action": ACTIONS.get(str(e.get("action")), e.get("action")),
                "what": _what(e.get("what")),
                "from": e.get("from"),
            }
            for e in entries
        ]
    )
    filters = html.Div(
        [
            dcc.Dropdown(
                id="audit-action",
                options=ui.options(ACTIONS.items()),
                value=action,
                placeholder="全部操作",
                className="filter",
            ),
            dcc.Input(
                id="audit-user",
                type="text",
                value=user or "",
                placeholder="用户名",
                debounce=True,
                className="filter search-input",
            ),
        ],
        className="filters",
    )
    return ui.page(
        PAGE_ID,
        TITLE,
        status,
        filters,
        ui.table(
            frame,
            [
                ("at", "时间"),
                ("user", "用户"),
                ("role", "角色"),
                ("action", "操作"),
                ("what", "内容"),
                ("from", "来源地址"),
            ],
            table_id="audit-table",
            page_size=50,
            max_rows=SHOWN,
        ),
        subtitle=f"最近 {SHOWN} 条：查看企业档案、查询、导出与登录（只追加，不可修改）",
    )


def register(app: dash.Dash, log: AuditLog, record: Callable[..., None]) -> None:
    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("audit-action", "value"),
        Input("audit-user", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def refilter(action: str | None, user: str | None, current: str | None) -> str:
        query = {k: v for k, v in (("action", action), ("user", (user or "").strip())) if v}
        wanted = f"?{urlencode(query)}" if query else ""
        if wanted == (current or ""):
            raise PreventUpdate  # the filters as laid out: nothing to change
        return wanted
