"""企业一档: find an enterprise by USCC, registration number or name, and show its golden record and, department
by department, every source record linked to it and why.

Search is tolerant the way the lake is: the text is read as an identifier when it looks like one (USCC, old
registration number, organization code, taxpayer number), and otherwise as a name — exact or starting with the
text, then by the name's comparison form (the same standardizer silver uses, so 繁体, full-width brackets, a
region in brackets or in front, 有限公司 for 有限责任公司 all match; the marts' search table holds both
forms), then among the names every department's
records carry. The query string keeps the search (``/enterprise?q=...`` or ``?id=<entity_id>``), so a result
can be linked and bookmarked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import dash
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html

from dashboard import ui
from dashboard.data import ScopedMarts

PAGE_ID = "enterprise"
PATH = "/enterprise"
TITLE = "企业一档"
RESULT_LIMIT = 20
_USCC = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def _clean(q: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", q)).strip()


def comparison_form(name: str) -> str | None:
    """The comparison form silver gives a name (models.standardize.names); None when it has none."""
    import polars as pl

    from models.standardize.names import enterprise_name

    value = pl.select(enterprise_name(pl.lit(name, pl.Utf8)).alias("n")).item()
    return (value or {}).get("comparison") or None


def search(marts: ScopedMarts, q: str) -> tuple[pd.DataFrame, str]:
    """The enterprises matching ``q`` and how they were found."""
    text = _clean(q)
    upper = text.upper()
    if _USCC.match(upper):
        found = marts.frame("enterprise_by_uscc", uscc=upper)
        if not found.empty:
            return found, "统一社会信用代码"
    for column, label, pattern in (
        ("regno", "工商注册号", r"^\d{13,15}$"),
        ("org_code", "组织机构代码", r"^[0-9A-Z]{8}-?[0-9X]$"),
        ("tin", "纳税人识别号", r"^[0-9A-Z]{15,20}$"),
    ):
        if re.match(pattern, upper):
            key = upper.replace("-", "") if column == "org_code" else upper
            found = marts.frame(f"enterprise_by_{column}", key=key, limit=RESULT_LIMIT)
            if not found.empty:
                return found, label
    found = marts.frame("enterprise_by_name", name=text, limit=RESULT_LIMIT)
    if not found.empty:
        return found, "企业名称"
    comparison = comparison_form(text)
    if comparison and comparison != text:
        found = marts.frame("enterprise_by_name", name=comparison, limit=RESULT_LIMIT)
        if not found.empty:
            return found, "名称比对形式（忽略地区、组织形式、繁简、全半角）"
    found = marts.frame("enterprise_by_record_name", name=text, limit=RESULT_LIMIT)
    if not found.empty:
        return found, "各部门源记录中的名称"
    if len(text) >= 2:
        needle = comparison or text
        found = marts.frame("enterprise_name_contains", text=needle, limit=RESULT_LIMIT)
        if not found.empty:
            return found, "名称包含"
    return found, ""


#: the columns of a search result, as shown and exported
RESULT_COLUMNS = (
    ("name", "企业名称"),
    ("uscc", "统一社会信用代码"),
    ("status", "状态"),
    ("district_name", "区县"),
    ("risk_level", "风险等级"),
)
#: the columns of an enterprise's source records, as shown and exported
RECORD_COLUMNS = (
    ("source_table", "源表"),
    ("source_pk", "源主键"),
    ("role", "角色"),
    ("name", "记录中的名称"),
    ("uscc", "记录中的代码"),
    ("rule", "归并规则"),
    ("match_probability", "匹配概率"),
    ("why", "归并依据"),
)


def export_search(
    marts: ScopedMarts, params: dict[str, Any]
) -> tuple[pd.DataFrame, tuple[tuple[str, str], ...]]:
    """导出: the enterprises a search finds (the same search, run again under the user's scope)."""
    q = str(params.get("q") or "")
    if not _clean(q):
        return pd.DataFrame(columns=[c for c, _ in RESULT_COLUMNS]), RESULT_COLUMNS
    found, _ = search(marts, q)
    return found, RESULT_COLUMNS


def export_records(
    marts: ScopedMarts, params: dict[str, Any]
) -> tuple[pd.DataFrame, tuple[tuple[str, str], ...]]:
    """导出: every source record linked to one enterprise (none when the enterprise is outside the scope)."""
    records = marts.frame("enterprise_records", entity_id=str(params.get("entity_id") or ""))
    return records, (("source_department", "来源部门"), *RECORD_COLUMNS)


def _search_box(q: str) -> html.Div:
    return html.Div(
        [
            dcc.Input(
                id="ent-q",
                type="search",
                value=q,
                debounce=False,
                className="search-input",
                placeholder="输入统一社会信用代码、注册号或企业名称（支持简繁、全半角、地区和组织形式的不同写法）",
            ),
            html.Button("查询", id="ent-go", className="button"),
        ],
        className="search-box",
    )


_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("uscc", "统一社会信用代码", ui.text),
    ("regno", "注册号", ui.text),
    ("org_code", "组织机构代码", ui.text),
    ("tin", "纳税人识别号", ui.text),
    ("status", "登记状态", lambda v: ui.STATUS_ZH.get(v, ui.text(v))),
    ("legal_rep_name", "法定代表人", ui.text),
    ("founded_on", "成立日期", ui.day),
    ("registered_capital_wan", "注册资本（万元）", lambda v: ui.num(v, 2)),
    ("address", "住所", ui.text),
    ("district_name", "区县", ui.text),
    ("industry_section_name", "行业门类", ui.text),
    ("industry", "行业代码", ui.text),
    ("is_branch", "分支机构", ui.text),
    ("departments", "掌握信息的部门", ui.text),
    ("source_records", "关联源记录数", ui.num),
    ("entity_id", "实体编号 entity_id", ui.text),
)
_RISK_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("tax_rating", "纳税信用等级", ui.text),
    ("tax_arrears_amount", "欠税金额", ui.yuan),
    ("penalty_count", "行政处罚次数", ui.num),
    ("penalty_amount", "罚款金额", ui.yuan),
    ("abnormal_active", "在经营异常名录中", ui.text),
    ("abnormal_latest_reason", "最近列入原因", ui.text),
    ("court_defendant_count", "作为被告/被执行人案件", ui.num),
    ("is_defaulter", "失信被执行人", ui.text),
    ("insured_headcount", "参保人数", ui.num),
    ("insured_headcount_change", "参保人数变化", ui.pct),
    ("service_case_count", "政务服务办件数", ui.num),
    ("as_of_date", "统计截止日", ui.day),
)


def _fields(rec: dict[str, Any], fields: tuple[tuple[str, str, Any], ...]) -> html.Dl:
    items: list[Any] = []
    for key, label, fmt in fields:
        items += [html.Dt(label), html.Dd(fmt(rec.get(key)))]
    return html.Dl(items, className="fields")


def _card(marts: ScopedMarts, rec: dict[str, Any]) -> list[Any]:
    entity_id = rec["entity_id"]
    level = rec.get("risk_level")
    names = marts.department_names()
    if not ui.is_missing(rec.get("departments")):
        # the golden record lists department keys: shown by the deployment's names (dim_department)
        rec = {**rec, "departments": [names.get(str(d), str(d)) for d in rec["departments"]]}
    head = html.Div(
        [
            html.H3(rec.get("name") or "（无名称）", id="ent-name"),
            html.Span(
                f"风险：{ui.text(level)}（{ui.num(rec.get('risk_score'))} 分）",
                className="badge",
                style={"background": ui.LEVEL_COLORS.get(level, "#8899aa")},
            ),
        ],
        className="ent-head",
    )
    factors = marts.frame("enterprise_risk_factors", entity_id=entity_id)
    records = marts.frame("enterprise_records", entity_id=entity_id)
    events = marts.frame("enterprise_events", entity_id=entity_id, limit=500)
    blocks: list[Any] = [
        head,
        html.Div(
            [
                ui.section("黄金记录", _fields(rec, _FIELDS), class_name="section half"),
                ui.section(
                    "信用与经营情况",
                    _fields(rec, _RISK_FIELDS),
                    ui.table(
                        factors,
                        [
                            ("reason_zh", "风险因子"),
                            ("points", "分值"),
                            ("since", "成立日"),
                            ("until", "失效日"),
                        ],
                        formats={"since": ui.day, "until": ui.day},
                        table_id="ent-factors",
                    )
                    if not factors.empty
                    else ui.notice("未命中任何信用风险因子"),
                    class_name="section half",
                ),
            ],
            className="row",
        ),
    ]
    if not events.empty:
        ev = events.dropna(subset=["event_date"])
        fig = go.Figure()
        for i, (category, part) in enumerate(ev.groupby("event_category", sort=True)):
            label = ui.plot_text(ui.EVENT_CATEGORY_ZH.get(category, category))
            fig.add_scatter(
                x=part["event_date"],
                y=[label] * len(part),
                mode="markers",
                name=label,
                marker={"size": 9, "color": ui.PALETTE[i % len(ui.PALETTE)]},
                text=ui.plot_texts(part["category"].fillna("")),
                hovertemplate="%{x|%Y-%m-%d} %{text}<extra></extra>",
            )
        blocks.append(
            ui.section(
                "时间线（最近500个事件）",
                ui.graph(
                    "ent-timeline",
                    ui.figure(fig, dates=True, height=80 + 28 * ev["event_type"].nunique(), legend=False),
                ),
            )
        )
    per_dept: list[Any] = []
    for dept, part in records.groupby("source_department", sort=True):
        per_dept.append(
            html.Details(
                [
                    html.Summary(f"{names.get(dept, dept)}（{dept}）：{len(part)} 条源记录"),
                    ui.table(
                        part,
                        RECORD_COLUMNS,
                        formats={"match_probability": lambda v: ui.pct(v, 1)},
                    ),
                ],
                open=True,
                className="dept-records",
            )
        )
    export = [ui.export_button("enterprise_records", {"entity_id": entity_id})] if per_dept else []
    blocks.append(
        ui.section(
            f"各部门关联的源记录（{len(records)} 条）",
            *export,
            *per_dept or [ui.notice("没有关联的源记录")],
        )
    )
    return blocks


def _viewed(marts: ScopedMarts, rec: dict[str, Any], how: str) -> None:
    """The audit entry of a file shown."""
    marts.audit(
        "view_enterprise", entity_id=rec["entity_id"], uscc=rec.get("uscc"), name=rec.get("name"), how=how
    )


def layout(marts: ScopedMarts, query: dict[str, str]) -> html.Div:
    q = query.get("q", "")
    entity_id = query.get("id")
    body: list[Any] = [_search_box(q)]
    if entity_id:
        found = marts.frame("enterprise_by_id", entity_id=entity_id)
        if found.empty:
            # outside the user's districts reads the same as missing: the scope is not to be probed
            marts.audit("view_enterprise", entity_id=entity_id, found=False, how="实体编号")
            body.append(ui.notice(f"没有实体编号为 {entity_id} 的企业（或不在您的授权范围内）", "warn"))
        else:
            rec = found.iloc[0].to_dict()
            _viewed(marts, rec, "实体编号")
            body += _card(marts, rec)
    elif q:
        found, how = search(marts, q)
        marts.audit("search", q=q, how=how, results=len(found), entity_ids=found["entity_id"].tolist())
        if found.empty:
            body.append(ui.notice(f"没有找到与“{q}”匹配的企业（或不在您的授权范围内）", "warn"))
        elif len(found) == 1:
            full = marts.frame("enterprise_by_id", entity_id=found["entity_id"].iloc[0])
            body += [html.Div(f"按{how}找到 1 家企业", className="subtitle", id="ent-found")]
            if not full.empty:
                rec = full.iloc[0].to_dict()
                _viewed(marts, rec, how)
                body += _card(marts, rec)
        else:
            body += [
                html.Div(f"按{how}找到 {len(found)} 家企业", className="subtitle", id="ent-found"),
                ui.table(
                    found,
                    RESULT_COLUMNS,
                    formats={"status": lambda v: ui.STATUS_ZH.get(v, ui.text(v))},
                    links={"name": lambda r: ui.entity_href(r["entity_id"])},
                    table_id="ent-results",
                    export=("enterprise_search", {"q": q}),
                ),
            ]
    else:
        body.append(ui.notice("输入统一社会信用代码、注册号或名称查询企业的全部档案"))
    return ui.page(PAGE_ID, "企业一档", *body, subtitle="一企一档：黄金记录与各部门源记录的归并依据")


def register(app: dash.Dash, marts: Callable[[], ScopedMarts]) -> None:
    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("ent-go", "n_clicks"),
        Input("ent-q", "n_submit"),
        State("ent-q", "value"),
        prevent_initial_call=True,
    )
    def go_search(_clicks: int | None, _submits: int | None, value: str | None) -> str:
        value = (value or "").strip()
        return f"?{urlencode({'q': value})}" if value else ""
