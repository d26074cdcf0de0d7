"""Check an export package against its manifest: ``qst verify-export [--public-key CITY.pem] PATH``.

A bureau (or the platform, before and after publishing) must be able to tell that a package is exactly what
the city built: no file missing, none added, none altered.  The manifest's Ed25519 signature proves the
manifest is the city's (:mod:`models.exports.signing`: checked against the public key the bureau pinned, else
-- weaker, and said so -- against the key the package names); the sha256 of each file then proves the files
are the manifest's.  The row counts and schemas are checked too so that a mismatch says *what* differs in
terms a data user understands, and no CSV cell may be longer than the limit silver and the exports keep
(:data:`models.standardize.safe_text.MAX_FIELD_CHARS`, plus the one quote a formula cell is given).  Every
problem is listed, not just the first.

The package path may be the published link ``<bureau>/<date>`` or the build folder it points at; the link is
resolved once, so a package replaced while it is being verified is still checked as one consistent whole.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from models.exports.package import MANIFEST, PACKAGE_FORMAT
from models.exports.signing import SIGNATURE, fingerprint, load_public_key, verify_signature
from models.exports.write import FORMULA_PREFIX
from models.standardize.safe_text import MAX_FIELD_CHARS

__all__ = ["Mismatch", "VerifyReport", "verify_package"]


@dataclass(frozen=True)
class Mismatch:
    """One difference between a package and its manifest."""

    kind: str  # manifest | signature | missing | extra | sha256 | size | rows | schema | encoding | field | unreadable
    file: str | None  # the file concerned (None: the package as a whole)
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.kind}: {self.message}" if self.file else f"{self.kind}: {self.message}"


@dataclass
class VerifyReport:
    path: Path  # as given
    resolved: Path  # the folder actually checked
    problems: list[Mismatch] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # files whose digest matched
    manifest: dict[str, Any] | None = None
    signed_by: str | None = None  # the fingerprint of the key the signature was checked with
    key_pinned: bool = False  # that key was the bureau's (--public-key), not the one the package names

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            head = (
                f"{self.path}: OK ({len(self.checked)} files match the manifest, signed by {self.signed_by})"
            )
            if self.key_pinned:
                return head
            return (
                f"{head}\n  note: checked against the key the package itself names, which proves the package is "
                "whole, not who made it; pass --public-key with the city's published key"
            )
        return "\n".join(
            [f"{self.path}: {len(self.problems)} problem(s)", *(f"  {p}" for p in self.problems)]
        )


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _safe_name(name: object) -> TypeGuard[str]:
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and not name.startswith(".")
    )


def _schema_of(entry: dict[str, Any]) -> list[tuple[object, object]]:
    """The manifest's ``(name, type)`` columns of a file, as the manifest has them (a damaged manifest: any values)."""

    return [(c.get("name"), c.get("type")) for c in entry.get("schema") or [] if isinstance(c, dict)]


def _check_parquet(path: Path, entry: dict[str, Any], out: list[Mismatch]) -> None:
    name = entry["path"]
    try:
        meta = pq.ParquetFile(path).metadata
        schema = pq.read_schema(path)
    except Exception as exc:
        out.append(Mismatch("unreadable", name, f"not a readable Parquet file ({type(exc).__name__})"))
        return
    if entry.get("rows") is not None and meta.num_rows != entry["rows"]:
        out.append(Mismatch("rows", name, f"{meta.num_rows} rows, the manifest says {entry['rows']}"))
    actual = [(f.name, str(f.type)) for f in schema]
    expected = _schema_of(entry)
    if actual != expected:
        out.append(Mismatch("schema", name, f"columns {actual}, the manifest says {expected}"))


def _long_cell(row: list[str]) -> int | None:
    """The index of the first cell longer than the limit (a quote the exports added not counted), if any."""
    if max(map(len, row), default=0) <= MAX_FIELD_CHARS:
        return None
    for i, cell in enumerate(row):
        if len(cell) - cell.startswith(FORMULA_PREFIX) > MAX_FIELD_CHARS:
            return i
    return None


def _check_csv(path: Path, entry: dict[str, Any], out: list[Mismatch]) -> None:
    name = entry["path"]
    encoding = entry.get("encoding", "utf-8-sig")
    try:
        codecs_ok = encoding in ("utf-8-sig", "gb18030")
        if not codecs_ok:
            out.append(Mismatch("encoding", name, f"unknown encoding {encoding!r} in the manifest"))
            return
        with open(path, "rb") as raw:
            head = raw.read(3)
            if encoding == "utf-8-sig" and head != b"\xef\xbb\xbf":
                out.append(Mismatch("encoding", name, "UTF-8 with BOM expected, the file has no BOM"))
            raw.seek(0)
            text = io.TextIOWrapper(raw, encoding=encoding, newline="")
            reader = csv.reader(text)
            header = next(reader, None)
            rows = 0
            for row in reader:
                rows += 1
                long = _long_cell(row)
                if long is not None:
                    out.append(_too_long(name, reader.line_num, f"column {long + 1}"))
                    return
    except (UnicodeDecodeError, csv.Error) as exc:
        if isinstance(exc, csv.Error) and "field larger than field limit" in str(exc):
            out.append(_too_long(name, reader.line_num, "a cell"))
            return
        out.append(
            Mismatch(
                "encoding" if isinstance(exc, UnicodeDecodeError) else "unreadable",
                name,
                f"cannot be read as {encoding} CSV ({type(exc).__name__})",
            )
        )
        return
    expected_cols = [n for n, _ in _schema_of(entry)]
    if header is None:
        out.append(Mismatch("schema", name, "the file is empty (no header row)"))
    elif header != expected_cols:
        out.append(Mismatch("schema", name, f"header {header}, the manifest says {expected_cols}"))
    if entry.get("rows") is not None and rows != entry["rows"]:
        out.append(Mismatch("rows", name, f"{rows} rows, the manifest says {entry['rows']}"))


def _too_long(name: str, line: int, where: str) -> Mismatch:
    return Mismatch(
        "field",
        name,
        f"line {line}, {where}: longer than the {MAX_FIELD_CHARS:,} characters a CSV cell may hold",
    )


def _check_signature(
    folder: Path, data: bytes, manifest: dict[str, Any], pinned: Ed25519PublicKey | None, report: VerifyReport
) -> None:
    """The manifest's signature, against ``pinned`` (the bureau's copy of the city's key) or else the key the
    manifest names."""
    out = report.problems
    try:
        signature = (folder / SIGNATURE).read_bytes()
    except FileNotFoundError:
        out.append(Mismatch("signature", SIGNATURE, "the package is not signed: anyone could have made it"))
        return
    section = manifest.get("signing")
    named: Ed25519PublicKey | None = None
    with contextlib.suppress(KeyError, TypeError, ValueError):
        named = load_public_key(section["public_key"])  # type: ignore[index]
    key = pinned or named
    if key is None:
        out.append(Mismatch("signature", MANIFEST, "no valid signing key in the manifest; pass --public-key"))
        return
    if not verify_signature(key, signature, data):
        whose = "the city's key given" if pinned is not None else "the key the manifest names"
        also = ""
        if pinned is not None and named is not None and fingerprint(named) != fingerprint(pinned):
            also = f"; the manifest names another key, {fingerprint(named)}"
        out.append(
            Mismatch(
                "signature",
                MANIFEST,
                f"the signature does not match {whose} ({fingerprint(key)}): the manifest was changed after "
                f"it was signed, or signed by someone else{also}",
            )
        )
        return
    report.signed_by, report.key_pinned = fingerprint(key), pinned is not None


def verify_package(path: str | Path, public_key: Ed25519PublicKey | None = None) -> VerifyReport:
    """Every mismatch between the package at ``path`` and its ``manifest.json``: a manifest not signed by
    ``public_key`` (the city's key as the bureau has it; None: the key the manifest names), missing file,
    extra file, wrong sha256 or size, wrong row count, wrong schema or header, wrong encoding, a CSV cell
    over the length limit, unreadable file."""
    given = Path(path)
    resolved = Path(os.path.realpath(given))
    report = VerifyReport(given, resolved)
    out = report.problems
    if not resolved.is_dir():
        out.append(Mismatch("missing", None, f"no package folder at {given}"))
        return report
    try:
        data = (resolved / MANIFEST).read_bytes()
        manifest = json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        out.append(Mismatch("missing", MANIFEST, "the package has no manifest"))
        return report
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        out.append(Mismatch("manifest", MANIFEST, f"unreadable manifest ({type(exc).__name__})"))
        return report
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        out.append(Mismatch("manifest", MANIFEST, "not an export manifest (no 'files' list)"))
        return report
    report.manifest = manifest
    _check_signature(resolved, data, manifest, public_key, report)
    if manifest.get("format") != PACKAGE_FORMAT:
        out.append(
            Mismatch("manifest", MANIFEST, f"format {manifest.get('format')!r}, expected {PACKAGE_FORMAT!r}")
        )
    expected: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(manifest["files"]):
        name = entry.get("path") if isinstance(entry, dict) else None
        if not _safe_name(name) or name in (MANIFEST, SIGNATURE):
            out.append(Mismatch("manifest", MANIFEST, f"files[{i}]: not a plain file name: {name!r}"))
        elif name in expected:
            out.append(Mismatch("manifest", MANIFEST, f"files[{i}]: {name} is listed twice"))
        else:
            expected[name] = entry
    present = {p.name for p in resolved.iterdir()} - {MANIFEST, SIGNATURE}
    for name in sorted(present - set(expected)):
        out.append(Mismatch("extra", name, "not in the manifest"))
    for name, entry in expected.items():
        file = resolved / name
        if not file.is_file():
            out.append(Mismatch("missing", name, "listed in the manifest, not in the package"))
            continue
        digest, size = _sha256(file)
        if digest != entry.get("sha256"):
            out.append(Mismatch("sha256", name, f"sha256 {digest}, the manifest says {entry.get('sha256')}"))
        else:
            report.checked.append(name)
        if entry.get("bytes") is not None and size != entry["bytes"]:
            out.append(Mismatch("size", name, f"{size} bytes, the manifest says {entry['bytes']}"))
        fmt = entry.get("format")
        if fmt == "parquet":
            _check_parquet(file, entry, out)
        elif fmt == "csv":
            _check_csv(file, entry, out)
    return report
