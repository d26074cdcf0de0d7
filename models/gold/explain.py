"""The review queue's explanation in Chinese (``explanation_zh``): what a reviewer reads before deciding.

One sentence group per item, in this order, each part only when it says something:

1. the comparison, from the Splink levels of the item's strongest pair (``levels``: ``{comparison: level
   label}``): which fields agree (名称一致、地址相似), which disagree (出生日期不同), which could not be compared
   (无从比较：电话、法定代表人);
2. the validated identifiers of the two records (统一社会信用代码不同, 仅一方有有效的统一社会信用代码): not a Splink
   comparison (different keys veto a link) but what a reviewer looks at first;
3. how often the name occurs in the city (该名称在本市 37 条记录中出现，分属 12 个主体): a name many bear is weak
   evidence, one only these two bear is strong;
4. what rides on the decision (风险事件 3 条，参保 120 人 / 关联企业风险事件 2 条，共 5 条记录);
5. why it is in the queue: the probability against the link threshold, or the ambiguity guard, how many
   other record pairs say the same, and how many neighbouring items share an entity with it (one question).

Why the level labels are read by pattern rather than listed: they are Splink's, derived from the comparisons of
:mod:`models.resolution.splink_settings` (``name_comparison exact``, ``Exact match on phone``, ``address bigram
jaccard >= 0.8``, ``All other comparisons`` ...): a new comparison of the same shapes is explained without a change
here, and a label no pattern knows is shown as it is rather than hidden.
"""

from __future__ import annotations

import json
import re

#: What each compared or shown field is called for a reviewer (canonical columns and Splink comparison names).
FIELD_ZH: dict[str, str] = {
    "name_comparison": "名称",
    "address": "地址",
    "division_code": "行政区划",
    "phone": "电话",
    "legal_rep_name": "法定代表人",
    "id_number": "身份证号",
    "id_fragment": "身份证号可见位",
    "birth_date": "出生日期",
    "id_number_sex": "性别",
    "related_cluster": "关联企业",
    "uscc": "统一社会信用代码",
}
#: The validated identifiers shown per kind: (column, its status column). Two records whose identifiers are both
#: valid and differ are two entities; the reviewer is told.
KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "enterprise": (("uscc", "uscc_status"),),
    "person": (("id_number", "id_number_status"),),
}
VALID = "valid"
#: Splink level label -> verdict; None: the level of a missing value (nothing compared). First match wins.
LEVELS: tuple[tuple[re.Pattern[str], str | None], ...] = (
    (re.compile(r"IS NULL|is NULL"), None),
    (re.compile(r"_pinyin exact$"), "读音相同"),
    (re.compile(r" exact$|^Exact match"), "一致"),
    (re.compile(r"differs in at most (\d+) characters"), "仅差{0}位以内"),
    (re.compile(r"shown digits .* agree"), "一致"),
    (re.compile(r"bigram jaccard >= 0\.[7-9]"), "高度相似"),
    (re.compile(r"bigram jaccard >= "), "相似"),
    (re.compile(r"^All other comparisons$"), "不同"),
)
DISAGREE = "不同"


def _verdict(label: str) -> tuple[bool, str | None]:
    """``(known, verdict)`` of one level label."""
    for pattern, verdict in LEVELS:
        found = pattern.search(label)
        if found:
            return True, None if verdict is None else verdict.format(*found.groups())
    return False, label


def compared(levels: str | None) -> str:
    """名称一致、地址相似；出生日期不同；无从比较：电话 — from a pair's ``levels`` JSON."""
    if not levels:
        return ""
    agree, disagree, missing = [], [], []
    for comparison, label in json.loads(levels).items():
        field = FIELD_ZH.get(comparison, comparison)
        known, verdict = _verdict(str(label))
        if not known:
            disagree.append(f"{field}：{verdict}")
        elif verdict is None:
            missing.append(field)
        elif verdict == DISAGREE:
            disagree.append(field + DISAGREE)
        else:
            agree.append(field + verdict)
    parts = ["、".join(agree), "、".join(disagree), ("无从比较：" + "、".join(missing)) if missing else ""]
    return "；".join(p for p in parts if p)


def identifiers(row: dict, kind: str) -> str:
    """统一社会信用代码不同 / 仅一方有有效的统一社会信用代码 / 统一社会信用代码相同."""
    out = []
    for column, status in KEYS[kind]:
        field = FIELD_ZH.get(column, column)
        valid = [row.get(f"{s}_{status}") == VALID and row.get(f"{s}_{column}") for s in ("l", "r")]
        if all(valid):
            out.append(f"{field}{'相同' if row.get(f'l_{column}') == row.get(f'r_{column}') else '不同'}")
        elif any(valid):
            out.append(f"仅一方有有效的{field}")
    return "；".join(out)


def name_frequency(row: dict) -> str:
    """该名称在本市 37 条记录中出现，分属 12 个主体 (both sides' names when they differ)."""
    sides = [
        (row.get(f"{s}_name_comparison"), row.get(f"{s}_name_records"), row.get(f"{s}_name_entities"))
        for s in ("l", "r")
    ]
    if sides[0][0] is None and sides[1][0] is None:
        return ""
    if sides[0][0] == sides[1][0]:
        _, records, entities = sides[0]
        return f"该名称在本市 {records or 0} 条记录中出现，分属 {entities or 0} 个主体"
    said = [f"「{n}」{r or 0} 条记录、{e or 0} 个主体" for n, r, e in sides if n is not None]
    return "名称在本市出现：" + "；".join(said)


def stakes(row: dict, kind: str) -> str:
    """What rides on the decision: risk events, headcount, tied enterprises' risk events, records."""
    out = []
    if row.get("risk_events"):
        out.append(f"风险事件 {row['risk_events']} 条")
    if kind == "enterprise" and row.get("headcount"):
        out.append(f"参保 {row['headcount']} 人")
    if row.get("tied_risk_events"):
        out.append(f"关联企业风险事件 {row['tied_risk_events']} 条")
    if row.get("records"):
        out.append(f"两个主体共 {row['records']} 条记录")
    return "，".join(out)


def why_queued(row: dict, threshold: float) -> str:
    """匹配概率 4.5%，低于自动合并线 6% / 超过合并线但会连接两组各有证据的记录（歧义保护）; other record pairs."""
    p, status = row.get("match_probability"), row.get("status")
    if status == "ambiguous":
        text = "模型认为相似，但合并会连接两组各有证据的记录或两个不同的有效代码（歧义保护），未自动合并"
    elif p is not None:
        text = f"匹配概率 {p:.1%}，低于自动合并线 {threshold:.0%}"
    else:
        text = ""
    if (row.get("pairs") or 0) > 1:
        text += f"{'；' if text else ''}另有 {row['pairs'] - 1} 对记录同样待定"
    if (row.get("group_items") or 0) > 1:
        text += f"{'；' if text else ''}与相邻 {row['group_items'] - 1} 项涉及相同主体，宜一并判断"
    return text


def explain(row: dict, kind: str, threshold: float) -> str:
    """The whole explanation of one queue row (its ``l_*``/``r_*`` attributes, ``levels``, consequence and name
    counts), parts joined by 。"""
    parts = [
        compared(row.get("levels")),
        identifiers(row, kind),
        name_frequency(row),
        stakes(row, kind),
        why_queued(row, threshold),
    ]
    return "。".join(p for p in parts if p) + "。"
