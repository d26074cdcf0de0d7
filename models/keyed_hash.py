"""The keyed hash of personal identifiers, one implementation for the marts and the bureau exports.

Why one module: ``mart_person_360.id_hash`` and an export's ``hmac`` column must give the same hash for the same
ID under the same secret, or an analyst's join between the marts and a bureau's package silently finds nothing.
Two copies of HMAC-SHA256, of the normalization, or of the key's environment variable name drift apart; here
there is one of each (``docs/domain/identifiers.md``, GB/T 35273 §7.2, PIPL art. 28/51).

* Normalization: NFKC, trimmed, upper case; blank or null -> null (a blank is not a value to join on).
* Hash: lowercase hex of HMAC-SHA256(key, UTF-8 bytes of the normalized value) -- never a bare hash, ID
  numbers are enumerable.
* Key: the secret in the environment variable :data:`KEY_ENV` (``exports.yaml`` names it in ``hmac_key_env``;
  the example and the demo use this one), trimmed, never logged, at least :data:`MIN_KEY_BYTES` bytes --
  one rule, :func:`env_key`, for the marts' ``id_hash`` and the exports' ``hmac`` columns alike (a fault
  probe found the marts taking a 3-byte key the exports refused).
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Iterable, Mapping

__all__ = ["KEY_ENV", "MIN_KEY_BYTES", "KeyedHasher", "WeakKeyError", "env_key", "keyed_hashes", "normalize"]

#: The environment variable holding the secret of the keyed hashes (marts, exports, the demo).
KEY_ENV = "QST_EXPORT_HMAC_KEY"
#: The shortest secret accepted (bytes of its trimmed UTF-8 text): a short key can be guessed, and with it
#: every hashed ID number enumerated back.
MIN_KEY_BYTES = 16


class WeakKeyError(ValueError):
    """The secret of a keyed hash is shorter than :data:`MIN_KEY_BYTES` (the message names the variable,
    never the value)."""


class KeyedHasher:
    """HMAC-SHA256 (RFC 2104) with the key's inner and outer pads hashed once, so each value costs two
    SHA-256 continuations.  The key itself is not kept (nor shown by ``repr``)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes):
        if not key:
            raise ValueError("the HMAC key is empty")
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        block = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def __repr__(self) -> str:
        return "KeyedHasher(<secret>)"


def normalize(value: str | None) -> str | None:
    """The form that is hashed (the Polars twin is ``models.exports.protect.hash_normalize``)."""
    if value is None:
        return None
    norm = unicodedata.normalize("NFKC", value).strip().upper()
    return norm or None


def env_key(environ: Mapping[str, str] | None = None, name: str = KEY_ENV) -> bytes | None:
    """The secret of ``name`` as the hash uses it (trimmed UTF-8), or None when unset or blank; raises
    :class:`WeakKeyError` when it is shorter than :data:`MIN_KEY_BYTES` bytes."""
    value = (os.environ if environ is None else environ).get(name)
    if value is None or not value.strip():
        return None
    key = value.strip().encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise WeakKeyError(
            f"the secret in the environment variable {name} is too short (fewer than {MIN_KEY_BYTES} bytes "
            "once trimmed); use a random key of at least 32 characters"
        )
    return key


def keyed_hashes(values: Iterable[str | None], key: bytes) -> list[str | None]:
    """The hex keyed hash of each value's normalized form; null or blank -> null."""
    hasher = KeyedHasher(key)
    out: list[str | None] = []
    for v in values:
        norm = normalize(v)
        out.append(None if norm is None else hasher.hexdigest(norm.encode("utf-8")))
    return out
