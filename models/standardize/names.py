"""Enterprise and person names, standardized and reduced to a comparison form, vectorized.

:func:`enterprise_name` returns ``struct{original, normalized, comparison, legal_form, region, is_branch,
parent_comparison, status_suffix}``:

* ``normalized`` -- NFKC (full-width ASCII to half-width), traditional characters to simplified, spaces
  trimmed and collapsed, brackets written the Chinese way ``（）``, status suffix removed. The legal form is
  kept as spelled (有限责任公司 stays 有限责任公司: it is the registered name).
* ``status_suffix`` -- the status a department appended in brackets (``已注销``, ``吊销``, ``停业`` ...).
* ``legal_form`` -- the canonical legal form: 有限公司/有限责任公司 -> ``有限责任公司``; 股份公司/股份有限公司
  -> ``股份有限公司``; ``个人独资企业``, ``普通合伙企业``, ``特殊普通合伙企业``, ``有限合伙企业``,
  ``合伙企业``, ``农民专业合作社``, ``个体工商户`` (when the name says so). A branch reports its parent's.
* ``region`` -- the place the name carries, as the canonical full name of the most specific division
  (``深圳市`` for 腾讯科技（深圳）有限公司, 深圳市X有限公司, 深圳X有限公司; ``南山区`` for 深圳市南山区X店;
  ``中国`` for X（中国）有限公司). A region in brackets wins; otherwise the chain
  [province][prefecture][county] at the front of the name, full or short names (a county only by its full
  name, so a 字号 that starts like a district is left alone).
* ``is_branch`` / ``parent_comparison`` -- a name ending in 分公司, 分店, 营业部, 分厂, 办事处, 代表处, 分部,
  分行, 支行 ... is a branch; its parent is the name up to the parent's legal form (or, without one, up to a
  trailing place name), and ``parent_comparison`` is the parent's comparison form:
  '深圳市大码网络科技有限公司龙岗区分公司' -> '大码网络科技'.
* ``comparison`` -- what names are compared on across departments: simplified, without status suffix,
  region, legal form, brackets, punctuation or spaces, Latin letters upper-cased. Every variant the
  departments produce for one enterprise (legal-form spelling, region in brackets or in front, half-width
  brackets, traditional characters, trailing spaces, （已注销）) gives the same comparison form; a branch keeps
  its place and suffix ('大码网络科技龙岗区分公司'), so it never equals its parent.

:func:`person_name` returns ``struct{normalized, comparison}``.

Both functions are one vectorized batch function over the whole column (Polars string kernels; patterns and
maps built once per process; ``replace_many`` / ``replace_strict``) -- never Python per row. Values that repeat
(a department's monthly rows repeat the employer's name) are computed once per distinct value and joined
back, and each rewrite touches only the values it can change. Measured on 1M names from a simulated estate
(``python tests/test_standardize_names.py``): about 2-3M rows/s as used, 0.45-0.65M rows/s with every row
computed (2 cores).
Traditional -> simplified is character-level, from OpenCC's ``TSCharacters.txt`` (Apache-2.0, shipped in
opencc-python-reimplemented); characters that OpenCC lists as their own simplified form (乾 於 ...) and the
characters the 通用规范汉字表 keeps for personal names (昇 陞 甦) are left alone.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import polars as pl

from models.standardize.addresses import division_names, division_patterns, on_unique, to_expr

__all__ = [
    "ENTERPRISE_NAME",
    "PERSON_NAME",
    "enterprise_name",
    "person_name",
    "to_simplified",
    "traditional_to_simplified_map",
]

ENTERPRISE_NAME = pl.Struct(
    {
        "original": pl.Utf8,
        "normalized": pl.Utf8,
        "comparison": pl.Utf8,
        "legal_form": pl.Utf8,
        "region": pl.Utf8,
        "is_branch": pl.Boolean,
        "parent_comparison": pl.Utf8,
        "status_suffix": pl.Utf8,
    }
)
PERSON_NAME = pl.Struct({"normalized": pl.Utf8, "comparison": pl.Utf8})

# Characters OpenCC would change but that are standard simplified characters for names (通用规范汉字表 2013).
KEEP_CHARACTERS = "昇陞甦"

# Spelling -> canonical legal form. Longest spellings first where one contains another. Internally names
# carry half-width brackets (after NFKC), so bracketed forms are written with ( ).
LEGAL_FORMS: dict[str, str] = {
    "股份有限公司": "股份有限公司",
    "股份公司": "股份有限公司",
    "有限责任公司": "有限责任公司",
    "有限公司": "有限责任公司",
    "个人独资企业": "个人独资企业",
    "(特殊普通合伙)": "特殊普通合伙企业",
    "特殊普通合伙企业": "特殊普通合伙企业",
    "(普通合伙)": "普通合伙企业",
    "普通合伙企业": "普通合伙企业",
    "(有限合伙)": "有限合伙企业",
    "有限合伙企业": "有限合伙企业",
    "合伙企业": "合伙企业",
    "农民专业合作社": "农民专业合作社",
    "(个体工商户)": "个体工商户",
    "(个体户)": "个体工商户",
    "个体工商户": "个体工商户",
}
BRANCH_SUFFIXES = [
    "分公司",
    "分店",
    "营业部",
    "分厂",
    "办事处",
    "代表处",
    "分部",
    "分行",
    "支行",
    "分理处",
    "分中心",
    "分所",
    "分社",
    "分校",
    "分院",
    "分场",
]
# What departments append to a name in brackets when the entity is gone or inactive.
STATUS_PATTERN = r"(?:已)?(?:注销|吊销(?:[,、]?未注销)?|撤销|停业|歇业|迁出|清算中?|关闭)"
OTHER_COUNTRY_REGIONS = ["中国"]

_OPEN, _CLOSE = r"[(\[【〔]", r"[)\]】〕]"


def _alt(words) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda s: (-len(s), s)))


@lru_cache(maxsize=1)
def traditional_to_simplified_map() -> dict[str, str]:
    """Traditional character -> simplified character, one to one (OpenCC's first candidate)."""
    text = resources.files("opencc").joinpath("dictionary", "TSCharacters.txt").read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        trad, _, cands = line.partition("\t")
        candidates = cands.split(" ")
        if len(trad) != 1 or trad in candidates or trad in KEEP_CHARACTERS:
            continue
        out[trad] = candidates[0]
    return out


def to_simplified(expr: pl.Expr) -> pl.Expr:
    """Traditional characters replaced by simplified ones (character level, one pass)."""
    return expr.str.replace_many(traditional_to_simplified_map())


# Text made only of these is unchanged by NFKC: printable ASCII and the CJK unified ideographs (basic block,
# extensions A to F). Anything else (full-width forms, U+3000, compatibility ideographs ...) is normalized.
_NFKC_STABLE = r"^[\x20-\x7E\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}\x{20000}-\x{2EBEF}]*$"


def _patch(s: pl.Series, mask: pl.Series, fn) -> pl.Series:
    """``fn`` applied (as a vectorized Series function) only to the values where ``mask`` is true: string
    rewrites allocate, and most names need none of them."""
    mask = mask.fill_null(False)
    if not mask.any():
        return s
    idx = mask.arg_true()
    return s.clone().scatter(idx, fn(s.gather(idx)))


def _clean_series(s: pl.Series) -> pl.Series:
    """NFKC, simplified, whitespace trimmed and collapsed; empty -> null."""
    s = s.cast(pl.Utf8)
    s = _patch(s, ~s.str.contains(_NFKC_STABLE), lambda v: v.str.normalize("NFKC"))
    t2s = traditional_to_simplified_map()
    s = _patch(s, s.str.contains_any(list(t2s)), lambda v: v.str.replace_many(t2s))
    s = _patch(s, s.str.contains(r"\s"), lambda v: v.str.replace_all(r"\s+", " ").str.strip_chars())
    return pl.select(pl.when(s.str.len_bytes() > 0).then(s)).to_series().alias(s.name)


def _upper(s: pl.Series) -> pl.Series:
    return _patch(s, s.str.contains("[a-z]"), lambda v: v.str.to_uppercase())


@lru_cache(maxsize=1)
def _patterns() -> dict:
    d = division_patterns()
    places = division_names()
    region_alt = _alt([*places, *OTHER_COUNTRY_REGIONS])
    legal_alt = _alt(LEGAL_FORMS)
    branch_alt = _alt(BRANCH_SUFFIXES)
    return {
        "maybe_status": rf"{_CLOSE}\s*$",
        "status": rf"\s*{_OPEN}\s*({STATUS_PATTERN})\s*{_CLOSE}\s*$",
        "maybe_branch": rf"(?:{branch_alt})$",
        "branch": rf"^(.+?)(?:{branch_alt})$",
        "legal": legal_alt,
        "legal_last": rf"^(.*(?:{legal_alt}))(.*)$",
        "trailing_place": rf"({_alt(places)})$",
        "bracket_region": rf"\(\s*({region_alt})\s*\)",
        # the region chain at the front: [province][prefecture [county] | county | prefecture's short name
        # [county]] -- a county by its full name only, so that a 字号 that starts like a district stays
        "front": (
            rf"^(?:{d['prov']})?(?:(?:{d['city_full']})(?:{d['county_full']})?|(?:{d['county_full']})"
            rf"|(?:{d['city_short']})(?:{d['county_full']})?)?"
        ),
        "prov": f"^({d['prov']})",
        "city_full": f"^({d['city_full']})",
        "city_short": f"^({d['city_short']})",
        "county_full": f"^({d['county_full']})",
        # what the comparison form drops besides the region: legal forms, spaces, punctuation, symbols
        "drop": rf"(?:{legal_alt})|[\s\p{{P}}\p{{S}}]",
        "places": {**places, **{r: r for r in OTHER_COUNTRY_REGIONS}},
    }


def _nulls(n: int) -> pl.Series:
    return pl.Series([None] * n, dtype=pl.Utf8)


def _front_regions(prefixes: pl.Series) -> dict[str, str]:
    """Each distinct front prefix (深圳市, 广东省深圳市, 深圳市南山区 ...) -> the canonical full name of its most
    specific division, read level by level exactly as the ``front`` pattern matched it."""
    p = _patterns()
    c = pl.col
    f = pl.DataFrame({"t": prefixes.drop_nulls().unique()}).filter(c("t") != "")
    f = f.with_columns(pv=c("t").str.extract(p["prov"], 1))
    f = f.with_columns(t1=c("t").str.slice(c("pv").str.len_chars().fill_null(0)))
    f = f.with_columns(
        ct=pl.coalesce(
            c("t1").str.extract(p["city_full"], 1),
            c("t1").str.extract(p["county_full"], 1),
            c("t1").str.extract(p["city_short"], 1),
        )
    )
    f = f.with_columns(t2=c("t1").str.slice(c("ct").str.len_chars().fill_null(0)))
    f = f.with_columns(d1=c("t2").str.extract(p["county_full"], 1))
    f = f.with_columns(
        region=pl.coalesce("d1", "ct", "pv").replace_strict(p["places"], default=None, return_dtype=pl.Utf8)
    )
    return dict(f.select("t", "region").iter_rows())


def _comparison(x: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(comparison form, region) of cleaned names whose status suffix is already removed.

    A region in brackets is removed wherever it is; otherwise the region chain at the front. Then legal forms,
    spaces, punctuation and symbols go, and Latin letters are upper-cased. A name that is nothing but a place
    and a legal form keeps its place (深圳市有限公司 -> 深圳市)."""
    p = _patterns()
    n = len(x)
    bracket, t = _nulls(n), x
    has_bracket = x.str.contains("(", literal=True).fill_null(False)
    if has_bracket.any():
        idx = has_bracket.arg_true()
        sub = x.gather(idx)
        bracket = bracket.scatter(idx, sub.str.extract(p["bracket_region"], 1))
        t = x.clone().scatter(idx, sub.str.replace(p["bracket_region"], ""))
    prefix = pl.select(pl.when(bracket.is_null()).then(t.str.extract(p["front"], 0))).to_series()
    rest = t.str.slice(prefix.str.len_chars().fill_null(0))
    cmp = rest.str.replace_all(p["drop"], "")
    empty = ((cmp.str.len_bytes() == 0) & t.is_not_null()).fill_null(False)
    if empty.any():
        idx = empty.arg_true()
        cmp = cmp.scatter(idx, t.gather(idx).str.replace_all(p["drop"], ""))
    places = p["places"]
    region = pl.select(
        pl.coalesce(
            bracket.replace_strict(places, default=None, return_dtype=pl.Utf8),
            prefix.replace_strict(_front_regions(prefix), default=None, return_dtype=pl.Utf8),
        )
    ).to_series()
    return _upper(cmp), region


def _enterprise_batch(s: pl.Series) -> pl.Series:
    return on_unique(s.cast(pl.Utf8), _enterprise_unique)


def _enterprise_unique(s: pl.Series) -> pl.Series:
    """The struct for every value of ``s``. Each step touches only the values it can change (a status
    suffix needs a closing bracket at the end, a branch one of the suffixes), so a name pays for what it has."""
    p = _patterns()
    size = len(s)
    name = _clean_series(s)
    # status suffix
    status = _nulls(size)
    maybe = name.str.contains(p["maybe_status"]).fill_null(False)
    if maybe.any():
        idx = maybe.arg_true()
        sub = name.gather(idx)
        status = status.scatter(idx, sub.str.extract(p["status"], 1).str.replace_all(r"[,、]", ""))
        name = name.clone().scatter(idx, sub.str.replace(p["status"], ""))
    # branches: the parent is the name up to its legal form, else without a trailing place name
    is_branch = pl.Series([False] * size)
    parent_cmp, parent_region, place = _nulls(size), _nulls(size), _nulls(size)
    form_source = name
    maybe = name.str.contains(p["maybe_branch"]).fill_null(False)
    if maybe.any():
        idx = maybe.arg_true()
        c = pl.col
        b = pl.DataFrame({"n": name.gather(idx)}).with_columns(head=c("n").str.extract(p["branch"], 1))
        b = b.with_columns(ok=c("head").is_not_null() & (c("head").str.len_chars() >= 2))
        b = b.with_columns(
            parent=c("head").str.extract(p["legal_last"], 1),
            place=c("head").str.extract(p["trailing_place"], 1),
        )
        plen, hlen = c("place").str.len_chars(), c("head").str.len_chars()
        b = b.with_columns(
            parent=pl.coalesce(
                "parent",
                pl.when(c("place").is_not_null() & (hlen > plen)).then(c("head").str.head(hlen - plen)),
                "head",
            )
        )
        ok = b["ok"]
        b_cmp, b_region = _comparison(b["parent"])
        is_branch = is_branch.scatter(idx, ok)
        parent_cmp = parent_cmp.scatter(idx, pl.select(pl.when(ok).then(b_cmp)).to_series())
        parent_region = parent_region.scatter(idx, pl.select(pl.when(ok).then(b_region)).to_series())
        place = place.scatter(idx, pl.select(pl.when(ok).then(b["place"])).to_series())
        form_source = name.clone().scatter(
            idx, pl.select(pl.when(ok).then(b["parent"]).otherwise(b["n"])).to_series()
        )
    legal_form = (
        form_source.str.extract_all(p["legal"])
        .list.last()
        .replace_strict(LEGAL_FORMS, default=None, return_dtype=pl.Utf8)
    )
    comparison, region = _comparison(name)
    # a branch without a region of its own is placed by its parent's, else by the place before its suffix
    region = pl.select(
        pl.coalesce(
            region, parent_region, place.replace_strict(p["places"], default=None, return_dtype=pl.Utf8)
        )
    ).to_series()
    normalized = _patch(
        name,
        name.str.contains(r"[()]"),
        lambda v: v.str.replace_all("(", "（", literal=True).str.replace_all(")", "）", literal=True),
    )
    return pl.DataFrame(
        {
            "original": s,
            "normalized": normalized,
            "comparison": comparison,
            "legal_form": legal_form,
            "region": region,
            "is_branch": is_branch,
            "parent_comparison": parent_cmp,
            "status_suffix": status,
        },
        schema=ENTERPRISE_NAME.to_schema(),
    ).to_struct("enterprise_name")


def enterprise_name(expr: pl.Expr | pl.Series | str) -> pl.Expr:
    """``struct{original, normalized, comparison, legal_form, region, is_branch, parent_comparison,
    status_suffix}`` of an enterprise-name column (see the module docstring). Null stays null."""
    expr = to_expr(expr)
    return expr.map_batches(_enterprise_batch, return_dtype=ENTERPRISE_NAME, is_elementwise=False)


# Middle dots in ethnic-minority and foreign names (阿卜杜拉·艾买提), as typed: U+00B7, U+2022, U+2027,
# U+30FB (NFKC of U+FF65), U+22C5, U+2219, U+FE52; a full stop between two Chinese characters too.
_DOTS = r"[·•‧・⋅∙﹒]"


def _person_batch(s: pl.Series) -> pl.Series:
    return on_unique(s.cast(pl.Utf8), _person_unique)


def _person_unique(s: pl.Series) -> pl.Series:
    c = pl.col
    f = pl.DataFrame({"n": _clean_series(s)})
    f = f.with_columns(
        n=c("n").str.replace_all(_DOTS, "·").str.replace_all(r"(\p{Han})\s*[.。]\s*(\p{Han})", "${1}·${2}")
    )
    f = f.with_columns(
        n=c("n")
        .str.replace_all(r"\s*([\p{Han}·])\s*", "${1}")
        .str.replace_all(r"·+", "·")
        .str.strip_chars("· ")
    )
    f = f.with_columns(n=pl.when(c("n").str.len_chars() > 0).then("n"))
    f = f.with_columns(comparison=c("n").str.replace_all(r"[\s·]", ""))
    return f.select("n", _upper(f["comparison"])).rename({"n": "normalized"}).to_struct("person_name")


def person_name(expr: pl.Expr | pl.Series | str) -> pl.Expr:
    """``struct{normalized, comparison}`` of a person-name column: NFKC, simplified, trimmed, no spaces
    between Chinese characters, every middle-dot variant written '·' (``comparison`` drops dots and spaces and
    upper-cases Latin letters). Characters outside GBK (𠮷 䶮) are kept."""
    expr = to_expr(expr)
    return expr.map_batches(_person_batch, return_dtype=PERSON_NAME, is_elementwise=False)
