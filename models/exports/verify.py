"""Check an export package against its manifest: ``qst verify-export PATH``.

A bureau (or the platform, before and after publishing) must be able to tell that a package is exactly what
was built: no file missing, none added, none altered.  The sha256 of each file alone proves that; the row
counts and schemas are checked too so that a mismatch says *what* differs in terms a data user understands.
Every problem is listed, not just the first.

The package path may be the published link ``<bureau>/<date>`` or the build folder it points at; the link is
resolved once, so a package replaced while it is being verified is still checked as one consistent whole.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import pyarrow.parquet as pq

from models.exports.package import MANIFEST, PACKAGE_FORMAT

__all__ = ["Mismatch", "VerifyReport", "verify_package"]


@dataclass(frozen=True)
class Mismatch:
    """One difference between a package and its manifest."""

    kind: str  # manifest | missing | extra | sha256 | size | rows | schema | encoding | unreadable
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

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return f"{self.path}: OK ({len(self.checked)} files match the manifest)"
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
            rows = sum(1 for _ in reader)
    except (UnicodeDecodeError, csv.Error) as exc:
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


def verify_package(path: str | Path) -> VerifyReport:
    """Every mismatch between the package at ``path`` and its ``manifest.json``: missing file, extra file,
    wrong sha256 or size, wrong row count, wrong schema or header, wrong encoding, unreadable file."""
    given = Path(path)
    resolved = Path(os.path.realpath(given))
    report = VerifyReport(given, resolved)
    out = report.problems
    if not resolved.is_dir():
        out.append(Mismatch("missing", None, f"no package folder at {given}"))
        return report
    try:
        manifest = json.loads((resolved / MANIFEST).read_text(encoding="utf-8"))
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
    if manifest.get("format") != PACKAGE_FORMAT:
        out.append(
            Mismatch("manifest", MANIFEST, f"format {manifest.get('format')!r}, expected {PACKAGE_FORMAT!r}")
        )
    expected: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(manifest["files"]):
        name = entry.get("path") if isinstance(entry, dict) else None
        if not _safe_name(name) or name == MANIFEST:
            out.append(Mismatch("manifest", MANIFEST, f"files[{i}]: not a plain file name: {name!r}"))
        elif name in expected:
            out.append(Mismatch("manifest", MANIFEST, f"files[{i}]: {name} is listed twice"))
        else:
            expected[name] = entry
    present = {p.name for p in resolved.iterdir()} - {MANIFEST}
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
