"""Repair of legacy Chinese text: GBK/GB18030 bytes that a legacy application stored in a latin1 column.

The social-security system (and many like it) was written when its database had no Chinese character set:
the application encoded names and addresses as GBK (GB18030, its superset, for the rare characters such as
𠮷 and 䶮) and wrote the *bytes* into a ``latin1`` column.  What a reader sees depends on the database:

* **MySQL / MariaDB** -- the column really is latin1 (MySQL's ``latin1`` is Windows-1252) and holds the raw
  bytes.  Readers must fetch the bytes themselves (``CAST(col AS BINARY)``), never rely on the connection
  character set, and decode them as GB18030: :func:`decode_gb18030`.
* **SQLite / PostgreSQL** (UTF-8 databases after a migration) -- the value was stored as the latin1 *decoding*
  of those bytes (mojibake such as ``ÉîÛÚÊÐ``).  ``s.encode('latin1').decode('gb18030')`` repairs it:
  :func:`repair_gbk_in_latin1`.  A Windows-1252 decoding (``€``, ``‚``... for bytes 0x80-0x9F, what a MySQL
  client reading the latin1 column as text produces) is accepted as well.

A value that is not valid GB18030 after the repair is **kept as it is** and reported as not repairable (the
bronze reader then flags the row ``bad_encoding:<column>``); pure ASCII passes through unchanged.

Scalar API: :func:`repair_gbk_in_latin1`, :func:`try_repair_gbk_in_latin1`, :func:`decode_gb18030`.
Vectorized API: :func:`repair_gbk_in_latin1_arrow` (Arrow string or binary array -> repaired array and a
mask of the values that could not be repaired) and :func:`repair_gbk_in_latin1_series` (Polars).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "LEGACY_ENCODING",
    "decode_gb18030",
    "decode_utf8_arrow",
    "repair_gbk_in_latin1",
    "repair_gbk_in_latin1_arrow",
    "repair_gbk_in_latin1_series",
    "try_repair_gbk_in_latin1",
]

LEGACY_ENCODING = "gb18030"  # superset of GBK and GB2312: every GBK byte sequence decodes the same way

# Windows-1252 maps 27 of the bytes 0x80-0x9F to other characters (0x80 -> '€'...); latin1 maps them to the
# C1 controls U+0080-U+009F.  Translating those characters back to their byte value lets one
# ``.encode('latin1')`` undo both decodings.
_CP1252_TO_LATIN1 = {}
for _b in range(0x80, 0xA0):
    with contextlib.suppress(UnicodeDecodeError):  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined in cp1252
        _CP1252_TO_LATIN1[ord(bytes([_b]).decode("cp1252"))] = _b
del _b

_SEP = "\x00"  # never produced by GB18030 from non-NUL bytes, so it can separate values in one decode


def _to_bytes(text: str) -> bytes:
    """The bytes whose latin1 (or cp1252) decoding is ``text``; UnicodeEncodeError if there are none."""
    return text.translate(_CP1252_TO_LATIN1).encode("latin1")


def decode_gb18030(raw: bytes) -> str | None:
    """``raw`` decoded as GB18030, or None when it is not valid GB18030."""
    try:
        return raw.decode(LEGACY_ENCODING)
    except UnicodeDecodeError:
        return None


def try_repair_gbk_in_latin1(text: str) -> str | None:
    """The repaired text, or None when ``text`` is not the latin1/cp1252 decoding of valid GB18030 bytes."""
    if text.isascii():
        return text
    try:
        raw = _to_bytes(text)
    except UnicodeEncodeError:  # characters beyond U+00FF: not mojibake of bytes
        return None
    return decode_gb18030(raw)


def repair_gbk_in_latin1(text: str) -> str:
    """Repair one mojibake value: ``'ÉîÛÚÊÐ'`` -> ``'深圳市'``.  A value that cannot be repaired is
    returned unchanged (use :func:`try_repair_gbk_in_latin1` to know)."""
    repaired = try_repair_gbk_in_latin1(text)
    return text if repaired is None else repaired


def _decode_many(raws: Sequence[bytes]) -> Sequence[str | None]:
    """Decode many byte strings with one codec call when possible (all valid, no NUL inside)."""
    if not raws:
        return []
    joined = b"\x00".join(raws)
    if joined.count(b"\x00") == len(raws) - 1:  # no value contains NUL: the separators are unambiguous
        try:
            parts = joined.decode(LEGACY_ENCODING).split(_SEP)
        except UnicodeDecodeError:
            parts = None
        if parts is not None and len(parts) == len(raws):
            return parts
    return [decode_gb18030(r) for r in raws]


def repair_gbk_in_latin1_arrow(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Vectorized repair.  ``values`` is either

    * a string array of mojibake (SQLite, PostgreSQL): each value is re-encoded as latin1/cp1252 and
      decoded as GB18030, or
    * a binary array of the raw bytes (MySQL ``CAST(col AS BINARY)``): decoded as GB18030.

    Returns ``(repaired, bad)``: a ``large_string`` array of the same length (nulls stay null; a value that
    cannot be repaired is kept as it is -- for raw bytes, their latin1 decoding, i.e. what a latin1
    reader would have shown) and a boolean array, True where the value could not be repaired.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    n = len(values)
    t = values.type
    if pa.types.is_null(t):
        return pa.nulls(n, pa.large_string()), pa.array([False] * n, pa.bool_())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = values.cast(pa.large_string())
        needs = pc.fill_null(pc.invert(pc.string_is_ascii(text)), False)
        if not pc.any(needs).as_py():
            return text, pa.array([False] * n, pa.bool_())
        idx = pc.indices_nonzero(needs)
        originals = pc.take(text, idx).to_pylist()
        raws: list[bytes | None] = []
        for s in originals:
            try:
                raws.append(_to_bytes(s))
            except UnicodeEncodeError:
                raws.append(None)
        good = [r for r in raws if r is not None]
        decoded = iter(_decode_many(good))
        fixed: list[str] = []
        bad_flags: list[bool] = []
        for orig, raw in zip(originals, raws, strict=True):
            got = None if raw is None else next(decoded)
            fixed.append(orig if got is None else got)
            bad_flags.append(got is None)
        repaired = pc.replace_with_mask(text, needs, pa.array(fixed, pa.large_string()))
        bad = pc.replace_with_mask(pa.array([False] * n, pa.bool_()), needs, pa.array(bad_flags, pa.bool_()))
        return repaired, bad
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        raw_values = values.to_pylist()
        present = [r for r in raw_values if r is not None]
        decoded = iter(_decode_many(present))
        out: list[str | None] = []
        bad_flags = []
        for r in raw_values:
            if r is None:
                out.append(None)
                bad_flags.append(False)
                continue
            s = next(decoded)
            bad_flags.append(s is None)
            out.append(r.decode("latin1") if s is None else s)
        return pa.array(out, pa.large_string()), pa.array(bad_flags, pa.bool_())
    raise TypeError(f"gbk_in_latin1 repair needs text or bytes, got Arrow type {t}")


def decode_utf8_arrow(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array | None]:
    """Bytes that should be UTF-8 text -> ``large_string``.  A value that is not valid UTF-8 (a legacy
    application that wrote GBK bytes into a TEXT column) is kept as its latin1 reading -- lossless and
    reversible, so :func:`repair_gbk_in_latin1_arrow` can still repair it -- and reported in the mask
    (None when every value is valid UTF-8)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values.cast(pa.large_string()), None
    try:
        return values.cast(pa.large_string()), None  # validates UTF-8 in one pass
    except pa.ArrowInvalid:
        pass
    out: list[str | None] = []
    bad: list[bool] = []
    for raw in values.to_pylist():
        if raw is None:
            out.append(None)
            bad.append(False)
            continue
        try:
            out.append(raw.decode("utf-8"))
            bad.append(False)
        except UnicodeDecodeError:
            out.append(raw.decode("latin1"))
            bad.append(True)
    return pa.array(out, pa.large_string()), pa.array(bad, pa.bool_())


def repair_gbk_in_latin1_series(series):
    """Polars version: the repaired ``pl.Series`` (values that cannot be repaired are kept as they are)."""
    import polars as pl

    repaired, _bad = repair_gbk_in_latin1_arrow(series.to_arrow())
    return pl.Series(series.name, repaired, dtype=pl.Utf8)
