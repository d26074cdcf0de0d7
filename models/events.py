"""The event categories: the closed vocabulary by which the marts and the risk rules know what an event means.

Why: an event type (``int_events.event_type``) is a deployment's own name for what one of its tables records
(``admin_penalty``, ``xzcf`` ...) — issue 15: no layer past the connectors may know a city's names. Each event a
staging spec declares says which **category** it belongs to (``event_category:``, :mod:`models.staging.spec`),
the canonical ``int_events`` carries it in ``event_category``, and the marts count categories, never types. The
vocabulary is closed and defined here once, because each category is a promise the marts keep (a 360 column, a
risk factor, a daily indicator): a category nobody counts would be a silent no-op, and a free-text one a typo
the marts never see.

=========================  ======================  =====================================================
category                   中文                     counted by
=========================  ======================  =====================================================
``business_registration``  商事主体设立登记          new registrations (KPI); the enterprise timeline
``tax_registration``       税务登记                  new taxpayer registrations (KPI)
``abnormal_listing``       列入经营异常名录          360 abnormal_*, risk ``abnormal_listed``, 经营异常分布, KPI
``market_penalty``         市场监管行政处罚          360 penalty_* and penalty_market_count, risk, KPI
``environmental_penalty``  生态环境行政处罚          360 penalty_* and penalty_environmental_count, risk, KPI
``other_penalty``          其他行政处罚              360 penalty_* (the total only), risk, KPI (all penalties)
``court_case``             诉讼案件（当事人）        360 court_*, risk ``lawsuit_defendant``, person 360, KPI
``judgment_default``       失信被执行人              360 defaulter, risk ``defaulter``, person 360, KPI
``tax_rating``             纳税信用等级评价          360 tax_rating*, risk ``tax_rating_d``
``tax_arrears``            欠税                      360 tax_arrears_*, risk ``tax_arrears``, KPI
``tax_filing``             纳税申报                  the enterprise timeline only
``social_contribution``    单位社会保险缴费          the enterprise timeline only (headcount reads staging)
``insurance_enrollment``   个人参保登记              person 360 ``insured``, KPI
``service_case``           政务服务办件              360 service_*, person 360, KPI
``other``                  其他                      the timeline only: declared, counted by no mart
=========================  ======================  =====================================================

The three penalty categories form the **penalty family** (:data:`PENALTY_CATEGORIES`): 行政处罚 in total, with
the two regulatory fields every Chinese city has (市场监管, 生态环境) counted apart as the 360 card shows them.

The **risk events** (风险事件, :data:`RISK_CATEGORIES`) are the adverse records: the penalty family, court cases,
defaulter listings, tax arrears and abnormal-operations listings. An entity that carries one is where a wrong link
costs most (its risk score, the bureaus' exports): the gold review queue shows its borderline pairs first.

**Detail vocabularies.** Some categories give meaning to the values of the event's ``category`` column (the
detail: a litigation role, a performance status, a rating). These are national legal vocabularies — 民事诉讼法's
party roles, 最高人民法院's 失信被执行人 performance statuses, 国家税务总局's 纳税信用 levels A/B/M/C/D — so they are
defined with the categories, not per deployment: a court system that writes its roles otherwise maps them to
these in staging (``as: code`` with a crosswalk), exactly as a status code is mapped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventCategory:
    key: str
    name_zh: str
    name_en: str
    #: a family several categories belong to (``penalty``), counted together by the marts
    family: str | None = None
    #: an adverse record (风险事件): see :data:`RISK_CATEGORIES`
    risk: bool = False


CATEGORIES: tuple[EventCategory, ...] = (
    EventCategory("business_registration", "商事主体设立登记", "Business registration"),
    EventCategory("tax_registration", "税务登记", "Taxpayer registration"),
    EventCategory("abnormal_listing", "列入经营异常名录", "Abnormal-operations listing", risk=True),
    EventCategory(
        "market_penalty", "市场监管行政处罚", "Market-regulation penalty", family="penalty", risk=True
    ),
    EventCategory(
        "environmental_penalty", "生态环境行政处罚", "Environmental penalty", family="penalty", risk=True
    ),
    EventCategory(
        "other_penalty", "其他行政处罚", "Other administrative penalty", family="penalty", risk=True
    ),
    EventCategory("court_case", "诉讼案件（当事人）", "Court case, one event per party", risk=True),
    EventCategory("judgment_default", "失信被执行人", "Judgment defaulter listing", risk=True),
    EventCategory("tax_rating", "纳税信用等级评价", "Tax credit rating"),
    EventCategory("tax_arrears", "欠税", "Tax arrears", risk=True),
    EventCategory("tax_filing", "纳税申报", "Tax filing"),
    EventCategory("social_contribution", "单位社会保险缴费", "Employer social-insurance contribution"),
    EventCategory("insurance_enrollment", "个人参保登记", "Person's social-insurance enrollment"),
    EventCategory("service_case", "政务服务办件", "Government service case"),
    EventCategory("other", "其他", "Other: on the timeline, counted by no mart"),
)
CATEGORY_KEYS: tuple[str, ...] = tuple(c.key for c in CATEGORIES)
CATEGORY_BY_KEY: dict[str, EventCategory] = {c.key: c for c in CATEGORIES}

#: 行政处罚: every category of the penalty family.
PENALTY_CATEGORIES: tuple[str, ...] = tuple(c.key for c in CATEGORIES if c.family == "penalty")
#: 风险事件: the adverse records (penalties, court cases, defaulter listings, arrears, abnormal listings).
RISK_CATEGORIES: tuple[str, ...] = tuple(c.key for c in CATEGORIES if c.risk)

# ---- detail vocabularies (values of int_events.category for one category) ------------------------------
#: ``court_case``: the litigation roles that count as plaintiff (原告, 申请执行人) and as defendant (被告,
#: 被执行人); 第三人 counts in neither.
PLAINTIFF_ROLES: tuple[str, ...] = ("原告", "申请执行人")
DEFENDANT_ROLES: tuple[str, ...] = ("被告", "被执行人")
#: ``judgment_default``: the performance status of a listing that no longer makes a defaulter.
FULLY_PERFORMED = "全部履行"
#: ``tax_rating``: the worst 纳税信用 level (A, B, M, C, D).
WORST_TAX_RATING = "D"


def describe_categories() -> str:
    """The vocabulary for an error message: ``key (中文)``, comma-separated."""
    return ", ".join(f"{c.key} ({c.name_zh})" for c in CATEGORIES)
