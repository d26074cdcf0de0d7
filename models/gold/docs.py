"""What the gold tables and their columns mean, in Chinese and English: one place for the bureau exports'
README and Parquet field descriptions (the gold tables are read from the lake, which carries no comments).

A ``<attribute>_from`` column is the lineage of a golden attribute: the ``record_id`` of the source record the
value survived from (rules: :mod:`models.gold.survivorship`).
"""

from __future__ import annotations

__all__ = ["GOLD_DOCS", "column_comment", "table_comment"]

_FROM = "取值来源记录 the record_id of the source record this attribute's value came from"

#: table -> (table comment, {column: comment})
GOLD_DOCS: dict[str, tuple[str, dict[str, str]]] = {
    "dim_enterprise": (
        "企业黄金记录：各部门记录合并后每个属性的最佳取值 golden enterprise records",
        {
            "entity_id": "全市企业主体编号（夜间稳定） the city's stable enterprise id",
            "name": "企业名称 name (registry first)",
            "name_comparison": "名称比对形式 normalized name used for matching",
            "is_branch": "是否分公司 a branch (分公司), linked to its parent, never merged into it",
            "name_parent_comparison": "总公司名称比对形式 the parent's normalized name (branches)",
            "parent_entity_id": "总公司主体编号 the parent enterprise's id (branches)",
            "uscc": "统一社会信用代码 USCC (validated)",
            "regno": "注册号 registration number",
            "org_code": "组织机构代码 organization code",
            "tin": "纳税人识别号 taxpayer identification number",
            "status": "登记状态 registration status (registry first)",
            "legal_rep_name": "法定代表人 legal representative",
            "legal_rep_id_number": "法定代表人身份证号 the representative's resident ID",
            "address": "地址 address",
            "division_code": "行政区划代码 administrative division code",
            "phone": "联系电话 phone",
            "industry": "国民经济行业代码 industry (GB/T 4754)",
            "industry_section": "行业门类 industry section",
            "founded_on": "成立日期 founding date",
            "registered_capital_wan": "注册资本（万元） registered capital, 10k yuan",
            "records": "关联源记录数 source records linked to this enterprise",
            "departments": "有记录的部门 departments holding a record of it",
            "former_names": "曾用名 former names declared by the sources (never the golden name)",
        },
    ),
    "dim_person": (
        "自然人黄金记录 golden person records",
        {
            "entity_id": "全市自然人编号（夜间稳定） the city's stable person id",
            "name": "姓名 name",
            "name_comparison": "姓名比对形式 normalized name used for matching",
            "id_number": "公民身份号码 resident ID (18 digits, validated)",
            "birth_date": "出生日期 birth date (from the ID)",
            "sex": "性别 sex (from the ID)",
            "phone": "联系电话 phone",
            "address": "地址 address",
            "division_code": "行政区划代码 administrative division code",
            "records": "关联源记录数 source records linked to this person",
            "departments": "有记录的部门 departments holding a record of the person",
        },
    ),
    "entity_crosswalk": (
        "源记录与主体编号对照 every source record and the entity id it resolved to",
        {
            "record_id": "源记录编号 the canonical record id (silver)",
            "entity_type": "主体类型 enterprise | person",
            "entity_id": "主体编号 the entity id",
            "source_department": "来源部门 the department the record came from",
            "source_asset": "来源资产 the source table (department/table)",
            "source_table": "来源表 the staging model",
            "source_pk": "源系统主键 the record's key in the department's system",
            "role": "记录角色 the record's role (registrant, taxpayer, defendant ...)",
            "rule": "关联方式 how it was linked: a deterministic key rule, splink, a decision, or singleton",
            "match_probability": "匹配概率 Splink's match probability (probabilistic links)",
            "match_weight": "匹配权重 Splink's match weight",
            "levels": "比较层级 the comparison levels that produced the weight (JSON)",
            "why": "关联说明 why the record was linked, in words",
        },
    ),
}


def table_comment(table: str) -> str | None:
    doc = GOLD_DOCS.get(table)
    return doc[0] if doc else None


def column_comment(table: str, column: str) -> str | None:
    doc = GOLD_DOCS.get(table)
    if doc is None:
        return None
    if column in doc[1]:
        return doc[1][column]
    return _FROM if column.endswith("_from") else None
