"""How the silos disagree, as vectorized corruptions with explicit rates.

Every function takes a Polars Series, a random generator and a rate, and returns a Series of the same
length in which about ``rate`` of the values show one kind of disagreement from docs/domain/legacy-estate.md.
Rates live in :class:`MessProfile` so a city evaluating Quanshitong can turn each one up or down.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import polars as pl

from models import identifiers as idf
from simulator import vocab


@dataclass(frozen=True)
class MessProfile:
    """Rates of each kind of mess (share of the affected values); ``qst simulate --rate NAME=VALUE``."""

    key_lowercase: float = 0.02  # USCC typed in lower case
    key_fullwidth: float = 0.03  # full-width digits/letters (env has more: x4)
    key_spaces: float = 0.02  # spaces inside a code
    key_typo: float = 0.005  # one character mistyped: fails the check
    key_missing: float = 0.05  # key left empty where the system allowed it
    id_15_digit: float = 0.25  # people born before 1980 still carrying the old 15-digit ID
    id_lowercase_x: float = 0.3  # 'x' instead of 'X'
    id_masked: float = 0.2  # masked IDs (court publications)
    id_typo: float = 0.004
    name_legal_form: float = 0.2  # 有限公司 -> 有限责任公司, 股份有限公司 -> 股份公司
    name_region_bracket: float = 0.08  # 深圳市X有限公司 <-> X（深圳）有限公司
    name_halfwidth_brackets: float = 0.1
    name_traditional: float = 0.1  # 發展 貿易 ... (social security's old system)
    name_trailing_space: float = 0.03
    name_status_suffix: float = 0.3  # （已注销） on a deregistered entity's name in courts
    name_stale: float = 0.5  # other departments keep a renamed entity's former name
    person_homophone: float = 0.02  # 小/晓 typos in person names
    null_marker: float = 0.03  # '', 'NULL', '无', '-', '/', '不详' ... in optional text
    date_sentinel: float = 0.01  # '1900-01-01', '0000-00-00', '9999-12-31'
    duplicate_registration: float = 0.02  # same entity registered twice after a migration
    # --advance-days: share of the day's changes of each kind
    daily_rate: float = 0.066  # records changed per day / records in the estate (3M of 45M)
    late_arrival: float = 0.05  # of the day's new event rows, stamped 1-3 days in the past

    @classmethod
    def with_overrides(cls, overrides: dict[str, float]) -> MessProfile:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown mess rate(s) {unknown}; known: {sorted(names)}")
        bad = {k: v for k, v in overrides.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"rates must be between 0 and 1: {bad}")
        return dataclasses.replace(cls(), **overrides)


def mask(rng: np.random.Generator, n: int, rate: float) -> pl.Series:
    return pl.Series(rng.random(n) < rate)


def where(m: pl.Series, changed: pl.Series, original: pl.Series) -> pl.Series:
    return pl.select(pl.when(m).then(changed).otherwise(original)).to_series().alias(original.name)


def _apply_python(s: pl.Series, m: np.ndarray, fn) -> pl.Series:
    """Apply a scalar function to the (few) masked values only."""
    values = s.to_list()
    for i in np.nonzero(m)[0]:
        if values[i] is not None:
            values[i] = fn(values[i])
    return pl.Series(s.name, values, dtype=pl.Utf8)


def lowercase(s: pl.Series, rng, rate: float) -> pl.Series:
    return where(mask(rng, len(s), rate), s.str.to_lowercase(), s)


def fullwidth(s: pl.Series, rng, rate: float) -> pl.Series:
    src = list(vocab.FULLWIDTH)
    return where(mask(rng, len(s), rate), s.str.replace_many(src, [vocab.FULLWIDTH[c] for c in src]), s)


def spaces(s: pl.Series, rng, rate: float) -> pl.Series:
    spaced = pl.select(pl.concat_str([s.str.slice(0, 6), pl.lit(" "), s.str.slice(6)])).to_series()
    return where(mask(rng, len(s), rate), spaced, s)


def typo(s: pl.Series, rng, rate: float, alphabet: str = idf.USCC_ALPHABET) -> pl.Series:
    m = rng.random(len(s)) < rate

    def change(v: str) -> str:
        if not v:
            return v
        pos = int(rng.integers(0, len(v)))
        choices = [c for c in alphabet if c != v[pos]]
        return v[:pos] + choices[int(rng.integers(0, len(choices)))] + v[pos + 1 :]

    return _apply_python(s, m, change)


def null_markers(s: pl.Series, rng, rate: float) -> pl.Series:
    n = len(s)
    markers = pl.Series(
        np.array(vocab.NULL_MARKERS, dtype=object)[rng.integers(0, len(vocab.NULL_MARKERS), n)].tolist(),
        dtype=pl.Utf8,
    )
    nulls = pl.Series([None] * n, dtype=pl.Utf8)
    use_null = mask(rng, n, 0.3)
    return where(mask(rng, n, rate), where(use_null, nulls, markers), s)


def enterprise_key(s: pl.Series, rng, p: MessProfile, scale: float = 1.0) -> pl.Series:
    """A USCC as a department typed it: case, full-width, spaces, typos, or not at all."""
    s = typo(s, rng, p.key_typo * scale)
    s = lowercase(s, rng, p.key_lowercase * scale)
    s = fullwidth(s, rng, p.key_fullwidth * scale)
    s = spaces(s, rng, p.key_spaces * scale)
    return null_markers(s, rng, p.key_missing * scale)


def legal_form_variant(s: pl.Series, rng, rate: float) -> pl.Series:
    src = list(vocab.LEGAL_FORM_VARIANTS)
    changed = s.str.replace_many(src, [vocab.LEGAL_FORM_VARIANTS[k] for k in src])
    return where(mask(rng, len(s), rate), changed, s)


def region_bracket(s: pl.Series, rng, rate: float) -> pl.Series:
    """深圳市X有限公司 -> X（深圳）有限公司 (and back), leaving branches alone."""
    to_bracket = s.str.replace(
        r"^深圳市(.+?)(有限责任公司|有限公司|股份有限公司|股份公司)$", "${1}（深圳）${2}"
    )
    from_bracket = s.str.replace(r"^(.+?)（深圳）(.+)$", "深圳市${1}${2}")
    changed = where(s.str.contains("（深圳）"), from_bracket, to_bracket)
    return where(mask(rng, len(s), rate), changed, s)


def halfwidth_brackets(s: pl.Series, rng, rate: float) -> pl.Series:
    return where(
        mask(rng, len(s), rate),
        s.str.replace_all("（", "(", literal=True).str.replace_all("）", ")", literal=True),
        s,
    )


def traditional(s: pl.Series, rng, rate: float) -> pl.Series:
    src = list(vocab.TRADITIONAL)
    return where(mask(rng, len(s), rate), s.str.replace_many(src, [vocab.TRADITIONAL[c] for c in src]), s)


def trailing_space(s: pl.Series, rng, rate: float) -> pl.Series:
    return where(mask(rng, len(s), rate), s + "  ", s)


def enterprise_name(
    name: pl.Series, former: pl.Series, rng, p: MessProfile, *, traditional_rate: float = 0.0
) -> pl.Series:
    """A name as another department keeps it: stale after a rename, other legal form spelling ..."""
    s = where(former.is_not_null() & mask(rng, len(name), p.name_stale), former, name)
    s = legal_form_variant(s, rng, p.name_legal_form)
    s = region_bracket(s, rng, p.name_region_bracket)
    s = halfwidth_brackets(s, rng, p.name_halfwidth_brackets)
    s = traditional(s, rng, traditional_rate)
    return trailing_space(s, rng, p.name_trailing_space)


def person_name(s: pl.Series, rng, p: MessProfile) -> pl.Series:
    def homophone(v: str) -> str:
        for i in range(len(v) - 1, 0, -1):
            if v[i] in vocab.HOMOPHONES:
                return v[:i] + vocab.HOMOPHONES[v[i]] + v[i + 1 :]
        return v

    return _apply_python(s, rng.random(len(s)) < p.person_homophone, homophone)


def resident_id(
    s: pl.Series,
    birth: pl.Series,
    rng,
    p: MessProfile,
    *,
    masked_rate: float = 0.0,
    old_form_rate: float | None = None,
) -> pl.Series:
    n = len(s)
    old_rate = p.id_15_digit if old_form_rate is None else old_form_rate
    can_15 = (birth.dt.year() < 1980) & (birth.dt.year() >= 1900)
    id15 = pl.select(pl.concat_str([s.str.slice(0, 6), s.str.slice(8, 9)])).to_series()
    out = where(can_15 & mask(rng, n, old_rate), id15, s)
    out = where(mask(rng, n, p.id_lowercase_x), out.str.replace("X", "x", literal=True), out)
    out = typo(out, rng, p.id_typo, "0123456789")
    masked = pl.select(pl.concat_str([s.str.slice(0, 4), pl.lit("**********"), s.str.slice(14)])).to_series()
    return where(mask(rng, n, masked_rate), masked, out)


def org_code_hyphen(org: pl.Series) -> pl.Series:
    return pl.select(pl.concat_str([org.str.slice(0, 8), pl.lit("-"), org.str.slice(8)])).to_series()
