"""The contract of the marts file (``HOME/marts.duckdb``): every table, its columns with their DuckDB types and
their comments (Chinese / English), and the queries the 全视通 dashboard makes.

Why a module of data: the dashboard, the analysts' documentation (``docs/data_dictionary.md``), the
``COMMENT ON`` statements and the tests all read the same definitions, so a column means one thing everywhere
and a rename breaks loudly. The builders (:mod:`models.marts.build` and the table modules) must produce exactly
these columns, in this order; :func:`models.marts.build.build_marts` checks it.

Names are stable: the dashboard is built against them. Add columns at the end of a table; never rename one.

Tables written by another module (``mart_service_efficiency``, ``mart_business_startup*``, ``mart_kpi_daily``,
``dim_calendar``) keep their contract in that module's ``COMMENTS`` (:mod:`models.marts.service`,
:mod:`models.marts.kpi`, :mod:`models.marts.calendar`); they are listed here by name in :data:`EXTERNAL_TABLES`.

Personal data (docs/domain/identifiers.md, GB/T 35273 §7.2, PIPL): the marts are read by many analysts, so a person's ID
number and phone appear only **masked** (ID: first 6 + last 4, ``110105********002X``; mobile ``138****8000``)
with a **keyed hash** of the normalized ID (HMAC-SHA256, :mod:`models.keyed_hash`, the secret named by its ``KEY_ENV``) that joins to the
bureau exports and lets an analyst count or link persons without seeing the number. The full ID stays in the
lake's gold ``dim_person``, where access is controlled.
"""

from __future__ import annotations

from models.marts.contract.columns import (
    AS_OF,
    DISTRICT_NAME,
    DIVISION_CODE,
    ENTITY_ID,
    INDUSTRY_SECTION,
    INDUSTRY_SECTION_NAME,
    NAME,
    USCC,
    Column,
    Table,
    column,
)
from models.marts.contract.dashboard import DASHBOARD_PARAMETERS, DASHBOARD_QUERIES
from models.marts.contract.dimensions import (
    DIM_DEPARTMENT,
    DIM_DIVISION,
    DIM_INDUSTRY,
    META_BUILD,
    META_NOTES,
)
from models.marts.contract.entities import (
    ENTERPRISE_360,
    ENTERPRISE_EVENTS,
    ENTERPRISE_RECORDS,
    ENTERPRISE_SEARCH,
    PERSON_360,
    PERSON_ENTERPRISE_LINKS,
)
from models.marts.contract.monitoring import (
    ABNORMAL_DISTRIBUTION,
    CREDIT_RISK,
    CREDIT_RISK_FACTORS,
    DEPARTMENT_SCORECARD,
    RISK_FACTORS_DIM,
    RISK_LEVELS_DIM,
    RISK_WARNINGS,
)

__all__ = [
    "ABNORMAL_DISTRIBUTION",
    "AS_OF",
    "CREDIT_RISK",
    "CREDIT_RISK_FACTORS",
    "DASHBOARD_PARAMETERS",
    "DASHBOARD_QUERIES",
    "DEPARTMENT_SCORECARD",
    "DIM_DEPARTMENT",
    "DIM_DIVISION",
    "DIM_INDUSTRY",
    "DISTRICT_NAME",
    "DIVISION_CODE",
    "ENTERPRISE_360",
    "ENTERPRISE_EVENTS",
    "ENTERPRISE_RECORDS",
    "ENTERPRISE_SEARCH",
    "ENTITY_ID",
    "EXTERNAL_TABLES",
    "INDUSTRY_SECTION",
    "INDUSTRY_SECTION_NAME",
    "META_BUILD",
    "META_NOTES",
    "NAME",
    "PERSON_360",
    "PERSON_ENTERPRISE_LINKS",
    "RISK_FACTORS_DIM",
    "RISK_LEVELS_DIM",
    "RISK_WARNINGS",
    "TABLES",
    "USCC",
    "Column",
    "Table",
    "column",
]

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        ENTERPRISE_360,
        ENTERPRISE_SEARCH,
        ENTERPRISE_RECORDS,
        ENTERPRISE_EVENTS,
        PERSON_360,
        PERSON_ENTERPRISE_LINKS,
        RISK_FACTORS_DIM,
        RISK_LEVELS_DIM,
        CREDIT_RISK,
        CREDIT_RISK_FACTORS,
        RISK_WARNINGS,
        ABNORMAL_DISTRIBUTION,
        DEPARTMENT_SCORECARD,
        DIM_DIVISION,
        DIM_INDUSTRY,
        DIM_DEPARTMENT,
        META_BUILD,
        META_NOTES,
    )
}

#: Tables another module defines (contract in that module's ``COMMENTS``); built by :mod:`models.marts.build`
#: when the module is there.
EXTERNAL_TABLES: dict[str, str] = {
    "dim_calendar": "models.marts.calendar",
    "mart_service_efficiency": "models.marts.service",
    "mart_business_startup": "models.marts.service",
    "mart_business_startup_cases": "models.marts.service",
    "mart_kpi_daily": "models.marts.kpi",
}
