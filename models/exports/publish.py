"""Where a bureau's packages live and how one is published: the folder layout, atomic publication by a
symbolic link, garbage collection of unpublished builds, retention and the audit log.

Why apart from the package builder: publication is the part that must survive a crash at any instant (a
bureau sees the previous package or the new one, whole), and it is reasoned about -- and tested -- on its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from models.exports.entitlements import (
    ExportError,
)

#: 2: signed (``manifest.json.sig``, ``public_key.pem``), CSV formula cells quoted
PACKAGE_FORMAT = "quanshitong-export/2"
MANIFEST = "manifest.json"
README = "README.md"
AUDIT_LOG = "audit.jsonl"
BUILDS = ".builds"
LOCK = ".lock"
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")

# ---------------------------------------------------------------------------------------------------------
# small helpers


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_and_sync(path: Path) -> tuple[str, int]:
    """The file's sha256 and size; fsyncs it on the way (whoever wrote it)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
        os.fsync(f.fileno())
    return h.hexdigest(), size


@contextlib.contextmanager
def bureau_lock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def package_path(exports_root: str | Path, bureau: str, date: dt.date | str) -> Path:
    """``EXPORTS_ROOT/<bureau>/<YYYY-MM-DD>``: where a bureau finds its package for a date."""
    day = date if isinstance(date, str) else date.isoformat()
    return Path(exports_root) / bureau / day


def list_packages(exports_root: str | Path, bureau: str) -> list[str]:
    """The dates published for a bureau, oldest first."""
    folder = Path(exports_root) / bureau
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if _DATE_RE.match(p.name) and p.is_symlink())


# ---------------------------------------------------------------------------------------------------------
# publish, garbage, retention, audit


def collect_garbage(bureau_dir: Path) -> None:
    """Remove builds no published link points at (crashed, replaced or pruned by an earlier run) and stray
    temporary links.  Called with the bureau's lock held."""
    for p in bureau_dir.glob(".*.link"):
        if p.is_symlink():
            p.unlink()
    builds = bureau_dir / BUILDS
    if not builds.is_dir():
        return
    live = {os.path.realpath(p) for p in bureau_dir.iterdir() if p.is_symlink() and _DATE_RE.match(p.name)}
    for d in builds.iterdir():
        if os.path.realpath(d) not in live:
            shutil.rmtree(d, ignore_errors=True)


def publish_package(bureau_dir: Path, build: Path, date: dt.date) -> bool:
    """Point ``<bureau>/<date>`` at ``build`` atomically; True when it replaced a package."""
    link = bureau_dir / date.isoformat()
    replaced = link.is_symlink()
    if link.exists() and not replaced:
        raise ExportError(
            f"{link} exists and is not a package link; move it away (packages are published "
            "as links to .builds/)"
        )
    tmp = bureau_dir / f".{date.isoformat()}.{uuid.uuid4().hex[:12]}.link"
    os.symlink(os.path.relpath(build, bureau_dir), tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(bureau_dir)
    return replaced


def prune_packages(exports_root: str | Path, bureau: str, keep: int) -> list[str]:
    """Unpublish all but the ``keep`` most recent dates of a bureau; the dates unpublished.  Their folders
    are deleted by the bureau's next export run (a reader who resolved the link is not cut off)."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    dates = list_packages(exports_root, bureau)
    pruned = dates[:-keep] if len(dates) > keep else []
    folder = Path(exports_root) / bureau
    for day in pruned:
        (folder / day).unlink()
    if pruned:
        fsync_dir(folder)
    return pruned


def append_audit(exports_root: Path, record: Mapping[str, Any]) -> None:
    exports_root.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, sort_keys=True, default=jsonable) + "\n"
    with open(exports_root / AUDIT_LOG, "a", encoding="utf-8") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_audit(exports_root: str | Path) -> list[dict[str, Any]]:
    """Every audit record, oldest first."""
    path = Path(exports_root) / AUDIT_LOG
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
