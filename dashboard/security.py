"""Sign-in, sessions, CSRF, security headers and the audit hooks of the dashboard's Flask server.

Every request is authenticated before Dash sees it (:func:`install` registers a ``before_request`` guard): only
``/login`` answers without a session; a page asked for without one is sent to ``/login``, anything else gets
401. The session is Flask's signed cookie (``itsdangerous``), HttpOnly, SameSite=Lax (a link to
``/enterprise?id=...`` opened from a mail still carries it; no cross-site request can change anything since
every state-changing request needs the CSRF token), Secure when served behind HTTPS (``--tls-proxy``), idle
for at most :data:`SESSION_IDLE` and at most :data:`SESSION_MAX` after sign-in. It holds the user's name, the
user's ``epoch`` (a user disabled or given a new password loses every session at the next request: the users
file is read on every request) and a CSRF token. The signing key is ``$QST_DASHBOARD_SECRET`` (at least 32
characters; several servers behind one address share it), else a random key per process (sessions then end when
the server restarts).

CSRF: every POST -- the sign-in form, sign-out, and every Dash callback (searches, filters, exports) -- must
carry the session's token: the forms in a hidden field, Dash in the ``X-CSRFToken`` header, which its renderer
copies from the ``qst_csrf`` cookie (a cookie a page of another site cannot read). A POST whose ``Origin`` is
another site is refused as well.

Headers on every response (:func:`security_headers`): a Content-Security-Policy allowing scripts from this
server and Dash's one inline script (by hash), no framing (``frame-ancestors 'none'`` and
``X-Frame-Options: DENY``), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin`` (entity ids
in URLs never leave for another site; ``no-referrer`` would make Chromium send ``Origin: null`` with the
dashboard's own forms, which the origin check refuses), and ``Cache-Control: no-store`` on everything but the
static bundles.

Lock-out: :data:`dashboard.auth.MAX_FAILURES` failures in a row lock an account (:class:`~dashboard.auth.
UserStore`); :data:`ADDRESS_FAILURES` failures from one address within :data:`dashboard.auth.LOCK_SECONDS`
refuse that address for the rest of the window (password spraying over many names).

Loopback without users (the demo): the server can be given a random one-time token, printed by ``qst
dashboard`` in the URL it shows (like Jupyter's), which signs in as the local leader ``本机``; never on a network
address (the command refuses to serve one without users).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import flask
from flask import Flask, g, request, session

from dashboard.audit import AuditLog
from dashboard.auth import LOCK_SECONDS, MAX_FAILURES, Access, UserStore

SECRET_ENV = "QST_DASHBOARD_SECRET"
SESSION_IDLE = timedelta(hours=2)
SESSION_MAX = timedelta(hours=12)
CSRF_COOKIE = "qst_csrf"
CSRF_HEADER = "X-CSRFToken"
CSRF_FIELD = "csrf_token"
ADDRESS_FAILURES = 20
LOCAL_USER = "本机"
#: paths served without a session
PUBLIC = frozenset({"/login"})
#: static bundles (cacheable); everything else is no-store
STATIC_PREFIXES = ("/_dash-component-suites/", "/assets/", "/_favicon.ico")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ConfigurationError(RuntimeError):
    """The server cannot start safely as configured (the message says what to do)."""


def secret_key() -> bytes:
    """``$QST_DASHBOARD_SECRET`` (checked, never printed), else a random key for this process."""
    value = os.environ.get(SECRET_ENV, "")
    if not value:
        return secrets.token_bytes(32)
    if len(value) < 32:
        raise ConfigurationError(
            f"{SECRET_ENV} 太短：至少32个字符（例如 python -c 'import secrets; print(secrets.token_urlsafe(32))'）"
            f" / {SECRET_ENV} must hold at least 32 characters"
        )
    return value.encode("utf-8")


def content_security_policy(inline_script_hashes: list[str]) -> str:
    """``inline_script_hashes``: Dash's ``csp_hashes()`` (quoted ``'sha256-...'`` sources)."""
    scripts = " ".join(inline_script_hashes)
    return (
        "default-src 'self'; "
        f"script-src 'self' {scripts}; "
        # plotly.js and Dash's components write <style> elements and style attributes
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


@dataclass
class Guard:
    """The server's users, audit log and (loopback demo only) one-time sign-in token."""

    store: UserStore
    audit: AuditLog
    local_token: str | None = None
    csp: str = ""
    secure_cookies: bool = False
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -------------------------------------------------------------- who is asking
    def remote(self) -> str:
        return request.remote_addr or "unknown"

    def access(self) -> Access | None:
        """The signed-in user of this request, or None (the session is cleared when it is no longer valid)."""
        name = session.get("user")
        if not name:
            return None
        issued = float(session.get("issued", 0))
        if time.time() - issued > SESSION_MAX.total_seconds():
            session.clear()
            return None
        if session.get("local"):
            if self.local_token is None or not hmac.compare_digest(
                str(session["local"]), _digest(self.local_token)
            ):
                session.clear()
                return None
            return Access(LOCAL_USER, "leader", (), LOCAL_USER)
        user = self.store.get(str(name))
        if user is None or user.disabled or user.epoch != session.get("epoch"):
            session.clear()
            return None
        return Access(user.name, user.role, user.divisions, user.display_name)

    def record(self, action: str, access: Access | None = None, **what: Any) -> None:
        who = access or getattr(g, "access", None)
        attempted = str(what.pop("user", ""))
        self.audit.append(
            action,
            user=who.user if who else attempted,
            role=who.role if who else "",
            remote=self.remote(),
            **what,
        )

    # -------------------------------------------------------------- sign-in throttling by address
    def _address_blocked(self, now: float) -> bool:
        with self._lock:
            seen = self._failures.get(self.remote())
            while seen and seen[0] < now - LOCK_SECONDS:
                seen.popleft()
            return bool(seen) and len(seen) >= ADDRESS_FAILURES

    def _address_failed(self, now: float) -> None:
        with self._lock:
            self._failures.setdefault(self.remote(), deque()).append(now)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    return bool(expected) and hmac.compare_digest(str(expected), given)


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host


def _safe_next(value: str | None) -> str:
    """A local path to go back to after sign-in (never another site: ``//host``, ``\\host``, a scheme)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _start_session(**values: Any) -> None:
    session.clear()
    session.permanent = True
    session.update(issued=time.time(), csrf=secrets.token_urlsafe(32), **values)


def install(server: Flask, guard: Guard) -> None:
    """Guard every route of ``server`` and add ``/login`` and ``/logout``."""
    server.secret_key = secret_key()
    server.config.update(
        SESSION_COOKIE_NAME="qst_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=guard.secure_cookies,
        PERMANENT_SESSION_LIFETIME=SESSION_IDLE,
        SESSION_REFRESH_EACH_REQUEST=True,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    server.extensions["qst_guard"] = guard

    @server.before_request
    def authenticate() -> Any:
        if request.method in UNSAFE and not _same_origin():
            return _refuse(guard, 403, "跨站请求被拒绝 / cross-site request refused", "origin")
        if request.path in PUBLIC:
            return None
        access = guard.access()
        if access is None:
            if request.method == "GET" and not request.path.startswith(("/_dash", "/assets")):
                return flask.redirect("/login?" + urlencode({"next": request.full_path.rstrip("?")}))
            return flask.Response(
                "未登录或会话已过期，请刷新页面重新登录 / sign in first", 401, mimetype="text/plain"
            )
        g.access = access
        if request.method in UNSAFE and not _csrf_ok():
            return _refuse(
                guard, 403, "缺少或错误的 CSRF 令牌，请刷新页面 / CSRF token missing or wrong", "csrf"
            )
        return None

    @server.after_request
    def headers(response: flask.Response) -> flask.Response:
        security_headers(response, guard.csp)
        token = session.get("csrf")
        if token and request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(
                CSRF_COOKIE, str(token), samesite="Strict", secure=guard.secure_cookies, httponly=False
            )
        return response

    @server.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "GET":
            token = request.args.get("token")
            if token and guard.local_token and hmac.compare_digest(token, guard.local_token):
                _start_session(user=LOCAL_USER, local=_digest(guard.local_token))
                guard.record("sign_in", Access(LOCAL_USER, "leader"), how="本机令牌")
                return flask.redirect("/")
            if token:
                guard.record("sign_in_failed", None, user="", reason="令牌错误")
                return _login_page(guard, "登录链接无效或已过期", 403)
            return _login_page(guard)
        if not _csrf_ok():
            return _login_page(guard, "页面已过期，请重新登录", 400)
        name = request.form.get("username", "").strip()[:64]
        password = request.form.get("password", "")
        now = time.time()
        if guard._address_blocked(now):
            guard.record("sign_in_failed", None, user=name, reason="地址尝试次数过多")
            return _login_page(guard, "此地址登录失败次数过多，请稍后再试", 429)
        outcome = guard.store.verify(name, password, now)
        if outcome.user is None:
            guard._address_failed(now)
            guard.record("sign_in_failed", None, user=name, reason=outcome.why)
            message = {
                "locked": f"连续失败{MAX_FAILURES}次，账户已锁定{LOCK_SECONDS // 60}分钟",
                "disabled": "账户已停用，请联系管理员",
            }.get(outcome.why, "用户名或密码错误")
            return _login_page(guard, message, 401)
        user = outcome.user
        _start_session(user=user.name, epoch=user.epoch)
        guard.record("sign_in", Access(user.name, user.role))
        return flask.redirect(_safe_next(request.form.get("next")))

    @server.route("/logout", methods=["POST"])
    def logout() -> Any:
        guard.record("sign_out")
        session.clear()
        return flask.redirect("/login")


def _refuse(guard: Guard, status: int, message: str, reason: str) -> flask.Response:
    access = getattr(g, "access", None)
    guard.record("denied", access, reason=reason, path=request.path)
    return flask.Response(message, status, mimetype="text/plain")


def security_headers(response: flask.Response, csp: str) -> flask.Response:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    if not request.path.startswith(STATIC_PREFIXES):
        response.headers["Cache-Control"] = "no-store"
    return response


_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>全视通 · 登录</title>
<style>
body{{margin:0;font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;
background:#0f2a4a;color:#1d2733;display:flex;min-height:100vh;align-items:center;justify-content:center}}
form{{background:#fff;padding:28px 32px;border-radius:8px;width:min(340px,86vw);box-shadow:0 4px 20px #0005}}
h1{{margin:0 0 4px;font-size:22px}} .sub{{color:#5d6b7a;margin-bottom:18px;font-size:13px}}
label{{display:block;margin:12px 0 4px;font-size:13px;color:#5d6b7a}}
input[type=text],input[type=password]{{width:100%;box-sizing:border-box;padding:8px;font-size:15px;
border:1px solid #c5ced8;border-radius:4px}}
button{{margin-top:18px;width:100%;padding:9px;font-size:15px;background:#1f5fa8;color:#fff;border:0;
border-radius:4px;cursor:pointer}} .error{{background:#fdecea;color:#b71c1c;padding:8px;border-radius:4px;
font-size:13px}} .hint{{color:#5d6b7a;font-size:12px;margin-top:14px}}
</style></head><body>
<form method="post" action="/login" id="login-form">
<h1>全视通</h1><div class="sub">城市决策驾驶舱 · 请登录</div>
{error}
<input type="hidden" name="csrf_token" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label for="username">用户名</label><input type="text" id="username" name="username" autocomplete="username"
 maxlength="64" required autofocus>
<label for="password">密码</label><input type="password" id="password" name="password"
 autocomplete="current-password" required>
<button type="submit" id="login-submit">登录</button>
{hint}
</form></body></html>"""


def _login_page(guard: Guard, error: str = "", status: int = 200) -> flask.Response:
    hint = ""
    if not guard.store.has_users():
        hint = (
            "请使用启动时终端显示的本机登录链接。"
            if guard.local_token
            else "尚未配置用户：请管理员运行 qst dashboard users add 新增用户。"
        )
    page = _PAGE.format(
        error=f'<div class="error" id="login-error">{html.escape(error)}</div>' if error else "",
        csrf=html.escape(csrf_token()),
        next=html.escape(_safe_next(request.values.get("next"))),
        hint=f'<div class="hint">{html.escape(hint)}</div>' if hint else "",
    )
    return flask.Response(page, status, mimetype="text/html")


def access_or_none() -> Access | None:
    """The signed-in user of the request being served, if any."""
    return getattr(g, "access", None) if flask.has_request_context() else None


def current_access() -> Access:
    """The signed-in user of the request being served (the guard set it before Dash ran)."""
    access = getattr(g, "access", None)
    if access is None:
        raise PermissionError("no signed-in user in this request")
    return access


def record(action: str, **what: Any) -> None:
    """Append an entry for the current request's user to the audit log."""
    guard: Guard = flask.current_app.extensions["qst_guard"]
    guard.record(action, **what)
