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

Personal data (identifiers.md, GB/T 35273 §7.2, PIPL): the marts are read by many analysts, so a person's ID
number and phone appear only **masked** (ID: first 6 + last 4, ``110105********002X``; mobile ``138****8000``)
with a **keyed hash** of the normalized ID (HMAC-SHA256 with the secret in ``QST_PII_KEY``) that joins to the
bureau exports and lets an analyst count or link persons without seeing the number. The full ID stays in the
lake's gold ``dim_person``, where access is controlled.
"""

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


def _c(name: str, type_: str, zh: str, en: str) -> Column:
    return Column(name, type_, zh, en)


_ENTITY = _c("entity_id", "VARCHAR", "企业实体编号（跨夜稳定）", "Enterprise entity id, stable across nights")
_USCC = _c(
    "uscc", "VARCHAR", "统一社会信用代码（黄金记录）", "Unified social credit code of the golden record"
)
_NAME = _c("name", "VARCHAR", "企业名称（黄金记录）", "Enterprise name of the golden record")
_DIVISION = _c(
    "division_code", "VARCHAR", "行政区划代码（GB/T 2260，区县级）", "County-level division code, GB/T 2260"
)
_DISTRICT = _c("district_name", "VARCHAR", "区县名称", "County / district name")
_SECTION = _c(
    "industry_section", "VARCHAR", "国民经济行业门类（GB/T 4754，A–T）", "Industry section, GB/T 4754 (A-T)"
)
_SECTION_NAME = _c("industry_section_name", "VARCHAR", "行业门类名称", "Industry section name")
_AS_OF = _c(
    "as_of_date",
    "DATE",
    "统计截止日期（风险与近期指标的参照日）",
    "Reference day of the figures (risk and recent-window indicators)",
)

# --------------------------------------------------------------------------------------------------------
# 一企一档
# --------------------------------------------------------------------------------------------------------
ENTERPRISE_360 = Table(
    "mart_enterprise_360",
    "一企一档：每个企业一行，汇总黄金属性与各部门掌握的信息",
    "Enterprise 360: one row per enterprise with its golden attributes and what every department knows",
    "one row per enterprise entity (gold dim_enterprise)",
    (
        _ENTITY,
        _USCC,
        _NAME,
        _c("name_comparison", "VARCHAR", "名称比对形式（去地区、组织形式）", "Comparison form of the name"),
        _c("is_branch", "BOOLEAN", "是否分支机构", "Whether a branch"),
        _c(
            "parent_entity_id",
            "VARCHAR",
            "上级企业实体编号（分支机构）",
            "Parent enterprise entity id of a branch",
        ),
        _c("regno", "VARCHAR", "工商注册号（15位）", "Old 15-digit registration number"),
        _c("org_code", "VARCHAR", "组织机构代码", "Organization code"),
        _c("tin", "VARCHAR", "纳税人识别号", "Taxpayer identification number"),
        _c(
            "status",
            "VARCHAR",
            "登记状态（active 存续、revoked 吊销、deregistered 注销、moved_out 迁出）",
            "Registration status",
        ),
        _c("legal_rep_name", "VARCHAR", "法定代表人姓名", "Legal representative's name"),
        _c(
            "legal_rep_person_id",
            "VARCHAR",
            "法定代表人人员实体编号（一人一档）",
            "Legal representative's person entity id (mart_person_360)",
        ),
        _c("address", "VARCHAR", "住所", "Registered address"),
        _DIVISION,
        _DISTRICT,
        _c("industry", "VARCHAR", "行业代码（GB/T 4754 小类）", "Industry class code, GB/T 4754"),
        _SECTION,
        _SECTION_NAME,
        _c("founded_on", "DATE", "成立日期", "Founding date"),
        _c("registered_capital_wan", "DECIMAL(18,4)", "注册资本（万元）", "Registered capital, 10k yuan"),
        _c("source_records", "INTEGER", "关联的源记录数", "Linked source records"),
        _c(
            "departments",
            "VARCHAR[]",
            "掌握该企业信息的部门",
            "Departments holding records of the enterprise",
        ),
        _c(
            "tax_rating",
            "VARCHAR",
            "最近一次纳税信用等级（A/B/M/C/D）",
            "Latest tax credit rating (A/B/M/C/D)",
        ),
        _c("tax_rating_on", "DATE", "最近一次纳税信用评定日期", "Day of the latest tax credit rating"),
        _c("tax_rating_d_count", "INTEGER", "纳税信用D级次数", "Times rated D"),
        _c("tax_arrears_count", "INTEGER", "欠税记录数", "Tax arrears records"),
        _c("tax_arrears_amount", "DECIMAL(18,2)", "欠税金额合计（元）", "Total tax arrears, yuan"),
        _c("tax_arrears_latest_on", "DATE", "最近欠税日期", "Latest arrears day"),
        _c(
            "penalty_count",
            "INTEGER",
            "行政处罚次数（市场监管+生态环境）",
            "Administrative penalties, SAMR and environment",
        ),
        _c("penalty_samr_count", "INTEGER", "市场监管行政处罚次数", "SAMR penalties"),
        _c("penalty_env_count", "INTEGER", "生态环境行政处罚次数", "Environmental penalties"),
        _c("penalty_amount", "DECIMAL(18,2)", "罚款金额合计（元）", "Total fines, yuan"),
        _c("penalty_latest_on", "DATE", "最近处罚决定日期", "Latest penalty decision day"),
        _c(
            "penalty_count_12m",
            "INTEGER",
            "近12个月行政处罚次数",
            "Penalties in the 12 months up to as_of_date",
        ),
        _c("abnormal_count", "INTEGER", "列入经营异常名录次数", "Abnormal-operations listings"),
        _c(
            "abnormal_active",
            "BOOLEAN",
            "当前是否在经营异常名录中（未移出）",
            "Currently listed (not removed)",
        ),
        _c("abnormal_latest_on", "DATE", "最近列入日期", "Latest listing day"),
        _c("abnormal_latest_reason", "VARCHAR", "最近列入原因", "Reason of the latest listing"),
        _c(
            "court_plaintiff_count",
            "INTEGER",
            "作为原告/申请执行人的案件数",
            "Court cases as plaintiff or enforcement applicant",
        ),
        _c(
            "court_defendant_count",
            "INTEGER",
            "作为被告/被执行人的案件数",
            "Court cases as defendant or person subject to enforcement",
        ),
        _c(
            "court_defendant_amount",
            "DECIMAL(18,2)",
            "作为被告/被执行人的标的金额合计（元）",
            "Amount at stake as defendant, yuan",
        ),
        _c("court_latest_filed_on", "DATE", "最近立案日期", "Latest filing day of a case"),
        _c("is_defaulter", "BOOLEAN", "是否失信被执行人", "Listed as a judgment defaulter"),
        _c("defaulter_count", "INTEGER", "失信被执行人记录数", "Judgment-defaulter listings"),
        _c("defaulter_latest_on", "DATE", "最近失信立案日期", "Latest defaulter case filing day"),
        _c(
            "insured_headcount",
            "INTEGER",
            "最近缴费月参保人数",
            "Insured headcount in the latest contribution month",
        ),
        _c("insured_month", "DATE", "最近缴费月", "Latest contribution month"),
        _c(
            "insured_headcount_base",
            "INTEGER",
            "趋势基期参保人数（最近月前5个月内最早月份）",
            "Headcount of the trend's base month: the earliest month within the 5 before the latest",
        ),
        _c(
            "insured_headcount_change",
            "DOUBLE",
            "参保人数变化率（最近月/基期-1）",
            "Headcount change: latest / base - 1",
        ),
        _c(
            "social_arrears_amount",
            "DECIMAL(18,2)",
            "最近缴费月社保欠费（元）",
            "Contribution arrears of the latest month, yuan",
        ),
        _c("service_case_count", "INTEGER", "政务服务办件数", "Government service cases applied for"),
        _c(
            "service_case_count_12m",
            "INTEGER",
            "近12个月办件数",
            "Service cases in the 12 months up to as_of_date",
        ),
        _c("service_latest_on", "DATE", "最近申请办件日期", "Latest service application day"),
        _c(
            "risk_score",
            "INTEGER",
            "信用风险分（0–100，见 mart_credit_risk）",
            "Credit risk score 0-100 (mart_credit_risk)",
        ),
        _c("risk_level", "VARCHAR", "风险等级：低/中/高/极高", "Risk level"),
        _AS_OF,
    ),
    lookup=("uscc", "entity_id", "name"),
)

ENTERPRISE_SEARCH = Table(
    "mart_enterprise_search",
    "企业名称检索表：名称及其比对形式（去地区、组织形式），按检索键排序，支持前缀检索",
    "Name search: each enterprise under its name and its comparison form, stored ordered by the key so that a "
    "prefix search reads one block",
    "one row per (search key, enterprise)",
    (
        _c(
            "search_key",
            "VARCHAR",
            "检索键：企业名称或名称比对形式",
            "Search key: the name or its comparison form",
        ),
        _ENTITY,
        _USCC,
        _NAME,
        _c("status", "VARCHAR", "登记状态", "Registration status"),
        _c("district_name", "VARCHAR", "区县名称", "County / district name"),
        _c("risk_level", "VARCHAR", "风险等级：低/中/高/极高", "Risk level"),
    ),
)

ENTERPRISE_RECORDS = Table(
    "mart_enterprise_records",
    "一企一档明细：企业关联的每条源记录（可追溯到部门源表主键）",
    "Every source record linked to an enterprise, traceable to the department's table and primary key",
    "one row per (canonical enterprise record, entity)",
    (
        _ENTITY,
        _c("record_id", "VARCHAR", "规范记录编号 <部门>.<资产>:<主键>:<角色>", "Canonical record id"),
        _c("source_department", "VARCHAR", "来源部门", "Source department"),
        _c("source_asset", "VARCHAR", "来源资产", "Source asset"),
        _c("source_table", "VARCHAR", "来源表", "Source table"),
        _c("source_pk", "VARCHAR", "来源主键", "Source primary key"),
        _c(
            "role",
            "VARCHAR",
            "记录中的角色（subject 主体、party 当事人、employer 用人单位、applicant 申请人）",
            "Role of the enterprise in the record",
        ),
        _c("name", "VARCHAR", "源记录中的名称（标准化）", "Name as the record gives it, standardized"),
        _c("uscc", "VARCHAR", "源记录中的统一社会信用代码", "USCC as the record gives it"),
        _c(
            "rule",
            "VARCHAR",
            "归并规则（确定性规则或概率模型）",
            "Linking rule, deterministic or probabilistic",
        ),
        _c("match_probability", "DOUBLE", "匹配概率", "Match probability"),
        _c("why", "VARCHAR", "归并依据说明", "Why the record was linked"),
    ),
    lookup=("entity_id",),
)

ENTERPRISE_EVENTS = Table(
    "mart_enterprise_events",
    "一企一档明细：企业时间线上的每个事件（登记、异常、处罚、诉讼、失信、纳税、社保、办件）",
    "Every event on an enterprise's timeline",
    "one row per event whose subject record belongs to an enterprise entity",
    (
        _ENTITY,
        _c("event_id", "VARCHAR", "事件编号", "Event id"),
        _c(
            "event_type",
            "VARCHAR",
            "事件类型",
            "Event type (registration, abnormal_listing, admin_penalty, env_penalty, "
            "court_case, judgment_default, tax_filing, tax_rating, tax_arrears, social_contribution, service_case ...)",
        ),
        _c("event_date", "DATE", "事件日期", "Event day"),
        _c(
            "end_date",
            "DATE",
            "结束日期（移出、结案、办结、缴款）",
            "End day (removed, closed, completed, paid)",
        ),
        _c("amount", "DECIMAL(18,2)", "金额（元）", "Amount, yuan"),
        _c(
            "category",
            "VARCHAR",
            "类别（原因、处罚类别、诉讼地位、评级、税种、事项）",
            "Category: reason, penalty kind, litigation role, rating, tax item, service item",
        ),
        _c("reference", "VARCHAR", "文号 / 案号 / 编码", "Decision number, case number or code"),
        _c("status", "VARCHAR", "状态", "Status"),
        _c("source_department", "VARCHAR", "来源部门", "Source department"),
        _c("source_asset", "VARCHAR", "来源资产", "Source asset"),
        _c("source_pk", "VARCHAR", "来源主键", "Source primary key"),
        _c("subject_record_id", "VARCHAR", "主体规范记录编号", "Canonical record of the subject"),
    ),
    lookup=("entity_id",),
)

# --------------------------------------------------------------------------------------------------------
# 一人一档
# --------------------------------------------------------------------------------------------------------
_PERSON = _c("person_id", "VARCHAR", "人员实体编号（跨夜稳定）", "Person entity id, stable across nights")
PERSON_360 = Table(
    "mart_person_360",
    "一人一档：每人一行（身份证号与电话仅以脱敏形式及密钥哈希出现）",
    "Person 360: one row per person; ID number and phone masked, with a keyed hash of the ID for joins",
    "one row per person entity (gold dim_person)",
    (
        _PERSON,
        _c("name", "VARCHAR", "姓名", "Name"),
        _c("id_number_masked", "VARCHAR", "身份证号（脱敏：前6后4）", "ID number masked: first 6 and last 4"),
        _c(
            "id_hash",
            "VARCHAR",
            "身份证号密钥哈希（HMAC-SHA256，可与部门导出关联）",
            "Keyed hash (HMAC-SHA256) of the normalized ID number, joins to the bureau exports",
        ),
        _c("birth_year", "INTEGER", "出生年份", "Birth year"),
        _c("sex", "VARCHAR", "性别", "Sex"),
        _c("phone_masked", "VARCHAR", "电话（脱敏）", "Phone masked"),
        _DIVISION,
        _DISTRICT,
        _c("source_records", "INTEGER", "关联的源记录数", "Linked source records"),
        _c("departments", "VARCHAR[]", "掌握该人员信息的部门", "Departments holding records of the person"),
        _c(
            "legal_rep_count",
            "INTEGER",
            "担任法定代表人的企业数",
            "Enterprises the person represents legally",
        ),
        _c(
            "legal_rep_enterprise_ids",
            "VARCHAR[]",
            "担任法定代表人的企业实体编号",
            "Enterprise entity ids represented",
        ),
        _c(
            "defaulting_enterprise_count",
            "INTEGER",
            "担任法定代表人的失信企业数",
            "Represented enterprises that are judgment defaulters",
        ),
        _c(
            "high_risk_enterprise_count",
            "INTEGER",
            "担任法定代表人的高/极高风险企业数",
            "Represented enterprises at risk level 高 or 极高",
        ),
        _c("is_defaulter", "BOOLEAN", "本人是否失信被执行人", "The person is a judgment defaulter"),
        _c("court_case_count", "INTEGER", "本人作为当事人的案件数", "Court cases with the person as party"),
        _c("insured_record_count", "INTEGER", "参保记录数", "Social insurance enrolment records"),
        _c("service_case_count", "INTEGER", "本人申请的办件数", "Service cases applied for by the person"),
        _c("on_street_roster", "BOOLEAN", "是否在街道网格名册中", "On a street office roster"),
        _AS_OF,
    ),
    lookup=("person_id", "id_hash"),
)

PERSON_ENTERPRISE_LINKS = Table(
    "mart_person_enterprise_links",
    "人企关系：人员与企业的关联（法定代表人、参保单位）",
    "Person-enterprise links: legal representative of, insured at",
    "one row per (person, enterprise, relation)",
    (
        _PERSON,
        _ENTITY,
        _c(
            "relation",
            "VARCHAR",
            "关系：legal_rep 法定代表人 | insured_at 参保单位",
            "Relation: legal_rep | insured_at",
        ),
        _c("records", "INTEGER", "支持该关系的源记录数", "Source records supporting the relation"),
        _c("departments", "VARCHAR[]", "来源部门", "Departments the records come from"),
    ),
    lookup=("person_id", "entity_id"),
)

# --------------------------------------------------------------------------------------------------------
# 信用风险预警
# --------------------------------------------------------------------------------------------------------
RISK_FACTORS_DIM = Table(
    "dim_risk_factor",
    "信用风险因子及权重（可解释评分的依据）",
    "Credit risk factors, their points and the rule behind each",
    "one row per factor",
    (
        _c("factor", "VARCHAR", "因子键", "Factor key"),
        _c("points", "INTEGER", "分值", "Points added when the factor holds"),
        _c("reason_zh", "VARCHAR", "原因说明（中文）", "Reason text shown with the score (Chinese)"),
        _c("rule_en", "VARCHAR", "判定规则（英文）", "Rule, in English"),
        _c("source", "VARCHAR", "数据来源", "Source department and table"),
    ),
)
RISK_LEVELS_DIM = Table(
    "dim_risk_level",
    "信用风险等级及分数区间",
    "Risk levels and their score bands",
    "one row per level",
    (
        _c("level", "VARCHAR", "等级：低/中/高/极高", "Level"),
        _c("level_rank", "INTEGER", "等级序号（1低…4极高）", "Level rank, 1 = 低 ... 4 = 极高"),
        _c("min_score", "INTEGER", "最低分（含）", "Lowest score of the level, inclusive"),
        _c("max_score", "INTEGER", "最高分（含）", "Highest score of the level, inclusive"),
    ),
)
CREDIT_RISK = Table(
    "mart_credit_risk",
    "信用风险评分：每个企业一行，含各因子得分与原因",
    "Explainable credit risk score per enterprise: points per factor and the reasons",
    "one row per enterprise entity",
    (
        _ENTITY,
        _USCC,
        _NAME,
        _DIVISION,
        _DISTRICT,
        _SECTION,
        _c(
            "risk_score",
            "INTEGER",
            "风险分（0–100，各因子分值之和，封顶100）",
            "Score: sum of factor points, capped at 100",
        ),
        _c("risk_level", "VARCHAR", "风险等级：低/中/高/极高", "Risk level"),
        _c("level_rank", "INTEGER", "等级序号（1低…4极高）", "Level rank"),
        _c("level_since", "DATE", "进入当前等级的日期", "Day the enterprise entered its current level"),
        _c("factor_count", "INTEGER", "命中因子数", "Factors that hold"),
        _c("factors", "VARCHAR[]", "命中的因子键", "Keys of the factors that hold"),
        _c("reasons", "VARCHAR", "风险原因（中文，按分值排序）", "Reasons, Chinese, highest points first"),
        _c("p_abnormal_listed", "INTEGER", "因子分：经营异常名录", "Points: abnormal-operations listing"),
        _c("p_defaulter", "INTEGER", "因子分：失信被执行人", "Points: judgment defaulter"),
        _c("p_tax_rating_d", "INTEGER", "因子分：纳税信用D级", "Points: tax rating D"),
        _c("p_tax_arrears", "INTEGER", "因子分：欠税", "Points: tax arrears"),
        _c(
            "p_recent_penalty", "INTEGER", "因子分：近12个月行政处罚", "Points: penalty in the last 12 months"
        ),
        _c(
            "p_lawsuit_defendant",
            "INTEGER",
            "因子分：近24个月作为被告",
            "Points: defendant in the last 24 months",
        ),
        _c("p_social_arrears", "INTEGER", "因子分：欠缴社保费", "Points: social-insurance arrears"),
        _c("p_headcount_falling", "INTEGER", "因子分：参保人数下降", "Points: falling insured headcount"),
        _c(
            "p_rep_linked_defaulter",
            "INTEGER",
            "因子分：法定代表人关联失信",
            "Points: legal representative linked to defaulters",
        ),
        _AS_OF,
    ),
    lookup=("entity_id", "uscc"),
)
CREDIT_RISK_FACTORS = Table(
    "mart_credit_risk_factors",
    "信用风险因子明细：每个企业命中的每个因子及其依据",
    "Each factor that holds for an enterprise, with its evidence",
    "one row per (enterprise, factor that holds)",
    (
        _ENTITY,
        _c("factor", "VARCHAR", "因子键", "Factor key"),
        _c("points", "INTEGER", "分值", "Points"),
        _c("reason_zh", "VARCHAR", "原因说明", "Reason text"),
        _c("since", "DATE", "因子成立日期", "Day since which the factor holds"),
        _c("until", "DATE", "因子预计失效日期（时间窗因子）", "Day the factor lapses, for window factors"),
    ),
    lookup=("entity_id",),
)
RISK_WARNINGS = Table(
    "mart_risk_warnings",
    "信用风险预警：企业风险等级升高时产生预警，记录升级日期",
    "Risk warnings: an enterprise crossed into a higher level, on that day",
    "one row per (enterprise, day its level rose)",
    (
        _ENTITY,
        _USCC,
        _NAME,
        _DIVISION,
        _DISTRICT,
        _SECTION,
        _c("warned_on", "DATE", "预警日期（等级升高当天）", "Day the level rose"),
        _c("from_level", "VARCHAR", "原等级", "Level before"),
        _c("to_level", "VARCHAR", "新等级", "Level reached"),
        _c("to_level_rank", "INTEGER", "新等级序号", "Rank of the level reached"),
        _c("score", "INTEGER", "升级当日风险分", "Score on that day"),
        _c("reasons", "VARCHAR", "升级当日的风险原因", "Reasons on that day"),
        _c(
            "is_current",
            "BOOLEAN",
            "是否仍处于该等级或更高（截至统计日）",
            "Still at that level or higher on as_of_date",
        ),
        _AS_OF,
    ),
    lookup=("warned_on",),
)

# --------------------------------------------------------------------------------------------------------
# 经营异常分布 and 报送考核
# --------------------------------------------------------------------------------------------------------
ABNORMAL_DISTRIBUTION = Table(
    "mart_abnormal_distribution",
    "经营异常名录分布：按区县、行业门类、列入月份与原因统计",
    "Abnormal-operations listings by district, industry section, month listed and reason",
    "one row per (month, district, industry section, reason)",
    (
        _c("month", "DATE", "列入月份（月初）", "Month listed, its first day"),
        _DIVISION,
        _DISTRICT,
        _SECTION,
        _SECTION_NAME,
        _c("reason", "VARCHAR", "列入原因", "Reason for listing"),
        _c("listings", "INTEGER", "列入次数", "Listings"),
        _c("enterprises", "INTEGER", "涉及企业数", "Distinct enterprises listed"),
        _c("removed", "INTEGER", "其中已移出", "Of which removed since"),
        _c("still_listed", "INTEGER", "其中仍在名录中", "Of which still listed"),
    ),
    lookup=("division_code", "month"),
)
DEPARTMENT_SCORECARD = Table(
    "mart_department_scorecard",
    "部门报送考核：按日与按月，部门及源表的及时率、完整率、标识有效率、隔离率与得分",
    "Department submission scorecard by day and by month: timeliness, completeness, validity, quarantine, score",
    "one row per (grain, period, department, table); asset '*' is the department's total",
    (
        _c("grain", "VARCHAR", "粒度：day 日 | month 月", "Grain: day | month"),
        _c("period", "DATE", "日期或月份（月初）", "Day, or first day of the month"),
        _c("department", "VARCHAR", "部门", "Department"),
        _c("asset", "VARCHAR", "资产（'*' 为部门合计）", "Asset; '*' is the department total"),
        _c(
            "source_table",
            "VARCHAR",
            "源表或文件（'*' 为部门合计）",
            "Source table or file drop; '*' on the total",
        ),
        _c("records_received", "BIGINT", "报送记录数", "Records received"),
        _c("on_time", "BIGINT", "按时记录数", "Records on time"),
        _c("late", "BIGINT", "迟报记录数", "Records late"),
        _c("timeliness_rate", "DOUBLE", "及时率", "Timeliness rate"),
        _c("staged", "BIGINT", "已处理记录数", "Records silver has seen"),
        _c("quarantined", "BIGINT", "隔离记录数", "Records quarantined"),
        _c("completeness_rate", "DOUBLE", "完整率", "Completeness of mandatory fields"),
        _c("validity_rate", "DOUBLE", "标识有效率", "Share of valid identifiers"),
        _c("quarantine_rate", "DOUBLE", "隔离率", "Share quarantined"),
        _c(
            "score",
            "DOUBLE",
            "得分 = 100×(0.3及时+0.3完整+0.2有效+0.2(1−隔离))",
            "Score, formula of quality/scorecard.py",
        ),
        _c("grade", "VARCHAR", "等级：优≥90、良≥75、中≥60、差", "Grade"),
        _c("days", "INTEGER", "覆盖天数（按月粒度）", "Days covered (month grain)"),
    ),
    lookup=("department", "period"),
)

# --------------------------------------------------------------------------------------------------------
# dimensions and metadata
# --------------------------------------------------------------------------------------------------------
DIM_DIVISION = Table(
    "dim_division",
    "行政区划（GB/T 2260，区县级）",
    "Administrative divisions, county level",
    "one row per division",
    (
        _c("division_code", "VARCHAR", "区划代码", "Division code"),
        _c("division_name", "VARCHAR", "区划名称", "Division name"),
        _c("level", "INTEGER", "级别（1省 2市 3区县）", "Level: 1 province, 2 prefecture, 3 county"),
        _c("parent_code", "VARCHAR", "上级区划代码", "Parent division code"),
        _c("parent_name", "VARCHAR", "上级区划名称", "Parent division name"),
    ),
)
DIM_INDUSTRY = Table(
    "dim_industry_section",
    "国民经济行业门类（GB/T 4754-2017）",
    "Industry sections of GB/T 4754-2017",
    "one row per section",
    (
        _SECTION,
        _SECTION_NAME,
        _c("first_division", "VARCHAR", "起始大类", "First 2-digit division"),
        _c("last_division", "VARCHAR", "终止大类", "Last 2-digit division"),
    ),
)
META_BUILD = Table(
    "meta_build",
    "构建元数据：每个湖表读取的 Delta 版本（部门导出的清单复制此表）",
    "Build metadata: the Delta version read of each lake table (bureau export manifests copy it)",
    "one row per lake table read",
    (
        _c("lake_table", "VARCHAR", "湖表（层/名称）", "Lake table, layer/name"),
        _c("delta_version", "BIGINT", "读取的 Delta 版本", "Delta version read"),
        _c("committed_at", "TIMESTAMPTZ", "该版本提交时间", "Commit time of that version"),
        _c("built_at", "TIMESTAMPTZ", "集市构建时间", "When the marts were built"),
        _c("as_of_date", "DATE", "统计截止日期", "Reference day of the figures"),
        _c(
            "as_of_lake",
            "VARCHAR",
            "湖版本选择方式：latest | date:<日期> | versions",
            "How the lake versions were chosen",
        ),
    ),
)

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
        META_BUILD,
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

# --------------------------------------------------------------------------------------------------------
# the dashboard's queries ($name parameters; DuckDB: con.execute(sql, {"uscc": ...}))
# --------------------------------------------------------------------------------------------------------
DASHBOARD_QUERIES: dict[str, str] = {
    # 一企一档: the card of one enterprise by its USCC
    "enterprise_by_uscc": "SELECT * FROM mart_enterprise_360 WHERE uscc = $uscc",
    # 一企一档: search by name — names (or their comparison form, without region and legal form: 顺德实业 finds
    # 深圳市顺德实业有限公司) starting with the text, the exact name first (at most $limit rows). The range on
    # the sorted search_key is what makes it fast: the zone maps skip every other block.
    "enterprise_by_name": (
        "SELECT * FROM (SELECT DISTINCT entity_id, uscc, name, status, district_name, risk_level "
        "FROM mart_enterprise_search WHERE search_key >= $name AND search_key < $name || chr(1114111)) "
        "ORDER BY name <> $name, name LIMIT $limit"
    ),
    # the records and the timeline behind the card
    "enterprise_records": "SELECT * FROM mart_enterprise_records WHERE entity_id = $entity_id ORDER BY source_department, record_id",
    "enterprise_events": (
        "SELECT * FROM mart_enterprise_events WHERE entity_id = $entity_id "
        "ORDER BY event_date DESC NULLS LAST LIMIT $limit"
    ),
    "enterprise_risk_factors": "SELECT * FROM mart_credit_risk_factors WHERE entity_id = $entity_id ORDER BY points DESC",
    # 经营异常分布: one district, by month and industry section, between two months
    "district_abnormal_distribution": (
        "SELECT month, industry_section, industry_section_name, sum(listings) AS listings, "
        "sum(enterprises) AS enterprises, sum(still_listed) AS still_listed "
        "FROM mart_abnormal_distribution WHERE division_code = $division_code "
        "AND month BETWEEN $from_month AND $to_month GROUP BY ALL ORDER BY month, industry_section"
    ),
    # 经营异常分布: the whole city by district for a range of months (the map)
    "abnormal_by_district": (
        "SELECT division_code, district_name, sum(listings) AS listings, sum(still_listed) AS still_listed "
        "FROM mart_abnormal_distribution WHERE month BETWEEN $from_month AND $to_month "
        "GROUP BY ALL ORDER BY listings DESC"
    ),
    # 信用风险预警: the newest warnings at the highest levels
    "top_warnings": (
        "SELECT warned_on, entity_id, uscc, name, district_name, from_level, to_level, score, reasons "
        "FROM mart_risk_warnings WHERE warned_on >= $since AND is_current "
        "ORDER BY to_level_rank DESC, warned_on DESC, score DESC LIMIT $limit"
    ),
    # 信用风险: how many enterprises per level and district
    "risk_level_counts": (
        "SELECT district_name, risk_level, count(*) AS enterprises FROM mart_credit_risk GROUP BY ALL "
        "ORDER BY district_name, risk_level"
    ),
    # 报送考核: one department's scorecard rows ($grain 'day' or 'month'), newest first
    "department_scorecard": (
        "SELECT * FROM mart_department_scorecard WHERE department = $department AND grain = $grain "
        "AND period >= $since ORDER BY period DESC, asset = '*' DESC, asset"
    ),
}

#: Example parameters (the benchmark and the tests fill them from the data).
DASHBOARD_PARAMETERS: dict[str, tuple[str, ...]] = {
    "enterprise_by_uscc": ("uscc",),
    "enterprise_by_name": ("name", "limit"),
    "enterprise_records": ("entity_id",),
    "enterprise_events": ("entity_id", "limit"),
    "enterprise_risk_factors": ("entity_id",),
    "district_abnormal_distribution": ("division_code", "from_month", "to_month"),
    "abnormal_by_district": ("from_month", "to_month"),
    "top_warnings": ("since", "limit"),
    "risk_level_counts": (),
    "department_scorecard": ("department", "grain", "since"),
}
