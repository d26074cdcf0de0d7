"""Shared fixtures: real PostgreSQL and MariaDB servers, each test in its own fresh database; simulated
estates, each simulated once per session.

Locally, a server that does not answer makes its tests skip with the reason; under CI (CI=true) it
makes them fail, so the database tests can never silently stop running.

A module that reads a simulated estate asks ``simulated_estate`` for one of the size and seed its
assertions were written for, and reads its SQLite tables with :func:`estate_frame` (a Polars frame) or
:func:`estate_column` (``from conftest import estate_frame``)::

    @pytest.fixture(scope="module")
    def estate(simulated_estate) -> Path:
        return simulated_estate(enterprises=5000, seed=5)

An estate is shared by every module that asks for the same arguments: tests only read it.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from connectors.config import load_sources
from connectors.extract import load_file_drop, load_table
from models import canonical, silver
from models.staging.spec import load_specs
from simulator.estate import simulate

PG_ADMIN_URL = os.environ.get("QST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN_URL = os.environ.get("QST_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
#: The key that signs the test session's export manifests (base64 of 32 bytes; a night without a signing key
#: exports nothing, as in production). Fixed, so that a test can pin its public key.
EXPORT_SIGNING_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
SIGNING_KEY_ENV = "QST_EXPORT_SIGNING_KEY"


@pytest.fixture(scope="session", autouse=True)
def export_signing_key() -> str:
    """The city's signing key in the environment of every test (and of the processes a test starts), as a
    deployment's secrets are; a test of a missing key passes its own environment."""
    os.environ.setdefault(SIGNING_KEY_ENV, EXPORT_SIGNING_KEY)
    return os.environ[SIGNING_KEY_ENV]


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
    except Exception as exc:
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


# ------------------------------------------------------------------------------------------------------------
# simulated estates
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def simulated_estate(tmp_path_factory) -> Callable[..., Path]:
    """``simulated_estate(enterprises=N, seed=S, only=None)``: the folder of an estate simulated with these
    arguments (``simulator.estate.simulate``), built the first time it is asked for in the session (per
    xdist worker) and the same folder afterwards. Read it, never change it."""
    built: dict[tuple, Path] = {}

    def estate(*, enterprises: int, seed: int, only: Sequence[str] | None = None) -> Path:
        key = (enterprises, seed, None if only is None else tuple(only))
        if key not in built:
            out = tmp_path_factory.mktemp(f"estate_{enterprises}_seed{seed}{'' if only is None else '_only'}")
            simulate(out, enterprises=enterprises, seed=seed, only=None if only is None else list(only))
            built[key] = out
        return built[key]

    return estate


def estate_rows(estate: Path, department: str, sql: str) -> list[tuple]:
    """The rows of ``sql`` on a department's SQLite file of a simulated estate."""
    con = sqlite3.connect(estate / f"{department}.sqlite")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def estate_frame(estate: Path, department: str, sql: str, columns: Sequence[str]) -> pl.DataFrame:
    """The rows of ``sql`` on a department's SQLite file as a Polars frame of text columns named ``columns``."""
    return pl.DataFrame(
        estate_rows(estate, department, sql), schema=dict.fromkeys(columns, pl.Utf8), orient="row"
    )


def estate_column(estate: Path, department: str, table: str, column: str) -> list:
    """Every value of one column of a department's table, as SQLite gives it (text, integer, NULL)."""
    return [r[0] for r in estate_rows(estate, department, f'SELECT "{column}" FROM "{table}"')]


# --------------------------------------------------------------------------------------------------
# A simulated estate carried through bronze and silver (the silver and resolution tests)
# --------------------------------------------------------------------------------------------------
def load_bronze(config_path: Path, home: Path) -> None:
    config = load_sources(config_path)
    for dept, table in config.iter_tables():
        report = load_table(config, dept, table, home, batch_id="test")
        assert report.reconciled, f"bronze {dept.key}/{table.asset} did not reconcile"
    for dept, drop in config.iter_files():
        load_file_drop(dept, drop, home, batch_id="test")


def build_silver(config_path: Path, home: Path) -> dict[str, silver.StagingReport]:
    config = load_sources(config_path)
    specs = load_specs()
    infos = silver.source_infos(config)
    chosen = [specs[s] for s in infos if s in specs]
    reports = {s.source: silver.build_staging(home, s, infos[s.source], batch_rows=1_000) for s in chosen}
    for table in canonical.INTERMEDIATE_TABLES:
        silver.build_intermediate(home, table, chosen, batch_rows=1_000)
    silver.build_departments(home, config)
    return reports


@pytest.fixture(scope="session")
def silver_estate(tmp_path_factory) -> Callable[..., tuple[Path, Path]]:
    """``silver_estate(enterprises=N, seed=S)``: ``(estate, home)`` of an estate simulated with these arguments
    and loaded into bronze and silver, built once per session (per xdist worker). Read it, never change it."""
    built: dict[tuple, tuple[Path, Path]] = {}

    def estate(*, enterprises: int, seed: int) -> tuple[Path, Path]:
        if (enterprises, seed) not in built:
            root = tmp_path_factory.mktemp(f"silver_{enterprises}_seed{seed}")
            simulate(root / "estate", enterprises=enterprises, seed=seed)
            load_bronze(root / "estate" / "sources.yaml", root / "home")
            build_silver(root / "estate" / "sources.yaml", root / "home")
            built[(enterprises, seed)] = (root / "estate", root / "home")
        return built[(enterprises, seed)]

    return estate


# ------------------------------------------------------------------------------------------------------------
# an S3 endpoint: the moto server (.ci/run starts one under CI and exports QST_TEST_S3_URL)
# ------------------------------------------------------------------------------------------------------------
S3_URL_ENV = "QST_TEST_S3_URL"


def _s3_answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of an S3-compatible endpoint on the loopback: ``$QST_TEST_S3_URL`` when set (under CI, the
    moto server `.ci/run` started; it must answer), else a moto server started here for the session on a
    free port, so the object-store tests run locally too."""
    import socket
    import subprocess
    import sys
    import time

    url = os.environ.get(S3_URL_ENV, "").rstrip("/")
    if url:
        if not _s3_answers(url):
            _unavailable(f"the S3 endpoint {url} (${S3_URL_ENV})", ConnectionError("no answer"))
        yield url
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    moto = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            if _s3_answers(url) or server.poll() is not None:
                break
            time.sleep(0.1)
        if not _s3_answers(url):
            _unavailable(f"a moto server on {url}", ConnectionError(f"exit code {server.poll()}"))
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty bucket on the test endpoint, its name; the standard AWS variables point at the endpoint
    (test credentials: moto accepts any) for this test only."""
    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ALLOW_HTTP"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"qst-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket


# ------------------------------------------------------------------------------------------------------------
# the dashboard: real marts, a headless Chromium, signed-in users (tests/test_dashboard*.py)
# ------------------------------------------------------------------------------------------------------------
DASHBOARD_AS_OF = "2026-10-31"
#: the password of every test user of the dashboard (their store hashes with cheap Argon2id parameters)
DASHBOARD_PASSWORD = "测试口令-correct-horse"


def dashboard_users(path: Path, *users: tuple[str, str, tuple[str, ...]]):
    """A users file at ``path`` with ``(name, role, divisions)``, every one with :data:`DASHBOARD_PASSWORD`.
    Argon2id with one pass over 8 MiB: the tests sign in often, and the cost is not what they test
    (tests/test_dashboard_security.py checks the production default separately)."""
    from argon2 import PasswordHasher

    from dashboard.auth import UserStore

    store = UserStore(path, PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    for name, role, divisions in users:
        store.add(name, role, DASHBOARD_PASSWORD, divisions, display_name=f"测试{name}")
    return store


@pytest.fixture(scope="session")
def dashboard_artifacts() -> Path:
    from pipelines.home import REPO_ROOT

    root = Path(os.environ.get("QST_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")
    out = root / "dashboard"
    out.mkdir(parents=True, exist_ok=True)
    return out


# Session-scoped, not module-scoped: pytest-xdist may hand the dashboard's tests to both workers and interleave
# them with other modules, and a module fixture is rebuilt each time a worker comes back to the module (the
# marts build and a Chromium start each time). At most once per worker this way.
@pytest.fixture(scope="session")
def marts_home(silver_estate, tmp_path_factory) -> tuple[Path, Path]:
    """``(estate, home)``: a copy of the silver fixture's home carried through gold and the marts."""
    import datetime as dt
    import shutil

    from models.gold.build import build_gold
    from models.gold.golden import build_golden
    from models.marts.build import build_marts
    from quality.scorecard import nightly_scorecard, write_scorecard

    estate, silver_home = silver_estate(enterprises=400, seed=31)
    home = tmp_path_factory.mktemp("dashboard") / "home"
    shutil.copytree(silver_home, home)
    config = load_sources(estate / "sources.yaml")
    specs = load_specs()
    chosen = {k: specs[k] for k in silver.source_infos(config) if k in specs}
    write_scorecard(home, nightly_scorecard(home, config, chosen, dt.date.fromisoformat(DASHBOARD_AS_OF)))
    build_gold(home, DASHBOARD_AS_OF, "dashboard-test")
    for kind in ("enterprise", "person"):
        build_golden(home, kind, DASHBOARD_AS_OF)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QST_EXPORT_HMAC_KEY", "test-dashboard-secret")
        build_marts(home)
    return estate, home


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """One headless Chromium for every dashboard test of the worker (tests sign in as they need)."""
    from dashboard.browser import chromium, chromium_missing

    why = chromium_missing()
    if why is not None:
        if IN_CI:
            pytest.fail(f"{why}; under CI the browser tests must run, not skip")
        pytest.skip(why)
    with chromium() as driver:
        driver.set_script_timeout(360)
        yield driver


def signed_in(driver, base: str, name: str) -> None:
    """Make sure ``driver`` is signed in to the server at ``base`` as ``name`` (test users of
    :func:`dashboard_users`), signing in through the form only when it is not already."""
    from dashboard.browser import sign_in

    if getattr(driver, "qst_signed_in", None) == (base, name):
        return
    assert sign_in(driver, base, name, DASHBOARD_PASSWORD), driver.page_source[:1000]
    driver.qst_signed_in = (base, name)
