"""The marts contract's 一企一档 and 一人一档 tables (enterprise and person cards, records, events, links)."""

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
    Table,
    column,
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
        ENTITY_ID,
        USCC,
        NAME,
        column(
            "name_comparison", "VARCHAR", "名称比对形式（去地区、组织形式）", "Comparison form of the name"
        ),
        column("is_branch", "BOOLEAN", "是否分支机构", "Whether a branch"),
        column(
            "parent_entity_id",
            "VARCHAR",
            "上级企业实体编号（分支机构）",
            "Parent enterprise entity id of a branch",
        ),
        column("regno", "VARCHAR", "工商注册号（15位）", "Old 15-digit registration number"),
        column("org_code", "VARCHAR", "组织机构代码", "Organization code"),
        column("tin", "VARCHAR", "纳税人识别号", "Taxpayer identification number"),
        column(
            "status",
            "VARCHAR",
            "登记状态（active 存续、revoked 吊销、deregistered 注销、moved_out 迁出）",
            "Registration status",
        ),
        column("legal_rep_name", "VARCHAR", "法定代表人姓名", "Legal representative's name"),
        column(
            "legal_rep_person_id",
            "VARCHAR",
            "法定代表人人员实体编号（一人一档）",
            "Legal representative's person entity id (mart_person_360)",
        ),
        column("address", "VARCHAR", "住所", "Registered address"),
        DIVISION_CODE,
        DISTRICT_NAME,
        column("industry", "VARCHAR", "行业代码（GB/T 4754 小类）", "Industry class code, GB/T 4754"),
        INDUSTRY_SECTION,
        INDUSTRY_SECTION_NAME,
        column("founded_on", "DATE", "成立日期", "Founding date"),
        column("registered_capital_wan", "DECIMAL(18,4)", "注册资本（万元）", "Registered capital, 10k yuan"),
        column("source_records", "INTEGER", "关联的源记录数", "Linked source records"),
        column(
            "departments",
            "VARCHAR[]",
            "掌握该企业信息的部门",
            "Departments holding records of the enterprise",
        ),
        column(
            "tax_rating",
            "VARCHAR",
            "最近一次纳税信用等级（A/B/M/C/D）",
            "Latest tax credit rating (A/B/M/C/D)",
        ),
        column("tax_rating_on", "DATE", "最近一次纳税信用评定日期", "Day of the latest tax credit rating"),
        column("tax_rating_d_count", "INTEGER", "纳税信用D级次数", "Times rated D"),
        column("tax_arrears_count", "INTEGER", "欠税记录数", "Tax arrears records"),
        column("tax_arrears_amount", "DECIMAL(18,2)", "欠税金额合计（元）", "Total tax arrears, yuan"),
        column("tax_arrears_latest_on", "DATE", "最近欠税日期", "Latest arrears day"),
        column(
            "penalty_count",
            "INTEGER",
            "行政处罚次数（市场监管+生态环境）",
            "Administrative penalties, SAMR and environment",
        ),
        column(
            "penalty_market_count",
            "INTEGER",
            "市场监管类行政处罚次数（事件类别 market_penalty）",
            "Penalties of category market_penalty",
        ),
        column(
            "penalty_environmental_count",
            "INTEGER",
            "生态环境类行政处罚次数（事件类别 environmental_penalty）",
            "Penalties of category environmental_penalty",
        ),
        column("penalty_amount", "DECIMAL(18,2)", "罚款金额合计（元）", "Total fines, yuan"),
        column("penalty_latest_on", "DATE", "最近处罚决定日期", "Latest penalty decision day"),
        column(
            "penalty_count_12m",
            "INTEGER",
            "近12个月行政处罚次数",
            "Penalties in the 12 months up to as_of_date",
        ),
        column("abnormal_count", "INTEGER", "列入经营异常名录次数", "Abnormal-operations listings"),
        column(
            "abnormal_active",
            "BOOLEAN",
            "当前是否在经营异常名录中（未移出）",
            "Currently listed (not removed)",
        ),
        column("abnormal_latest_on", "DATE", "最近列入日期", "Latest listing day"),
        column("abnormal_latest_reason", "VARCHAR", "最近列入原因", "Reason of the latest listing"),
        column(
            "court_plaintiff_count",
            "INTEGER",
            "作为原告/申请执行人的案件数",
            "Court cases as plaintiff or enforcement applicant",
        ),
        column(
            "court_defendant_count",
            "INTEGER",
            "作为被告/被执行人的案件数",
            "Court cases as defendant or person subject to enforcement",
        ),
        column(
            "court_defendant_amount",
            "DECIMAL(18,2)",
            "作为被告/被执行人的标的金额合计（元）",
            "Amount at stake as defendant, yuan",
        ),
        column("court_latest_filed_on", "DATE", "最近立案日期", "Latest filing day of a case"),
        column("is_defaulter", "BOOLEAN", "是否失信被执行人", "Listed as a judgment defaulter"),
        column("defaulter_count", "INTEGER", "失信被执行人记录数", "Judgment-defaulter listings"),
        column("defaulter_latest_on", "DATE", "最近失信立案日期", "Latest defaulter case filing day"),
        column(
            "insured_headcount",
            "INTEGER",
            "最近缴费月参保人数",
            "Insured headcount in the latest contribution month",
        ),
        column("insured_month", "DATE", "最近缴费月", "Latest contribution month"),
        column(
            "insured_headcount_base",
            "INTEGER",
            "趋势基期参保人数（最近月前5个月内最早月份）",
            "Headcount of the trend's base month: the earliest month within the 5 before the latest",
        ),
        column(
            "insured_headcount_change",
            "DOUBLE",
            "参保人数变化率（最近月/基期-1）",
            "Headcount change: latest / base - 1",
        ),
        column(
            "social_arrears_amount",
            "DECIMAL(18,2)",
            "最近缴费月社保欠费（元）",
            "Contribution arrears of the latest month, yuan",
        ),
        column("service_case_count", "INTEGER", "政务服务办件数", "Government service cases applied for"),
        column(
            "service_case_count_12m",
            "INTEGER",
            "近12个月办件数",
            "Service cases in the 12 months up to as_of_date",
        ),
        column("service_latest_on", "DATE", "最近申请办件日期", "Latest service application day"),
        column(
            "risk_score",
            "INTEGER",
            "信用风险分（0–100，见 mart_credit_risk）",
            "Credit risk score 0-100 (mart_credit_risk)",
        ),
        column("risk_level", "VARCHAR", "风险等级：低/中/高/极高", "Risk level"),
        AS_OF,
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
        column(
            "search_key",
            "VARCHAR",
            "检索键：企业名称或名称比对形式",
            "Search key: the name or its comparison form",
        ),
        ENTITY_ID,
        USCC,
        NAME,
        column("status", "VARCHAR", "登记状态", "Registration status"),
        column("district_name", "VARCHAR", "区县名称", "County / district name"),
        column("risk_level", "VARCHAR", "风险等级：低/中/高/极高", "Risk level"),
    ),
)

ENTERPRISE_RECORDS = Table(
    "mart_enterprise_records",
    "一企一档明细：企业关联的每条源记录（可追溯到部门源表主键）",
    "Every source record linked to an enterprise, traceable to the department's table and primary key",
    "one row per (canonical enterprise record, entity)",
    (
        ENTITY_ID,
        column("record_id", "VARCHAR", "规范记录编号 <部门>.<资产>:<主键>:<角色>", "Canonical record id"),
        column("source_department", "VARCHAR", "来源部门", "Source department"),
        column("source_asset", "VARCHAR", "来源资产", "Source asset"),
        column("source_table", "VARCHAR", "来源表", "Source table"),
        column("source_pk", "VARCHAR", "来源主键", "Source primary key"),
        column(
            "role",
            "VARCHAR",
            "记录中的角色（subject 主体、party 当事人、employer 用人单位、applicant 申请人）",
            "Role of the enterprise in the record",
        ),
        column("name", "VARCHAR", "源记录中的名称（标准化）", "Name as the record gives it, standardized"),
        column("uscc", "VARCHAR", "源记录中的统一社会信用代码", "USCC as the record gives it"),
        column(
            "rule",
            "VARCHAR",
            "归并规则（确定性规则或概率模型）",
            "Linking rule, deterministic or probabilistic",
        ),
        column("match_probability", "DOUBLE", "匹配概率", "Match probability"),
        column("why", "VARCHAR", "归并依据说明", "Why the record was linked"),
    ),
    lookup=("entity_id",),
)

ENTERPRISE_EVENTS = Table(
    "mart_enterprise_events",
    "一企一档明细：企业时间线上的每个事件（登记、异常、处罚、诉讼、失信、纳税、社保、办件）",
    "Every event on an enterprise's timeline",
    "one row per event whose subject record belongs to an enterprise entity",
    (
        ENTITY_ID,
        column("event_id", "VARCHAR", "事件编号", "Event id"),
        column("event_type", "VARCHAR", "事件类型（部署自定义）", "Event type, the deployment's own name"),
        column(
            "event_category",
            "VARCHAR",
            "事件类别（登记、异常、处罚、诉讼、失信、纳税、社保、办件……）",
            "Event category, what the marts count (models/events.py: business_registration, abnormal_listing, "
            "market_penalty, environmental_penalty, court_case, judgment_default, tax_rating, tax_arrears, "
            "service_case ...)",
        ),
        column("event_date", "DATE", "事件日期", "Event day"),
        column(
            "end_date",
            "DATE",
            "结束日期（移出、结案、办结、缴款）",
            "End day (removed, closed, completed, paid)",
        ),
        column("amount", "DECIMAL(18,2)", "金额（元）", "Amount, yuan"),
        column(
            "category",
            "VARCHAR",
            "类别（原因、处罚类别、诉讼地位、评级、税种、事项）",
            "Category: reason, penalty kind, litigation role, rating, tax item, service item",
        ),
        column("reference", "VARCHAR", "文号 / 案号 / 编码", "Decision number, case number or code"),
        column("status", "VARCHAR", "状态", "Status"),
        column("source_department", "VARCHAR", "来源部门", "Source department"),
        column("source_asset", "VARCHAR", "来源资产", "Source asset"),
        column("source_pk", "VARCHAR", "来源主键", "Source primary key"),
        column("subject_record_id", "VARCHAR", "主体规范记录编号", "Canonical record of the subject"),
    ),
    lookup=("entity_id",),
)

# --------------------------------------------------------------------------------------------------------
# 一人一档
# --------------------------------------------------------------------------------------------------------
_PERSON = column("person_id", "VARCHAR", "人员实体编号（跨夜稳定）", "Person entity id, stable across nights")
PERSON_360 = Table(
    "mart_person_360",
    "一人一档：每人一行（身份证号与电话仅以脱敏形式及密钥哈希出现）",
    "Person 360: one row per person; ID number and phone masked, with a keyed hash of the ID for joins",
    "one row per person entity (gold dim_person)",
    (
        _PERSON,
        column("name", "VARCHAR", "姓名", "Name"),
        column(
            "id_number_masked", "VARCHAR", "身份证号（脱敏：前6后4）", "ID number masked: first 6 and last 4"
        ),
        column(
            "id_hash",
            "VARCHAR",
            "身份证号密钥哈希（HMAC-SHA256，可与部门导出关联）",
            "Keyed hash (HMAC-SHA256) of the normalized ID number, joins to the bureau exports",
        ),
        column("birth_year", "INTEGER", "出生年份", "Birth year"),
        column("sex", "VARCHAR", "性别", "Sex"),
        column("phone_masked", "VARCHAR", "电话（脱敏）", "Phone masked"),
        DIVISION_CODE,
        DISTRICT_NAME,
        column("source_records", "INTEGER", "关联的源记录数", "Linked source records"),
        column(
            "departments", "VARCHAR[]", "掌握该人员信息的部门", "Departments holding records of the person"
        ),
        column(
            "legal_rep_count",
            "INTEGER",
            "担任法定代表人的企业数",
            "Enterprises the person represents legally",
        ),
        column(
            "legal_rep_enterprise_ids",
            "VARCHAR[]",
            "担任法定代表人的企业实体编号",
            "Enterprise entity ids represented",
        ),
        column(
            "defaulting_enterprise_count",
            "INTEGER",
            "担任法定代表人的失信企业数",
            "Represented enterprises that are judgment defaulters",
        ),
        column(
            "high_risk_enterprise_count",
            "INTEGER",
            "担任法定代表人的高/极高风险企业数",
            "Represented enterprises at risk level 高 or 极高",
        ),
        column("is_defaulter", "BOOLEAN", "本人是否失信被执行人", "The person is a judgment defaulter"),
        column(
            "court_case_count", "INTEGER", "本人作为当事人的案件数", "Court cases with the person as party"
        ),
        column("insured_record_count", "INTEGER", "参保记录数", "Social insurance enrolment records"),
        column(
            "service_case_count", "INTEGER", "本人申请的办件数", "Service cases applied for by the person"
        ),
        column("on_street_roster", "BOOLEAN", "是否在街道网格名册中", "On a street office roster"),
        AS_OF,
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
        ENTITY_ID,
        column(
            "relation",
            "VARCHAR",
            "关系：legal_rep 法定代表人 | insured_at 参保单位",
            "Relation: legal_rep | insured_at",
        ),
        column("records", "INTEGER", "支持该关系的源记录数", "Source records supporting the relation"),
        column("departments", "VARCHAR[]", "来源部门", "Departments the records come from"),
    ),
    lookup=("person_id", "entity_id"),
)
