"""The marts contract's dimensions and build metadata."""

from __future__ import annotations

from models.marts.contract.columns import INDUSTRY_SECTION, INDUSTRY_SECTION_NAME, Table, column

# --------------------------------------------------------------------------------------------------------
# dimensions and metadata
# --------------------------------------------------------------------------------------------------------
DIM_DIVISION = Table(
    "dim_division",
    "行政区划（GB/T 2260，区县级）",
    "Administrative divisions, county level",
    "one row per division",
    (
        column("division_code", "VARCHAR", "区划代码", "Division code"),
        column("division_name", "VARCHAR", "区划名称", "Division name"),
        column("level", "INTEGER", "级别（1省 2市 3区县）", "Level: 1 province, 2 prefecture, 3 county"),
        column("parent_code", "VARCHAR", "上级区划代码", "Parent division code"),
        column("parent_name", "VARCHAR", "上级区划名称", "Parent division name"),
    ),
)
DIM_INDUSTRY = Table(
    "dim_industry_section",
    "国民经济行业门类（GB/T 4754-2017）",
    "Industry sections of GB/T 4754-2017",
    "one row per section",
    (
        INDUSTRY_SECTION,
        INDUSTRY_SECTION_NAME,
        column("first_division", "VARCHAR", "起始大类", "First 2-digit division"),
        column("last_division", "VARCHAR", "终止大类", "Last 2-digit division"),
    ),
)
DIM_DEPARTMENT = Table(
    "dim_department",
    "委办局：部署配置（sources.yaml）中的各部门及其名称",
    "The deployment's departments (sources.yaml) and their names",
    "one row per department",
    (
        column("department", "VARCHAR", "部门键", "Department key"),
        column("title", "VARCHAR", "部门全称（配置的 title）", "Department title, as configured"),
        column(
            "name_zh",
            "VARCHAR",
            "部门简称（title 首个空格前部分；无 title 时为部门键）",
            "Short name: the title before its first space; the key without a title",
        ),
    ),
)
META_NOTES = Table(
    "meta_notes",
    "构建说明：本市缺少输入而为空的表、为空的列及原因（驾驶舱页面据此提示）",
    "Build notes: tables built empty and columns left null on this city, and why (the dashboard shows them)",
    "one row per note",
    (
        column(
            "subject",
            "VARCHAR",
            "说明对象（表、表.列 或工作表）",
            "What the note is about: table, table.column",
        ),
        column("tables", "VARCHAR[]", "涉及的集市表", "The published tables it concerns"),
        column("note", "VARCHAR", "原因", "Why"),
    ),
)
META_BUILD = Table(
    "meta_build",
    "构建元数据：每个湖表读取的 Delta 版本（部门导出的清单复制此表）",
    "Build metadata: the Delta version read of each lake table (bureau export manifests copy it)",
    "one row per lake table read",
    (
        column("lake_table", "VARCHAR", "湖表（层/名称）", "Lake table, layer/name"),
        column("delta_version", "BIGINT", "读取的 Delta 版本", "Delta version read"),
        column("committed_at", "TIMESTAMPTZ", "该版本提交时间", "Commit time of that version"),
        column("built_at", "TIMESTAMPTZ", "集市构建时间", "When the marts were built"),
        column("as_of_date", "DATE", "统计截止日期", "Reference day of the figures"),
        column(
            "as_of_lake",
            "VARCHAR",
            "湖版本选择方式：latest | date:<日期> | versions",
            "How the lake versions were chosen",
        ),
    ),
)
