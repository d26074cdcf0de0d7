"""导出 Excel: a table of a page as an .xlsx file, run again on the server under the user's scope, and audited.

Why the server runs it again: the browser sends only which export and its filters (the id of the button a page
laid out, :func:`dashboard.ui.export_button`), never rows; the rows come from the same named queries as the
page, bound to the signed-in user's scope by :class:`~dashboard.data.ScopedMarts`, so a forged request can ask
for any filter and still gets only what the user may see. It goes through a Dash callback, so it carries the
CSRF token like every other POST (:mod:`dashboard.security`), and every export is appended to the audit log
with its filters and row count.

The file is written by ``xlsxwriter`` with every string a string: no cell becomes a formula, a link or a number
(``=1+1`` from a source stays the text ``=1+1``), and control characters XML cannot hold are removed.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from dash import dcc
from dash.exceptions import PreventUpdate

from dashboard.data import ScopedMarts
from dashboard.pages import abnormal, enterprise, risk

Rows = Callable[[ScopedMarts, dict[str, Any]], tuple[pd.DataFrame, Sequence[tuple[str, str]]]]


@dataclass(frozen=True)
class Export:
    title: str
    params: frozenset[str]
    rows: Rows


#: every export, by the key a page's button names
EXPORTS: dict[str, Export] = {
    "enterprise_search": Export("企业查询结果", frozenset({"q"}), enterprise.export_search),
    "enterprise_records": Export("企业关联源记录", frozenset({"entity_id"}), enterprise.export_records),
    "risk_warnings": Export(
        "信用风险预警清单", frozenset({"days", "district", "section", "level"}), risk.export_warnings
    ),
    "abnormal_by_district": Export("经营异常各区县合计", frozenset({"months"}), abnormal.export_by_district),
}
MAX_PARAM = 200
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class ExportRefusedError(ValueError):
    """The request names no export, or parameters it does not take."""


def parse(key: str, params_json: str) -> tuple[Export, dict[str, Any]]:
    spec = EXPORTS.get(key)
    if spec is None:
        raise ExportRefusedError(f"没有导出项 {key!r}")
    try:
        params = json.loads(params_json)
    except ValueError as exc:
        raise ExportRefusedError("导出参数无效") from exc
    if not isinstance(params, dict) or not set(params) <= spec.params:
        raise ExportRefusedError(f"导出 {key} 不接受这些参数")
    for value in params.values():
        if not (value is None or isinstance(value, int | str)) or len(str(value)) > MAX_PARAM:
            raise ExportRefusedError("导出参数无效")
    return spec, params


def _cell(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "是" if value else "否"
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()[:10] if not isinstance(value, pd.Timestamp) else value.strftime("%Y-%m-%d")
    if isinstance(value, list | tuple | np.ndarray):
        return "、".join(str(v) for v in value)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def workbook(frame: pd.DataFrame, columns: Sequence[tuple[str, str]], title: str) -> bytes:
    """``frame``'s ``columns`` (with their Chinese headers) as an .xlsx file, every string a string."""
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(
        out,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    sheet = book.add_worksheet(title[:31])
    bold = book.add_format({"bold": True})
    wanted = [(c, h) for c, h in columns if c in frame.columns]
    for j, (_, head) in enumerate(wanted):
        sheet.write_string(0, j, head, bold)
    for i, row in enumerate(frame[[c for c, _ in wanted]].itertuples(index=False, name=None), start=1):
        for j, value in enumerate(row):
            cell = _cell(value)
            if cell is None:
                continue
            if isinstance(cell, str):
                sheet.write_string(i, j, _XML_ILLEGAL.sub("", cell))
            else:
                sheet.write_number(i, j, cell)
    book.close()
    return out.getvalue()


def download(marts: ScopedMarts, key: str, params_json: str) -> dict[str, Any]:
    """The ``dcc.Download`` data of an export; refused (and audited) when the request is not one a page makes."""
    try:
        spec, params = parse(key, params_json)
    except ExportRefusedError as exc:
        marts.audit("denied", reason="export", table=key, detail=str(exc))
        raise PreventUpdate from exc
    frame, columns = spec.rows(marts, params)
    data = workbook(frame, columns, spec.title)
    marts.audit("export", table=key, title=spec.title, params=params, rows=len(frame))
    return dcc.send_bytes(data, f"{spec.title}_{dt.date.today():%Y%m%d}.xlsx")
