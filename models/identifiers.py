"""Check algorithms for Chinese identifiers — the one place where their weights and alphabets live.

Every other module (the simulator that must *generate* valid codes, silver standardization that must
*validate* them, entity resolution that links only on valid ones) calls these functions, so a rule is
never written twice. See docs/domain/identifiers.md for the sources and the test vectors.

Two flavours are offered for each code:
- scalar functions (``uscc_check_char``, ``is_valid_uscc`` ...) for tests, the CLI and small inputs;
- vectorized NumPy functions working on ``(n, k)`` integer matrices of character values, used when
  millions of codes must be generated or checked without a Python loop per row.
"""

from __future__ import annotations

import datetime as _dt
import re

import numpy as np

# --- 统一社会信用代码 USCC (GB 32100-2015) -------------------------------------------------------
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
USCC_PATTERN = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$", re.ASCII)
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}

# --- 组织机构代码 organization code (GB 11714-1997) ----------------------------------------------
ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # value = index, 0..35
ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
ORG_PATTERN = re.compile(r"^[0-9A-Z]{8}[0-9X]$")

# --- 居民身份证号 resident ID (GB 11643-1999) ------------------------------------------------------
ID_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
ID_CHECK_CHARS = "10X98765432"
ID18_PATTERN = re.compile(r"^\d{17}[\dX]$", re.ASCII)
ID15_PATTERN = re.compile(r"^\d{15}$", re.ASCII)

# --- structure: what tells an invalid resident ID from an invalid USCC (docs/domain/identifiers.md) ----------
#: A province-level code of GB/T 2260 (a division code's first two digits), plus 83: the residence permits of
#: Hong Kong, Macao and Taiwan residents carry ID numbers beginning 81, 82 and 83.
PROVINCE_PATTERN = re.compile(r"^(?:1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[1-3])$")
#: A USCC's registering authority and entity type (its first two characters): 9 工商 with 1 企业, 2 个体工商户,
#: 3 农民专业合作社; 1 机构编制 and 5 民政 with 1, 2, 3 or 9 其他; Y other authorities.
USCC_AUTHORITY_PATTERN = re.compile(r"^(?:9[1-3]|[15][1-39]|Y[1-9])$")

MOBILE_PATTERN = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$", re.ASCII)
FIXED_LINE_PATTERN = re.compile(r"^0\d{2,3}-?\d{7,8}$", re.ASCII)


# ------------------------------------------------------------------------------------------------
# USCC
# ------------------------------------------------------------------------------------------------
def uscc_check_values(values: np.ndarray) -> np.ndarray:
    """Check-character values for an ``(n, 17)`` matrix of USCC alphabet values."""
    total = values.astype(np.int64) @ USCC_WEIGHTS
    return (31 - total % 31) % 31


def uscc_check_char(body17: str) -> str:
    """The 18th character of a USCC whose first 17 characters are ``body17``."""
    if len(body17) != 17 or any(c not in _USCC_VALUE for c in body17):
        raise ValueError(f"USCC body must be 17 characters of {USCC_ALPHABET!r}: {body17!r}")
    values = np.array([[_USCC_VALUE[c] for c in body17]])
    return USCC_ALPHABET[int(uscc_check_values(values)[0])]


def is_valid_uscc(code: str) -> bool:
    """True when ``code`` (already normalized: upper case, half-width, no spaces) passes the check."""
    if not isinstance(code, str) or not USCC_PATTERN.match(code):
        return False
    return uscc_check_char(code[:17]) == code[17]


# ------------------------------------------------------------------------------------------------
# Organization code
# ------------------------------------------------------------------------------------------------
def org_check_values(values: np.ndarray) -> np.ndarray:
    """Check values (0..10, 10 meaning 'X') for an ``(n, 8)`` matrix of ORG_ALPHABET values."""
    c = 11 - (values.astype(np.int64) @ ORG_WEIGHTS) % 11
    return np.where(c == 11, 0, c)


def org_check_char(body8: str) -> str:
    if len(body8) != 8 or any(c not in ORG_ALPHABET for c in body8):
        raise ValueError(f"organization code body must be 8 characters of 0-9A-Z: {body8!r}")
    c = int(org_check_values(np.array([[ORG_ALPHABET.index(ch) for ch in body8]]))[0])
    return "X" if c == 10 else str(c)


def is_valid_org_code(code: str) -> bool:
    """True for a 9-character organization code (hyphen already removed) with a correct check."""
    if not isinstance(code, str) or not ORG_PATTERN.match(code):
        return False
    return org_check_char(code[:8]) == code[8]


def org_code_of_uscc(uscc: str) -> str:
    """The organization code embedded at positions 9-17 of a USCC — the link to pre-2015 records."""
    return uscc[8:17]


# ------------------------------------------------------------------------------------------------
# 15-digit registration number, ISO 7064 MOD 11,10
# ------------------------------------------------------------------------------------------------
def regno_check_digits(digits: np.ndarray) -> np.ndarray:
    """Check digits for an ``(n, 14)`` matrix of decimal digits (ISO 7064 MOD 11,10)."""
    p = np.full(digits.shape[0], 10, dtype=np.int64)
    for j in range(digits.shape[1]):
        s = (p + digits[:, j]) % 10
        s = np.where(s == 0, 10, s)
        p = (s * 2) % 11
    return (11 - p) % 10


def regno_check_digit(body14: str) -> str:
    if len(body14) != 14 or not body14.isdigit():
        raise ValueError(f"registration number body must be 14 digits: {body14!r}")
    return str(int(regno_check_digits(np.array([[int(c) for c in body14]]))[0]))


def is_valid_regno(code: str) -> bool:
    if not isinstance(code, str) or len(code) != 15 or not (code.isascii() and code.isdigit()):
        return False
    return regno_check_digit(code[:14]) == code[14]


# ------------------------------------------------------------------------------------------------
# Resident ID
# ------------------------------------------------------------------------------------------------
def id_check_values(digits: np.ndarray) -> np.ndarray:
    """Index into ``ID_CHECK_CHARS`` for an ``(n, 17)`` matrix of digits."""
    return (digits.astype(np.int64) @ ID_WEIGHTS) % 11


def id_check_char(body17: str) -> str:
    if len(body17) != 17 or not body17.isdigit():
        raise ValueError(f"ID body must be 17 digits: {body17!r}")
    return ID_CHECK_CHARS[int(id_check_values(np.array([[int(c) for c in body17]]))[0])]


def _real_date(yyyymmdd: str) -> bool:
    try:
        _dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return True


def is_valid_resident_id(code: str) -> bool:
    """18-digit ID (upper-case X) with a real birth date and a correct check character."""
    if not isinstance(code, str) or not ID18_PATTERN.match(code):
        return False
    return _real_date(code[6:14]) and id_check_char(code[:17]) == code[17]


def id15_to_id18(code: str) -> str:
    """Convert a pre-1999 15-digit ID: insert '19' after the division code, append the check."""
    if not ID15_PATTERN.match(code or ""):
        raise ValueError(f"not a 15-digit ID number: {code!r}")
    body = code[:6] + "19" + code[6:]
    return body + id_check_char(body)


def id18_to_id15(code: str) -> str:
    """The 15-digit form an 18-digit ID had before 1999 (for people born in the 1900s)."""
    if not code[6:8] == "19":
        raise ValueError(f"only IDs of people born 1900-1999 had a 15-digit form: {code!r}")
    return code[:6] + code[8:17]


def is_mobile(phone: str) -> bool:
    return bool(MOBILE_PATTERN.match(phone or ""))


# ------------------------------------------------------------------------------------------------
# Vectorized helpers: matrices of character values <-> strings
# ------------------------------------------------------------------------------------------------
def chars_to_strings(values: np.ndarray, alphabet: str) -> np.ndarray:
    """Turn an ``(n, k)`` matrix of alphabet indices into an array of n strings of length k."""
    table = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
    raw = table[values].astype(np.uint8)
    return np.ascontiguousarray(raw).view(f"S{values.shape[1]}").ravel().astype(str)


def strings_to_values(codes: np.ndarray | list[str], alphabet: str) -> np.ndarray:
    """Inverse of :func:`chars_to_strings` for ASCII codes of equal length."""
    arr = np.asarray(codes).astype("S")
    width = arr.dtype.itemsize
    raw = np.frombuffer(arr.tobytes(), dtype=np.uint8).reshape(len(arr), width)
    lookup = np.full(256, -1, dtype=np.int64)
    for i, c in enumerate(alphabet):
        lookup[ord(c)] = i
    return lookup[raw]
