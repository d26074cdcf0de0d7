"""Vectorized standardization of identifiers: USCC, organization code, registration number, TIN, resident ID,
phone — as Polars expressions for the silver layer.

The check algorithms, weights, alphabets and patterns live in :mod:`models.identifiers` and only there;
this module composes them into Polars expressions. Patterns come from there as well (with ``\\d`` narrowed
to ASCII ``[0-9]``, because Rust's and Python's ``\\d`` also match other scripts' digits); check
characters are computed by handing the whole column, as an ``(n, k)`` matrix of character values, to the
vectorized NumPy check functions of :mod:`models.identifiers` inside ``map_batches`` — one NumPy call per
batch, never a Python call per row.

Every function takes an expression (or a column name) and returns an expression named like its input,
so callers compose them in one ``select``/``with_columns``::

    df.select(uscc("TYSHXYDM"), resident_id("FDDBRZJHM"), phone("LXDH")).unnest(...)

Struct results and their fields:

- ``uscc``, ``org_code``, ``regno``: ``{value: str, status: str}``
- ``resident_id``: ``{value: str, status: str, was_15: bool, birth_date: date, sex: str}``
- ``tin``: ``{value: str, kind: str, status: str, org_code: str, resident_id: str}``
- ``phone``: ``{value: str, kind: str}``

``status`` is one of :data:`STATUSES`: 'valid'; 'invalid' (wrong pattern or failed check — a data-quality
flag, the record is kept, docs/domain/identifiers.md); 'masked' (contains '*'); 'missing' (null or a null marker).
``value`` is the normalized code for 'valid' and 'invalid' (so a flagged record still shows what was
typed) and null for 'masked' and 'missing'. Only 'valid' values may serve as deterministic link keys.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import numpy as np
import polars as pl

from models import identifiers as idf
from models.standardize.nulls import MARKERS_AFTER_STRIP, IntoExpr, Stages, as_expr, keep_name, nullify

STATUSES = ("valid", "invalid", "masked", "missing")
TIN_KINDS = ("uscc", "old_tin", "individual", "unknown")
PHONE_KINDS = ("mobile", "fixed", "invalid", "missing")

#: Full-width ASCII (U+FF01..U+FF5E) and the ideographic space, to their half-width forms: the part of NFKC
#: that matters for dates and phones (about 1.5 times faster than ``str.normalize("NFKC")``). Codes get the
#: full NFKC, which also folds the Roman numeral 'Ⅹ' that some input methods type for an ID's 'X'.
FULLWIDTH_TO_ASCII: dict[str, str] = {chr(c + 0xFEE0): chr(c) for c in range(0x21, 0x7F)} | {"\u3000": " "}

# Removed from codes after NFKC: whitespace, hyphens and dashes, zero-width characters.
_SEPARATORS = r"[\s\-\u2010-\u2015\u2212\u200b\ufeff]"
_CODE_MARKERS = sorted({m.upper() for m in MARKERS_AFTER_STRIP if m and m not in "-/"})


def _ascii(pattern: re.Pattern[str]) -> str:
    """A pattern of models.identifiers for the Rust regex engine, with digits restricted to ASCII."""
    return pattern.pattern.replace(r"\d", "[0-9]")


USCC_REGEX = _ascii(idf.USCC_PATTERN)
ORG_REGEX = _ascii(idf.ORG_PATTERN)
ID18_REGEX = _ascii(idf.ID18_PATTERN)
ID15_REGEX = _ascii(idf.ID15_PATTERN)
REGNO_REGEX = r"^[0-9]{15}$"
# A published masked resident ID: the first 4 or 6 digits, stars, the last 4 characters, 18 in all.
PROVINCE_REGEX = idf.PROVINCE_PATTERN.pattern
USCC_AUTHORITY_REGEX = idf.USCC_AUTHORITY_PATTERN.pattern
#: The earliest birth date an invalid code's date must not precede to read as a resident ID's.
EARLIEST_BIRTH = dt.date(1900, 1, 1)
MASKED_ID_REGEX = r"^(?:[0-9]{4}\*{10}|[0-9]{6}\*{8})[0-9]{3}[0-9X]$"
# An old TIN: 6-digit division code + 9-character organization code (docs/domain/identifiers.md, 纳税人识别号).
OLD_TIN_REGEX = "^[0-9]{6}" + ORG_REGEX.removeprefix("^")
MOBILE_REGEX = _ascii(idf.MOBILE_PATTERN)
FIXED_LINE_REGEX = _ascii(idf.FIXED_LINE_PATTERN)


# ------------------------------------------------------------------------------------------------
# Vectorized check characters: a column of equal-width ASCII codes -> NumPy -> models.identifiers
# ------------------------------------------------------------------------------------------------
def _lookup(alphabet: str) -> np.ndarray:
    table = np.zeros(256, dtype=np.int64)
    for i, c in enumerate(alphabet):
        table[ord(c)] = i
    return table


_USCC_LOOKUP = _lookup(idf.USCC_ALPHABET)
_ORG_LOOKUP = _lookup(idf.ORG_ALPHABET)
_ORG_X = int(_ORG_LOOKUP[ord("X")])  # an organization check value of 10 is written 'X'


def _matrix(s: pl.Series, width: int) -> np.ndarray:
    """``(n, width)`` byte matrix of a Series whose values are all ``width`` ASCII characters."""
    if len(s) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    joined = s.str.join("").item()
    return np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(len(s), width)


def _uscc_ok(raw: np.ndarray) -> np.ndarray:
    values = _USCC_LOOKUP[raw]
    return idf.uscc_check_values(values[:, :17]) == values[:, 17]


def _org_ok(raw: np.ndarray) -> np.ndarray:
    values = _ORG_LOOKUP[raw]
    check = idf.org_check_values(values[:, :8])
    return np.where(check == 10, _ORG_X, check) == values[:, 8]


def _regno_ok(raw: np.ndarray) -> np.ndarray:
    digits = raw.astype(np.int64) - ord("0")
    return idf.regno_check_digits(digits[:, :14]) == digits[:, 14]


_CHECKS: dict[str, tuple[int, Callable[[np.ndarray], np.ndarray]]] = {
    "uscc": (18, _uscc_ok),
    "org": (9, _org_ok),
    "regno": (15, _regno_ok),
}


F = pl.field


def _passes_check(code: pl.Expr, shape_ok: pl.Expr, kind: str) -> pl.Expr:
    """True where ``shape_ok`` (the code matches its pattern) and the check character is right.

    Rows failing the pattern are replaced by a dummy of the right width before NumPy sees them, so the
    batch is a clean fixed-width matrix; their result is masked out by ``shape_ok``. Pass leaf
    expressions (``pl.field``/``pl.col``): both arguments are used twice.
    """
    width, check = _CHECKS[kind]
    shape_ok = shape_ok.fill_null(False)
    filled = pl.when(shape_ok).then(code).otherwise(pl.lit("0" * width))
    passed = filled.map_batches(
        lambda s: pl.Series(check(_matrix(s, width)), dtype=pl.Boolean),
        return_dtype=pl.Boolean,
        is_elementwise=True,
    )
    return shape_ok & passed


def _id_check_index(s: pl.Series) -> pl.Series:
    digits = _matrix(s, 17).astype(np.int64) - ord("0")
    return pl.Series(idf.id_check_values(digits), dtype=pl.Int64)


def _id_check_char(body17: pl.Expr, shape_ok: pl.Expr) -> pl.Expr:
    """The 18th character of resident IDs whose first 17 characters (all digits where shape_ok) are given."""
    filled = pl.when(shape_ok).then(body17).otherwise(pl.lit("0" * 17))
    index = filled.map_batches(_id_check_index, return_dtype=pl.Int64, is_elementwise=True)
    char = index.replace_strict(
        list(range(len(idf.ID_CHECK_CHARS))), list(idf.ID_CHECK_CHARS), return_dtype=pl.Utf8
    )
    return pl.when(shape_ok).then(char)


# ------------------------------------------------------------------------------------------------
# Normalization
# ------------------------------------------------------------------------------------------------
def normalize_code(expr: IntoExpr) -> pl.Expr:
    """A code as comparable text: Unicode NFKC (full-width -> half-width), upper case, no whitespace, hyphens
    or dashes; null markers (before or after that) -> null.

    ``'９１４４０３０３ｍａ 1-x'`` -> ``'91440303MA1X'``; ``'NULL'``, ``'无'``, ``'  '``, ``'-'`` -> null.
    """
    source = as_expr(expr)
    text = nullify(source).str.normalize("NFKC").str.to_uppercase().str.replace_all(_SEPARATORS, "")
    return keep_name(text.replace(["", *_CODE_MARKERS], None), source)


def _status(code: pl.Expr, valid: pl.Expr) -> pl.Expr:
    return (
        pl.when(code.is_null())
        .then(pl.lit("missing"))
        .when(code.str.contains("*", literal=True))
        .then(pl.lit("masked"))
        .when(valid)
        .then(pl.lit("valid"))
        .otherwise(pl.lit("invalid"))
    )


def _kept_value(code: pl.Expr, status: pl.Expr) -> pl.Expr:
    return pl.when(status.is_in(["valid", "invalid"])).then(code)


def _checked_code(expr: IntoExpr, regex: str, kind: str) -> pl.Expr:
    """``{value, status}`` of a code with one pattern and one check."""
    source = as_expr(expr)
    s = (
        Stages(code=normalize_code(source))
        .add(shape=F("code").str.contains(regex))
        .add(valid=_passes_check(F("code"), F("shape"), kind))
        .add(status=_status(F("code"), F("valid")))
    )
    return s.result(source, value=_kept_value(F("code"), F("status")), status=F("status"))


# ------------------------------------------------------------------------------------------------
# USCC, organization code, registration number
# ------------------------------------------------------------------------------------------------
def uscc(expr: IntoExpr) -> pl.Expr:
    """统一社会信用代码 → ``{value, status}`` (GB 32100-2015 pattern and check character)."""
    return _checked_code(expr, USCC_REGEX, "uscc")


def org_code(expr: IntoExpr) -> pl.Expr:
    """组织机构代码 (9 characters, also written ``XXXXXXXX-X``) → ``{value, status}`` (GB 11714-1997)."""
    return _checked_code(expr, ORG_REGEX, "org")


def regno(expr: IntoExpr) -> pl.Expr:
    """15-digit 工商注册号 → ``{value, status}`` (ISO 7064 MOD 11,10 check digit)."""
    return _checked_code(expr, REGNO_REGEX, "regno")


def _embedded_org(expr: IntoExpr, carrier_regex: str, carrier_kind: str | None, offset: int) -> pl.Expr:
    source = as_expr(expr)
    s = Stages(code=normalize_code(source)).add(
        shape=F("code").str.contains(carrier_regex), org=F("code").str.slice(offset, 9)
    )
    carrier_ok = _passes_check(F("code"), F("shape"), carrier_kind) if carrier_kind else F("shape")
    s = s.add(carrier_ok=carrier_ok.fill_null(False) & F("org").str.contains(ORG_REGEX)).add(
        org_ok=_passes_check(F("org"), F("carrier_ok"), "org")
    )
    return s.result(source, pl.when(F("org_ok")).then(F("org")))


def org_code_from_uscc(uscc_value_expr: IntoExpr) -> pl.Expr:
    """The organization code at positions 9–17 of a USCC (``idf.org_code_of_uscc``), or null.

    Only when the USCC itself is valid *and* the embedded code passes the organization-code check, so the
    result is safe as a link key to pre-2015 records. Accepts raw or normalized USCC text (normalization
    is idempotent), e.g. ``uscc("TYSHXYDM").struct.field("value")``.
    """
    return _embedded_org(uscc_value_expr, USCC_REGEX, "uscc", 8)


def org_code_from_tin(expr: IntoExpr) -> pl.Expr:
    """The organization code of an old 15-character TIN (division code + organization code), or null.

    Null unless the text is a 6-digit division code followed by an organization code whose check passes.
    """
    return _embedded_org(expr, OLD_TIN_REGEX, None, 6)


# ------------------------------------------------------------------------------------------------
# Resident ID
# ------------------------------------------------------------------------------------------------
def _real_birth(yyyymmdd: pl.Expr) -> pl.Expr:
    """The date of an 8-digit ``YYYYMMDD`` text, null unless it is a real calendar date (year >= 1)."""
    parsed = yyyymmdd.str.to_date("%Y%m%d", strict=False)
    return pl.when(yyyymmdd.str.contains(r"^[0-9]{8}$") & (parsed.dt.year() >= 1)).then(parsed)


def _add_resident_fields(s: Stages, sources: dict[str, str]) -> Stages:
    """Add fields ``{p}_is18, {p}_is15, {p}_valid, {p}_value18, {p}_birth, {p}_sex`` reading the text field
    ``src`` as a resident ID, for each ``p: src`` of ``sources`` (18-digit or 15-digit form)."""

    def each(make) -> dict[str, pl.Expr]:
        return {f"{p}_{name}": e for p, src in sources.items() for name, e in make(p, F(src)).items()}

    s.add(
        **each(
            lambda p, c: {
                "is18": c.str.contains(ID18_REGEX).fill_null(False),
                "is15": c.str.contains(ID15_REGEX).fill_null(False),
            }
        )
    )
    # the 18-digit body: as written, or the 15-digit form with '19' inserted after the division code
    s.add(
        **each(
            lambda p, c: {
                "body17": pl.when(F(f"{p}_is15"))
                .then(c.str.slice(0, 6) + "19" + c.str.slice(6, 9))
                .otherwise(c.str.slice(0, 17)),
                "shape": F(f"{p}_is18") | F(f"{p}_is15"),
            }
        )
    )
    s.add(
        **each(
            lambda p, c: {
                "check": _id_check_char(F(f"{p}_body17"), F(f"{p}_shape")),
                "birth": _real_birth(F(f"{p}_body17").str.slice(6, 8)),
                "sexdigit": F(f"{p}_body17").str.slice(16, 1).cast(pl.Int8, strict=False),
            }
        )
    )
    s.add(
        **each(
            lambda p, c: {
                "valid": (
                    F(f"{p}_shape")
                    & F(f"{p}_birth").is_not_null()
                    & (F(f"{p}_is15") | (F(f"{p}_check") == c.str.slice(17, 1)))
                ).fill_null(False),
                "value18": pl.when(F(f"{p}_is15")).then(F(f"{p}_body17") + F(f"{p}_check")).otherwise(c),
                "sex": pl.when(F(f"{p}_sexdigit") % 2 == 1).then(pl.lit("M")).otherwise(pl.lit("F")),
            }
        )
    )
    return s


def resident_id(expr: IntoExpr) -> pl.Expr:
    """居民身份证号 → ``{value, status, was_15, birth_date, sex}`` (GB 11643-1999).

    - ``value``: for a valid ID the 18-digit form with upper-case X (a 15-digit ID converted, as
      ``idf.id15_to_id18``); for an invalid one the normalized text as typed; null if masked or missing.
    - ``status``: 'valid' needs the pattern, a real birth date and (18-digit form) the check character;
      a 15-digit ID has no check character, so pattern and birth date make it valid.
    - ``was_15``: the source carried the old 15-digit form (also when it is invalid).
    - ``birth_date`` (date) and ``sex`` ('M' odd / 'F' even sequence digit): for valid IDs only.
    - ``masked``: for a masked ID of the published 18-character shape (the region's first 4 or 6 digits, stars,
      the last 4 characters: ``4403**********123X``), that normalized text; else null. Never a link key: its
      visible digits are evidence for the probabilistic pass only (docs/domain/identifiers.md allows showing them).
    """
    source = as_expr(expr)
    s = _add_resident_fields(Stages(code=normalize_code(source)), {"r": "code"})
    s.add(status=_status(F("code"), F("r_valid")))
    s.add(valid=F("status") == "valid")
    return s.result(
        source,
        value=pl.when(F("valid")).then(F("r_value18")).when(F("status") == "invalid").then(F("code")),
        status=F("status"),
        was_15=F("r_is15"),
        birth_date=pl.when(F("valid")).then(F("r_birth")),
        sex=pl.when(F("valid")).then(F("r_sex")),
        masked=pl.when((F("status") == "masked") & F("code").str.contains(MASKED_ID_REGEX)).then(F("code")),
    )


# ------------------------------------------------------------------------------------------------
# Taxpayer identification number
# ------------------------------------------------------------------------------------------------
def tin(expr: IntoExpr) -> pl.Expr:
    """纳税人识别号 → ``{value, kind, status, org_code, resident_id}`` following docs/domain/identifiers.md:

    - ``kind='uscc'``: 18 characters, the entity's USCC (since 2015);
    - ``kind='old_tin'``: 15 characters, 6-digit division code + 9-character organization code;
    - ``kind='individual'``: an 18-digit resident ID, the ID + '00'/'01' (20 characters), or a 15-digit ID
      + '00000' (20 characters);
    - ``kind='unknown'``: anything else, and missing or masked values.

    A valid value is classified by the form whose check passes (USCC before ID for 18 characters; the
    ID + '00'/'01' reading before the 15-digit ID + '00000' one). An invalid value gets the kind its shape
    suggests: 15 characters of the old-TIN shape → old_tin; 18 characters of the ID shape with a real birth
    date, or 20 characters of an ID shape with its suffix → individual; otherwise the USCC shape → uscc.

    ``value`` is the normalized TIN as written (suffix kept); ``org_code`` the embedded organization code of
    a valid USCC or old TIN (when it passes its own check); ``resident_id`` the 18-digit ID of a valid
    individual TIN (a 15-digit ID converted).
    """
    source = as_expr(expr)
    code = F("code")
    s = Stages(code=normalize_code(source)).add(
        length=code.str.len_chars(),
        masked=code.str.contains("*", literal=True),
        uscc_shape=code.str.contains(USCC_REGEX).fill_null(False),
        old_shape=code.str.contains(OLD_TIN_REGEX).fill_null(False),
        old_org=code.str.slice(6, 9),
        uscc_org=code.str.slice(8, 9),
    )
    s.add(
        suffix2=(code.str.slice(18, 2).is_in(["00", "01"]) & (F("length") == 20)).fill_null(False),
        suffix5=((code.str.slice(15, 5) == "00000") & (F("length") == 20)).fill_null(False),
        uscc_ok=_passes_check(code, F("uscc_shape"), "uscc"),
        old_ok=_passes_check(F("old_org"), F("old_shape"), "org"),
    )
    # two readings as a resident ID: the 18-digit one (the whole code, or without its '00'/'01' suffix)
    # and the 15-digit one (without the '00000' suffix)
    s.add(
        id18=pl.when(F("length") == 18).then(code).when(F("suffix2")).then(code.str.slice(0, 18)),
        id15=pl.when(F("suffix5")).then(code.str.slice(0, 15)),
        uscc_org_shape=F("uscc_ok") & F("uscc_org").str.contains(ORG_REGEX),
    )
    s.add(uscc_org_ok=_passes_check(F("uscc_org"), F("uscc_org_shape"), "org"))
    _add_resident_fields(s, {"a": "id18", "b": "id15"})
    s.add(
        as_id18=F("a_is18") & F("a_valid") & (F("length") == 18),
        as_plus2=F("a_is18") & F("a_valid") & F("suffix2"),
        as_plus5=F("b_is15") & F("b_valid"),
    )
    s.add(
        valid=F("uscc_ok") | F("as_id18") | F("as_plus2") | F("as_plus5") | F("old_ok"),
        individual=F("as_id18") | F("as_plus2") | F("as_plus5"),
    )
    s.add(
        status=_status(code, F("valid")),
        kind=pl.when(code.is_null() | F("masked"))
        .then(pl.lit("unknown"))
        .when(F("uscc_ok"))
        .then(pl.lit("uscc"))
        .when(F("individual"))
        .then(pl.lit("individual"))
        .when(F("old_shape"))
        .then(pl.lit("old_tin"))
        .when(F("a_is18") & (F("length") == 18) & F("a_birth").is_not_null())
        .then(pl.lit("individual"))
        .when((F("a_is18") & F("suffix2")) | F("b_is15"))
        .then(pl.lit("individual"))
        .when(F("uscc_shape"))
        .then(pl.lit("uscc"))
        .otherwise(pl.lit("unknown")),
    )
    return s.result(
        source,
        value=_kept_value(code, F("status")),
        kind=F("kind"),
        status=F("status"),
        org_code=pl.when(F("uscc_org_ok")).then(F("uscc_org")).when(F("old_ok")).then(F("old_org")),
        resident_id=pl.when(F("uscc_ok"))
        .then(pl.lit(None, pl.Utf8))
        .when(F("as_id18") | F("as_plus2"))
        .then(F("a_value18"))
        .when(F("as_plus5"))
        .then(F("b_value18")),
    )


# ------------------------------------------------------------------------------------------------
# Mixed key columns (证件号)
# ------------------------------------------------------------------------------------------------
KEY_KINDS = ("uscc", "org_code", "old_tin", "resident_id", "unknown", "missing")


def key_kind(expr: IntoExpr) -> pl.Expr:
    """What a 证件号 column that mixes kinds holds (court parties, defaulters, service applicants): one of
    :data:`KEY_KINDS`. Only the kind is decided here; the value is then read by the standardizer of that kind.

    A valid code is classified by the check that passes (as :func:`tin` does). A code that reads as a valid
    resident ID is a resident ID even when another check passes too (an all-digit USCC can pass an ID's check by
    chance, and a 15-digit ID can pass as an old TIN): these columns belong to courts and service desks, where
    persons are the many.

    An invalid or masked code is classified by its structure. 9 characters of the organization-code shape ->
    'org_code' (also written ``XXXXXXXX-X``); a masked 15 or 18 characters of digits and '*' -> 'resident_id'.
    An invalid 18-character code cannot go by shape alone, because a mistyped ID (17 digits and a digit or X)
    is USCC-shaped too: it goes by the parts that tell the two apart (docs/domain/identifiers.md). An ID starts
    with a province code (:data:`models.identifiers.PROVINCE_PATTERN`) and carries a plausible birth date
    (1900 to today) at positions 7-14; a USCC starts with its registering authority and entity type
    (:data:`models.identifiers.USCC_AUTHORITY_PATTERN`) followed by a province code. One mistyped character
    damages at most one of an ID's two parts or of a USCC's two, so: both ID parts -> 'resident_id'; both
    USCC parts -> 'uscc'; the birth date alone -> 'resident_id'; the province alone -> 'resident_id' when the
    date is one digit from plausible (two of century 19/20, month, day in range) or no USCC part is there
    (a Beijing ID's '11' is also a USCC's 机构编制/机关); anything else by shape as before (old TIN, USCC, ID),
    where 18 characters of the USCC alphabet that start with an authority and entity type are a USCC too (a
    letter typed into its division code)."""
    source = as_expr(expr)
    code = F("code")
    s = Stages(code=normalize_code(source)).add(
        uscc_shape=code.str.contains(USCC_REGEX).fill_null(False),
        org_shape=code.str.contains(ORG_REGEX).fill_null(False),
        old_shape=code.str.contains(OLD_TIN_REGEX).fill_null(False),
        id_shape=code.str.contains(r"^[0-9*]{15}$|^[0-9*]{17}[0-9X*]$").fill_null(False),
        masked=code.str.contains("*", literal=True),
    )
    s.add(uscc_ok=_passes_check(code, F("uscc_shape"), "uscc"))
    _add_resident_fields(s, {"r": "code"})
    s.add(
        id_province=F("r_is18") & code.str.slice(0, 2).str.contains(PROVINCE_REGEX).fill_null(False),
        id_born=F("r_is18") & F("r_birth").is_between(EARLIEST_BIRTH, dt.date.today()).fill_null(False),
        uscc_authority=code.str.contains(f"^[{idf.USCC_ALPHABET}]{{18}}$").fill_null(False)
        & code.str.slice(0, 2).str.contains(USCC_AUTHORITY_REGEX).fill_null(False),
        uscc_province=F("uscc_shape") & code.str.slice(2, 2).str.contains(PROVINCE_REGEX).fill_null(False),
    )
    # one mistyped digit of a birth date leaves two of its century, month and day in range
    near = [
        code.str.slice(6, 2).is_in(["19", "20"]),
        code.str.slice(10, 2).cast(pl.Int32, strict=False).is_between(1, 12),
        code.str.slice(12, 2).cast(pl.Int32, strict=False).is_between(1, 31),
    ]
    s.add(
        id_date_near=F("r_is18") & (pl.sum_horizontal([e.fill_null(False).cast(pl.Int8) for e in near]) >= 2)
    )
    uscc_evidence = F("uscc_authority") | F("uscc_province")
    kind = (
        pl.when(code.is_null())
        .then(pl.lit("missing"))
        .when(F("r_valid"))
        .then(pl.lit("resident_id"))
        .when(F("uscc_ok"))
        .then(pl.lit("uscc"))
        .when(F("org_shape"))
        .then(pl.lit("org_code"))
        .when(F("id_shape") & F("masked"))
        .then(pl.lit("resident_id"))
        .when(F("id_province") & F("id_born"))
        .then(pl.lit("resident_id"))
        .when(F("uscc_authority") & F("uscc_province"))
        .then(pl.lit("uscc"))
        .when(F("id_born") | (F("id_province") & (F("id_date_near") | uscc_evidence.not_())))
        .then(pl.lit("resident_id"))
        .when(F("old_shape"))
        .then(pl.lit("old_tin"))
        .when(F("uscc_shape") | F("uscc_authority"))
        .then(pl.lit("uscc"))
        .when(F("id_shape"))
        .then(pl.lit("resident_id"))
        .otherwise(pl.lit("unknown"))
    )
    return s.result(source, kind)


# ------------------------------------------------------------------------------------------------
# Phones
# ------------------------------------------------------------------------------------------------
# Three-digit area codes are 010 and 02x; every other area code has four digits (0xxx, x >= 3).
_FIXED_COMPACT = r"^0(?:10|2[0-9]|[3-9][0-9]{2})[0-9]{7,8}$"


def phone(expr: IntoExpr) -> pl.Expr:
    """A phone number → ``{value, kind}``; ``kind`` is 'mobile', 'fixed', 'invalid' or 'missing'.

    Full-width digits are folded; spaces, hyphens, dots and brackets are ignored; only the first of several
    numbers separated by ``, ， ; ； 、 /`` is read. A mobile (docs/domain/identifiers.md: ``(+86)1[3-9]`` + 9 digits,
    also 0086) becomes its 11 digits without the country code. A fixed line (docs/domain/identifiers.md's pattern,
    with a real area code: 010, 02x or 0xxx with x >= 3; +86/0086 prefixes are folded into the leading 0)
    becomes ``0AA-NNNNNNNN`` / ``0AAA-NNNNNNN(N)``, the area code being 3 digits for 010 and 02x and 4
    digits otherwise. Anything else is 'invalid' with the compacted text as value (masked
    ``138****8000`` included; extensions are not kept).
    """
    source = as_expr(expr)
    s = (
        Stages(text=nullify(source).str.replace_many(FULLWIDTH_TO_ASCII))
        .add(
            first=F("text")
            .str.extract(r"^([^,，;；、/]+)", 1)
            .str.replace_all(r"[\s\-\u2010-\u2015()（）.\u200b]", "")
        )
        .add(compact=pl.when(F("first").str.len_bytes() > 0).then(F("first")))
    )
    s.add(
        mobile=F("compact").str.replace(r"^0086", "+86").str.contains(MOBILE_REGEX).fill_null(False),
        domestic=F("compact").str.replace(r"^(?:\+86|0086)0?([1-9])", "0${1}"),
    )
    s.add(
        fixed=(
            F("domestic").str.contains(FIXED_LINE_REGEX) & F("domestic").str.contains(_FIXED_COMPACT)
        ).fill_null(False)
        & F("mobile").not_(),
        area_len=pl.when(F("domestic").str.contains(r"^0(?:10|2)")).then(3).otherwise(4),
    )
    return s.result(
        source,
        value=pl.when(F("mobile"))
        .then(F("compact").str.slice(-11))
        .when(F("fixed"))
        .then(F("domestic").str.slice(0, F("area_len")) + "-" + F("domestic").str.slice(F("area_len")))
        .otherwise(F("compact")),
        kind=pl.when(F("compact").is_null())
        .then(pl.lit("missing"))
        .when(F("mobile"))
        .then(pl.lit("mobile"))
        .when(F("fixed"))
        .then(pl.lit("fixed"))
        .otherwise(pl.lit("invalid")),
    )


__all__ = [
    "FULLWIDTH_TO_ASCII",
    "KEY_KINDS",
    "PHONE_KINDS",
    "STATUSES",
    "TIN_KINDS",
    "key_kind",
    "normalize_code",
    "org_code",
    "org_code_from_tin",
    "org_code_from_uscc",
    "phone",
    "regno",
    "resident_id",
    "tin",
    "uscc",
]
