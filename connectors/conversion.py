"""Conversion of what a driver returns into the bronze type: :func:`coerce` turns raw Arrow values (any type a
reader hands over) into the Arrow type :func:`connectors.types.choose_type` chose, and names the rows whose
value did not fit (``zero_date``, ``bad_date``, ``bad_value``, ``bad_encoding``).

The rules it applies are documented in :mod:`connectors.types`; every reader goes through this one function,
so the fast path and the fallback give identical bronze.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .encoding import decode_utf8_arrow
from .types import (
    BAD_DATE,
    BAD_ENCODING,
    BAD_VALUE,
    BINARY,
    STRING,
    TIMESTAMP_UTC,
    ZERO_DATE,
    TypeChoice,
)

__all__ = ["Coerced", "coerce"]


@dataclass
class Coerced:
    """The bronze values of one column of one batch and the rows whose value did not fit."""

    values: pa.Array
    flags: list[tuple[str, pa.Array]]  # (flag kind, boolean mask) -- masks are never null


_INT_RE = r"^[+-]?[0-9]+$"
_DEC_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_FLOAT_RE = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TS_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?$"
_ZERO_DATE_RE = r"^(0000-[0-9]{2}-[0-9]{2}|[0-9]{4}-00-[0-9]{2}|[0-9]{4}-[0-9]{2}-00)([ T].*)?$"
_BOOL_TEXT = ("true", "false", "1", "0")


def _false(n: int) -> pa.Array:
    return pa.array(np.zeros(n, dtype=bool), pa.bool_())


def _mask(arr: pa.Array) -> pa.Array:
    """A boolean array with nulls as False."""
    return pc.fill_null(arr, False)


def _unwrap(raw: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks()
    if isinstance(raw, pa.ExtensionArray):  # ADBC PostgreSQL: NUMERIC as arrow.opaque(storage=string)
        raw = raw.storage
    if isinstance(raw.type, pa.DictionaryType):
        raw = raw.dictionary_decode()
    return raw


def _cast_lenient(arr: pa.Array, target: pa.DataType, safe: bool = True) -> tuple[pa.Array, pa.Array | None]:
    """Cast ``arr`` to ``target``; values the cast refuses become null.  Returns (result, bad mask or None).

    One vectorized cast in the normal case; when it fails, the array is bisected so that only the failing
    values are cast one by one (cost O(k log n) casts for k bad values).
    """
    try:
        return pc.cast(arr, target, safe=safe), None
    except (pa.ArrowInvalid, OverflowError):
        pass
    n = len(arr)
    if n <= 1:
        bad = arr.is_valid()
        return pa.nulls(n, target), bad
    mid = n // 2
    left, lbad = _cast_lenient(arr.slice(0, mid), target, safe)
    right, rbad = _cast_lenient(arr.slice(mid), target, safe)
    result = pa.concat_arrays([left, right])
    lbad = _false(mid) if lbad is None else lbad
    rbad = _false(n - mid) if rbad is None else rbad
    return result, pa.concat_arrays([lbad, rbad])


def _or(*masks: pa.Array | None) -> pa.Array | None:
    present = [m for m in masks if m is not None]
    if not present:
        return None
    out = present[0]
    for m in present[1:]:
        out = pc.or_(out, m)
    return out


def _parse_text(text: pa.Array, target: pa.DataType, pattern: str | None) -> tuple[pa.Array, pa.Array | None]:
    """Parse a string array.  One vectorized cast when every value parses; otherwise values not matching
    ``pattern`` are bad without trying and the rest are cast leniently."""
    text = text.cast(STRING) if not pa.types.is_large_string(text.type) else text
    try:
        return pc.cast(text, target), None
    except (pa.ArrowInvalid, OverflowError):
        pass
    bad_shape = None
    if pattern is not None:
        bad_shape = _mask(pc.invert(pc.match_substring_regex(text, pattern)))
        if pc.any(bad_shape).as_py():
            text = pc.if_else(bad_shape, pa.scalar(None, STRING), text)
        else:
            bad_shape = None
    values, bad_cast = _cast_lenient(text, target)
    return values, _or(bad_shape, bad_cast)


def _format_floats(arr: pa.Array) -> pa.Array:
    """Binary floats as decimal text with the digits the type reliably holds (15 for double, 6 for float)."""
    digits = 6 if pa.types.is_float32(arr.type) or pa.types.is_float16(arr.type) else 15
    out = [
        None if v is None else (repr(v) if not math.isfinite(v) else format(v, f".{digits}g"))
        for v in arr.to_pylist()
    ]
    return pa.array(out, STRING)


def _localize(naive: pa.Array, zone: str) -> pa.Array:
    naive = naive.cast(pa.timestamp("us"), safe=False) if naive.type != pa.timestamp("us") else naive
    if zone == "UTC":
        return naive.cast(TIMESTAMP_UTC)
    local = pc.assume_timezone(naive, timezone=zone, ambiguous="earliest", nonexistent="earliest")
    return local.cast(TIMESTAMP_UTC)


def _zero_dates(text: pa.Array) -> pa.Array | None:
    zero = _mask(pc.match_substring_regex(text, _ZERO_DATE_RE))
    return zero if pc.any(zero).as_py() else None


def coerce(raw: pa.Array | pa.ChunkedArray, choice: TypeChoice, *, zone: str) -> Coerced:
    """Convert raw values (any Arrow type a driver returns) into ``choice.arrow_type``.

    ``zone`` is the IANA zone in which naive (wall-clock) source values are read; it is ignored for
    ``choice.zoned`` columns, whose naive raw values are already UTC.
    """
    raw = _unwrap(raw)
    n = len(raw)
    t = raw.type
    target = choice.arrow_type
    kind = choice.kind
    naive_zone = "UTC" if choice.zoned else zone
    if pa.types.is_null(t):
        return Coerced(pa.nulls(n, target), [])
    is_text = pa.types.is_string(t) or pa.types.is_large_string(t)
    is_bin = pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
    is_int = pa.types.is_integer(t)
    is_float = pa.types.is_floating(t)
    is_dec = pa.types.is_decimal(t)
    is_num = is_int or is_float or is_dec

    if kind == "string":
        if is_text:
            return Coerced(raw.cast(STRING), [])
        if is_bin:  # bytes shown as text: UTF-8, or their latin1 reading flagged bad_encoding
            values, not_utf8 = decode_utf8_arrow(raw)
            return Coerced(values, [(BAD_ENCODING, not_utf8)] if not_utf8 is not None else [])
        values, bad = _cast_lenient(raw, STRING)
        return Coerced(values, [(BAD_VALUE, bad)] if bad is not None else [])

    if kind == "binary":
        if is_bin:
            return Coerced(raw.cast(BINARY), [])
        if is_text:
            return Coerced(raw.cast(BINARY), [])
        return Coerced(pa.nulls(n, BINARY), [(BAD_VALUE, raw.is_valid())])

    if kind in ("date", "timestamp"):
        return _coerce_temporal(raw, choice, naive_zone, zone)

    if kind == "decimal":
        if is_dec:
            values, bad = _cast_lenient(raw, target)
        elif is_int:  # Arrow wants room for the whole integer type first: decimal(38,0) holds any 64-bit int
            values, bad = _cast_lenient(raw.cast(pa.decimal128(38, 0)), target)
        elif is_float:
            values, bad = _parse_text(_format_floats(raw), target, _DEC_RE)
        elif is_text:
            values, bad = _parse_text(raw, target, _DEC_RE)
        else:
            return Coerced(pa.nulls(n, target), [(BAD_VALUE, raw.is_valid())])
        return Coerced(values, [(BAD_VALUE, bad)] if bad is not None else [])

    if kind == "int64":
        if is_num or pa.types.is_boolean(t):
            values, bad = _cast_lenient(raw, target)
        elif is_text:
            values, bad = _parse_text(raw, target, _INT_RE)
        else:
            return Coerced(pa.nulls(n, target), [(BAD_VALUE, raw.is_valid())])
        return Coerced(values, [(BAD_VALUE, bad)] if bad is not None else [])

    if kind == "float64":
        if is_num or pa.types.is_boolean(t):
            values, bad = _cast_lenient(raw, target)
        elif is_text:
            values, bad = _parse_text(raw, target, _FLOAT_RE)
        else:
            return Coerced(pa.nulls(n, target), [(BAD_VALUE, raw.is_valid())])
        return Coerced(values, [(BAD_VALUE, bad)] if bad is not None else [])

    if kind == "bool":
        if pa.types.is_boolean(t):
            return Coerced(raw, [])
        if is_num:
            ok = _mask(pc.is_in(raw.cast(pa.float64(), safe=False), pa.array([0.0, 1.0])))
            bad = pc.and_(raw.is_valid(), pc.invert(ok))
            values = pc.if_else(
                ok, pc.not_equal(raw.cast(pa.float64(), safe=False), 0.0), pa.scalar(None, pa.bool_())
            )
            return Coerced(values, [(BAD_VALUE, bad)] if pc.any(bad).as_py() else [])
        if is_text:
            lowered = pc.utf8_lower(raw.cast(STRING))
            ok = _mask(pc.is_in(lowered, pa.array(_BOOL_TEXT, STRING)))
            bad = pc.and_(raw.is_valid(), pc.invert(ok))
            values = pc.cast(pc.if_else(ok, lowered, pa.scalar(None, STRING)), pa.bool_())
            return Coerced(values, [(BAD_VALUE, bad)] if pc.any(bad).as_py() else [])
        return Coerced(pa.nulls(n, target), [(BAD_VALUE, raw.is_valid())])

    raise ValueError(f"unknown bronze kind {kind!r}")


def _coerce_temporal(raw: pa.Array, choice: TypeChoice, naive_zone: str, zone: str) -> Coerced:
    t = raw.type
    n = len(raw)
    kind = choice.kind
    target = choice.arrow_type
    flags: list[tuple[str, pa.Array]] = []
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = raw.cast(STRING)
        # a date configured on a date-time column: parse the date-time, keep its local calendar day
        as_timestamp = kind == "timestamp" or choice.source_kind == "timestamp"
        parsed_type = pa.timestamp("us") if as_timestamp else pa.date32()
        try:
            parsed, bad = pc.cast(text, parsed_type), None  # the normal case: every value parses
        except (pa.ArrowInvalid, OverflowError):
            zero = _zero_dates(text)
            if zero is not None:
                flags.append((ZERO_DATE, zero))
                text = pc.if_else(zero, pa.scalar(None, STRING), text)
            parsed, bad = _parse_text(text, parsed_type, _TS_RE if as_timestamp else _DATE_RE)
        if bad is not None:
            flags.append((BAD_DATE, bad))
        if not as_timestamp:
            return Coerced(parsed, flags)
        values = _localize(parsed, naive_zone)
        if kind == "timestamp":
            return Coerced(values, flags)
        local = pc.local_timestamp(values.cast(pa.timestamp("us", tz=zone)))
        return Coerced(local.cast(pa.date32(), safe=False), flags)
    if pa.types.is_timestamp(t):
        if kind == "timestamp":
            if t.tz is None:
                return Coerced(_localize(raw, naive_zone), [])
            return Coerced(raw.cast(pa.timestamp("us", tz=t.tz), safe=False).cast(TIMESTAMP_UTC), [])
        # a date from a timestamp: the local calendar day
        if t.tz is not None:
            local = pc.local_timestamp(
                raw.cast(pa.timestamp("us", tz=t.tz), safe=False).cast(pa.timestamp("us", tz=naive_zone))
            )
            return Coerced(local.cast(pa.date32(), safe=False), [])
        return Coerced(raw.cast(pa.date32(), safe=False), [])
    if pa.types.is_date(t):
        if kind == "date":
            return Coerced(raw.cast(pa.date32()), [])
        return Coerced(_localize(raw.cast(pa.date32()).cast(pa.timestamp("us")), naive_zone), [])
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        # numbers in a date column (SQLite '20240101' stored as INTEGER, epochs...) are never guessed
        return Coerced(pa.nulls(n, target), [(BAD_DATE, raw.is_valid())])
    return Coerced(pa.nulls(n, target), [(BAD_VALUE, raw.is_valid())])
