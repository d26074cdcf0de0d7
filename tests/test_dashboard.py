"""The 全视通 dashboard in a real browser (Debian's headless Chromium through Selenium), on marts built by the
real pipeline from a simulated estate: silver (session fixture) -> gold -> ``build_marts``.

Each page must load without a console error, request nothing but this machine (no CDN, fonts or tiles), draw
its charts with data, and be saved as a screenshot (``$QST_TEST_ARTIFACTS``, default ``test-artifacts/`` at
the repository root, folder ``dashboard/``). The search must find an enterprise of the simulated estate by the
USCC its registration record carries (typed into the box, as a person would) and by a variant of its name.
Locally the browser tests skip when Chromium is not installed (``make test`` installs it when it can:
scripts/setup_test_env.sh); under CI (CI=true) they fail instead.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import duckdb
import pytest
from conftest import DASHBOARD_AS_OF, dashboard_users, signed_in

from dashboard.audit import AuditLog
from dashboard.browser import serve, visit, wait_for
from dashboard.data import Marts

pytestmark = pytest.mark.xdist_group("silver_estate")

AS_OF = DASHBOARD_AS_OF
#: how long a page may take to become ready before the test gives up: a hang guard, not a speed check (a busy
#: machine is slow; bench/bench_dashboard.py measures speed)
PATIENCE_S = 300
#: (path, page id, charts the page must draw with data)
PAGES = (
    ("/", "overview", 1),
    ("/risk", "risk", 2),
    ("/abnormal", "abnormal", 3),
    ("/scorecard", "scorecard", 2),
    ("/service", "service", 2),
    ("/forecast", "forecast", 1),
)


@pytest.fixture(scope="session")
def artifacts(dashboard_artifacts) -> Path:
    return dashboard_artifacts


@pytest.fixture(scope="session")
def site(marts_home, browser, tmp_path_factory) -> Iterator[str]:
    """The dashboard of the marts fixture, with one leader to sign in as."""
    folder = tmp_path_factory.mktemp("dashboard_site")
    users = dashboard_users(folder / "users.sqlite", ("leader", "leader", ()))
    with serve(marts_home[1], users=users, audit=AuditLog(folder / "audit.jsonl")) as base:
        yield base


@pytest.fixture
def driver(site, browser):
    """The browser, signed in to :func:`site` as its leader."""
    signed_in(browser, site, "leader")
    return browser


def _visit(driver, url: str, page_id: str, *, min_graphs: int = 0):
    return visit(driver, url, page_id, min_graphs=min_graphs, timeout_ms=PATIENCE_S * 1000)


def _wait_for(driver, js_condition: str) -> bool:
    return wait_for(driver, js_condition, timeout_s=PATIENCE_S)


def _screenshot(driver, path: Path) -> None:
    """The whole page, not only the window."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1440, min(max(height, 900), 8000))
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    driver.set_window_size(1440, 1000)


def _local_only(urls: list[str]) -> list[str]:
    """The requests that left this machine (chrome:// and data: are the browser's own)."""
    out = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "chrome", "about", "chrome-extension"):
            continue
        if parts.hostname not in ("127.0.0.1", "localhost"):
            out.append(url)
    return out


def _known_enterprise(estate: Path, home: Path) -> tuple[str, str, str]:
    """(USCC as the registration record gives it, the golden name, the registration's name) of an enterprise of
    the estate whose golden record the marts hold with records from at least two departments."""
    con = sqlite3.connect(estate / "samr.sqlite")
    try:
        regs = con.execute(
            "SELECT TYSHXYDM, QYMC FROM T_SCZT_DJXX WHERE length(TYSHXYDM) = 18 "
            "AND QYMC LIKE '%公司' ORDER BY ZTID"
        ).fetchall()
    finally:
        con.close()
    marts = duckdb.connect(str(home / "marts.duckdb"), read_only=True)
    try:
        for uscc, name in regs:
            row = marts.execute(
                "SELECT name FROM mart_enterprise_360 WHERE uscc = ? AND len(departments) >= 2 "
                "AND NOT is_branch",
                [uscc],
            ).fetchone()
            if row:
                return uscc, row[0], name
    finally:
        marts.close()
    raise AssertionError("no registration of the estate has a golden record in the marts")


def _variant(name: str) -> str:
    """The same enterprise written the way another department might: other legal-form spelling, half-width
    brackets, a stray space."""
    if name.endswith("有限责任公司"):
        name = name[: -len("有限责任公司")] + "有限公司"
    elif name.endswith("有限公司"):
        name = name[: -len("有限公司")] + "有限责任公司"
    name = name.replace("（", "(").replace("）", ")")
    return name[:2] + " " + name[2:]


# ------------------------------------------------------------------------------------------------------------
# the data layer, without a browser
# ------------------------------------------------------------------------------------------------------------
def test_marts_reopened_when_the_night_replaces_the_file(tmp_path):
    def night(value: int) -> Path:
        path = tmp_path / f"night{value}.duckdb"
        con = duckdb.connect(str(path))
        con.execute(
            "CREATE TABLE meta_build AS SELECT now() AS built_at, DATE '2026-10-31' AS as_of_date, "
            f"now() AS committed_at, {value} AS delta_version"
        )
        con.close()
        return path

    os.replace(night(1), tmp_path / "marts.duckdb")
    marts = Marts(tmp_path)

    def version() -> int:
        with marts.cursor() as cur:
            return cur.execute("SELECT delta_version FROM meta_build").fetchone()[0]

    assert version() == 1
    os.replace(
        night(2), tmp_path / "marts.duckdb"
    )  # what build_marts does; the old file stays open meanwhile
    assert version() == 2
    with (
        pytest.raises(duckdb.Error),
        marts.cursor() as cur,
    ):  # read-only: the dashboard can never change the marts
        cur.execute("CREATE TABLE x (a INT)")


def test_every_page_query_runs_on_the_real_marts(marts_home):
    from dashboard.queries import PAGE_QUERIES
    from models.marts.contract import DASHBOARD_QUERIES

    marts = Marts(marts_home[1])
    params = {
        "since": "2000-01-01",
        "limit": 5,
        "district": None,
        "section": None,
        "level": None,
        "indicator": "service_cases",
        "grain": "day",
        "from_month": "2000-01-01",
        "to_month": "2030-01-01",
        "key": "X",
        "name": "某某公司",
        "text": "某某",
        "entity_id": "x",
        # the scope ScopedMarts binds: the whole city
        "scope_all": True,
        "scope_divisions": [],
        "masked": False,
    }
    for name, sql in PAGE_QUERIES.items():
        if not marts.has(*re.findall(r"FROM (mart_\w+|dim_\w+|meta_\w+)", sql)):
            continue  # a mart of another module (KPI, service) the build did not make: the page says so
        wanted = {k: v for k, v in params.items() if f"${k}" in sql}
        marts.frame(name, **wanted)
    assert set(DASHBOARD_QUERIES) >= {"enterprise_by_uscc", "enterprise_by_name", "enterprise_records"}


def test_department_names_come_from_the_marts_not_the_code(marts_home, tmp_path):
    """The pages name departments by dim_department (the deployment's titles); without it, by their keys."""
    names = Marts(marts_home[1]).department_names()
    assert names["samr"] == "市场监管局" and names["service"] == "政务服务中心"
    con = duckdb.connect(str(tmp_path / "marts.duckdb"))
    con.execute("CREATE TABLE meta_build (lake_table VARCHAR)")
    con.close()
    assert Marts(tmp_path).department_names() == {}


def test_pages_hold_no_sql():
    """Pages ask :class:`dashboard.data.Marts` for named queries (dashboard/queries.py): SQL written in a page
    would escape the query test above and the review of what the dashboard needs from the marts."""
    import dashboard

    root = Path(dashboard.__file__).parent
    for path in (*root.glob("pages/*.py"), root / "app.py", root / "ui.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bSELECT\b|\.execute\(|import duckdb", text), f"{path.name} runs SQL itself"


# ------------------------------------------------------------------------------------------------------------
# in the browser
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "page_id", "graphs"), PAGES, ids=[p[1] for p in PAGES])
def test_page_loads_with_charts_and_nothing_from_outside(
    site, driver, artifacts, marts_home, path, page_id, graphs
):
    needs = {"service": "mart_service_efficiency", "forecast": "mart_kpi_daily"}.get(page_id)
    if needs and not Marts(marts_home[1]).has(needs):
        pytest.skip(f"the marts were built without {needs} (models.marts.build found no module for it)")
    result = _visit(driver, site + path, page_id, min_graphs=graphs)
    _screenshot(driver, artifacts / f"{page_id}.png")
    assert result.ready_ms >= 0, f"{path}: the page or its charts never became ready"
    assert result.console_errors == [], f"{path}: console errors {result.console_errors}"
    assert _local_only(result.requested_urls) == [], "requests left the machine"
    drawn = driver.execute_script(
        "return Array.from(document.querySelectorAll('.js-plotly-plot')).filter("
        "p => p._fullData && p._fullData.some(t => t._length > 0 || (t.z && t.z.length) || "
        "(t.values && t.values.length))).length"
    )
    assert drawn >= graphs, f"{path}: {drawn} charts with data, expected {graphs}"
    text = driver.find_element("id", f"page-{page_id}").text
    assert "暂无数据" not in text.split("\n")[:3]


def test_search_by_uscc_typed_into_the_box(site, driver, artifacts, marts_home):
    from selenium.webdriver.common.keys import Keys

    uscc, golden_name, _ = _known_enterprise(*marts_home)
    result = _visit(driver, site + "/enterprise", "enterprise")
    assert result.ready_ms >= 0
    box = driver.find_element("id", "ent-q")
    box.send_keys(f" {uscc.lower()} " + Keys.ENTER)
    assert _wait_for(
        driver,
        "document.getElementById('ent-name') && "
        f"document.getElementById('ent-name').textContent === {golden_name!r}",
    ), driver.find_element("id", "page-enterprise").text[:500]
    assert (
        f"q={quote(uscc.lower().strip())}" in driver.current_url.replace("+", "%20")
        or "q=" in driver.current_url
    )
    text = driver.find_element("id", "page-enterprise").text
    assert "各部门关联的源记录" in text and "归并依据" in text
    assert "市场监管局" in text  # the registration record itself, listed under its department
    assert driver.find_elements("css selector", "#ent-timeline .js-plotly-plot")
    errors = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == []
    _screenshot(driver, artifacts / "enterprise_uscc.png")


def test_search_by_a_name_variant(site, driver, artifacts, marts_home):
    _, golden_name, registered_name = _known_enterprise(*marts_home)
    variant = _variant(registered_name)
    assert variant != registered_name
    result = _visit(driver, site + "/enterprise?q=" + quote(variant), "enterprise")
    assert result.ready_ms >= 0 and result.console_errors == []
    found = _wait_for(
        driver,
        "document.getElementById('ent-name') ? "
        f"document.getElementById('ent-name').textContent === {golden_name!r} : "
        f"!!document.querySelector('#ent-results') && "
        f"document.querySelector('#ent-results').textContent.includes({golden_name!r})",
    )
    _screenshot(driver, artifacts / "enterprise_name_variant.png")
    assert found, f"{variant!r} did not find {golden_name!r}"


def test_warnings_filtered_by_district(site, driver, marts_home):
    con = duckdb.connect(str(marts_home[1] / "marts.duckdb"), read_only=True)
    try:
        # the district with the most current warnings among those with high-risk enterprises (both charts draw)
        (district,) = con.execute(
            "SELECT district_name FROM mart_risk_warnings WHERE is_current AND district_name IN "
            "(SELECT district_name FROM mart_credit_risk WHERE risk_level IN ('高', '极高')) "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    result = _visit(driver, site + f"/risk?days=365&district={quote(district)}", "risk", min_graphs=2)
    assert result.ready_ms >= 0 and result.console_errors == []
    cells = driver.execute_script(
        "const t = document.querySelector('#risk-warnings'); if (!t) return null;"
        "const heads = Array.from(t.querySelectorAll('th')).map(h => h.textContent.trim());"
        "const i = heads.findIndex(h => h.endsWith('区县'));"
        "return Array.from(t.querySelectorAll('tbody tr')).map(r => r.querySelectorAll('td')[i])"
        ".filter(c => c).map(c => c.textContent.trim());"
    )
    assert cells, "no warning listed for the district with the most warnings"
    assert set(cells) == {district}


def test_pages_say_so_when_the_marts_are_not_built(tmp_path, browser):
    """Before the first night: every page renders and says what is missing, without an error. Signed in the
    way the demo is, through the one-time link of a loopback server without users."""
    driver = browser
    with serve(tmp_path, local_token="one-time-token") as base:
        driver.qst_signed_in = None
        driver.get(base + "/login?token=one-time-token")
        assert _wait_for(driver, "document.getElementById('who') !== null")
        assert "本机" in driver.find_element("id", "who").text
        for path, page_id, _ in PAGES:
            result = _visit(driver, base + path, page_id)
            assert result.ready_ms >= 0 and result.console_errors == [], path
        assert "集市" in driver.find_element("id", "page-forecast").text


def test_cli_help():
    from click.testing import CliRunner

    from pipelines.dashboard_cli import dashboard

    out = CliRunner().invoke(dashboard, ["--help"])
    assert out.exit_code == 0 and "--port" in out.output and "read-only" in out.output
    assert "users" in out.output and "sign-in" in out.output
