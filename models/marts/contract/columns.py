"""The types of the marts contract (:class:`Column`, :class:`Table`) and the columns several tables share."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type
    zh: str
    en: str

    @property
    def comment(self) -> str:
        return f"{self.zh} / {self.en}"


@dataclass(frozen=True)
class Table:
    name: str
    zh: str
    en: str
    grain: str
    columns: tuple[Column, ...]
    #: columns the dashboard looks rows up by (an ART index is built on each; the table is stored ordered by
    #: the first, so its zone maps prune too)
    lookup: tuple[str, ...] = field(default=())

    @property
    def comment(self) -> str:
        return f"{self.zh} / {self.en}. 粒度 grain: {self.grain}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def column(name: str, type_: str, zh: str, en: str) -> Column:
    return Column(name, type_, zh, en)


ENTITY_ID = column(
    "entity_id", "VARCHAR", "企业实体编号（跨夜稳定）", "Enterprise entity id, stable across nights"
)
USCC = column(
    "uscc", "VARCHAR", "统一社会信用代码（黄金记录）", "Unified social credit code of the golden record"
)
NAME = column("name", "VARCHAR", "企业名称（黄金记录）", "Enterprise name of the golden record")
DIVISION_CODE = column(
    "division_code", "VARCHAR", "行政区划代码（GB/T 2260，区县级）", "County-level division code, GB/T 2260"
)
DISTRICT_NAME = column("district_name", "VARCHAR", "区县名称", "County / district name")
INDUSTRY_SECTION = column(
    "industry_section", "VARCHAR", "国民经济行业门类（GB/T 4754，A–T）", "Industry section, GB/T 4754 (A-T)"
)
INDUSTRY_SECTION_NAME = column("industry_section_name", "VARCHAR", "行业门类名称", "Industry section name")
AS_OF = column(
    "as_of_date",
    "DATE",
    "统计截止日期（风险与近期指标的参照日）",
    "Reference day of the figures (risk and recent-window indicators)",
)
