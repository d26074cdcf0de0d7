"""The city's signature on every export package: Ed25519 over the exact bytes of ``manifest.json``.

Why: the manifest lists the sha256 and size of every file, but anyone who can edit a CSV can recompute
those too (a fault probe did: the edited package passed ``qst verify-export``).  A signature made with a key
only the city holds closes that: whoever changes a byte of the manifest -- or of a file, and then the
manifest -- cannot make a new signature.  Ed25519 (RFC 8032) through the ``cryptography`` package: small
keys, deterministic signatures (a re-run signs an equal manifest equally), verifiable with OpenSSL alone.

What a package carries
    ``manifest.json.sig``: the 64-byte raw signature of ``manifest.json``; ``public_key.pem``: the public key
    that made it (listed in the manifest, so covered by the signature); the manifest's ``signing`` section and
    the README name the key and its fingerprint (``sha256:`` of the 32 raw bytes of the public key).  A bureau
    pins the city's key once, from a channel it trusts (the city publishes the PEM file and its fingerprint),
    and verifies each package against it: ``qst verify-export --public-key city.pem DIR``, or without
    Quanshitong ``openssl pkeyutl -verify -pubin -inkey city.pem -rawin -in manifest.json -sigfile
    manifest.json.sig``.  Checked against the key the package itself carries, a signature proves only that
    the package is whole, not who made it -- ``qst verify-export`` says so.

The private key
    From the environment only, as the HMAC secret: the variable ``signing_key_env`` of ``exports.yaml`` names
    (default ``QST_EXPORT_SIGNING_KEY``), holding either the PEM text of an Ed25519 private key (``openssl
    genpkey -algorithm ed25519``) or the base64 of its 32 raw bytes.  Unset, every bureau's export fails with
    an error naming the variable: a production night never publishes an unsigned package.  ``qst demo`` makes
    up a key for its own run (:func:`new_key_text`), as it does the HMAC secret.  Never logged, never
    written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from models.exports.entitlements import SIGNING_KEY_ENV, ExportError

__all__ = [
    "ALGORITHM",
    "PUBLIC_KEY_FILE",
    "SIGNATURE",
    "SIGNING_KEY_ENV",
    "fingerprint",
    "load_public_key",
    "new_key_text",
    "public_pem",
    "signing_key",
    "signing_section",
    "verify_signature",
]

ALGORITHM = "Ed25519"
#: The detached signature of ``manifest.json`` in a package (raw 64 bytes, as ``openssl pkeyutl`` writes them).
SIGNATURE = "manifest.json.sig"
#: The signer's public key in a package (PEM, SubjectPublicKeyInfo).
PUBLIC_KEY_FILE = "public_key.pem"


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key_from_text(text: str, private: bool) -> Ed25519PrivateKey | Ed25519PublicKey:
    """PEM (PKCS#8 / SubjectPublicKeyInfo) or base64 (standard or URL-safe) of the 32 raw bytes; ValueError
    otherwise. One parser for both halves of the key pair, so the city's key and the bureau's copy of its public
    half are read by the same rules."""
    what = "private" if private else "public"
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = (
                serialization.load_pem_private_key(text.encode("ascii"), password=None)
                if private
                else serialization.load_pem_public_key(text.encode("ascii"))
            )
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ValueError(
                "not a readable, unencrypted PEM private key" if private else "not a readable PEM public key"
            ) from None
        if not isinstance(key, Ed25519PrivateKey if private else Ed25519PublicKey):
            raise ValueError(f"a PEM {what} key, but not an Ed25519 one")
        return key
    raw = _b64(text)
    if raw is None or len(raw) != 32:
        raise ValueError("neither PEM nor the base64 of 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(raw) if private else Ed25519PublicKey.from_public_bytes(raw)


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        return None


def signing_key(
    env_name: str = SIGNING_KEY_ENV, environ: Mapping[str, str] | None = None
) -> Ed25519PrivateKey:
    """The private key in the environment variable ``env_name``.  Errors name the variable, never show its
    value (the style of :func:`models.exports.protect.resolve_key`)."""
    value = (os.environ if environ is None else environ).get(env_name)
    if value is None or not value.strip():
        raise ExportError(
            f"the environment variable {env_name} (signing_key_env in exports.yaml) is not set; it must hold "
            "the city's Ed25519 private key that signs every package's manifest (PEM, e.g. from `openssl "
            "genpkey -algorithm ed25519`, or the base64 of its 32 bytes)"
        )
    try:
        key = _key_from_text(value, private=True)
        assert isinstance(key, Ed25519PrivateKey)
        return key
    except ValueError as exc:
        raise ExportError(
            f"the environment variable {env_name} does not hold an Ed25519 private key: {exc} (value not shown)"
        ) from None


def load_public_key(data: bytes | str) -> Ed25519PublicKey:
    """A public key from PEM text or the base64 of its 32 raw bytes; ValueError otherwise."""
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    key = _key_from_text(text, private=False)
    assert isinstance(key, Ed25519PublicKey)
    return key


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def fingerprint(public: Ed25519PublicKey) -> str:
    """``sha256:<hex>`` of the 32 raw bytes of the public key: what the city publishes beside it."""
    return "sha256:" + hashlib.sha256(_raw(public)).hexdigest()


def signing_section(public: Ed25519PublicKey) -> dict[str, str]:
    """The manifest's ``signing``: who signs it (the signature itself is beside it, in :data:`SIGNATURE`)."""
    return {
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(_raw(public)).decode("ascii"),
        "fingerprint": fingerprint(public),
        "signature_file": SIGNATURE,
    }


def verify_signature(public: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def new_key_text() -> str:
    """A new private key as the environment variable holds it (base64 of 32 random bytes): for ``qst demo``."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")
