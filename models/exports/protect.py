"""Protection of personal data in bureau exports: display masks and keyed hashes, vectorized.

Why these rules (``docs/domain/identifiers.md``, GB/T 35273 §7.2 display de-identification, PIPL art. 28/51):

* No national pattern is mandated; the convention is a resident ID's first 6 and last 4 characters
  (``110105********002X``: the division stays, the birth date goes), a mobile's first 3 and last 4
  (``138****8000``), a bank card's first 6 and last 4.  A person's name keeps its first character (``张*``).
* A mask is for reading, not for joining.  To let bureaus join on an identifier without seeing it, a column
  can instead carry an HMAC-SHA256 of the normalized value, keyed with a secret from the environment -- never
  a bare hash: ID numbers are enumerable (a few hundred million candidates), so an unkeyed sha256 is
  reversible by brute force.  The same key gives the same hash in every bureau's package and every night.

Rules common to every mask (so that a masked value is never the clear value):

* The value is read as text, NFKC-normalized (full-width ``１１０１…`` becomes ``110 1…``) and trimmed; a
  null or blank value stays null (there is nothing to hide, and a blank is not a value to join on).
* Every character between the kept head and tail becomes ``*`` (one per character: the length stays
  visible, as in the convention).
* A value not longer than head + tail together would be revealed whole by the rule; it is masked
  entirely (``*`` per character) instead.
* ``mask_id`` also upper-cases (``x`` -> ``X``); ``mask_mobile`` first drops spaces, dashes and brackets and a
  ``+86``/``86`` country prefix in front of an 11-digit mobile; ``mask_bank_card`` drops spaces and dashes.

HMAC normalization (documented for the bureaus in their README): NFKC, trimmed, upper case; blank -> null.
The hash is the lowercase hex of HMAC-SHA256(key, UTF-8 bytes of the normalized value); the HMAC itself, the
normalization's plain-Python twin and the key's default environment variable live in :mod:`models.keyed_hash`,
which the marts' ``id_hash`` uses too, so a bureau's hash and the analysts' hash of one ID are equal.

Everything here is Polars expressions over whole columns except the hash itself, which Polars cannot
compute: it runs once per *distinct* value of a batch with pre-keyed SHA-256 states (about 1 µs a value),
and the results are mapped back onto the column.  :func:`protect_arrow` is the entry point the export
engine registers as a vectorized DuckDB function, so that the protected values -- not the clear ones --
decide the order of the exported rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
import pyarrow as pa

from models.exports.entitlements import MASK_PRESETS, ColumnRule, ExportError
from models.keyed_hash import MIN_KEY_BYTES, KeyedHasher, WeakKeyError, env_key

__all__ = [
    "MASK_CHAR",
    "MIN_KEY_BYTES",
    "KeyedHasher",
    "hash_normalize",
    "hmac_hex",
    "mask",
    "mask_bank_card",
    "mask_id",
    "mask_mobile",
    "mask_name",
    "protect_arrow",
    "protect_series",
    "resolve_key",
]

MASK_CHAR = "*"


def _text(expr: pl.Expr) -> pl.Expr:
    """Text, NFKC, trimmed; blank -> null."""
    return expr.cast(pl.String).str.normalize("NFKC").str.strip_chars().replace("", None)


def _stars(count: pl.Expr) -> pl.Expr:
    return pl.lit("", pl.String).str.pad_end(count, MASK_CHAR)


def _normalized(protect: str, expr: pl.Expr) -> pl.Expr:
    """The text a protection works on (:func:`_text`, and what each kind adds)."""
    text = _text(expr)
    if protect in ("mask_id", "hmac"):
        return text.str.to_uppercase()
    if protect == "mask_mobile":
        return text.str.replace_all(r"[\s\-()（）]", "").str.replace(r"^\+?86(1[0-9]{10})$", "$1")
    if protect == "mask_bank_card":
        return text.str.replace_all(r"[\s\-]", "")
    return text


def _mask_text(v: pl.Expr, keep_first: int, keep_last: int) -> pl.Expr:
    """The mask of normalized text ``v`` (a plain column, so that it is not recomputed per branch)."""
    n = v.str.len_chars().cast(pl.Int64)
    hidden = n - keep_first - keep_last
    # every branch is evaluated on every row: keep offsets and lengths non-negative where unused
    kept = pl.concat_str(
        [
            v.str.slice(0, keep_first),
            _stars(hidden.clip(lower_bound=0)),
            v.str.slice((n - keep_last).clip(lower_bound=0), keep_last),
        ]
    )
    return (
        pl.when(v.is_null() | (n == 0))
        .then(pl.lit(None, pl.String))
        .when(hidden <= 0)
        .then(_stars(n))
        .otherwise(kept)
    )


def mask(expr: pl.Expr, keep_first: int, keep_last: int) -> pl.Expr:
    """Keep ``keep_first`` leading and ``keep_last`` trailing characters, ``*`` for each one between; a value
    of at most ``keep_first + keep_last`` characters is all ``*``; null and blank give null."""
    if keep_first < 0 or keep_last < 0:
        raise ValueError("keep_first and keep_last must be >= 0")
    return _mask_text(_text(expr), keep_first, keep_last)


def mask_id(expr: pl.Expr) -> pl.Expr:
    """Resident ID (or any ID-like code): first 6 and last 4 kept, upper case."""
    return _mask_text(_normalized("mask_id", expr), *MASK_PRESETS["mask_id"])


def mask_mobile(expr: pl.Expr) -> pl.Expr:
    """Phone: first 3 and last 4 kept, after dropping separators and a +86 prefix of a mobile."""
    return _mask_text(_normalized("mask_mobile", expr), *MASK_PRESETS["mask_mobile"])


def mask_bank_card(expr: pl.Expr) -> pl.Expr:
    """Bank card: first 6 and last 4 kept, after dropping spaces and dashes."""
    return _mask_text(_normalized("mask_bank_card", expr), *MASK_PRESETS["mask_bank_card"])


def mask_name(expr: pl.Expr) -> pl.Expr:
    """A person's name: its first character kept (``张伟`` -> ``张*``; a one-character name is ``*``)."""
    return _mask_text(_text(expr), *MASK_PRESETS["mask_name"])


def hash_normalize(expr: pl.Expr) -> pl.Expr:
    """The form that is hashed: NFKC, trimmed, upper case; blank -> null."""
    return _normalized("hmac", expr)


def hmac_hex(values: pl.Series, hasher: KeyedHasher) -> pl.Series:
    """The hex HMAC of each value's normalized form (:func:`hash_normalize`); null and blank give null."""
    return _hmac_normalized(values.to_frame("v").select(hash_normalize(pl.col("v"))).to_series(), hasher)


def _hmac_normalized(norm: pl.Series, hasher: KeyedHasher) -> pl.Series:
    distinct = norm.drop_nulls().unique()
    if distinct.len() == 0:
        return pl.Series(norm.name, [None] * norm.len(), dtype=pl.String)
    digests = pl.Series([hasher.hexdigest(v.encode("utf-8")) for v in distinct.to_list()], dtype=pl.String)
    return norm.replace_strict(distinct, digests, default=None, return_dtype=pl.String)


def protect_series(values: pl.Series, rule: ColumnRule, hasher: KeyedHasher | None = None) -> pl.Series:
    """Apply one column rule to a column (``keep`` returns it unchanged; ``drop`` is never exported).  The
    normalized text is computed once, then masked or hashed."""
    if rule.protect == "keep":
        return values
    if rule.protect == "drop":
        raise ValueError("a dropped column is not exported")
    if rule.protect == "hmac" and hasher is None:
        raise ValueError("an hmac column needs a KeyedHasher")
    norm = values.to_frame("v").select(_normalized(rule.protect, pl.col("v"))).to_series()
    if rule.protect == "hmac":
        assert hasher is not None
        return _hmac_normalized(norm, hasher).rename(values.name)
    return norm.to_frame("v").select(_mask_text(pl.col("v"), *rule.keeps()).alias(values.name)).to_series()


def protect_arrow(
    values: pa.Array | pa.ChunkedArray, rule: ColumnRule, hasher: KeyedHasher | None = None
) -> pa.Array:
    """:func:`protect_series` on Arrow data (the signature of a vectorized DuckDB function)."""
    series = pl.Series("v", values) if not isinstance(values, pl.Series) else values
    out = protect_series(series.cast(pl.String), rule, hasher)
    return out.to_arrow()


def resolve_key(env_name: str | None, environ: Mapping[str, str] | None = None) -> bytes:
    """The HMAC secret from the environment variable ``env_name``, by the rule of the marts' ``id_hash``
    (:func:`models.keyed_hash.env_key`: trimmed, at least ``MIN_KEY_BYTES``).  Errors name the variable, never
    show its value."""
    if not env_name:
        raise ExportError("an hmac column needs 'hmac_key_env' in exports.yaml")
    try:
        key = env_key(environ, env_name)
    except WeakKeyError as exc:
        raise ExportError(str(exc)) from None
    if key is None:
        raise ExportError(
            f"the environment variable {env_name} (hmac_key_env in exports.yaml) is not set; it "
            "must hold the secret key of the hmac columns"
        )
    return key
