"""The 全视通 dashboard on a government network: sign-in, roles, district scope, audit, and data shown as text.

Runs on the marts of tests/conftest.py's ``marts_home`` (the real pipeline on a simulated city), copied, with
two enterprises of the district officer's district renamed to hostile values (a Markdown autolink, a Markdown
link, an HTML tag). The district officer is granted the division holding the most enterprises of the marts
(found in the data, never named here). Most tests drive the Flask server through its test client (the same
requests a browser sends: the sign-in form, Dash's callback POSTs with the CSRF header); the browser tests sign
in through the form in headless Chromium.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from conftest import DASHBOARD_PASSWORD, dashboard_users, signed_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.app import create_app
from dashboard.audit import ACTIONS, AuditLog, verify
from dashboard.auth import MAX_FAILURES, UserStore
from dashboard.browser import serve, visit, wait_for
from dashboard.data import Marts, Scope, ScopedMarts
from dashboard.exports import EXPORTS
from dashboard.pages.enterprise import RECORD_COLUMNS
from dashboard.queries import (
    CITY_WIDE_TABLES,
    QUERIES,
    SCOPED_CONTRACT_QUERIES,
    SCOPED_TABLES,
    sql_of,
    tables_of,
)
from lake.layout import dashboard_audit_path
from models.marts.contract import DASHBOARD_QUERIES

pytestmark = pytest.mark.xdist_group("silver_estate")

AUTOLINK = "恶意测试<http://evil.example/auto>有限公司"
MD_LINK = "恶意测试[点我](http://evil.example/md)<img src=x onerror=alert(1)>**粗体**"
HOSTILE_PREFIX = "恶意测试"
PAGES = ("/", "/enterprise", "/risk", "/abnormal", "/scorecard", "/service", "/forecast", "/audit")


@dataclass
class City:
    home: Path
    store: UserStore
    granted: tuple[str, ...]  # the officer's division codes
    granted_names: frozenset[str]
    inside: list[dict]  # enterprises of the granted division: entity_id, uscc, name, regno
    outside: list[dict]
    outside_names: frozenset[str]  # district names of the other divisions
    hostile: tuple[str, str]  # entity ids renamed to AUTOLINK and MD_LINK

    @property
    def forbidden(self) -> frozenset[str]:
        """What must never reach the officer: ids and USCCs of the enterprises outside the granted district."""
        return frozenset(
            v for e in self.outside for v in (e["entity_id"], e["uscc"]) if isinstance(v, str) and len(v) >= 8
        )


@pytest.fixture(scope="session")
def city(marts_home, tmp_path_factory) -> City:
    home = tmp_path_factory.mktemp("dashboard_security") / "home"
    home.mkdir()
    shutil.copy(marts_home[1] / "marts.duckdb", home / "marts.duckdb")
    con = duckdb.connect(str(home / "marts.duckdb"))
    try:
        (top,) = con.execute(
            "SELECT division_code FROM mart_enterprise_360 WHERE division_code IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        ).fetchone()
        hostile = [
            r[0]
            for r in con.execute(
                "SELECT entity_id FROM mart_enterprise_360 WHERE division_code = ? ORDER BY entity_id LIMIT 2",
                [top],
            ).fetchall()
        ]
        for entity_id, name in zip(hostile, (AUTOLINK, MD_LINK), strict=True):
            for table in ("mart_enterprise_360", "mart_credit_risk", "mart_risk_warnings"):
                con.execute(f"UPDATE {table} SET name = ? WHERE entity_id = ?", [name, entity_id])
            con.execute(
                "UPDATE mart_enterprise_search SET name = ?, search_key = ? WHERE entity_id = ?",
                [name, name, entity_id],
            )
        rows = con.execute(
            "SELECT entity_id, uscc, name, regno, division_code, district_name FROM mart_enterprise_360"
        ).fetchall()
    finally:
        con.close()
    keys = ("entity_id", "uscc", "name", "regno", "division_code", "district_name")
    everyone = [dict(zip(keys, r, strict=True)) for r in rows]
    inside = [e for e in everyone if e["division_code"] == top]
    outside = [e for e in everyone if e["division_code"] != top]
    store = dashboard_users(
        home / "dashboard" / "users.sqlite",
        ("leader", "leader", ()),
        ("officer", "district", (top,)),
        ("analyst", "analyst", ()),
    )
    return City(
        home,
        store,
        (top,),
        frozenset({inside[0]["district_name"]}),
        inside,
        outside,
        frozenset(e["district_name"] for e in outside if e["district_name"]),
        (hostile[0], hostile[1]),
    )


# ------------------------------------------------------------------------------------------------------------
# a client speaking to the server as the browser does
# ------------------------------------------------------------------------------------------------------------
class Client:
    """Flask's test client on the dashboard: the sign-in form, Dash's callback POSTs with the CSRF header."""

    def __init__(self, city: City) -> None:
        self.city = city
        self.app = create_app(city.home, users=city.store)
        self.http = self.app.server.test_client()

    def form_token(self) -> str:
        page = self.http.get("/login").get_data(as_text=True)
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def sign_in(self, name: str, password: str = DASHBOARD_PASSWORD) -> Any:
        return self.http.post(
            "/login", data={"csrf_token": self.form_token(), "username": name, "password": password}
        )

    def csrf(self) -> str:
        cookie = self.http.get_cookie("qst_csrf")
        return cookie.value if cookie else ""

    def callback(self, body: dict, **headers: str) -> Any:
        return self.http.post(
            "/_dash-update-component", json=body, headers={"X-CSRFToken": self.csrf(), **headers}
        )

    def page(self, path: str, search: str = "") -> str:
        """The page the router renders for ``path?search``, as the JSON text the browser receives."""
        response = self.callback(
            {
                "output": "..content.children...build-line.children..",
                "outputs": [
                    {"id": "content", "property": "children"},
                    {"id": "build-line", "property": "children"},
                ],
                "inputs": [
                    {"id": "url", "property": "pathname", "value": path},
                    {"id": "url", "property": "search", "value": search},
                ],
                "changedPropIds": ["url.pathname"],
                "state": [],
            }
        )
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return json.dumps(response.get_json(), ensure_ascii=False)

    def export(self, key: str, params: dict) -> list[str] | None:
        """The strings of the exported workbook (None when the server sent none)."""
        button = {
            "key": key,
            "params": json.dumps(params, ensure_ascii=False, sort_keys=True),
            "type": "export",
        }
        prop = json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"
        response = self.callback(
            {
                "output": "export-download.data",
                "outputs": {"id": "export-download", "property": "data"},
                "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
                "changedPropIds": [prop],
                "state": [],
            }
        )
        if response.status_code == 204:
            return None
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        data = response.get_json()["response"]["export-download"]["data"]
        return workbook_strings(base64.b64decode(data["content"]))


def workbook_strings(content: bytes) -> list[str]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(content), read_only=True)
    return [
        str(v) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for v in row if v
    ]


@pytest.fixture
def client(city) -> Client:
    return Client(city)


def _signed(city: City, name: str) -> Client:
    c = Client(city)
    response = c.sign_in(name)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return c


@pytest.fixture(scope="session")
def officer(city) -> Client:
    return _signed(city, "officer")


@pytest.fixture(scope="session")
def leader(city) -> Client:
    return _signed(city, "leader")


def _entries(city: City) -> list[dict]:
    path = dashboard_audit_path(city.home)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------------------------------------------------
# users and the audit log, without a server
# ------------------------------------------------------------------------------------------------------------
def test_production_passwords_are_argon2id_with_64_mib(tmp_path):
    store = UserStore(tmp_path / "users.sqlite")
    store.add("boss", "leader", "a long enough password")
    with sqlite3.connect(tmp_path / "users.sqlite") as con:  # the file as an outsider reads it
        (hashed,) = con.execute("SELECT password_hash FROM users").fetchone()
    assert hashed.startswith("$argon2id$") and "m=65536" in hashed and "a long enough" not in hashed
    assert os.stat(tmp_path / "users.sqlite").st_mode & 0o077 == 0  # the owner's only


def test_users_rules_lock_out_and_disable(tmp_path):
    from dashboard.auth import LOCK_SECONDS, UserError

    store = dashboard_users(tmp_path / "u.sqlite", ("o", "district", ("440305",)))
    with pytest.raises(UserError, match="至少"):
        store.add("short", "leader", "2short")
    with pytest.raises(UserError, match="区县专员"):
        store.add("nodistrict", "district", DASHBOARD_PASSWORD)
    with pytest.raises(UserError, match="无效"):
        store.add("bad name;--", "leader", DASHBOARD_PASSWORD)
    now = 1_000_000.0
    for _ in range(MAX_FAILURES - 1):
        assert store.verify("o", "wrong password!!", now).why == "bad"
    assert store.verify("o", "wrong password!!", now).why == "locked"
    assert store.verify("o", DASHBOARD_PASSWORD, now + 1).why == "locked"  # the right one too, while locked
    assert store.verify("o", DASHBOARD_PASSWORD, now + LOCK_SECONDS + 1).user is not None
    epoch = store.get("o").epoch
    store.set_disabled("o", True)
    assert store.verify("o", DASHBOARD_PASSWORD).why == "disabled" and store.get("o").epoch == epoch + 1
    assert store.verify("nobody", DASHBOARD_PASSWORD).why == "bad"


def test_audit_log_is_appended_only_and_chained(tmp_path, monkeypatch):
    log = AuditLog(tmp_path / "audit.jsonl")
    opened: list[int] = []
    real_open = os.open
    monkeypatch.setattr(
        os, "open", lambda path, flags, *a: (opened.append(flags), real_open(path, flags, *a))[1]
    )
    log.append("search", user="u", role="leader", remote="127.0.0.1", q='x"}\n{"action":"forged"')
    log.append("export", user="u", role="leader", remote="127.0.0.1", table="t", rows=3)
    monkeypatch.undo()
    assert opened and all(f & os.O_APPEND and f & os.O_WRONLY and not f & os.O_TRUNC for f in opened)
    lines = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["what"]["q"].startswith('x"}\n')  # one line, not two
    assert verify(log.path).ok and verify(log.path).entries == 2
    # an edit in the middle, by anyone with the file, breaks the chain
    edited = lines[0].replace('"search"', '"sign_in"')
    (tmp_path / "audit.jsonl").write_text(edited + "\n" + lines[1] + "\n", encoding="utf-8")
    assert not verify(log.path).ok and "第 2 行" in verify(log.path).problem


# ------------------------------------------------------------------------------------------------------------
# the scope in the SQL
# ------------------------------------------------------------------------------------------------------------
def test_every_query_on_a_scoped_table_binds_the_scope():
    assert {
        "mart_enterprise_360",
        "mart_person_360",
        "mart_risk_warnings",
        "mart_enterprise_search",
    } <= SCOPED_TABLES
    for name in QUERIES:
        read = tables_of(name, with_scope=True)
        assert read <= SCOPED_TABLES | CITY_WIDE_TABLES, f"{name} reads an unclassified table: {read}"
        if read & SCOPED_TABLES:
            sql = sql_of(name)
            assert "$scope_all" in sql and "$scope_divisions" in sql, f"{name} reads {read} unscoped"


def test_the_scoped_contract_queries_give_a_leader_the_contract_rows(city):
    marts = Marts(city.home)
    e = city.inside[0]
    params = {
        "uscc": e["uscc"],
        "name": e["name"][:2],
        "limit": 50,
        "entity_id": e["entity_id"],
        "division_code": city.granted[0],
        "from_month": "2000-01-01",
        "to_month": "2100-01-01",
        "since": "2000-01-01",
    }
    leader = {"scope_all": True, "scope_divisions": [], "masked": False}
    for name, scoped in SCOPED_CONTRACT_QUERIES.items():
        wanted = {k: v for k, v in params.items() if f"${k}" in DASHBOARD_QUERIES[name]}
        with marts.cursor() as cur:
            contract = cur.execute(DASHBOARD_QUERIES[name], wanted).df()
            ours = cur.execute(
                scoped, {**wanted, **{k: v for k, v in leader.items() if f"${k}" in scoped}}
            ).df()
        assert list(ours.columns) == list(contract.columns), name
        assert ours.astype(str).values.tolist() == contract.astype(str).values.tolist(), name


def test_the_scope_cannot_be_skipped_or_forged(city):
    marts = Marts(city.home)
    with pytest.raises(duckdb.Error):  # a scoped query without the scope does not run at all
        marts.frame("enterprise_by_id", entity_id=city.outside[0]["entity_id"])
    scoped = ScopedMarts(marts, Scope(False, city.granted))
    with pytest.raises(ValueError, match="session"):
        scoped.frame("enterprise_by_id", entity_id="x", scope_all=True)
    assert scoped.frame("enterprise_by_id", entity_id=city.outside[0]["entity_id"]).empty
    assert not scoped.frame("enterprise_by_id", entity_id=city.inside[0]["entity_id"]).empty


# ------------------------------------------------------------------------------------------------------------
# the server: sign-in, sessions, CSRF, headers
# ------------------------------------------------------------------------------------------------------------
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _check_headers(response) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (response.request.path, name)
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "'unsafe-eval'" not in csp
    assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/=]+'(;| )", csp), csp


def test_every_request_needs_a_session_and_gets_the_headers(client):
    http = client.http
    for path in ("/", "/risk", "/enterprise?id=x", "/audit"):
        response = http.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next="), path
        _check_headers(response)
    for path in ("/_dash-layout", "/_dash-dependencies", "/assets/qst.css", "/no-such-page"):
        response = http.get(path)
        assert response.status_code in (302, 401), path
        _check_headers(response)
    response = http.post("/_dash-update-component", json={})
    assert response.status_code == 401
    _check_headers(response)
    login = http.get("/login")
    assert login.status_code == 200 and "请登录" in login.get_data(as_text=True)
    _check_headers(login)
    assert login.headers["Cache-Control"] == "no-store"


def test_sign_in_sets_a_guarded_session_and_every_post_needs_the_token(city):
    c = Client(city)
    assert (
        c.http.post("/login", data={"username": "leader", "password": DASHBOARD_PASSWORD}).status_code == 400
    )
    response = c.sign_in("leader")
    assert response.status_code == 302
    cookies = response.headers.getlist("Set-Cookie")
    session = next(h for h in cookies if h.startswith("qst_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Expires=" in session
    assert any(h.startswith("qst_csrf=") and "SameSite=Strict" in h for h in cookies)
    assert c.http.get("/_dash-layout").status_code == 200
    _check_headers(c.http.get("/_dash-component-suites/dash/dcc/dash_core_components.js"))
    body = {"output": "x.y", "outputs": {"id": "x", "property": "y"}, "inputs": [], "changedPropIds": []}
    assert c.http.post("/_dash-update-component", json=body).status_code == 403  # no token
    assert c.callback(body, Origin="http://evil.example").status_code == 403  # another site
    assert c.http.post("/logout").status_code == 403
    assert c.http.post("/logout", data={"csrf_token": c.csrf()}).status_code == 302
    assert c.http.get("/_dash-layout").status_code == 401  # signed out


def test_a_disabled_user_loses_the_session_at_the_next_request(city, tmp_path):
    store = dashboard_users(tmp_path / "u.sqlite", ("temp", "leader", ()))
    c = Client(city)
    c.app = create_app(city.home, users=store, audit=AuditLog(tmp_path / "a.jsonl"))
    c.http = c.app.server.test_client()
    assert c.sign_in("temp").status_code == 302
    assert c.http.get("/_dash-layout").status_code == 200
    store.set_disabled("temp", True)
    assert c.http.get("/_dash-layout").status_code == 401


def test_repeated_failures_lock_the_account_through_the_form(city, tmp_path):
    store = dashboard_users(tmp_path / "u.sqlite", ("victim", "leader", ()))
    app = create_app(city.home, users=store, audit=AuditLog(tmp_path / "a.jsonl"))
    c = Client(city)
    c.app, c.http = app, app.server.test_client()
    for _ in range(MAX_FAILURES - 1):
        assert "用户名或密码错误" in c.sign_in("victim", "not the password").get_data(as_text=True)
    assert "已锁定" in c.sign_in("victim", "not the password").get_data(as_text=True)
    locked = c.sign_in("victim")
    assert locked.status_code == 401 and "已锁定" in locked.get_data(as_text=True)
    failures = list(map(json.loads, (tmp_path / "a.jsonl").read_text().splitlines()))
    assert sum(e["action"] == "sign_in_failed" for e in failures) == MAX_FAILURES + 1


# ------------------------------------------------------------------------------------------------------------
# roles
# ------------------------------------------------------------------------------------------------------------
def _searches(city: City) -> st.SearchStrategy[str]:
    outside = city.outside[:60]
    known = [v for e in outside for v in (e["uscc"], e["name"], e["entity_id"], e["regno"]) if v]
    prefixes = [e["name"][:k] for e in outside[:20] if e["name"] for k in (2, 3, 4)]
    # a part from the middle of a name: found by "名称包含" only, the last step of the search
    middles = [e["name"][k : k + 3] for e in outside[:30] if e["name"] and len(e["name"]) > 8 for k in (3, 5)]
    return st.one_of(
        st.sampled_from(known),
        st.sampled_from(prefixes),
        st.sampled_from(middles),
        st.sampled_from([e["uscc"].lower() for e in outside if e["uscc"]][:20]),
        st.text(min_size=1, max_size=8),
        st.sampled_from(["科技", "公司", "有限", "深圳", "%", "_", "' OR 1=1 --", HOSTILE_PREFIX]),
    )


def _echo_removed(text: str, *inputs: Any) -> str:
    """The response without the user's own input echoed back (the search box, "没有找到与…")."""
    for value in sorted((str(v) for v in inputs if v), key=len, reverse=True):
        text = text.replace(json.dumps(value, ensure_ascii=False)[1:-1], "").replace(value, "")
    return text


def test_a_district_officer_never_sees_outside_the_districts_granted(city, officer):
    """Random pages, searches, URLs and exports as the officer: no id or USCC of an enterprise outside the
    granted district in any answer (less what the officer typed, echoed back)."""
    forbidden = city.forbidden
    outside_ids = [e["entity_id"] for e in city.outside]
    districts = sorted(city.outside_names | city.granted_names)

    def clean(text: str, *inputs: Any) -> None:
        seen = _echo_removed(text, *inputs)
        leaked = [v for v in forbidden if v in seen]
        assert not leaked, f"outside the district: {leaked[:3]} (inputs {inputs})"

    action = st.one_of(
        st.tuples(st.just("page"), st.sampled_from(PAGES), st.just("")),
        st.tuples(st.just("search"), st.just("/enterprise"), _searches(city)),
        st.tuples(st.just("file"), st.just("/enterprise"), st.sampled_from(outside_ids)),
        st.tuples(
            st.just("url"),
            st.sampled_from(("/risk", "/abnormal", "/", "/enterprise")),
            st.fixed_dictionaries(
                {
                    "district": st.sampled_from(districts),
                    "days": st.sampled_from(["365", "30", "x", "-5"]),
                    "months": st.sampled_from(["0", "24", "abc"]),
                    "id": st.sampled_from(outside_ids),
                }
            ),
        ),
        st.tuples(
            st.just("export"),
            st.sampled_from(sorted(EXPORTS)),
            st.fixed_dictionaries(
                {},
                optional={
                    "q": _searches(city),
                    "entity_id": st.sampled_from(outside_ids),
                    "district": st.sampled_from(districts),
                    "days": st.sampled_from([3650, 30]),
                    "months": st.sampled_from([0, 24]),
                },
            ),
        ),
    )

    log = dashboard_audit_path(city.home)

    @settings(
        max_examples=45,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(action)
    def drive(step: tuple) -> None:
        kind, where, what = step
        start = log.stat().st_size
        if kind == "page":
            clean(officer.page(where))
        elif kind == "search":
            clean(officer.page(where, "?" + _query({"q": what})), what)
        elif kind == "file":
            clean(officer.page(where, "?" + _query({"id": what})), what)
        elif kind == "url":
            clean(officer.page(where, "?" + _query(what)), *what.values())
        else:
            params = {k: v for k, v in what.items() if k in EXPORTS[where].params}
            strings = officer.export(where, params)
            clean("\n".join(strings or []), *params.values())
        with open(log, "rb") as f:
            f.seek(start)
            recorded = [json.loads(line)["action"] for line in f.read().splitlines()]
        # every search, file view and export of the step is in the audit log
        expected = {"search": "search", "file": "view_enterprise", "export": "export"}.get(kind)
        if kind == "url" and where == "/enterprise":
            expected = "view_enterprise"
        if kind == "search" and not str(what).strip():
            expected = None  # an empty box searches nothing
        assert expected is None or expected in recorded, (step, recorded)

    drive()
    # and the officer is not blind: the district's own enterprises are found
    inside = next(e for e in city.inside if e["uscc"])
    assert inside["uscc"] in officer.page("/enterprise", "?" + _query({"q": inside["uscc"]}))
    records = officer.export("enterprise_records", {"entity_id": inside["entity_id"]})
    assert records and len(records) > len(RECORD_COLUMNS) + 1  # the headers and at least one record


def _query(params: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def test_a_district_officers_aggregates_hold_only_the_granted_districts(city, officer, leader):
    for path, dropdown in (("/risk", "risk-district"), ("/abnormal", "abn-district")):
        page = json.loads(officer.page(path))
        options = _find(page, dropdown)["options"]
        assert {o["label"] for o in options} == set(city.granted_names), path
        everyone = {o["label"] for o in _find(json.loads(leader.page(path)), dropdown)["options"]}
        assert everyone > set(city.granted_names)
    totals = officer.export("abnormal_by_district", {"months": 0})
    assert totals is not None and not (set(totals) & city.outside_names)


def _find(tree: Any, component_id: str) -> dict:
    """The props of the component ``component_id`` in a Dash JSON tree."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("id") == component_id:
                return node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError(f"no component {component_id}")


def test_an_analyst_sees_the_city_with_persons_names_masked(city, leader):
    analyst = _signed(city, "analyst")
    with duckdb.connect(str(city.home / "marts.duckdb"), read_only=True) as con:
        entity_id, uscc, name = con.execute(
            "SELECT entity_id, uscc, legal_rep_name FROM mart_enterprise_360 WHERE length(legal_rep_name) >= 2 "
            "AND division_code <> ? ORDER BY entity_id LIMIT 1",
            [city.granted[0]],
        ).fetchone()
    query = "?" + _query({"id": entity_id})
    shown = analyst.page("/enterprise", query)
    assert uscc in shown  # the whole city
    assert name not in shown and (name[0] + "*" * (len(name) - 1)) in shown
    assert name in leader.page("/enterprise", query)
    assert "无权" in analyst.page("/audit")


# ------------------------------------------------------------------------------------------------------------
# the audit log
# ------------------------------------------------------------------------------------------------------------
def test_views_searches_and_exports_are_audited_and_leaders_read_them(city, officer, leader):
    before = len(_entries(city))
    inside = city.inside[3]
    officer.page("/enterprise", "?" + _query({"id": inside["entity_id"]}))
    officer.page("/enterprise", "?" + _query({"q": "科技"}))
    officer.export("risk_warnings", {"days": 3650})
    officer.page("/enterprise", "?" + _query({"id": city.outside[0]["entity_id"]}))
    new = _entries(city)[before:]
    mine = [e for e in new if e["user"] == "officer"]
    assert [e["action"] for e in mine] == ["view_enterprise", "search", "export", "view_enterprise"]
    assert mine[0]["what"]["entity_id"] == inside["entity_id"] and mine[0]["from"] == "127.0.0.1"
    assert mine[1]["what"]["q"] == "科技" and mine[2]["what"]["table"] == "risk_warnings"
    assert mine[3]["what"]["found"] is False and all(e["role"] == "district" and e["at"] for e in mine)
    page = leader.page("/audit", "?" + _query({"user": "officer"}))
    assert "查看企业档案" in page and "导出表格" in page and "校验通过" in page
    assert "无权" in officer.page("/audit") and "查看企业档案" not in officer.page("/audit")


def test_the_audit_log_cannot_be_altered_through_the_dashboard(city, leader, officer):
    path = dashboard_audit_path(city.home)
    before = path.read_bytes()
    # a search that tries to forge an entry, methods that could write, the audit page's own callback, a
    # bogus export, and a request for a page outside the role
    officer.page("/enterprise", "?" + _query({"q": 'x"}\n{"action":"sign_in","user":"boss"}\n'}))
    for method in ("post", "put", "delete", "patch"):
        response = getattr(leader.http, method)("/audit", headers={"X-CSRFToken": leader.csrf()})
        assert response.status_code in (404, 405), method
    assert leader.http.post("/assets/qst.css", headers={"X-CSRFToken": leader.csrf()}).status_code in (
        404,
        405,
    )
    assert leader.export("no_such_export", {"truncate": True}) is None
    leader.callback(
        {
            "output": "url.search",
            "outputs": {"id": "url", "property": "search"},
            "inputs": [
                {"id": "audit-action", "property": "value", "value": "x"},
                {"id": "audit-user", "property": "value", "value": "../../etc/passwd"},
            ],
            "state": [{"id": "url", "property": "search", "value": ""}],
            "changedPropIds": ["audit-user.value"],
        }
    )
    leader.page("/audit", "?user=officer")
    after = path.read_bytes()
    assert after.startswith(before) and len(after) > len(before)  # appended to, never rewritten
    checked = verify(path)
    assert checked.ok, checked.problem
    forged = [e for e in _entries(city) if e["action"] == "sign_in" and e["user"] == "boss"]
    assert forged == []


# ------------------------------------------------------------------------------------------------------------
# in Chromium: each role signs in; data shows as text
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def site(city, browser) -> Iterator[str]:
    with serve(city.home, users=city.store) as base:
        yield base


def _visit(driver, url: str, page_id: str):
    result = visit(driver, url, page_id, timeout_ms=300_000)
    assert result.ready_ms >= 0 and result.console_errors == [], result.console_errors
    return result


def test_each_role_signs_in_and_sees_its_own_dashboard(site, browser, city, dashboard_artifacts):
    driver = browser
    signed_in(driver, site, "leader")
    assert "领导" in driver.find_element("id", "who").text
    _visit(driver, site + "/audit", "audit")
    assert wait_for(driver, "document.querySelector('#audit-table') !== null", 60)
    actions = driver.execute_script(
        "const t = document.querySelector('#audit-table');"
        "const heads = Array.from(t.querySelectorAll('th')).map(h => h.textContent.trim());"
        "const i = heads.findIndex(h => h.endsWith('操作'));"
        "return Array.from(t.querySelectorAll('tbody tr')).map(r => r.querySelectorAll('td')[i])"
        ".filter(c => c).map(c => c.textContent.trim());"
    )
    assert "登录" in actions and set(actions) <= set(ACTIONS.values())  # by their Chinese names
    driver.save_screenshot(str(dashboard_artifacts / "audit.png"))

    signed_in(driver, site, "officer")
    assert "区县专员" in driver.find_element("id", "who").text
    assert not driver.find_elements("id", "nav-audit")
    _visit(driver, site + "/audit", "denied")
    outside = city.outside[0]
    _visit(driver, site + "/enterprise?" + _query({"id": outside["entity_id"]}), "enterprise")
    assert "不在您的授权范围内" in driver.find_element("id", "page-enterprise").text
    assert outside["uscc"] not in driver.page_source

    signed_in(driver, site, "analyst")
    assert "分析员" in driver.find_element("id", "who").text
    _visit(driver, site + "/risk", "risk")
    driver.find_element("id", "sign-out").click()
    assert wait_for(driver, "document.getElementById('login-form') !== null", 30)
    driver.qst_signed_in = None


def test_names_render_as_text_never_as_links_or_markup(site, browser, city, dashboard_artifacts):
    """Issue 18: a name holding ``<http://evil.example/auto>`` became a link in the search results."""
    driver = browser
    signed_in(driver, site, "officer")
    _visit(driver, site + "/enterprise?" + _query({"q": HOSTILE_PREFIX}), "enterprise")
    assert wait_for(driver, "document.querySelectorAll('#ent-results td a').length >= 2", 60)
    driver.save_screenshot(str(dashboard_artifacts / "hostile_names.png"))
    links = driver.execute_script(
        "return Array.from(document.querySelectorAll('#page-enterprise a')).map(a => a.getAttribute('href'));"
    )
    assert links and all(h.startswith("/enterprise?id=") for h in links), links
    assert not driver.find_elements("css selector", "#page-enterprise img, #page-enterprise strong")
    cells = driver.execute_script(
        "return Array.from(document.querySelectorAll('#ent-results td')).map(c => c.textContent.trim());"
    )
    assert AUTOLINK in cells and MD_LINK in cells
    # the export button of the results: the server runs the search again and audits it
    before = len(_entries(city))
    driver.find_element("css selector", "#page-enterprise .export-button").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(e["action"] == "export" for e in _entries(city)[before:]):
        time.sleep(0.1)
    exported = [e for e in _entries(city)[before:] if e["action"] == "export"]
    assert (
        exported
        and exported[0]["user"] == "officer"
        and exported[0]["what"]["params"] == {"q": HOSTILE_PREFIX}
    )


# ------------------------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------------------------
def test_cli_manages_users_and_refuses_unsafe_serving(tmp_path, city):
    from pipelines.dashboard_cli import dashboard, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")
    runner = CliRunner()
    home = tmp_path / "home"
    refused = runner.invoke(dashboard, ["--home", str(home), "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "拒绝" in refused.output and "users add" in refused.output
    debug = runner.invoke(dashboard, ["--home", str(home), "--host", "0.0.0.0", "--debug"])
    assert debug.exit_code == 2 and "--debug" in debug.output
    home.mkdir()
    shutil.copy(city.home / "marts.duckdb", home / "marts.duckdb")
    district = city.inside[0]["district_name"]
    added = runner.invoke(
        dashboard,
        [
            "users",
            "add",
            "zhang",
            "--role",
            "district",
            "--district",
            district,
            "--password-stdin",
            "--home",
            str(home),
        ],
        input="a long password 123\n",
    )
    assert added.exit_code == 0, added.output
    assert city.granted[0] in added.output and "a long password" not in added.output
    unknown = runner.invoke(
        dashboard,
        [
            "users",
            "add",
            "li",
            "--role",
            "district",
            "--district",
            "不存在区",
            "--password-stdin",
            "--home",
            str(home),
        ],
        input="a long password 123\n",
    )
    assert unknown.exit_code == 2 and "不在集市的区县中" in unknown.output
    assert runner.invoke(dashboard, ["users", "disable", "zhang", "--home", str(home)]).exit_code == 0
    listed = runner.invoke(dashboard, ["users", "list", "--home", str(home)])
    assert "zhang" in listed.output and "停用" in listed.output and "$argon2" not in listed.output
    checked = runner.invoke(dashboard, ["audit", "verify", "--home", str(home)])
    assert checked.exit_code == 0 and "2 entries" in checked.output  # the user added, then disabled


def test_values_shown_by_plotly_are_entities_not_markup():
    """plotly.js reads <a href>, <br>, <b> in trace names, ticks and hover text: data goes in as entities."""
    from dashboard import ui

    assert ui.plot_text('<a href="http://evil.example">区</a> & <br>') == (
        '&lt;a href="http://evil.example"&gt;区&lt;/a&gt; &amp; &lt;br&gt;'
    )
    assert ui.md_text("a  [b](c)\n<d>") == r"a \[b\]\(c\) \<d\>"
