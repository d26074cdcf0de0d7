"""The dashboard's audit log: who viewed which enterprise's or person's file, searched for what, exported which
table, signed in or failed to, when and from where.

Why a file of its own, outside the marts: the marts are rebuilt every night and opened read-only; the log must
outlive them and must not be rewritable by the dashboard that writes it. So:

- it is a JSON-lines file, ``HOME/dashboard/audit.jsonl`` (:func:`lake.layout.dashboard_audit_path`), that the
  dashboard opens **only** with ``O_WRONLY | O_APPEND`` (every write lands at the end, whatever the offset) to
  append and read-only to show it: no code path of the dashboard truncates, seeks and writes, or replaces it,
  and no route takes anything but new entries (tests/test_dashboard_security.py tries);
- every entry carries ``prev``, the SHA-256 of the line before it (a hash chain), so an edit or a deletion in
  the middle by anyone with file access -- an administrator, another process -- is found by :func:`verify`
  (``qst dashboard audit verify``), which also prints the hash of the last line: recorded elsewhere (the night's
  log, a ticket), it shows later that nothing was cut from the end;
- the operating system can make it append-only for the dashboard's own account too: ``chattr +a`` on the file
  (root, ext4/xfs), which the README recommends for a production server.

Entries are appended under a process lock and ``flock`` (the ``qst dashboard users`` command appends too), one
``write`` per line. Values are JSON-encoded, so a search text holding a newline or a forged entry stays inside
its own line.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
#: action -> its Chinese name (the audit page, the CLI)
ACTIONS: dict[str, str] = {
    "sign_in": "登录",
    "sign_in_failed": "登录失败",
    "sign_out": "退出登录",
    "view_enterprise": "查看企业档案",
    "view_person": "查看人员档案",
    "search": "查询企业",
    "export": "导出表格",
    "view_audit": "查看审计日志",
    "denied": "拒绝访问",
    "user_added": "新增用户",
    "user_disabled": "停用用户",
    "user_enabled": "启用用户",
    "password_set": "重设密码",
}
#: longest text kept per value (a 200,000-character search must not bloat the log)
MAX_VALUE = 300
#: the newest part of the file read to show it
TAIL_BYTES = 32 * 1024 * 1024
_LOCK = threading.Lock()


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VALUE:
        return value[:MAX_VALUE] + f"…（共{len(value)}字）"
    if isinstance(value, dict):
        return {str(k): _short(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_short(v) for v in value[:50]]
    return value


def _digest(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


@dataclass(frozen=True)
class Verified:
    ok: bool
    entries: int
    head: str  # SHA-256 of the last line
    problem: str = ""


class AuditLog:
    """The append-only log at ``path``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def _last_line(self) -> bytes | None:
        try:
            with open(self.path, "rb") as f:
                f.seek(0, os.SEEK_END)
                end = f.tell()
                block = 4096
                while True:
                    start = max(0, end - block)
                    f.seek(start)
                    tail = f.read(end - start)
                    lines = tail.rstrip(b"\n").split(b"\n")
                    if len(lines) > 1 or start == 0:
                        return lines[-1] or None
                    block *= 4
        except FileNotFoundError:
            return None

    def append(self, action: str, *, user: str, role: str, remote: str, **what: Any) -> dict[str, Any]:
        """Append one entry (``what``: the entity, the search text, the table exported ...) and return it."""
        entry: dict[str, Any] = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "user": user,
            "role": role,
            "action": action,
            "from": remote,
            "what": _short(what),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _LOCK:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                last = self._last_line()
                entry["prev"] = GENESIS if last is None else _digest(last)
                line = json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                os.write(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)  # closing releases the flock
        return entry

    def _lines(self) -> Iterator[bytes]:
        try:
            with open(self.path, "rb") as f:
                yield from f
        except FileNotFoundError:
            return

    def read(self, limit: int = 500, action: str | None = None, user: str | None = None) -> list[dict]:
        """The newest ``limit`` entries (of an action, of a user), newest first, from the file's last
        :data:`TAIL_BYTES`."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        with open(self.path, "rb") as f:
            if size > TAIL_BYTES:
                f.seek(size - TAIL_BYTES)
                f.readline()  # a partial line
            raw = f.read()
        out: list[dict] = []
        for line in reversed(raw.splitlines()):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if (action and entry.get("action") != action) or (user and entry.get("user") != user):
                continue
            out.append(entry)
            if len(out) >= limit:
                break
        return out


def verify(path: Path | str) -> Verified:
    """Walk the chain: every line parses and its ``prev`` is the hash of the line before it."""
    log = AuditLog(path)
    prev, count = GENESIS, 0
    for number, line in enumerate(log._lines(), start=1):
        try:
            entry = json.loads(line)
        except ValueError:
            return Verified(
                False, count, prev, f"第 {number} 行不是有效的记录 / line {number} is not an entry"
            )
        if entry.get("prev") != prev:
            return Verified(
                False,
                count,
                prev,
                f"第 {number} 行的前序哈希不符：其前的记录被修改或删除 / line {number}: the chain is broken "
                "(an entry before it was changed or removed)",
            )
        prev, count = _digest(line), count + 1
    return Verified(True, count, prev)
