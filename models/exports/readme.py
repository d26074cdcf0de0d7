"""The package's ``README.md``, in Chinese and English: what each file holds, under which entitlement, with
which protections and row conditions, and how to verify it.

Why apart: it is documentation for the receiving bureau, generated from the same plan the files are written
from, and it changes for other reasons than the files do.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from models.exports.entitlements import (
    SHARING_EN,
    ExportsConfig,
    TableEntitlement,
)
from models.exports.plan import ExportPlan
from models.exports.results import TableResult
from models.exports.write import protection_text_of

# ---------------------------------------------------------------------------------------------------------
# README


def _cell(text: str | None) -> str:
    return (text or "").replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _rows_text(ent: TableEntitlement, department: str) -> str:
    parts = []
    for cond in ent.rows or []:
        if cond.kind == "all":
            parts.append("全部行 all rows")
        elif cond.kind == "in":
            parts.append(f"`{cond.column}` 取值为 is one of: {', '.join(cond.in_ or [])}")
        elif cond.kind == "prefix":
            parts.append(f"`{cond.column}` 以下列开头 starts with: {', '.join(cond.prefix or [])}")
        else:
            parts.append(
                f"`{cond.related}` 为本部门（{department}）有记录的主体 is an entity of which "
                f"{department} holds at least one record"
            )
    return "；并且 and ".join(parts)


def readme_text(
    config: ExportsConfig,
    bureau: str,
    date: dt.date,
    version: str,
    plans: list[ExportPlan],
    results: list[TableResult],
    withheld: list[dict[str, Any]],
    encoding: str,
) -> str:
    b = config.bureau(bureau)
    department = config.department_of(bureau)
    enc = "UTF-8（带 BOM with BOM）" if encoding == "utf-8-sig" else "GB18030"
    lines = [
        "# 全视通数据共享包 · Quanshitong data package",
        "",
        f"- 接收单位 Bureau: {b.title} (`{bureau}`)",
        f"- 数据日期 Data date: {date.isoformat()}",
        f"- 授权版本 Entitlement version: `{version}`",
        (
            f"- CSV 编码 CSV encoding: {enc}（列表、结构类型的列为 JSON 文本，二进制为十六进制 list and struct columns are "
            "JSON text, binary is hex）"
        ),
        "",
        "本包仅包含贵单位依据共享授权（exports.yaml）可获得的表、列和行；未列出的列不导出。个人信息已按授权脱敏或做密钥哈希。",
        (
            "This package holds only the tables, columns and rows your bureau is entitled to (exports.yaml); a "
            "column not listed is not exported. Personal data is masked or keyed-hashed as the entitlement says."
        ),
        "",
        "## 文件 Files",
        "",
        "| 文件 File | 表 Table | 行数 Rows |",
        "|---|---|---|",
    ]
    for res in results:
        for name in res.files:
            lines.append(f"| `{name}` | {res.source_table} | {res.rows} |")
    lines += [
        (
            "| `manifest.json` | 清单：每个文件的行数、sha256、结构 manifest: rows, sha256, schema of "
            "every file | |"
        ),
        "",
    ]
    for plan, res in zip(plans, results, strict=True):
        ent = plan.ent
        lines += [f"## {res.name}（来源 from `{plan.table}`）", ""]
        if plan.comment:
            lines += [_cell(plan.comment), ""]
        if ent.description:
            lines += [_cell(ent.description), ""]
        lines.append(f"- 共享类型 Sharing type: {ent.sharing}（{SHARING_EN[ent.sharing]}）")
        if ent.purpose:
            lines.append(f"- 用途 Purpose: {_cell(ent.purpose)}")
        if ent.agreement:
            lines.append(f"- 共享协议 Agreement: {_cell(ent.agreement)}")
        if ent.valid_until:
            lines.append(f"- 有效期至 Valid until: {ent.valid_until.isoformat()}")
        lines += [
            f"- 行范围 Rows: {_rows_text(ent, department)}",
            f"- 行数 Row count: {res.rows}",
            "",
            "| 列 Column | 含义 Meaning | 处理 Protection |",
            "|---|---|---|",
        ]
        for col in plan.columns:
            meaning = col.comment or col.source
            if col.source != col.output:
                meaning = f"{meaning}（来源列 from column `{col.source}`）"
            zh, en = protection_text_of(col.rule)
            lines.append(f"| `{col.output}` | {_cell(meaning)} | {zh} {en} |")
        lines.append("")
    if withheld:
        lines += [
            "## 未共享的表 Tables not shared",
            "",
            "| 表 Table | 共享类型 Sharing | 原因 Reason |",
            "|---|---|---|",
        ]
        for w in withheld:
            lines.append(
                f"| {w['table']} | {w['sharing']}（{SHARING_EN[w['sharing']]}） | {_cell(w['reason'])} |"
            )
        lines.append("")
    if any(c.rule.protect == "hmac" for plan in plans for c in plan.columns):
        lines += _HMAC_SECTION
    lines += _VERIFY_SECTION
    return "\n".join(lines)


#: The README's section on hashed columns (only when the package has one).
_HMAC_SECTION = [
    "## 密钥哈希列 Keyed-hash columns",
    "",
    (
        "哈希列为对规范化取值（NFKC、去首尾空格、转大写）计算的 HMAC-SHA256（小写十六进制）。同一取值在各单位、各日期的"
        "数据包中哈希相同，可用于关联；没有密钥无法由哈希反推原值，贵单位亦无法自行计算。"
    ),
    (
        "A hashed column is the HMAC-SHA256 (lowercase hex) of the normalized value (NFKC, trimmed, upper "
        "case). Equal values hash equally in every bureau's package and on every date, so they can be joined; "
        "without the key nobody can recover or recompute the value."
    ),
    "",
]
_VERIFY_SECTION = [
    "## 校验 Verification",
    "",
    (
        "`manifest.json` 记录每个文件的 sha256、行数与结构；请在使用前核对（`qst verify-export <文件夹>` 或 "
        "`sha256sum`）。数据包按日期整体发布，不会出现写了一半的数据包。"
    ),
    (
        "`manifest.json` lists the sha256, row count and schema of every file; check them before use "
        "(`qst verify-export <folder>` or `sha256sum`). A package is published whole: never half written."
    ),
    "",
]
