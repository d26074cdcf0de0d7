"""The marts contract's 信用风险预警, 经营异常分布 and 报送考核 tables (risk, abnormal operations, scorecard)."""

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
# 信用风险预警
# --------------------------------------------------------------------------------------------------------
RISK_FACTORS_DIM = Table(
    "dim_risk_factor",
    "信用风险因子及权重（可解释评分的依据）",
    "Credit risk factors, their points and the rule behind each",
    "one row per factor",
    (
        column("factor", "VARCHAR", "因子键", "Factor key"),
        column("points", "INTEGER", "分值", "Points added when the factor holds"),
        column("reason_zh", "VARCHAR", "原因说明（中文）", "Reason text shown with the score (Chinese)"),
        column("rule_en", "VARCHAR", "判定规则（英文）", "Rule, in English"),
        column("source", "VARCHAR", "数据来源", "Source department and table"),
    ),
)
RISK_LEVELS_DIM = Table(
    "dim_risk_level",
    "信用风险等级及分数区间",
    "Risk levels and their score bands",
    "one row per level",
    (
        column("level", "VARCHAR", "等级：低/中/高/极高", "Level"),
        column("level_rank", "INTEGER", "等级序号（1低…4极高）", "Level rank, 1 = 低 ... 4 = 极高"),
        column("min_score", "INTEGER", "最低分（含）", "Lowest score of the level, inclusive"),
        column("max_score", "INTEGER", "最高分（含）", "Highest score of the level, inclusive"),
    ),
)
CREDIT_RISK = Table(
    "mart_credit_risk",
    "信用风险评分：每个企业一行，含各因子得分与原因",
    "Explainable credit risk score per enterprise: points per factor and the reasons",
    "one row per enterprise entity",
    (
        ENTITY_ID,
        USCC,
        NAME,
        DIVISION_CODE,
        DISTRICT_NAME,
        INDUSTRY_SECTION,
        column(
            "risk_score",
            "INTEGER",
            "风险分（0–100，各因子分值之和，封顶100）",
            "Score: sum of factor points, capped at 100",
        ),
        column("risk_level", "VARCHAR", "风险等级：低/中/高/极高", "Risk level"),
        column("level_rank", "INTEGER", "等级序号（1低…4极高）", "Level rank"),
        column("level_since", "DATE", "进入当前等级的日期", "Day the enterprise entered its current level"),
        column("factor_count", "INTEGER", "命中因子数", "Factors that hold"),
        column("factors", "VARCHAR[]", "命中的因子键", "Keys of the factors that hold"),
        column(
            "reasons", "VARCHAR", "风险原因（中文，按分值排序）", "Reasons, Chinese, highest points first"
        ),
        column("p_abnormal_listed", "INTEGER", "因子分：经营异常名录", "Points: abnormal-operations listing"),
        column("p_defaulter", "INTEGER", "因子分：失信被执行人", "Points: judgment defaulter"),
        column("p_tax_rating_d", "INTEGER", "因子分：纳税信用D级", "Points: tax rating D"),
        column("p_tax_arrears", "INTEGER", "因子分：欠税", "Points: tax arrears"),
        column(
            "p_recent_penalty", "INTEGER", "因子分：近12个月行政处罚", "Points: penalty in the last 12 months"
        ),
        column(
            "p_lawsuit_defendant",
            "INTEGER",
            "因子分：近24个月作为被告",
            "Points: defendant in the last 24 months",
        ),
        column("p_social_arrears", "INTEGER", "因子分：欠缴社保费", "Points: social-insurance arrears"),
        column("p_headcount_falling", "INTEGER", "因子分：参保人数下降", "Points: falling insured headcount"),
        column(
            "p_rep_linked_defaulter",
            "INTEGER",
            "因子分：法定代表人关联失信",
            "Points: legal representative linked to defaulters",
        ),
        AS_OF,
    ),
    lookup=("entity_id", "uscc"),
)
CREDIT_RISK_FACTORS = Table(
    "mart_credit_risk_factors",
    "信用风险因子明细：每个企业命中的每个因子及其依据",
    "Each factor that holds for an enterprise, with its evidence",
    "one row per (enterprise, factor that holds)",
    (
        ENTITY_ID,
        column("factor", "VARCHAR", "因子键", "Factor key"),
        column("points", "INTEGER", "分值", "Points"),
        column("reason_zh", "VARCHAR", "原因说明", "Reason text"),
        column("since", "DATE", "因子成立日期", "Day since which the factor holds"),
        column(
            "until", "DATE", "因子预计失效日期（时间窗因子）", "Day the factor lapses, for window factors"
        ),
    ),
    lookup=("entity_id",),
)
RISK_WARNINGS = Table(
    "mart_risk_warnings",
    "信用风险预警：企业风险等级升高时产生预警，记录升级日期",
    "Risk warnings: an enterprise crossed into a higher level, on that day",
    "one row per (enterprise, day its level rose)",
    (
        ENTITY_ID,
        USCC,
        NAME,
        DIVISION_CODE,
        DISTRICT_NAME,
        INDUSTRY_SECTION,
        column("warned_on", "DATE", "预警日期（等级升高当天）", "Day the level rose"),
        column("from_level", "VARCHAR", "原等级", "Level before"),
        column("to_level", "VARCHAR", "新等级", "Level reached"),
        column("to_level_rank", "INTEGER", "新等级序号", "Rank of the level reached"),
        column("score", "INTEGER", "升级当日风险分", "Score on that day"),
        column("reasons", "VARCHAR", "升级当日的风险原因", "Reasons on that day"),
        column(
            "is_current",
            "BOOLEAN",
            "是否仍处于该等级或更高（截至统计日）",
            "Still at that level or higher on as_of_date",
        ),
        AS_OF,
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
        column("month", "DATE", "列入月份（月初）", "Month listed, its first day"),
        DIVISION_CODE,
        DISTRICT_NAME,
        INDUSTRY_SECTION,
        INDUSTRY_SECTION_NAME,
        column("reason", "VARCHAR", "列入原因", "Reason for listing"),
        column("listings", "INTEGER", "列入次数", "Listings"),
        column("enterprises", "INTEGER", "涉及企业数", "Distinct enterprises listed"),
        column("removed", "INTEGER", "其中已移出", "Of which removed since"),
        column("still_listed", "INTEGER", "其中仍在名录中", "Of which still listed"),
    ),
    lookup=("division_code", "month"),
)
DEPARTMENT_SCORECARD = Table(
    "mart_department_scorecard",
    "部门报送考核：按日与按月，部门及源表的及时率、完整率、标识有效率、隔离率与得分",
    "Department submission scorecard by day and by month: timeliness, completeness, validity, quarantine, score",
    "one row per (grain, period, department, table); asset '*' is the department's total",
    (
        column("grain", "VARCHAR", "粒度：day 日 | month 月", "Grain: day | month"),
        column("period", "DATE", "日期或月份（月初）", "Day, or first day of the month"),
        column("department", "VARCHAR", "部门", "Department"),
        column("asset", "VARCHAR", "资产（'*' 为部门合计）", "Asset; '*' is the department total"),
        column(
            "source_table",
            "VARCHAR",
            "源表或文件（'*' 为部门合计）",
            "Source table or file drop; '*' on the total",
        ),
        column("records_received", "BIGINT", "报送记录数", "Records received"),
        column("on_time", "BIGINT", "按时记录数", "Records on time"),
        column("late", "BIGINT", "迟报记录数", "Records late"),
        column("timeliness_rate", "DOUBLE", "及时率", "Timeliness rate"),
        column("staged", "BIGINT", "已处理记录数", "Records silver has seen"),
        column("quarantined", "BIGINT", "隔离记录数", "Records quarantined"),
        column("completeness_rate", "DOUBLE", "完整率", "Completeness of mandatory fields"),
        column("validity_rate", "DOUBLE", "标识有效率", "Share of valid identifiers"),
        column("quarantine_rate", "DOUBLE", "隔离率", "Share quarantined"),
        column(
            "score",
            "DOUBLE",
            "得分 = 100×(0.3及时+0.3完整+0.2有效+0.2(1−隔离))",
            "Score, formula of quality/scorecard.py",
        ),
        column("grade", "VARCHAR", "等级：优≥90、良≥75、中≥60、差", "Grade"),
        column("days", "INTEGER", "覆盖天数（按月粒度）", "Days covered (month grain)"),
    ),
    lookup=("department", "period"),
)
