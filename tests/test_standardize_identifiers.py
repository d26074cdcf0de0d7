"""Vectorized identifier standardization (models/standardize/identifiers.py, nulls.py).

The oracle everywhere is the scalar code of models/identifiers.py applied after an independent
normalization (Python's NFKC, upper case, whitespace and hyphens removed).
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
import unicodedata
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import estate_column
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import models.standardize as std_pkg
from models import identifiers as idf
from models.standardize import dates as std_dates
from models.standardize import identifiers as std
from models.standardize import nulls as std_nulls
from models.standardize.identifiers import (
    key_kind,
    normalize_code,
    org_code,
    org_code_from_tin,
    org_code_from_uscc,
    phone,
    regno,
    resident_id,
    tin,
    uscc,
)
from models.standardize.nulls import NULL_MARKERS, nullify

HYPO = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(fn, values, dtype=pl.Utf8) -> list:
    """Apply a standardizer to a list of values; structs come back as dicts."""
    return pl.DataFrame({"x": pl.Series(values, dtype=dtype)}).select(fn("x"))["x"].to_list()


def oracle_normalize(s: str | None) -> str | None:
    """Independent reference normalization: NFKC, upper case, no whitespace/dashes; markers -> None."""
    if s is None or s.strip() in {m.strip() for m in NULL_MARKERS}:
        return None
    out = re.sub(r"[\s\-\u2010-\u2015\u2212\u200b\ufeff]", "", unicodedata.normalize("NFKC", s).upper())
    return None if out in {"", "NULL", "无", "不详"} else out


# ------------------------------------------------------------------------------------------------
# Test vectors of docs/domain/identifiers.md
# ------------------------------------------------------------------------------------------------
USCC_VALID = ["91110000600037341L", "91350100M000100Y43", "91310230MA1K314J7C", "91310230MA1K314K57"]
USCC_INVALID = ["91350203M0001QAY9B"]
ORG_VALID = ["D2143569X", "MA1FL0LY9", "600037341"]
REGNO_VALID = ["310230001716146", "310230001716154", "110108000000016", "140000100028286"]
ID_VALID = ["11010519491231002X", "110105195001010039", "11010519500101999X", "360426199101010071"]


def test_uscc_vectors_of_identifiers_md():
    out = run(uscc, USCC_VALID + USCC_INVALID)
    assert [r["status"] for r in out] == ["valid"] * 4 + ["invalid"]
    assert [r["value"] for r in out] == USCC_VALID + USCC_INVALID  # invalid values are kept, flagged


def test_org_code_vectors_and_the_uscc_link():
    out = run(org_code, [*ORG_VALID, "60003734-1", "D2143569-X", "600037342"])
    assert [r["status"] for r in out] == ["valid"] * 5 + ["invalid"]
    assert [r["value"] for r in out][3:5] == ["600037341", "D2143569X"]
    # 600037341 = positions 9-17 of 91110000600037341L
    assert run(org_code_from_uscc, ["91110000600037341L"]) == ["600037341"]
    assert run(org_code_from_uscc, USCC_VALID) == [idf.org_code_of_uscc(c) for c in USCC_VALID]
    assert run(org_code_from_uscc, [*USCC_INVALID, None, "9111000060003734"]) == [None, None, None]


def test_regno_vectors():
    out = run(regno, [*REGNO_VALID, "310230001716147", "31023000171614", "3102300017161X6"])
    assert [r["status"] for r in out] == ["valid"] * 4 + ["invalid"] * 3


def test_resident_id_vectors():
    out = run(resident_id, ID_VALID)
    assert [r["status"] for r in out] == ["valid"] * 4
    assert [r["value"] for r in out] == ID_VALID
    assert [r["birth_date"] for r in out] == [
        dt.date(1949, 12, 31),
        dt.date(1950, 1, 1),
        dt.date(1950, 1, 1),
        dt.date(1991, 1, 1),
    ]
    assert [r["sex"] for r in out] == ["F", "M", "M", "M"]  # sequence 002 even, 003/999/007 odd
    assert not any(r["was_15"] for r in out)


def test_resident_id_15_digit_example_and_lowercase_x():
    old, lower, roman = run(resident_id, ["110105491231002", "11010519491231002x", "11010519491231002Ⅹ"])
    assert old == {
        "value": "11010519491231002X",
        "status": "valid",
        "was_15": True,
        "birth_date": dt.date(1949, 12, 31),
        "sex": "F",
        "masked": None,
    }
    assert lower["value"] == "11010519491231002X" and lower["status"] == "valid"
    assert roman["value"] == "11010519491231002X" and roman["status"] == "valid"  # Roman numeral Ⅹ, NFKC


def test_resident_id_invalid_masked_missing():
    bad_check, bad_date, masked, missing, marker, short = run(
        resident_id,
        ["110105194912310021", "110105194902300025", "4403**********1234", None, "不详", "1101051949123100"],
    )
    assert bad_check["status"] == "invalid" and bad_check["value"] == "110105194912310021"
    assert bad_check["birth_date"] is None and bad_check["sex"] is None
    # 1949-02-30 is not a date, even when the check character is right
    body = "11010519490230002"
    assert run(resident_id, [body + idf.id_check_char(body)])[0]["status"] == "invalid"
    assert bad_date["status"] == "invalid"
    assert masked == {
        "value": None,
        "status": "masked",
        "was_15": False,
        "birth_date": None,
        "sex": None,
        "masked": "4403**********1234",
    }
    assert missing["status"] == marker["status"] == "missing"
    assert short["status"] == "invalid"


def test_masked_resident_id_keeps_only_the_published_shape():
    """The digits a masked ID shows are evidence for probabilistic linkage: kept (normalized) for the published
    shapes (4 or 6 leading digits, the last 4), never for other masks, never as the value."""
    out = run(
        resident_id,
        [
            "4403**********123x",
            "４４０３＊＊＊＊＊＊＊＊＊＊１２３Ｘ",
            "440304********1234",
            "4403********1234",
            "**************1234",
            "440304198812301233",
        ],
    )
    assert [r["masked"] for r in out] == [
        "4403**********123X",
        "4403**********123X",
        "440304********1234",
        None,
        None,
        None,
    ]
    assert [r["status"] for r in out[:5]] == ["masked"] * 5
    assert all(r["value"] is None for r in out[:5])


def test_digits_of_other_scripts_are_not_digits():
    """Rust's and Python's \\d match e.g. Arabic-Indic digits; codes are ASCII, so such values are invalid
    (and never reach the NumPy check, which needs ASCII)."""
    arabic = "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in "11010519491231002X")
    out = run(resident_id, [arabic, arabic[:6] + "19491231002X"])
    assert [r["status"] for r in out] == ["invalid", "invalid"]
    usccs = ["91" + "".join(chr(0x0660 + int(c)) for c in "110000") + "600037341L"]
    assert _statuses(uscc, usccs) == ["invalid"]
    assert _statuses(regno, ["".join(chr(0x0660 + int(c)) for c in REGNO_VALID[0])]) == ["invalid"]


def test_masked_and_missing_codes():
    for fn in (uscc, org_code, regno):
        out = run(fn, ["9144030****0741U", "", "  ", "NULL", "null", "无", "-", "/", "不详", None, "\u3000"])
        assert out[0] == {"value": None, "status": "masked"}
        assert all(r == {"value": None, "status": "missing"} for r in out[1:]), fn.__name__


# ------------------------------------------------------------------------------------------------
# Null markers and normalization
# ------------------------------------------------------------------------------------------------
def test_nullify_turns_every_marker_into_null_and_strips_the_rest():
    markers = [
        *list(NULL_MARKERS),
        "   ",
        "\u3000",
        "\u3000\u3000",
        "\t",
        " NULL ",
        "\u3000无\u3000",
        "－",
        "／",
    ]
    assert run(nullify, markers) == [None] * len(markers)
    assert run(nullify, [" 深圳市 ", "\u3000ABC\u00a0", "无锡市", "N/A-", "0", None]) == [
        "深圳市",
        "ABC",
        "无锡市",
        "N/A-",
        "0",
        None,
    ]
    # any input type is read as text
    assert pl.DataFrame({"n": [0, 5]}).select(nullify("n"))["n"].to_list() == ["0", "5"]


def test_normalize_code_folds_width_case_spaces_and_hyphens():
    out = run(
        normalize_code,
        [
            "９１４４０３０３ｍａａｇｗ８６１２０",
            " 914403 06-235927011e ",
            "ｍａ０６ｂｎｍｗ－７",
            "（Ａ）",
            "n u l l",
            "-",
            None,
        ],
    )
    assert out == ["91440303MAAGW86120", "91440306235927011E", "MA06BNMW7", "(A)", None, None, None]


def test_functions_keep_the_input_name_and_compose_in_one_select():
    df = pl.DataFrame({"a": ["91110000600037341L"], "b": ["110105491231002"], "c": ["13800138000"]})
    out = df.select(uscc("a"), resident_id(pl.col("b")), phone("c"), org_code_from_uscc("a").alias("org"))
    assert out.columns == ["a", "b", "c", "org"]
    assert out.unnest("b")["value"].to_list() == ["11010519491231002X"]


def test_lazy_and_streaming_engines_give_the_same_result():
    values = USCC_VALID + USCC_INVALID + ["x", None] + ID_VALID
    lf = pl.LazyFrame({"x": values})
    expr = [uscc("x").alias("u"), resident_id("x").alias("r"), tin("x").alias("t")]
    eager = pl.DataFrame({"x": values}).select(expr)
    assert lf.select(expr).collect(engine="streaming").equals(eager)
    assert lf.select(expr).collect().equals(eager)


def test_no_python_per_row_udfs():
    for module in (std, std_dates, std_nulls, std_pkg):
        assert "map_elements" not in inspect.getsource(module)


# ------------------------------------------------------------------------------------------------
# Hypothesis: codes built with the algorithm are valid; every single substitution is caught
# ------------------------------------------------------------------------------------------------
USCC_CHARS = idf.USCC_ALPHABET


@st.composite
def uscc_codes(draw) -> str:
    head = draw(st.text(USCC_CHARS, min_size=2, max_size=2))
    division = draw(st.text("0123456789", min_size=6, max_size=6))
    org = draw(st.text(USCC_CHARS, min_size=9, max_size=9))
    body = head + division + org
    return body + idf.uscc_check_char(body)


@st.composite
def org_codes(draw) -> str:
    body = draw(st.text(idf.ORG_ALPHABET, min_size=8, max_size=8))
    return body + idf.org_check_char(body)


@st.composite
def regnos(draw) -> str:
    body = draw(st.text("0123456789", min_size=14, max_size=14))
    return body + idf.regno_check_digit(body)


@st.composite
def id18s(draw, min_year: int = 1000, max_year: int = 9999) -> str:
    division = draw(st.text("0123456789", min_size=6, max_size=6))
    birth = draw(st.dates(dt.date(min_year, 1, 1), dt.date(max_year, 12, 31)))
    seq = draw(st.text("0123456789", min_size=3, max_size=3))
    body = division + birth.strftime("%Y%m%d").zfill(8) + seq
    return body + idf.id_check_char(body)


@st.composite
def id15s(draw) -> str:
    division = draw(st.text("0123456789", min_size=6, max_size=6))
    birth = draw(st.dates(dt.date(1900, 1, 1), dt.date(1999, 12, 31)))
    return division + birth.strftime("%y%m%d") + draw(st.text("0123456789", min_size=3, max_size=3))


@HYPO
@given(
    st.lists(uscc_codes(), min_size=1, max_size=30),
    st.lists(org_codes(), min_size=1, max_size=30),
    st.lists(regnos(), min_size=1, max_size=30),
    st.lists(id18s(), min_size=1, max_size=30),
)
def test_codes_built_with_the_algorithm_are_valid(usccs, orgs, regs, ids):
    assert {r["status"] for r in run(uscc, usccs)} == {"valid"}
    assert {r["status"] for r in run(org_code, orgs)} == {"valid"}
    assert {r["status"] for r in run(regno, regs)} == {"valid"}
    out = run(resident_id, ids)
    assert {r["status"] for r in out} == {"valid"}
    assert [r["birth_date"] for r in out] == [dt.datetime.strptime(c[6:14], "%Y%m%d").date() for c in ids]
    assert [r["sex"] for r in out] == ["M" if int(c[16]) % 2 else "F" for c in ids]
    assert run(org_code_from_uscc, usccs) == [
        c[8:17] if idf.is_valid_org_code(c[8:17]) else None for c in usccs
    ]


# Characters substituted in: ASCII, full-width forms, ideographs, the masking star, blanks, other digits.
SUBSTITUTES = (
    [chr(c) for c in range(0x20, 0x7F)]
    + [chr(c + 0xFEE0) for c in range(0x21, 0x7F)]
    + ["\u3000", "无", "中", "Ⅰ", "٣", "\u00a0"]
)


def same_after_normalization(sub: str, original: str) -> bool:
    return oracle_normalize(sub) == original


def substitutions(code: str) -> list[tuple[int, str, str]]:
    """Every (position, substitute, mutated code) that changes the code after normalization."""
    return [
        (i, c, code[:i] + c + code[i + 1 :])
        for i in range(len(code))
        for c in SUBSTITUTES
        if not same_after_normalization(c, code[i])
    ]


def _statuses(fn, codes: list[str]) -> list[str]:
    return [r["status"] for r in run(fn, codes)]


@HYPO
@given(uscc_codes())
def test_every_single_substitution_of_a_uscc_is_caught(code):
    subs = substitutions(code)
    statuses = _statuses(uscc, [m for _, _, m in subs])
    assert len(subs) > 17 * 100
    assert "valid" not in statuses


@HYPO
@given(regnos())
def test_every_single_substitution_of_a_regno_is_caught(code):
    assert "valid" not in _statuses(regno, [m for _, _, m in substitutions(code)])


@HYPO
@given(id18s())
def test_every_single_substitution_of_a_resident_id_is_caught(code):
    subs = substitutions(code)
    out = run(resident_id, [m for _, _, m in subs])
    assert not [(i, c) for (i, c, _), r in zip(subs, out, strict=True) if r["status"] == "valid"]
    # a substituted star is a masked ID, never a valid one
    assert {r["status"] for (_, c, _), r in zip(subs, out, strict=True) if c in "*＊"} == {"masked"}


@HYPO
@given(org_codes())
def test_single_substitutions_of_an_org_code_are_caught_except_value_shifts_of_11(code):
    """GB 11714's check is mod 11 over a 36-character alphabet: changing a body character's value by 11,
    22 or 33 (2 <-> D, 0 <-> B <-> M <-> X ...) keeps the check — a known weakness of the standard, which
    the vectorized validator must reproduce exactly, and every other substitution is caught."""
    subs = substitutions(code)
    statuses = _statuses(org_code, [m for _, _, m in subs])
    for (i, c, mutated), status in zip(subs, statuses, strict=True):
        sub = oracle_normalize(c)
        undetected = (
            i < 8
            and sub is not None
            and len(sub) == 1
            and sub in idf.ORG_ALPHABET
            and (idf.ORG_ALPHABET.index(sub) - idf.ORG_ALPHABET.index(code[i])) % 11 == 0
        )
        assert (status == "valid") == undetected, (mutated, status)
        assert (status == "valid") == idf.is_valid_org_code(oracle_normalize(mutated) or "")


def test_an_undetected_org_code_substitution_exists():
    # D2143569X -> DD143569X: '2' (2) -> 'D' (13), a shift of 11 at weight 7
    assert idf.is_valid_org_code("DD143569X")
    assert run(org_code, ["DD143569X"])[0]["status"] == "valid"


def _variant(draw, code: str) -> str:
    out = []
    for ch in code:
        if draw(st.booleans()):
            ch = ch.lower()
        if draw(st.booleans()):
            ch = chr(ord(ch) + 0xFEE0)
        out.append(ch + draw(st.sampled_from(["", "", "", " ", "-", "\u3000", "－"])))
    return draw(st.sampled_from(["", " ", "\u3000"])) + "".join(out) + draw(st.sampled_from(["", "  ", "\t"]))


@HYPO
@given(st.data(), uscc_codes(), org_codes(), regnos(), id18s())
def test_fullwidth_lowercase_and_spaced_variants_normalize_to_the_valid_code(data, u, o, r, i):
    for fn, code in ((uscc, u), (org_code, o), (regno, r), (resident_id, i)):
        variant = _variant(data.draw, code)
        out = run(fn, [variant])[0]
        assert (out["value"], out["status"]) == (code, "valid"), (fn.__name__, variant)
        assert run(normalize_code, [variant]) == [code]


@HYPO
@given(st.lists(id15s(), min_size=1, max_size=50))
def test_15_digit_ids_convert_like_the_scalar_helper(codes):
    out = run(resident_id, codes)
    assert [r["value"] for r in out] == [idf.id15_to_id18(c) for c in codes]
    assert {r["status"] for r in out} == {"valid"} and all(r["was_15"] for r in out)
    assert all(idf.is_valid_resident_id(r["value"]) for r in out)
    assert [r["birth_date"] for r in out] == [
        dt.datetime.strptime("19" + c[6:12], "%Y%m%d").date() for c in codes
    ]


def test_15_digit_id_with_an_impossible_birth_date_is_invalid():
    out = run(resident_id, ["110105490230002"])[0]
    assert out["status"] == "invalid" and out["was_15"] and out["value"] == "110105490230002"


# ------------------------------------------------------------------------------------------------
# Scalar and vectorized validators agree on 10,000 random strings
# ------------------------------------------------------------------------------------------------
RANDOM_ALPHABET = [
    *list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz *-"),
    "０",
    "９",
    "Ａ",
    "ｘ",
    "\u3000",
    "中",
]


def _random_codes(seed: int, n: int, length: int, valid_maker) -> list[str | None]:
    """A mix: valid codes, valid codes with one random change, and random strings around the length."""
    rng = np.random.default_rng(seed)
    out: list[str | None] = []
    for _ in range(n):
        kind = rng.integers(0, 10)
        if kind < 3:
            out.append(valid_maker(rng))
        elif kind < 6:
            code = list(valid_maker(rng))
            pos = int(rng.integers(0, len(code)))
            code[pos] = str(rng.choice(RANDOM_ALPHABET))
            out.append("".join(code))
        elif kind < 9:
            size = int(rng.integers(length - 2, length + 3))
            out.append("".join(rng.choice(RANDOM_ALPHABET, size)))
        else:
            out.append([None, "", "NULL", "无", " "][int(rng.integers(0, 5))])
    return out


def _make_uscc(rng) -> str:
    body = (
        "".join(rng.choice(list(idf.USCC_ALPHABET), 2))
        + "".join(rng.choice(list("0123456789"), 6))
        + "".join(rng.choice(list(idf.USCC_ALPHABET), 9))
    )
    return body + idf.uscc_check_char(body)


def _make_org(rng) -> str:
    body = "".join(rng.choice(list(idf.ORG_ALPHABET), 8))
    return body + idf.org_check_char(body)


def _make_regno(rng) -> str:
    body = "".join(rng.choice(list("0123456789"), 14))
    return body + idf.regno_check_digit(body)


def _make_id(rng) -> str:
    birth = dt.date(1930, 1, 1) + dt.timedelta(days=int(rng.integers(0, 30000)))
    body = (
        "".join(rng.choice(list("0123456789"), 6))
        + birth.strftime("%Y%m%d")
        + "".join(rng.choice(list("0123456789"), 3))
    )
    code = body + idf.id_check_char(body)
    return idf.id18_to_id15(code) if rng.random() < 0.2 and code[6:8] == "19" else code


def scalar_resident_id_valid(code: str | None) -> bool:
    if code is None:
        return False
    if re.fullmatch(r"[0-9]{15}", code):
        try:
            dt.date(1900 + int(code[6:8]), int(code[8:10]), int(code[10:12]))
        except ValueError:
            return False
        return idf.is_valid_resident_id(idf.id15_to_id18(code))
    return idf.is_valid_resident_id(code)


AGREEMENT = [
    (uscc, _make_uscc, 18, idf.is_valid_uscc),
    (org_code, _make_org, 9, idf.is_valid_org_code),
    (regno, _make_regno, 15, idf.is_valid_regno),
    (resident_id, _make_id, 18, scalar_resident_id_valid),
]


@pytest.mark.parametrize(
    ("fn", "maker", "length", "scalar"), AGREEMENT, ids=lambda v: getattr(v, "__name__", "")
)
def test_scalar_and_vectorized_validators_agree_on_random_strings(fn, maker, length, scalar):
    values = _random_codes(sum(map(ord, fn.__name__)), 10_000, length, maker)
    out = run(fn, values)
    expected = [scalar(oracle_normalize(v)) if oracle_normalize(v) else False for v in values]
    got = [r["status"] == "valid" for r in out]
    disagree = [(v, r) for v, r, e, g in zip(values, out, expected, got, strict=True) if e != g]
    assert not disagree, disagree[:5]
    assert 2500 < sum(got) < 9000  # both outcomes are well represented
    for v, r in zip(values, out, strict=True):
        n = oracle_normalize(v)
        expected_status = "missing" if n is None else "masked" if "*" in n else None
        if expected_status:
            assert r["status"] == expected_status
        elif r["status"] == "invalid":
            assert r["value"] == n


# ------------------------------------------------------------------------------------------------
# Taxpayer identification numbers (docs/domain/identifiers.md, 纳税人识别号)
# ------------------------------------------------------------------------------------------------
def test_tin_forms_of_identifiers_md():
    id18, id15 = "11010519491231002X", "110105491231002"
    values = [
        "91110000600037341L",
        "110108600037341",
        id18,
        id18 + "00",
        id18.lower() + "01",
        id15 + "00000",
        "110108600037342",
        "91350203M0001QAY9B",
        "110105194912310021",
        id18 + "02",
        "ABC",
        None,
        "无",
        "4403**********1234",
        id15,
    ]
    out = run(tin, values)
    got = [(r["kind"], r["status"], r["org_code"], r["resident_id"]) for r in out]
    assert (
        got
        == [
            ("uscc", "valid", "600037341", None),
            ("old_tin", "valid", "600037341", None),  # division 110108 + organization code 600037341
            ("individual", "valid", None, id18),
            ("individual", "valid", None, id18),
            ("individual", "valid", None, id18),
            ("individual", "valid", None, id18),  # 15-digit ID + five zeros, converted
            ("old_tin", "invalid", None, None),  # org code check fails
            ("uscc", "invalid", None, None),
            ("individual", "invalid", None, None),  # ID shape and a real birth date, wrong check
            ("unknown", "invalid", None, None),  # '02' is not one of the suffixes
            ("unknown", "invalid", None, None),
            ("unknown", "missing", None, None),
            ("unknown", "missing", None, None),
            ("unknown", "masked", None, None),
            # a bare 15-digit ID is not a TIN form: 15 characters are division + organization code
            ("old_tin", "valid" if idf.is_valid_org_code(id15[6:]) else "invalid", None, None),
        ]
    )
    assert [r["value"] for r in out][:6] == [
        "91110000600037341L",
        "110108600037341",
        id18,
        id18 + "00",
        id18 + "01",
        id15 + "00000",
    ]
    assert run(
        org_code_from_tin,
        ["110108600037341", "110108-60003734-1", "110108600037342", "91110000600037341L", None],
    ) == ["600037341", "600037341", None, None, None]


def test_tin_prefers_the_uscc_reading_of_an_18_digit_code_valid_both_ways():
    rng = np.random.default_rng(3)
    for _ in range(100_000):
        code = _make_id(rng)
        if len(code) == 18 and idf.is_valid_uscc(code):
            break
    else:  # pragma: no cover - 1 in 31 codes qualifies
        pytest.fail("no code valid both as ID and USCC found")
    assert run(tin, [code])[0]["kind"] == "uscc"
    assert run(resident_id, [code])[0]["status"] == "valid"


def test_tin_of_20_characters_valid_both_ways_reads_the_18_digit_id_first():
    """ID15 + '00000' is also ID18 + '00' when ID15 + '000' happens to be a valid 18-digit ID."""
    rng = np.random.default_rng(4)
    for _ in range(200_000):
        id15 = "440304" + "".join(rng.choice(list("0123456789"), 9))
        if scalar_resident_id_valid(id15) and idf.is_valid_resident_id(id15 + "000"):
            break
    else:  # pragma: no cover
        pytest.fail("no code valid both ways found")
    out = run(tin, [id15 + "00000"])[0]
    assert (out["kind"], out["status"], out["resident_id"]) == ("individual", "valid", id15 + "000")
    other = id15[:14] + str((int(id15[14]) + 1) % 10)  # same birth date, the 18-digit reading now fails
    if not idf.is_valid_resident_id(other + "000"):
        assert run(tin, [other + "00000"])[0]["resident_id"] == idf.id15_to_id18(other)


@HYPO
@given(
    st.lists(st.one_of(uscc_codes(), id18s(1900, 2020), id15s(), org_codes()), min_size=1, max_size=40),
    st.data(),
)
def test_tin_kinds_follow_the_check_that_passes(codes, data):
    values = []
    for c in codes:
        if len(c) == 9:  # an organization code -> old TIN
            values.append(data.draw(st.text("0123456789", min_size=6, max_size=6)) + c)
        elif len(c) == 15:
            values.append(c + "00000")
        else:
            values.append(c + data.draw(st.sampled_from(["", "00", "01"])) if not idf.is_valid_uscc(c) else c)
    out = run(tin, values)
    for v, r in zip(values, out, strict=True):
        assert r["status"] == "valid", v
        if len(v) == 15:
            assert (r["kind"], r["org_code"]) == ("old_tin", v[6:])
        elif idf.is_valid_uscc(v):
            assert r["kind"] == "uscc"
            assert r["org_code"] == (v[8:17] if idf.is_valid_org_code(v[8:17]) else None)
        else:
            assert r["kind"] == "individual"
            expected = (
                idf.id15_to_id18(v[:15])
                if v.endswith("00000") and len(v) == 20 and not idf.is_valid_resident_id(v[:18])
                else v[:18]
            )
            assert r["resident_id"] == expected


# ------------------------------------------------------------------------------------------------
# Mixed key columns (证件号): an invalid code goes by the structure that tells an ID from a USCC
# ------------------------------------------------------------------------------------------------
#: A valid USCC of digits only (its organization code and check character happen to be digits): mistyped,
#: it has an ID's shape, which is where the two kinds get confused.
USCC_ALL_DIGITS = "913101100080636081"


def _single_substitutions(code: str, alphabet: str) -> list[str]:
    return [code[:i] + c + code[i + 1 :] for i in range(len(code)) for c in alphabet if c != code[i]]


def test_all_digit_uscc_vector_is_valid():
    assert idf.is_valid_uscc(USCC_ALL_DIGITS) and not idf.is_valid_resident_id(USCC_ALL_DIGITS)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("11010519491231003X", "resident_id"),  # 11010519491231002X, sequence digit mistyped
        ("360426199101010072", "resident_id"),  # 360426199101010071, check digit mistyped
        ("11010529491231002X", "resident_id"),  # year 1949 -> 2949: province intact, date one digit off
        ("91010519491231002X", "resident_id"),  # province 11 -> 91: the birth date is intact
        ("913101100080636082", "uscc"),  # USCC_ALL_DIGITS, check character mistyped: ID-shaped
        ("91110000600037342L", "uscc"),  # 91110000600037341L, organization code mistyped
        ("91110K00600037341L", "uscc"),  # a letter typed into the division code
        ("11010519491231002X", "resident_id"),  # valid codes go by the check that passes
        ("91110000600037341L", "uscc"),
    ],
)
def test_key_kind_files_a_mistyped_code_by_its_structure(code, kind):
    assert not (idf.is_valid_uscc(code) and idf.is_valid_resident_id(code))
    assert run(key_kind, [code]) == [kind]


@pytest.mark.parametrize("code", ID_VALID)
def test_every_mistyped_digit_of_a_resident_id_stays_a_resident_id(code):
    """Issue 15: a new city's court parties lost their person mentions because a mistyped 18-digit ID was
    USCC-shaped and filed as one."""
    typed = [m for m in _single_substitutions(code, "0123456789") if not idf.is_valid_uscc(m)]
    kinds = run(key_kind, typed)
    assert [m for m, k in zip(typed, kinds, strict=True) if k != "resident_id"] == []


@pytest.mark.parametrize("code", [*USCC_VALID, USCC_ALL_DIGITS])
def test_every_mistyped_character_of_a_uscc_stays_a_uscc(code):
    typed = [m for m in _single_substitutions(code, idf.USCC_ALPHABET) if not idf.is_valid_resident_id(m)]
    kinds = run(key_kind, typed)
    assert len(typed) > 500
    assert [m for m, k in zip(typed, kinds, strict=True) if k != "uscc"] == []


def test_key_kind_reads_the_simulators_mistyped_keys(tmp_path):
    """Over a simulated court's parties with many typos, each 18-character key that is not masked goes to its
    party's kind: an ID to a natural person (自然人), a USCC to an enterprise (法人). A typo that happens to
    pass the other kind's check (1 in 31 for a USCC's) is classified by that check, so it is left out."""
    from simulator.estate import simulate
    from simulator.mess import MessProfile

    profile = MessProfile.with_overrides({"id_typo": 0.5, "key_typo": 0.5})
    simulate(tmp_path, enterprises=500, seed=15, only=["courts.AJ_DSR"], profile=profile)
    keys = estate_column(tmp_path, "courts", "AJ_DSR", "ZJHM")
    parties = estate_column(tmp_path, "courts", "AJ_DSR", "DSRLX")
    codes = [oracle_normalize(k) if k is not None else None for k in keys]
    kinds = run(key_kind, keys)
    expected = {"自然人": "resident_id", "法人": "uscc"}
    seen = [
        (c, p, k)
        for c, p, k in zip(codes, parties, kinds, strict=True)
        if c is not None and len(c) == 18 and "*" not in c
        if not (idf.is_valid_uscc(c) if p == "自然人" else idf.is_valid_resident_id(c))
    ]
    mistyped_ids = [c for c, p, _ in seen if p == "自然人" and not idf.is_valid_resident_id(c)]
    assert len(mistyped_ids) > 15  # the simulator's typo mess is exercised
    assert [(c, p, k) for c, p, k in seen if k != expected[p]] == []


# ------------------------------------------------------------------------------------------------
# Phones
# ------------------------------------------------------------------------------------------------
PHONES = [
    ("13800138000", "13800138000", "mobile"),
    ("+8613800138000", "13800138000", "mobile"),
    ("+86 138 0013 8000", "13800138000", "mobile"),
    ("86-13800138000", "13800138000", "mobile"),
    ("0086 13800138000", "13800138000", "mobile"),
    ("１３８００１３８０００", "13800138000", "mobile"),
    ("138-0013-8000", "13800138000", "mobile"),
    ("13800138000，13900139000", "13800138000", "mobile"),
    ("0755-71444699", "0755-71444699", "fixed"),
    ("075571444699", "0755-71444699", "fixed"),
    ("(0755)7144469", "0755-7144469", "fixed"),
    ("（0755）71444699", "0755-71444699", "fixed"),
    ("010-12345678", "010-12345678", "fixed"),
    ("01012345678", "010-12345678", "fixed"),
    ("02112345678", "021-12345678", "fixed"),
    ("+86 755 71444699", "0755-71444699", "fixed"),
    ("0311 1234567", "0311-1234567", "fixed"),
    ("12800138000", "12800138000", "invalid"),  # no mobile prefix 12x
    ("1380013800", "1380013800", "invalid"),
    ("138****8000", "138****8000", "invalid"),
    ("0123-1234567", "01231234567", "invalid"),  # 01x is not an area code (only 010)
    ("71444699", "71444699", "invalid"),  # no area code
    ("0755-71444699-801", "075571444699801", "invalid"),  # extensions are not kept
    ("/", None, "missing"),
    ("无", None, "missing"),
    ("", None, "missing"),
    (None, None, "missing"),
]


@pytest.mark.parametrize(("raw", "value", "kind"), PHONES)
def test_phone_forms(raw, value, kind):
    assert run(phone, [raw]) == [{"value": value, "kind": kind}]


@HYPO
@given(st.lists(st.text("0123456789+- ", min_size=0, max_size=16), min_size=1, max_size=50))
def test_phone_mobile_agrees_with_the_scalar_pattern(values):
    out = run(phone, values)
    for v, r in zip(values, out, strict=True):
        compact = re.sub(r"[\s\-]", "", v)
        if not compact:
            assert r["kind"] == "missing"
            continue
        scalar_mobile = idf.is_mobile(compact) or idf.is_mobile(re.sub(r"^0086", "+86", compact))
        assert (r["kind"] == "mobile") == scalar_mobile, v
        if r["kind"] == "mobile":
            assert r["value"] == compact[-11:]
        if r["kind"] == "fixed":
            assert idf.FIXED_LINE_PATTERN.match(r["value"]), v
            assert r["value"].replace("-", "") == re.sub(r"^(?:\+86|0086)0?", "0", compact)


# ------------------------------------------------------------------------------------------------
# The simulator's messy columns
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def estate(simulated_estate) -> Path:
    return simulated_estate(
        enterprises=2_500,
        seed=5,
        only=[
            "samr.T_SCZT_DJXX",
            "tax.DJ_NSRXX",
            "courts.AJ_DSR",
            "courts.SXBZXR",
            "social.SB_GRCBXX",
            "env.HB_XZCF",
        ],
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dept", "table", "col", "fn", "scalar"),
    [
        ("samr", "T_SCZT_DJXX", "TYSHXYDM", uscc, idf.is_valid_uscc),
        ("env", "HB_XZCF", "统一社会信用代码", uscc, idf.is_valid_uscc),
        ("samr", "T_SCZT_DJXX", "ZCH", regno, idf.is_valid_regno),
        ("samr", "T_SCZT_DJXX", "FDDBRZJHM", resident_id, scalar_resident_id_valid),
        ("social", "SB_GRCBXX", "SFZHM", resident_id, scalar_resident_id_valid),
        ("courts", "AJ_DSR", "ZJHM", resident_id, scalar_resident_id_valid),
        ("courts", "SXBZXR", "ZJHM", org_code, idf.is_valid_org_code),
    ],
)
def test_scalar_and_vectorized_agree_on_the_simulators_columns(estate, dept, table, col, fn, scalar):
    values = estate_column(estate, dept, table, col)
    values = [None if v is None else str(v) for v in values]
    out = run(fn, values)
    assert len(out) > 50
    for v, r in zip(values, out, strict=True):
        n = oracle_normalize(v)
        assert (r["status"] == "valid") == (n is not None and scalar(n)), (v, r)
    statuses = [r["status"] for r in out]
    assert statuses.count("valid") > 0.15 * len(out)


@pytest.mark.slow
def test_simulator_tins_are_mostly_valid_and_classified(estate):
    values = estate_column(estate, "tax", "DJ_NSRXX", "NSRSBH")
    out = run(tin, values)
    kinds = {(r["kind"], r["status"]) for r in out}
    assert ("uscc", "valid") in kinds and ("old_tin", "valid") in kinds
    valid = sum(r["status"] == "valid" for r in out)
    missing = sum(r["status"] == "missing" for r in out)
    assert valid + missing > 0.97 * len(out)
    for v, r in zip(values, out, strict=True):
        if r["status"] == "valid" and r["kind"] == "old_tin":
            assert r["org_code"] == oracle_normalize(v)[6:] and idf.is_valid_org_code(r["org_code"])
        if r["status"] == "valid" and r["kind"] == "uscc":
            assert idf.is_valid_uscc(r["value"])


@pytest.mark.slow
def test_simulator_phones_are_mobile_or_fixed(estate):
    out = run(phone, estate_column(estate, "samr", "T_SCZT_DJXX", "LXDH"))
    kinds = [r["kind"] for r in out]
    assert set(kinds) <= {"mobile", "fixed", "missing", "invalid"}
    assert kinds.count("mobile") > 0.3 * len(kinds) and kinds.count("fixed") > 0.1 * len(kinds)
    assert kinds.count("invalid") < 0.01 * len(kinds)
