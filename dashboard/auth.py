"""Who may use the 全视通 dashboard: users, their role and the districts granted, with hashed passwords and
lock-out after repeated failures.

Where: a small SQLite file, ``HOME/dashboard/users.sqlite`` (:func:`lake.layout.dashboard_users_path`), not the
deployment folder. The deployment folder is the city's configuration, kept under version control (the example
one lives in this repository); the users file holds password hashes and changes at every failed sign-in
(lock-out counters), which belongs neither in a repository nor in a YAML file rewritten by concurrent requests.
SQLite gives each sign-in an atomic read-modify-write of the counters (``BEGIN IMMEDIATE``) across the server's
threads and the ``qst dashboard users`` command, and it is in the standard library. The file is created
readable by its owner only.

Passwords are hashed with Argon2id (``argon2-cffi``, RFC 9106's recommended memory-hard KDF; its defaults:
64 MiB, 3 passes), never stored or logged in clear. A user disabled or given a new password gets a new
``epoch``: sessions signed before are refused on their next request.

Roles (:data:`ROLES`):

- ``leader`` 领导: the whole city, every page, and the audit log;
- ``district`` 区县专员: only the enterprises and persons whose division (``division_code`` of the marts, GB/T
  2260 county level) is granted -- enforced in the SQL of every query (:mod:`dashboard.queries`), including the
  district-level aggregates; the city-wide indicators that carry no district (daily indicators, department
  scorecard, service efficiency) name no enterprise or person and are shown;
- ``analyst`` 分析员: city-wide figures and enterprise files for analysis, with natural persons' names masked
  (first character kept) in the SQL too; no audit log.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: role -> its Chinese name (shown in the header, the user list and the audit log)
ROLES: dict[str, str] = {"leader": "领导", "district": "区县专员", "analyst": "分析员"}
#: consecutive failed sign-ins that lock an account, and for how long
MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
MIN_PASSWORD = 12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_DIVISION = re.compile(r"^\d{6}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    divisions TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    epoch INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    locked_until REAL,
    created_at REAL NOT NULL,
    last_sign_in REAL
)
"""


class UserError(ValueError):
    """A user cannot be added or changed as asked (the message says why, in Chinese and English)."""


@dataclass(frozen=True)
class User:
    name: str
    display_name: str
    role: str
    divisions: tuple[str, ...]
    disabled: bool
    epoch: int
    locked_until: float | None = None

    @property
    def role_zh(self) -> str:
        return ROLES.get(self.role, self.role)


@dataclass(frozen=True)
class Access:
    """What one signed-in user may see: the scope every query of the request runs under."""

    user: str
    role: str
    divisions: tuple[str, ...] = ()
    display_name: str = ""

    @property
    def whole_city(self) -> bool:
        return self.role in ("leader", "analyst")

    @property
    def masked(self) -> bool:
        """Natural persons' names masked (the analyst's view)."""
        return self.role == "analyst"

    @property
    def reads_audit(self) -> bool:
        return self.role == "leader"

    @property
    def role_zh(self) -> str:
        return ROLES.get(self.role, self.role)


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: ``user`` when it succeeded, else ``why`` (``bad``, ``locked``, ``disabled``)."""

    user: User | None
    why: str = ""


def check_password(name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(
            f"密码至少 {MIN_PASSWORD} 个字符 / the password needs at least {MIN_PASSWORD} characters"
        )
    if password.strip().lower() == name.lower():
        raise UserError("密码不能与用户名相同 / the password must not be the user name")


class UserStore:
    """The users file. ``hasher``: Argon2id with the library's defaults (tests pass a cheaper one)."""

    def __init__(self, path: Path | str, hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if write and not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            con.execute(_SCHEMA)
            if write:
                con.execute("BEGIN IMMEDIATE")
            yield con
            if write:
                con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    @staticmethod
    def _user(row: tuple) -> User:
        name, display, role, divisions, disabled, epoch, locked_until = row
        return User(name, display, role, tuple(json.loads(divisions)), bool(disabled), epoch, locked_until)

    _COLUMNS = "name, display_name, role, divisions, disabled, epoch, locked_until"

    def has_users(self) -> bool:
        """Whether any enabled user exists (the server refuses a network address otherwise)."""
        if not self.path.is_file():
            return False
        with self._connect() as con:
            return con.execute("SELECT count(*) FROM users WHERE NOT disabled").fetchone()[0] > 0

    def get(self, name: str) -> User | None:
        if not self.path.is_file():
            return None
        with self._connect() as con:
            row = con.execute(f"SELECT {self._COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._user(row)

    def list(self) -> list[User]:
        if not self.path.is_file():
            return []
        with self._connect() as con:
            rows = con.execute(f"SELECT {self._COLUMNS} FROM users ORDER BY name").fetchall()
        return [self._user(r) for r in rows]

    def add(
        self, name: str, role: str, password: str, divisions: tuple[str, ...] = (), display_name: str = ""
    ) -> User:
        if not _NAME.match(name):
            raise UserError(
                f"用户名 {name!r} 无效：字母或数字开头，可含 _ . @ -，至多64个字符 / invalid user name"
            )
        if role not in ROLES:
            raise UserError(f"角色 {role!r} 无效，可选：{', '.join(ROLES)} / unknown role")
        bad = [d for d in divisions if not _DIVISION.match(d)]
        if bad:
            raise UserError(f"区划代码无效：{', '.join(bad)}（6位数字，GB/T 2260）/ invalid division codes")
        if role == "district" and not divisions:
            raise UserError("区县专员须至少授权一个区县（--district）/ a district officer needs a district")
        if role != "district" and divisions:
            raise UserError("只有区县专员按区县授权 / only district officers are granted districts")
        check_password(name, password)
        hashed = self.hasher.hash(password)
        with self._connect(write=True) as con:
            if con.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserError(f"用户 {name} 已存在 / the user exists")
            con.execute(
                "INSERT INTO users (name, display_name, role, divisions, password_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, display_name or name, role, json.dumps(sorted(set(divisions))), hashed, time.time()),
            )
        user = self.get(name)
        assert user is not None
        return user

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (or enable) a user; either way their sessions end (the epoch moves on)."""
        with self._connect(write=True) as con:
            changed = con.execute(
                "UPDATE users SET disabled = ?, epoch = epoch + 1, failed = 0, locked_until = NULL "
                "WHERE name = ?",
                (int(disabled), name),
            ).rowcount
        if not changed:
            raise UserError(f"没有用户 {name} / no such user")

    def set_password(self, name: str, password: str) -> None:
        check_password(name, password)
        hashed = self.hasher.hash(password)
        with self._connect(write=True) as con:
            changed = con.execute(
                "UPDATE users SET password_hash = ?, epoch = epoch + 1, failed = 0, locked_until = NULL "
                "WHERE name = ?",
                (hashed, name),
            ).rowcount
        if not changed:
            raise UserError(f"没有用户 {name} / no such user")

    def verify(self, name: str, password: str, now: float | None = None) -> SignIn:
        """Check a password; count the failure (lock after :data:`MAX_FAILURES` in a row) or reset the count.
        A locked account is refused without looking at the password. An unknown name costs the same hash
        as a known one, so timing does not tell which names exist."""
        now = time.time() if now is None else now
        if not self.path.is_file():
            self._burn(password)
            return SignIn(None, "bad")
        with self._connect(write=True) as con:
            row = con.execute(
                "SELECT password_hash, disabled, failed, locked_until FROM users WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                self._burn(password)
                return SignIn(None, "bad")
            hashed, disabled, failed, locked_until = row
            if locked_until is not None and locked_until > now:
                return SignIn(None, "locked")
            try:
                self.hasher.verify(hashed, password)
            except (VerificationError, InvalidHashError):
                failed += 1
                lock = now + LOCK_SECONDS if failed >= MAX_FAILURES else None
                con.execute(
                    "UPDATE users SET failed = ?, locked_until = ? WHERE name = ?",
                    (0 if lock else failed, lock, name),
                )
                return SignIn(None, "locked" if lock else "bad")
            if disabled:
                return SignIn(None, "disabled")
            rehash = self.hasher.hash(password) if self.hasher.check_needs_rehash(hashed) else hashed
            con.execute(
                "UPDATE users SET failed = 0, locked_until = NULL, last_sign_in = ?, password_hash = ? "
                "WHERE name = ?",
                (now, rehash, name),
            )
            user = self._user(
                con.execute(f"SELECT {self._COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
            )
        return SignIn(user)

    def _burn(self, password: str) -> None:
        if self._dummy is None:
            self._dummy = self.hasher.hash("not a password of anyone")
        with contextlib.suppress(VerificationError, InvalidHashError):
            self.hasher.verify(self._dummy, password)
