"""Whether a party is an enterprise or a person, from its name and (optionally) its 证件号: the one rule.

Why: courts, defaulter lists and service desks keep their parties in one column, often with no type column
beside it, and a party filed as the wrong kind never meets its entity (a company resolved among persons is lost
to the 360 card). A staging spec asks for this rule with the ``party_kind`` kind and then splits its mentions by
conditions (``when: {party_kind: [enterprise]}``); the rule itself lives here and nowhere else.

The key decides first, and only a key whose check character passes (docs/domain/identifiers.md): a valid USCC,
organization code or old 15-character TIN is an enterprise's, a valid resident ID (18 digits, or 15) a person's;
what the key *is* comes from :func:`models.standardize.identifiers.key_kind`, which goes by the check that passes
(a valid resident ID first); a key valid as both (an all-digit USCC that passes an ID's check too) is decided by the
name when the name says. A key that is invalid, masked or missing proves nothing, and the name decides: a
legal form or an organization word (有限公司, 合作社, 个体工商户, 中心, 事务所, a shop's 店 or a works' 厂 ...) ->
enterprise; two to four Han characters, or Han names joined by a middle dot (阿卜杜拉·艾买提) -> person. Anything
else is 'unknown' (a person's name is never guessed from a long or Latin name), and no name and no key 'missing'.
"""

from __future__ import annotations

import re

import polars as pl

from models.standardize.identifiers import key_kind, org_code, org_code_from_tin, resident_id, uscc
from models.standardize.names import LEGAL_FORMS
from models.standardize.nulls import IntoExpr, as_expr, keep_name, nullify

#: The values of a ``party_kind`` column.
PARTY_KINDS = ("enterprise", "person", "unknown", "missing")

#: Words that make a name an organization's wherever they stand (after NFKC: half-width brackets).
ORGANIZATION_WORDS = (
    *LEGAL_FORMS,
    *("公司", "企业", "合作社", "个体", "工商户", "集团", "中心", "协会", "学会", "商会", "基金会", "委员会"),
    *("事务所", "工作室", "经营部", "门市部", "服务部", "营业部", "办事处", "商行", "商店", "超市", "银行"),
    *("医院", "诊所", "药房", "药店", "学校", "学院", "幼儿园", "研究院", "研究所", "酒店", "宾馆", "饭店"),
    *("餐厅", "酒楼", "农场", "养殖场", "政府", "村委会", "居委会", "有限", "股份", "合伙", "贸易", "实业"),
)
#: Endings of a shop's or works' name (张记面馆, 宏达五金厂) that no given name ends in, from three characters.
ORGANIZATION_ENDINGS = ("厂", "店", "馆", "场", "站", "局", "坊", "铺", "吧", "室", "队", "处", "部")
#: Latin-script legal forms (a foreign-invested enterprise written in English).
LATIN_FORMS = r"(?i)\b(?:co\.?|ltd\.?|limited|inc\.?|corp\.?|corporation|company|llc|gmbh)(?:\b|$)"
#: A person's name: two to four Han characters, or Han names joined by middle dots (as typed, or a full stop).
PERSON_NAME = r"^(?:\p{Han}{2,4}|\p{Han}+(?:[·•‧・⋅∙﹒.．]\p{Han}+)+)$"


def _name_kind(name: pl.Expr) -> pl.Expr:
    """enterprise | person | unknown (null where there is no name) from a name alone."""
    text = nullify(name).str.normalize("NFKC").str.replace_all(r"\s+", "")
    words = "|".join(re.escape(w) for w in sorted(set(ORGANIZATION_WORDS), key=len, reverse=True))
    endings = "".join(ORGANIZATION_ENDINGS)
    organization = (
        text.str.contains(words)
        | (text.str.contains(f"[{endings}]$") & (text.str.len_chars() >= 3))
        | text.str.contains(LATIN_FORMS)
    )
    return (
        pl.when(text.is_null() | (text == ""))
        .then(pl.lit(None, pl.Utf8))
        .when(organization)
        .then(pl.lit("enterprise"))
        .when(text.str.contains(PERSON_NAME))
        .then(pl.lit("person"))
        .otherwise(pl.lit("unknown"))
    )


def _key_kind(key: pl.Expr) -> pl.Expr:
    """enterprise | person from a key whose check passes; null for any other key (invalid, masked, missing)."""
    kind = key_kind(key)
    return (
        pl.when((kind == "resident_id") & (resident_id(key).struct.field("status") == "valid"))
        .then(pl.lit("person"))
        .when((kind == "uscc") & (uscc(key).struct.field("status") == "valid"))
        .then(pl.lit("enterprise"))
        .when((kind == "org_code") & (org_code(key).struct.field("status") == "valid"))
        .then(pl.lit("enterprise"))
        .when((kind == "old_tin") & org_code_from_tin(key).is_not_null())
        .then(pl.lit("enterprise"))
        .otherwise(pl.lit(None, pl.Utf8))
    )


def _valid_as_both(key: pl.Expr) -> pl.Expr:
    """A key whose check passes both as a resident ID and as an enterprise's code (an all-digit USCC that also
    reads as an 18-digit ID, a 15-digit old TIN that also reads as a 15-digit ID): the key cannot tell, so the
    name does (:func:`models.standardize.identifiers.key_kind` alone would say person)."""
    person = resident_id(key).struct.field("status") == "valid"
    enterprise = (uscc(key).struct.field("status") == "valid") | org_code_from_tin(key).is_not_null()
    return (person & enterprise).fill_null(False)


def party_kind(name: IntoExpr, key: IntoExpr | None = None) -> pl.Expr:
    """One of :data:`PARTY_KINDS` per row: by the valid key first, else by the name (see the module's
    docstring); 'missing' where neither a name nor a key was given. Named like ``name``."""
    source = as_expr(name)
    by_name = _name_kind(source)
    if key is None:
        out = by_name.fill_null(pl.lit("missing"))
    else:
        key_expr = as_expr(key)
        nothing = by_name.is_null() & nullify(key_expr).is_null()
        out = (
            pl.when(nothing)
            .then(pl.lit("missing"))
            .when(_valid_as_both(key_expr) & by_name.is_in(["enterprise", "person"]))
            .then(by_name)
            .otherwise(pl.coalesce(_key_kind(key_expr), by_name, pl.lit("unknown")))
        )
    return keep_name(out, source)
