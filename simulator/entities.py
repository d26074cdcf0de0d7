"""The true city: enterprises and persons, generated in deterministic units.

An *unit* is a contiguous range of enterprise indices (plus the persons that belong to them) generated
from its own random stream ``(seed, unit_no)``, so any unit can be rebuilt alone, in any order, and the
result never depends on batch sizes. Identifier spaces are filled through affine permutations of global
keys, which makes every USCC, organization code, registration number and ID number unique by
construction rather than by luck.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from models import identifiers as idf
from simulator import vocab

UNIT_SIZE = 20_000  # enterprises per generation unit (fixed: changing it changes the estate)
PERSON_STRIDE = 1_000_000  # person keys per unit
EPOCH = dt.date(1995, 1, 1)
REFORM = dt.date(2015, 10, 1)  # USCC reform: older entities carry organization codes and old TINs
REGNO_START = dt.date(2007, 1, 1)
BIRTH_START = dt.date(1950, 1, 1)
BIRTH_DAYS = 20_818  # 1950-01-01 .. 2006-12-31
ID_SPACE = len(vocab.ORIGIN_DIVISIONS) * BIRTH_DAYS * 1000


def permute(keys: np.ndarray, modulus: int, a: int, b: int) -> np.ndarray:
    """A bijection of [0, modulus): distinct keys give distinct codes (gcd(a, modulus) must be 1)."""
    return (keys.astype(np.int64) * a + b) % modulus


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) matrix of the decimal digits of ``values``."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers[None, :]) % 10


def _ascii_matrix(strings: pl.Series, width: int) -> np.ndarray:
    arr = strings.to_numpy().astype(f"S{width}")
    return np.frombuffer(arr.tobytes(), dtype=np.uint8).reshape(len(arr), width)


def resident_ids(keys: np.ndarray) -> pl.DataFrame:
    """Unique, valid 18-digit ID numbers (with birth date and sex) for distinct person keys."""
    p = permute(keys, ID_SPACE, 2_654_435_761 % ID_SPACE | 1, 12_345)
    n_div = len(vocab.ORIGIN_DIVISIONS)
    div = p % n_div
    rest = p // n_div
    day = rest % BIRTH_DAYS
    seq = rest // BIRTH_DAYS
    birth = np.datetime64(BIRTH_START) + day.astype("timedelta64[D]")
    frame = pl.DataFrame(
        {
            "division": np.array(vocab.ORIGIN_DIVISIONS)[div],
            "birth": birth.astype("datetime64[D]"),
            "seq": seq,
        }
    ).with_columns(
        body=pl.concat_str(
            [
                pl.col("division"),
                pl.col("birth").dt.strftime("%Y%m%d"),
                pl.col("seq").cast(pl.Utf8).str.zfill(3),
            ]
        )
    )
    digits = _ascii_matrix(frame["body"], 17) - ord("0")
    check = np.array(list(idf.ID_CHECK_CHARS))[idf.id_check_values(digits)]
    return frame.select(
        id_number=pl.col("body") + pl.Series(check),
        birth=pl.col("birth"),
        sex=pl.when(pl.col("seq") % 2 == 1).then(pl.lit("M")).otherwise(pl.lit("F")),
        origin=pl.col("division"),
    )


def org_codes(keys: np.ndarray, modern: np.ndarray) -> np.ndarray:
    """Organization codes: 8 digits for pre-reform entities, ``MA`` + 6 for the rest; check appended."""
    n = len(keys)
    body = np.zeros((n, 8), dtype=np.int64)  # values in ORG_ALPHABET
    old = permute(keys, 10**8, 48_271, 7_777_777)
    body[~modern] = _digits(old[~modern], 8)
    new = permute(keys, 31**6, 1_000_003, 424_242)
    uscc_alpha_to_org = np.array([idf.ORG_ALPHABET.index(c) for c in idf.USCC_ALPHABET])
    m = new[modern]
    six = np.stack([(m // 31**k) % 31 for k in range(5, -1, -1)], axis=1)
    body[modern, 0] = idf.ORG_ALPHABET.index("M")
    body[modern, 1] = idf.ORG_ALPHABET.index("A")
    body[modern, 2:] = uscc_alpha_to_org[six]
    check = idf.org_check_values(body)
    chars = np.array(list(idf.ORG_ALPHABET))[body]
    check_chars = np.where(check == 10, "X", check.astype(str))
    return np.array(["".join(r) for r in chars]) + check_chars


def usccs(entity_type_digit: np.ndarray, division: np.ndarray, org: np.ndarray) -> np.ndarray:
    bodies = pl.Series(np.char.add(np.char.add(np.char.add("9", entity_type_digit), division), org))
    values = idf.strings_to_values(bodies.to_numpy(), idf.USCC_ALPHABET)
    check = np.array(list(idf.USCC_ALPHABET))[idf.uscc_check_values(values)]
    return np.char.add(bodies.to_numpy().astype(str), check)


def regnos(keys: np.ndarray, division: np.ndarray, individual: np.ndarray) -> np.ndarray:
    seq = permute(keys, 4 * 10**7, 69_621, 1_234_567) + np.where(individual, 6 * 10**7, 0)
    div = np.array([[int(c) for c in d] for d in division]) if len(division) else np.zeros((0, 6), int)
    digits = np.concatenate([div, _digits(seq, 8)], axis=1)
    check = idf.regno_check_digits(digits)
    return np.array(["".join(map(str, r)) for r in digits]) + check.astype(str)


def unique_brands(keys: np.ndarray, seed: int) -> np.ndarray:
    """A trade name (字号) of three characters per enterprise, distinct for distinct keys (up to 177³ = 5.5M
    enterprises): 企业名称 are unique within a registration authority's jurisdiction, so a registry never holds one
    name twice — drawn at random, a 20,000-enterprise city had 245 enterprises sharing their full name with
    another, which no real registry has and which no resolution could tell apart by name. Former names are still
    drawn at random (a released name may be taken again)."""
    chars = np.array(vocab.BRAND_CHARS)
    b = len(chars)
    v = permute(keys, b**3, 1_000_003, (seed * 7_919 + 777) % b**3)
    return np.char.add(np.char.add(chars[v % b], chars[(v // b) % b]), chars[v // (b * b)])


def _to_utf8(s: pl.Series) -> pl.Series:
    return pl.Series(s.name, s.to_list(), dtype=pl.Utf8)


@dataclass(frozen=True)
class Unit:
    """The true entities of one generation unit."""

    unit_no: int
    enterprises: pl.DataFrame
    persons: pl.DataFrame


def _choice(rng: np.random.Generator, pool: list, n: int, p: list[float] | None = None) -> np.ndarray:
    weights = None if p is None else np.asarray(p, dtype=float) / np.sum(p)
    return np.asarray(pool, dtype=object if any(len(str(x)) > 1 for x in pool) else None)[
        rng.choice(len(pool), size=n, p=weights)
    ]


def generate_unit(
    seed: int, unit_no: int, first_index: int, count: int, as_of: dt.date, founded_from: dt.date = EPOCH
) -> Unit:
    """Enterprises ``first_index .. first_index+count-1`` and their persons, founded in
    ``[founded_from, as_of]``."""
    rng = np.random.default_rng([seed, unit_no, 1])
    n = count
    idx = np.arange(first_index, first_index + n, dtype=np.int64)

    # --- kind: ordinary enterprise, 个体工商户, or branch (分公司) of an earlier enterprise -------
    u = rng.random(n)
    kind = np.where(u < 0.08, "individual", np.where(u < 0.11, "branch", "enterprise"))
    kind[0] = "enterprise"
    last_parent = np.maximum.accumulate(np.where(kind == "enterprise", np.arange(n), 0))
    parent_local = np.where(kind == "branch", np.concatenate([[0], last_parent[:-1]]), -1)

    # --- founding and status ----------------------------------------------------------------
    span = (as_of - founded_from).days
    founded_off = (span * rng.random(n) ** 0.7).astype(np.int64)
    founded = np.datetime64(founded_from) + founded_off.astype("timedelta64[D]")
    is_branch = kind == "branch"
    founded[is_branch] = np.maximum(founded[is_branch], founded[parent_local[is_branch]] + 30)
    founded = np.minimum(founded, np.datetime64(as_of))
    modern = founded >= np.datetime64(REFORM)
    status = _choice(rng, ["active", "revoked", "deregistered", "moved_out"], n, [0.85, 0.05, 0.08, 0.02])
    age_days = (np.datetime64(as_of) - founded).astype(np.int64)
    status = np.where(age_days < 200, "active", status)
    status_date = founded + (age_days * rng.uniform(0.3, 1.0, n)).astype("timedelta64[D]")

    # --- where: district of registration (retired codes on some old records) ------------------
    d = rng.choice(len(vocab.DISTRICTS), size=n, p=vocab.DISTRICT_WEIGHTS)
    district_code = np.array([c for c, _ in vocab.DISTRICTS])[d]
    district_name = np.array([nm for _, nm in vocab.DISTRICTS])[d]
    auth_code = district_code.copy()
    retired = (~modern) & np.isin(district_code, ["440310", "440311"]) & (rng.random(n) < 0.5)
    auth_code[retired] = np.where(district_code[retired] == "440311", "440320", "440321")

    # --- identifiers -------------------------------------------------------------------------
    org = org_codes(idx, modern)
    type_digit = np.where(kind == "individual", "2", "1")
    uscc = usccs(type_digit, auth_code, org)
    has_regno = (founded >= np.datetime64(REGNO_START)) & ~modern
    regno = np.full(n, None, dtype=object)
    if has_regno.any():
        regno[has_regno] = regnos(idx[has_regno], auth_code[has_regno], kind[has_regno] == "individual")
    old_tin = np.where(~modern, np.char.add(auth_code.astype(str), org.astype(str)), None)

    # --- names -------------------------------------------------------------------------------
    def brands(k: int) -> np.ndarray:
        chars = np.array(vocab.BRAND_CHARS)
        b = np.char.add(chars[rng.integers(0, len(chars), k)], chars[rng.integers(0, len(chars), k)])
        three = rng.random(k) < 0.35
        return np.where(three, np.char.add(b, chars[rng.integers(0, len(chars), k)]), b)

    brands(n)  # drawn as before, so that every later draw of the unit is unchanged
    brand = unique_brands(idx, seed)
    ind = rng.integers(0, len(vocab.INDUSTRIES), n)
    ind_word = np.array([w for w, _, _ in vocab.INDUSTRIES])[ind]
    hydm = np.array([c for _, c, _ in vocab.INDUSTRIES])[ind]
    hymc = np.array([t for _, _, t in vocab.INDUSTRIES])[ind]
    form = _choice(rng, vocab.LEGAL_FORMS, n, vocab.LEGAL_FORM_WEIGHTS).astype(str)
    bracket_style = rng.random(n) < 0.1
    name = np.where(
        bracket_style,
        np.char.add(np.char.add(np.char.add(brand, ind_word), "（深圳）"), form),
        np.char.add(np.char.add(np.char.add(vocab.CITY, brand), ind_word), form),
    )
    trade = rng.integers(0, len(vocab.INDIVIDUAL_TRADES), n)
    indiv = kind == "individual"
    name = np.where(
        indiv,
        np.char.add(
            np.char.add(np.char.add(vocab.CITY, district_name), brand),
            np.array([t for t, _ in vocab.INDIVIDUAL_TRADES])[trade],
        ),
        name,
    )
    hydm = np.where(indiv, np.array([c for _, c in vocab.INDIVIDUAL_TRADES])[trade], hydm)
    form = np.where(indiv, "个体工商户", form)
    # a branch: the parent's name + the branch's district + 分公司; inherits industry
    name = name.astype(object)
    name[is_branch] = np.char.add(
        np.char.add(name[parent_local[is_branch]].astype(str), district_name[is_branch]), "分公司"
    )
    hydm[is_branch] = hydm[parent_local[is_branch]]
    ind_word[is_branch] = ind_word[parent_local[is_branch]]
    form = np.where(is_branch, "分公司", form)
    renamed = (kind == "enterprise") & (rng.random(n) < 0.05)
    former = np.where(
        renamed,
        np.char.add(
            np.char.add(np.char.add(vocab.CITY, brands(n)), ind_word),
            np.where(form == "股份有限公司", form, "有限公司"),
        ),
        None,
    )

    capital = np.round(np.exp(rng.normal(5.0, 1.4, n)), 2)  # 万元
    capital = np.where(indiv, np.round(capital / 20, 2), capital)
    street = _choice(rng, vocab.STREETS, n)
    building = _choice(rng, vocab.BUILDINGS, n)
    no = rng.integers(1, 3000, n).astype(str)
    address = np.char.add(
        np.char.add(
            np.char.add(np.char.add(np.char.add(vocab.CITY, district_name), street.astype(str)), no), "号"
        ),
        np.where(
            rng.random(n) < 0.6,
            np.char.add(np.char.add(brand, building.astype(str)), rng.integers(1, 40, n).astype(str)) + "楼",
            "",
        ),
    )
    mobile = rng.random(n) < 0.6
    phone = np.where(
        mobile,
        np.char.add("1", (rng.integers(3, 10, n) * 10**9 + rng.integers(0, 10**9, n)).astype(str)),
        np.char.add("0755-", rng.integers(2 * 10**7, 9 * 10**7, n).astype(str)),
    )

    # --- persons: legal representatives, employees, and people met only in courts/services ----
    n_rep = n
    rep_local = np.arange(n)
    shared = rng.random(n) < 0.08
    shared[0] = False
    rep_local[shared] = (rng.random(shared.sum()) * np.nonzero(shared)[0]).astype(np.int64)
    employer = (kind != "individual") & (rng.random(n) < 0.72)
    headcount = np.where(employer, np.minimum(np.maximum(1, rng.lognormal(1.2, 1.0, n)), 3000), 0).astype(
        np.int64
    )
    n_emp = int(headcount.sum())
    n_other = int(n * 0.3)
    n_persons = n_rep + n_emp + n_other
    assert n_persons < PERSON_STRIDE
    pkeys = unit_no * PERSON_STRIDE + np.arange(n_persons, dtype=np.int64)
    ids = resident_ids(pkeys)
    surname = _choice(rng, vocab.SURNAMES, n_persons, vocab.SURNAME_WEIGHTS).astype(str)
    given = _choice(rng, vocab.GIVEN_NAMES, n_persons).astype(object)
    rare = rng.random(n_persons) < 0.001
    given[rare] = _choice(rng, vocab.RARE_GIVEN_NAMES, int(rare.sum()))
    pname = np.char.add(surname, given.astype(str))
    pphone = np.char.add(
        "1", (rng.integers(3, 10, n_persons) * 10**9 + rng.integers(0, 10**9, n_persons)).astype(str)
    )
    role = np.array(["legal_rep"] * n_rep + ["employee"] * n_emp + ["other"] * n_other)
    employer_local = np.concatenate(
        [np.full(n_rep, -1), np.repeat(np.arange(n), headcount), np.full(n_other, -1)]
    )
    pid = np.char.add("P", np.char.zfill(pkeys.astype(str), 12))
    eid = np.char.add("E", np.char.zfill(idx.astype(str), 10))

    enterprises = pl.DataFrame(
        {
            "idx": idx,
            "entity_id": eid,
            "kind": kind,
            "parent_id": np.where(is_branch, eid[np.maximum(parent_local, 0)], None),
            "division": district_code,
            "district": district_name,
            "authority": auth_code,
            "founded": founded.astype("datetime64[D]"),
            "modern": modern,
            "org_code": org,
            "uscc": uscc,
            "regno": regno,
            "old_tin": old_tin,
            "name": name.astype(str),
            "former_name": former,
            "brand": brand,
            "legal_form": form,
            "hydm": hydm,
            "hymc": np.where(indiv, "零售业", hymc),
            "capital": capital,
            "status": status,
            "status_date": status_date.astype("datetime64[D]"),
            "address": address,
            "phone": phone,
            "rep_id": pid[rep_local],
            "headcount": headcount,
        },
        strict=False,
    ).with_columns(pl.col(pl.Object).map_batches(_to_utf8, return_dtype=pl.Utf8))
    persons = (
        pl.DataFrame(
            {
                "person_id": pid,
                "role": role,
                "name": pname,
                "phone": pphone,
                "employer_id": np.where(employer_local >= 0, eid[np.maximum(employer_local, 0)], None),
            },
            strict=False,
        )
        .with_columns(pl.col(pl.Object).map_batches(_to_utf8, return_dtype=pl.Utf8))
        .hstack(ids)
    )
    return Unit(unit_no=unit_no, enterprises=enterprises, persons=persons)
