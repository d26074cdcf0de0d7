"""The package's ``README.md``, in Chinese and English: what each file holds, under which entitlement, with
which protections and row conditions, and how to verify it.

Why apart: it is documentation for the receiving bureau, generated from the same plan the files are written
from, and it changes for other reasons than the files do.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from models.exports.entitlements import (
    SHARING_EN,
    ExportsConfig,
    TableEntitlement,
)
from models.exports.plan import ExportPlan
from models.exports.results import TableResult
from models.exports.signing import PUBLIC_KEY_FILE, SIGNATURE, fingerprint, public_pem
from models.exports.write import FORMULA_PREFIX, FORMULA_STARTS, protection_text_of

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
    public: Ed25519PublicKey,
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
        f"| `{SIGNATURE}` | 清单的 Ed25519 签名 the manifest's Ed25519 signature | |",
        f"| `{PUBLIC_KEY_FILE}` | 签名公钥 the signer's public key | |",
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
    if "csv" in config.formats_of(bureau):
        lines += _FORMULA_SECTION
    lines += _VERIFY_SECTION
    lines += [
        f"签名公钥 Signing key ({fingerprint(public)}):",
        "",
        "```",
        public_pem(public).strip(),
        "```",
        "",
    ]
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
_STARTS_TEXT = " ".join("TAB" if c == "\t" else "CR" if c == "\r" else c for c in FORMULA_STARTS)
#: The README's section on neutralized CSV cells (OWASP "CSV injection"; only when the package has CSV files).
_FORMULA_SECTION = [
    "## CSV 公式防护 Formulas in CSV cells",
    "",
    (
        f"电子表格会把以 {_STARTS_TEXT} 开头的单元格当作公式执行。为防止恶意数据在打开 CSV 时执行，此类文本单元格前加了"
        f"一个单引号 `{FORMULA_PREFIX}`（表格中显示为文本）；按数据处理时请去掉这一个前导单引号。Parquet 文件中的取值未加前缀。"
    ),
    (
        f"A spreadsheet runs a cell starting with {_STARTS_TEXT} as a formula. So that no value can run when a CSV "
        f"file is opened, such text cells start with one added single quote `{FORMULA_PREFIX}` (shown as text); "
        "remove that one leading quote when processing the CSV as data. The Parquet files hold the values as they "
        "are."
    ),
    "",
]
_VERIFY_SECTION = [
    "## 校验 Verification",
    "",
    (
        "`manifest.json` 记录每个文件的 sha256、行数与结构，并由本市以 Ed25519 私钥签名（`manifest.json.sig`）。请在使用"
        "前核对签名与文件：`qst verify-export --public-key <本市公钥.pem> <文件夹>`，或 `openssl pkeyutl -verify -pubin "
        "-inkey <本市公钥.pem> -rawin -in manifest.json -sigfile manifest.json.sig` 加 `sha256sum`。公钥请以本市另行"
        "公布的为准（核对指纹）：包内的公钥只能证明数据包完整，不能证明是谁签发的。数据包按日期整体发布，不会出现写了一半的数据包。"
    ),
    (
        "`manifest.json` lists the sha256, row count and schema of every file and is signed with the city's "
        "Ed25519 private key (`manifest.json.sig`). Check the signature and the files before use: `qst "
        "verify-export --public-key <city.pem> <folder>`, or `openssl pkeyutl -verify -pubin -inkey <city.pem> "
        "-rawin -in manifest.json -sigfile manifest.json.sig` and `sha256sum`. Take the public key the city "
        "publishes (compare the fingerprint): the key inside a package proves only that the package is whole, "
        "not who made it. A package is published whole: never half written."
    ),
    "",
]
