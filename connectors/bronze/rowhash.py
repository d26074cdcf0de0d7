"""The row hash of bronze: what decides whether a re-read row is rewritten.

A 64-bit hash of the row's *source* columns (never ``_qst_flags`` or lineage), defined here -- not by a
library's hash, which may change between versions -- and computed vectorized with numpy, batch by
batch as the stream arrives (about 3x cheaper than the md5 of a canonical text computed by DuckDB it
replaces, and a quarter of the bytes to store). With ``fmix`` murmur3's 64-bit finalizer (a bijection)
and all arithmetic modulo 2**64:

* each *non-null* value of column ``c`` contributes ``fmix(H(name of c) ^ V(value))``; null values
  contribute nothing; the row hash is the *sum* of the contributions, stored as a signed ``long``;
* ``H(bytes)``: ``h = fmix(len ^ S_BYTES)``, then ``h = fmix(h ^ w)`` for each 8-byte little-endian word
  ``w`` of the bytes (the last one zero-padded). Strings hash their UTF-8 bytes, binary its bytes;
* integers, booleans (0/1), dates (days) and timestamps (UTC microseconds): ``fmix(int64 value ^ S_INT)``;
  floats: ``fmix(float64 bits ^ S_FLOAT)`` (one NaN); decimals: the unscaled integer ``u`` and scale ``s``
  with trailing zeros removed (``1500.50`` is ``(15005, 1)``), ``fmix(fmix(fmix(lo(u) ^ S_DEC) ^ hi(u)) ^ s)``
  over the two 64-bit halves of ``u`` as a 128-bit integer; nested values: ``H`` of DuckDB's text of them.

The constants are in the code and a test pins the recipe against an independent pure-Python
implementation. The hash does not change when columns are reordered (a sum), when a column is added
(its nulls contribute nothing) or when a type is widened (int32->int64, decimal(10,2)->decimal(12,4),
float32->float64: the values are hashed in canonical form). A row changed in one column always gets a
new hash when that column is not text, or is text whose change keeps its length and stays within one
8-byte word (every step is a bijection); otherwise two versions collide with probability about 2**-64.
The hash decides whether a re-read row is rewritten, and identifies rows whose key has a null (below).
The recipe's name (:data:`ROW_HASH_VERSION`) is the table property ``qst.row_hash``; a table written
under another recipe (or before the property existed: md5 text) has its row hashes recomputed by one
streaming rewrite, committed before any data and idempotent like a widening -- a recipe change costs one
rewrite of each table, never a lost or doubled row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .columns import RESERVED

ROW_HASH_VERSION = "qst-fmix64-sum-v2"


def from_numpy(values: np.ndarray) -> pa.Array:
    """An Arrow array of a numpy bool or number array.

    Not ``pa.array``: pyarrow imports pandas (about 65 MB and a second) the first time it converts a
    Python object, to check it is not a pandas one -- the loading path builds arrays from buffers.
    """
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def _bits(arr: pa.Array, buffer: int) -> np.ndarray:
    """A bitmap buffer of ``arr`` (0: validity, 1: boolean values) as a numpy bool array."""
    bitmap = arr.buffers()[buffer]
    if bitmap is None:
        return np.ones(len(arr), dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[arr.offset : arr.offset + len(arr)].astype(bool)


M64 = (1 << 64) - 1


_MIX1, _MIX2 = 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53  # murmur3 fmix64


_SEED_BYTES, _SEED_INT, _SEED_FLOAT, _SEED_DECIMAL = (
    0x9E3779B97F4A7C15,
    0xD6E8FEB86659FD93,
    0xA0761D6478BD642F,
    0xE7037ED1A0B428DB,
)


_CANONICAL_NAN = 0x7FF8000000000000


_WORD_MASKS = np.array([(1 << (8 * r)) - 1 for r in range(8)] + [M64], dtype=np.uint64)


_VECTOR_MIN_VALUES = 16  # below this many values still being hashed, finish them one by one


_U33 = np.uint64(33)


def fmix(h: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finalizer, in place (a bijection of 64-bit words)."""
    h ^= h >> _U33
    h *= np.uint64(_MIX1)
    h ^= h >> _U33
    h *= np.uint64(_MIX2)
    h ^= h >> _U33
    return h


def _fmix_int(h: int) -> int:
    h ^= h >> 33
    h = (h * _MIX1) & M64
    h ^= h >> 33
    h = (h * _MIX2) & M64
    return h ^ (h >> 33)


def _bytes_hash(arr: pa.Array) -> np.ndarray:
    """``H`` of each value's bytes (string or binary array; null slots hash whatever they hold)."""
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    wide = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    offset_type = np.dtype(np.int64 if wide else np.int32)
    buffers = arr.buffers()
    offsets = np.frombuffer(
        buffers[1], dtype=offset_type, count=n + 1, offset=arr.offset * offset_type.itemsize
    ).astype(np.int64)
    end, data = int(offsets[-1]), buffers[2]
    if data is not None and data.size >= end + 7:  # Arrow pads its buffers: every 8-byte load stays inside
        source = np.frombuffer(data, dtype=np.uint8)
    else:
        source = np.zeros(end + 8, dtype=np.uint8)
        if data is not None and end:
            source[:end] = np.frombuffer(data, dtype=np.uint8, count=end)
    words = np.ndarray((source.size - 7,), dtype="<u8", buffer=source, strides=(1,))  # a word at each byte
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    h = lengths.astype(np.uint64)
    h ^= np.uint64(_SEED_BYTES)
    fmix(h)
    shortest = int(lengths.min())
    k = 0
    while k < shortest:  # every value still has bytes: whole arrays, no selection
        w = words[starts + k]
        if k + 8 > shortest:
            w &= _WORD_MASKS[np.minimum(lengths - k, 8)]
        h ^= w
        fmix(h)
        k += 8
    active = np.flatnonzero(lengths > k)
    while active.size >= _VECTOR_MIN_VALUES:
        remaining = lengths[active] - k
        w = words[starts[active] + k]
        w &= _WORD_MASKS[np.minimum(remaining, 8)]
        w ^= h[active]
        h[active] = fmix(w)
        active = active[remaining > 8]
        k += 8
    for i in active.tolist():  # the few long values left
        value = source[int(starts[i]) + k : int(starts[i]) + int(lengths[i])].tobytes()
        x = int(h[i])
        for j in range(0, len(value), 8):
            x = _fmix_int(x ^ int.from_bytes(value[j : j + 8], "little"))
        h[i] = x
    return h


def _fixed_values(arr: pa.Array, dtype: np.dtype) -> np.ndarray:
    """The values buffer of a fixed-width array (null slots hold whatever they hold)."""
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _decimal_hash(arr: pa.Array, valid: np.ndarray | None) -> np.ndarray:
    n = len(arr)
    raw = np.frombuffer(arr.buffers()[1], dtype=np.uint64, count=2 * n, offset=arr.offset * 16).reshape(n, 2)
    lo, hi = raw[:, 0].copy(), raw[:, 1].copy()
    scale = np.full(n, arr.type.scale, dtype=np.int64)
    small = hi == (lo.view(np.int64) >> np.int64(63)).view(np.uint64)  # the value fits in 64 bits
    if valid is not None:
        small |= ~valid
    if arr.type.scale > 0:
        u = lo.view(np.int64)
        for _ in range(arr.type.scale):  # drop trailing zeros: (150050, 2) -> (15005, 1)
            strip = (u % 10 == 0) & (scale > 0) & small
            if not strip.any():
                break
            u[strip] //= 10
            scale[strip] -= 1
        hi = np.where(small, (u >> np.int64(63)).view(np.uint64), hi)
    for i in np.flatnonzero(~small).tolist():  # beyond 64 bits: the same steps on Python integers
        value = int(lo[i]) | (int(hi[i]) << 64)
        value -= (1 << 128) if value >> 127 else 0
        s = arr.type.scale
        while s > 0 and value % 10 == 0:
            value //= 10
            s -= 1
        lo[i], hi[i], scale[i] = value & M64, (value >> 64) & M64, s
    h = lo
    h ^= np.uint64(_SEED_DECIMAL)
    fmix(h)
    h ^= hi
    fmix(h)
    h ^= scale.view(np.uint64)
    return fmix(h)


def _value_hash(arr: pa.Array, valid: np.ndarray | None) -> np.ndarray:
    """``V`` of each value (see the module docstring); null slots get arbitrary values."""
    t = arr.type
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    ):
        return _bytes_hash(arr)
    if pa.types.is_decimal128(t):
        return _decimal_hash(arr, valid)
    if pa.types.is_floating(t):
        values = arr.cast(pa.float64()) if t != pa.float64() else arr
        floats = _fixed_values(values, np.dtype(np.float64))
        h = floats.view(np.uint64).copy()
        h[np.isnan(floats)] = _CANONICAL_NAN
        h ^= np.uint64(_SEED_FLOAT)
        return fmix(h)
    if pa.types.is_boolean(t):
        h = _bits(arr, 1).astype(np.uint64)
    elif pa.types.is_integer(t) or pa.types.is_date32(t) or pa.types.is_timestamp(t):
        sign = "u" if pa.types.is_unsigned_integer(t) else ""
        width = np.dtype(np.int32) if pa.types.is_date32(t) else np.dtype(f"{sign}int{t.bit_width}")
        h = _fixed_values(arr, width).astype(np.int64).view(np.uint64)
    else:  # nested and other rare types: DuckDB's text of the value
        import duckdb

        con = duckdb.connect()
        try:
            con.register("__qst_value", pa.Table.from_arrays([arr], names=["v"]))
            text = con.sql("SELECT CAST(v AS VARCHAR) AS v FROM __qst_value").to_arrow_table().column(0)
        finally:
            con.close()
        return _bytes_hash(text.combine_chunks().cast(pa.large_string()))
    h ^= np.uint64(_SEED_INT)
    return fmix(h)


def _name_hash(name: str) -> int:
    """``H`` of a column name's UTF-8 bytes."""
    data = name.encode()
    h = _fmix_int(len(data) ^ _SEED_BYTES)
    for j in range(0, len(data), 8):
        h = _fmix_int(h ^ int.from_bytes(data[j : j + 8], "little"))
    return h


class RowHasher:
    """The row hash of each row's source columns (see the module docstring), as an int64 array."""

    def __init__(self, schema: pa.Schema):
        self.columns = [f.name for f in schema if f.name not in RESERVED]
        self.names = {c: np.uint64(_name_hash(c)) for c in self.columns}

    def __call__(self, data: pa.Table | pa.RecordBatch) -> pa.Array:
        total = np.zeros(data.num_rows, dtype=np.uint64)
        for name in self.columns:
            column = data.column(name)
            arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            if arr.null_count == len(arr):
                continue
            valid = _bits(arr, 0) if arr.null_count else None
            term = _value_hash(arr, valid)
            term ^= self.names[name]
            fmix(term)
            if valid is not None:
                term[~valid] = 0
            total += term
        return from_numpy(total.view(np.int64))
