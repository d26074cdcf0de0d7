"""Shared fixtures: real PostgreSQL and MariaDB servers, each test in its own fresh database.

Locally, a server that does not answer makes its tests skip with the reason; under CI (CI=true) it
makes them fail, so the database tests can never silently stop running.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("QST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN_URL = os.environ.get("QST_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(what: str, exc: Exception) -> None:
    reason = f"{what} is not reachable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    if IN_CI:
        pytest.fail(f"{reason}; under CI the database tests must run, not skip")
    pytest.skip(reason)


def _fresh_database(admin_url: str, what: str) -> Iterator[str]:
    name = f"qst_t_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server
        _unavailable(what, exc)
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            if admin.dialect.name == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A SQLAlchemy URL to a new, empty PostgreSQL database, dropped afterwards."""
    yield from _fresh_database(PG_ADMIN_URL, "PostgreSQL at 127.0.0.1:5432")


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A SQLAlchemy URL to a new, empty MariaDB database, dropped afterwards."""
    yield from _fresh_database(MARIADB_ADMIN_URL, "MariaDB at 127.0.0.1:3306")
