"""Read-only access to the marts file for the 全视通 dashboard.

Why a layer of its own: the dashboard must never hold the marts file against the nightly build, and must show
the new night without a restart. The build writes a new file and swaps it in with ``os.replace``; a DuckDB
connection opened READ_ONLY on the old file keeps reading the old inode (the build is never blocked), and
:class:`Marts` reopens when the path's inode, size or mtime changes (after the queries still running on the old
file: see :meth:`Marts.cursor`). Each query runs on its own cursor, so the threaded web server can serve several
requests at once.

No business rule and no SQL live here: the numbers are the marts', and the queries are named ones of
:mod:`dashboard.queries` (the contract's first). Pages ask for a query by name, so what the dashboard reads
from the marts can be reviewed and benchmarked in one place.

Pages never hold a :class:`Marts` itself: each request gets a :class:`ScopedMarts`, the marts as the signed-in
user may read them, which binds the user's scope (the divisions granted, the masking of persons' names) to
every query that reads a scoped table. A page cannot pass or widen the scope: the parameters are refused.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dashboard.queries import SCOPE_PARAMETERS, parameters_of, sql_of, tables_of
from lake.layout import MARTS_FILE


@dataclass
class _Opened:
    key: tuple[int, int, int]
    con: duckdb.DuckDBPyConnection
    in_flight: int = 0


class MartsUnavailableError(RuntimeError):
    """The marts file is missing or unreadable (the page says so instead of failing)."""


class Marts:
    """The marts file of a home folder, read-only, reopened when the nightly build replaces it."""

    def __init__(self, home: Path | str) -> None:
        self.path = Path(home) / MARTS_FILE
        self._cond = threading.Condition()
        self._opened: _Opened | None = None
        self._tables: set[str] | None = None
        self._recording = threading.local()  # per request thread: the tables its queries read

    def _file_key(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError as exc:
            raise MartsUnavailableError(f"集市文件不存在：{self.path}（请先构建集市）") from exc
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the current file. When the file changed since the last call, the old connection is
        closed once the queries still running on it are done, then the new file is opened: DuckDB keeps one
        database instance per path in a process, so while any connection to the old file lives, connecting
        to the path again would give the old file back."""
        key = self._file_key()
        with self._cond:
            if self._opened is not None and self._opened.key != key:
                old = self._opened
                self._cond.wait_for(lambda: old.in_flight == 0, timeout=30)
                if self._opened is old:
                    old.con.close()
                    self._opened = None
            if self._opened is None:
                try:
                    con = duckdb.connect(str(self.path), read_only=True)
                except duckdb.Error as exc:
                    raise MartsUnavailableError(f"集市文件无法打开：{exc}") from exc
                self._opened = _Opened(key, con)
                self._tables = None
            opened = self._opened
            opened.in_flight += 1
            cur = opened.con.cursor()
        try:
            yield cur
        finally:
            cur.close()
            with self._cond:
                opened.in_flight -= 1
                self._cond.notify_all()

    def tables(self) -> set[str]:
        with self.cursor() as cur:
            if self._tables is None:
                self._tables = {r[0] for r in cur.execute(sql_of("tables")).fetchall()}
            return self._tables

    def has(self, *tables: str) -> bool:
        try:
            return set(tables) <= self.tables()
        except MartsUnavailableError:
            return False

    @contextmanager
    def recording(self) -> Iterator[set[str]]:
        """The tables the named queries of this thread read inside the block (a page's, while it is laid out)."""
        used: set[str] = set()
        self._recording.used = used
        try:
            yield used
        finally:
            self._recording.used = None

    def notes(self, tables: set[str]) -> list[tuple[str, str]]:
        """``(subject, note)`` of the build's notes (``meta_notes``) on any of ``tables``: why a table is empty
        or a column null on this city. None without the table (marts built before it existed)."""
        if not tables or not self.has("meta_notes"):
            return []
        frame = self.frame("build_notes")
        return [
            (str(subject), str(note))
            for subject, concerned, note in frame.itertuples(index=False)
            if set(concerned) & tables
        ]

    def frame(self, name: str, /, **params: Any) -> pd.DataFrame:
        """The rows of a named query (:func:`dashboard.queries.sql_of`) as a pandas frame."""
        used = getattr(self._recording, "used", None)
        if used is not None:
            used |= tables_of(name)
        with self.cursor() as cur:
            return cur.execute(sql_of(name), params or None).df()

    def department_names(self) -> dict[str, str]:
        """Department key -> its short name, from the marts' ``dim_department`` (the deployment's titles, so no
        department is named in code); empty without the table. Pages show a key missing here as itself."""
        if not self.has("dim_department"):
            return {}
        frame = self.frame("department_names")
        return {str(k): str(v) for k, v in zip(frame["department"], frame["name_zh"], strict=True)}

    def value(self, name: str, /, **params: Any) -> Any:
        """The first cell of a named query (a date, a code), None when it has no row; pages test missing values
        with :func:`dashboard.ui.is_missing`, since DuckDB gives NaT or None for an empty max()."""
        frame = self.frame(name, **params)
        return None if frame.empty else frame.iat[0, 0]


@dataclass(frozen=True)
class Scope:
    """What one user's queries may return: the whole city, or the enterprises and persons of ``divisions``
    (division codes of the marts); ``masked``: persons' names masked."""

    whole_city: bool
    divisions: tuple[str, ...] = ()
    masked: bool = False

    def parameters(self) -> dict[str, Any]:
        return {
            "scope_all": self.whole_city,
            "scope_divisions": list(self.divisions),
            "masked": self.masked,
        }


def districts_of(marts: Marts) -> dict[str, str]:
    """Division code -> district name of the city's enterprises in the marts (what ``qst dashboard users add
    --district`` grants, by code or name)."""
    frame = ScopedMarts(marts, Scope(whole_city=True)).frame("divisions")
    return {str(c): str(n) for c, n in zip(frame["division_code"], frame["district_name"], strict=True)}


#: appends an entry to the audit log: ``audit(action, **what)`` (the user and address are the request's)
Auditor = Callable[..., None]


def _no_audit(action: str, **what: Any) -> None:
    raise RuntimeError(f"no audit log to record {action!r}: pages run under a signed-in request")


class ScopedMarts:
    """The marts as one signed-in user may read them: the same named queries as :class:`Marts`, each bound to
    the user's :class:`Scope` (when it reads a scoped table, :mod:`dashboard.queries`), and the request's audit
    log for the pages to record what was viewed."""

    def __init__(self, marts: Marts, scope: Scope, audit: Auditor = _no_audit) -> None:
        self.marts = marts
        self.scope = scope
        self.audit = audit

    def frame(self, name: str, /, **params: Any) -> pd.DataFrame:
        forged = set(params) & set(SCOPE_PARAMETERS)
        if forged:
            raise ValueError(f"query {name}: the scope ({', '.join(sorted(forged))}) comes from the session")
        wanted = parameters_of(name)
        bound = {k: v for k, v in self.scope.parameters().items() if k in wanted}
        return self.marts.frame(name, **params, **bound)

    def value(self, name: str, /, **params: Any) -> Any:
        frame = self.frame(name, **params)
        return None if frame.empty else frame.iat[0, 0]

    def has(self, *tables: str) -> bool:
        return self.marts.has(*tables)

    def tables(self) -> set[str]:
        return self.marts.tables()

    def recording(self) -> Any:
        return self.marts.recording()

    def notes(self, tables: set[str]) -> list[tuple[str, str]]:
        return self.marts.notes(tables)

    def department_names(self) -> dict[str, str]:
        return self.marts.department_names()
