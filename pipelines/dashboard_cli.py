"""`qst dashboard`: serve the 全视通 decision dashboard over the marts file of a home folder, and manage who may
sign in to it (`qst dashboard users add|disable|enable|passwd|list`) and check its audit log (`qst dashboard
audit verify`).

Thin: it resolves the home folder, builds the app (:func:`dashboard.app.create_app`) and serves it; users,
roles and the audit log are :mod:`dashboard.auth` and :mod:`dashboard.audit`.
The server is uvicorn (already installed with the Dagster webserver) running the Flask app through its WSGI
interface with worker threads, so several duty officers can use it at once; when uvicorn is missing, Flask's
own threaded server (fine for one user, not a production server). ``--debug`` uses Flask's server with Dash's
dev tools and hot reload, on a loopback address only (it would otherwise serve the Werkzeug debugger to the
network). The marts file is opened read-only and reopened when the nightly build replaces it: no restart is
needed after a night.

Sign-in: on a network address the server refuses to start until a user exists; on a loopback address without
users (the demo) it prints a one-time sign-in link of this process (a random token, never stored) that signs in
as the local leader, as Jupyter does.
"""

from __future__ import annotations

import getpass
import ipaddress
import secrets
import sys
import warnings
from pathlib import Path

import click

HOME = click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Home folder holding marts.duckdb and dashboard/ (default: $QST_HOME or ./data).",
)


def _home(home: Path | None) -> Path:
    from pipelines.home import quanshitong_home

    return (home or quanshitong_home()).resolve()


def is_loopback(host: str) -> bool:
    """Whether ``host`` only answers this machine (0.0.0.0 and :: answer every network, a name is not trusted)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.group("dashboard", invoke_without_command=True)
@HOME
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 to serve the city network: users must exist).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8050, show_default=True)
@click.option(
    "--debug", is_flag=True, help="Dash dev tools and hot reload (Flask's development server; loopback only)."
)
@click.option(
    "--tls-proxy",
    is_flag=True,
    help="Served behind an HTTPS reverse proxy: Secure cookies, client address from X-Forwarded-For.",
)
@click.pass_context
def dashboard(
    ctx: click.Context, home: Path | None, host: str, port: int, debug: bool, tls_proxy: bool
) -> None:
    """Serve the 全视通 decision dashboard (read-only on HOME/marts.duckdb, sign-in required) and print its URL."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = home
        return
    from dashboard.app import create_app
    from dashboard.auth import UserStore
    from dashboard.data import MARTS_FILE
    from dashboard.security import ConfigurationError
    from lake.layout import dashboard_users_path

    home = _home(home)
    loopback = is_loopback(host)
    if debug and not loopback:
        raise click.UsageError(
            f"--debug 只能在本机地址上使用（{host} 不是）：调试模式会把 Werkzeug 调试器暴露给网络 / --debug serves "
            "the Werkzeug debugger, which runs code for whoever reaches it: loopback addresses only"
        )
    store = UserStore(dashboard_users_path(home))
    if not loopback and not store.has_users():
        raise click.UsageError(
            f"拒绝在网络地址 {host} 上提供服务：尚未配置任何用户，任何人都能看到全部企业档案。请先新增用户：\n"
            f"  qst dashboard users add <用户名> --role leader --home {home}\n"
            f"refusing to serve {host} with no users in {store.path}: anyone reaching the port would see every "
            "enterprise's file. Add a user first (above), or serve 127.0.0.1."
        )
    if not (home / MARTS_FILE).is_file():
        click.echo(
            f"注意 / note: {home / MARTS_FILE} does not exist yet; the pages will say so until the marts "
            "are built.",
            err=True,
        )
    token = None if store.has_users() else secrets.token_urlsafe(24)
    try:
        app = create_app(home, users=store, local_token=token, behind_tls_proxy=tls_proxy)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/"
    click.echo(f"全视通 dashboard: open {url} in a browser (marts: {home / MARTS_FILE}); Ctrl+C to stop.")
    if token:
        click.echo(
            "尚未配置用户：本机一次性登录链接（仅本进程有效，重启后失效）/ no users yet: this process's one-time "
            f"sign-in link for this machine:\n  {url}login?token={token}\n"
            f"新增用户 / add users: qst dashboard users add <name> --role leader --home {home}"
        )
    elif not loopback and not tls_proxy:
        click.echo(
            "注意 / note: served over plain HTTP on a network address; put an HTTPS reverse proxy in front "
            "and pass --tls-proxy so that session cookies are Secure.",
            err=True,
        )
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    try:
        import uvicorn
    except ImportError:
        click.echo("uvicorn is not installed: serving with Flask's development server.", err=True)
        app.run(host=host, port=port, debug=False, threaded=True)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # uvicorn's WSGI interface is marked deprecated
        uvicorn.run(app.server, host=host, port=port, interface="wsgi", log_level="warning")


# ------------------------------------------------------------------------------------------------------------
# users
# ------------------------------------------------------------------------------------------------------------
def _store_and_audit(ctx: click.Context, home: Path | None):
    from dashboard.audit import AuditLog
    from dashboard.auth import UserStore
    from lake.layout import dashboard_audit_path, dashboard_users_path

    home = _home(home or ctx.obj)
    return home, UserStore(dashboard_users_path(home)), AuditLog(dashboard_audit_path(home))


def _admin_entry(audit, action: str, **what) -> None:
    audit.append(action, user=getpass.getuser(), role="admin", remote="cli", **what)


def _read_password(from_stdin: bool) -> str:
    """From a hidden prompt (typed twice), or one line of standard input: never from an option, which the shell
    history and the process list would keep."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("密码 / password", hide_input=True, confirmation_prompt=True)


def _divisions(home: Path, given: tuple[str, ...]) -> tuple[str, ...]:
    """Division codes from codes or district names, checked against the marts' enterprises (the city's own
    districts) when the marts exist."""
    from dashboard.data import Marts, MartsUnavailableError, districts_of

    try:
        known = districts_of(Marts(home))
    except MartsUnavailableError:
        known = {}
    by_name = {name: code for code, name in known.items()}
    out = []
    for value in given:
        code = by_name.get(value, value)
        if known and code not in known:
            raise click.UsageError(
                f"区县 {value!r} 不在集市的区县中（{', '.join(f'{c} {n}' for c, n in known.items())}） / "
                "not a district of the marts"
            )
        out.append(code)
    return tuple(out)


@dashboard.group("users")
def users() -> None:
    """Who may sign in: roles leader (领导, whole city), district (区县专员, --district), analyst (分析员)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["leader", "district", "analyst"]), required=True)
@click.option(
    "--district",
    "districts",
    multiple=True,
    help="A district granted (division code or name in the marts); repeat for several.",
)
@click.option("--display-name", default="", help="The name shown in the header (e.g. 张三).")
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of standard input.")
@HOME
@click.pass_context
def users_add(
    ctx: click.Context,
    name: str,
    role: str,
    districts: tuple[str, ...],
    display_name: str,
    password_stdin: bool,
    home: Path | None,
) -> None:
    """Add a user (the password is asked for, never given as an option)."""
    from dashboard.auth import UserError

    home, store, audit = _store_and_audit(ctx, home)
    codes = _divisions(home, districts)
    try:
        user = store.add(name, role, _read_password(password_stdin), codes, display_name)
    except UserError as exc:
        raise click.UsageError(str(exc)) from exc
    _admin_entry(audit, "user_added", name=user.name, granted_role=user.role, districts=list(user.divisions))
    click.echo(
        f"已新增 {user.name}（{user.role_zh}{'：' + '、'.join(user.divisions) if user.divisions else ''}）"
    )


def _set_disabled(ctx: click.Context, name: str, home: Path | None, disabled: bool) -> None:
    from dashboard.auth import UserError

    _, store, audit = _store_and_audit(ctx, home)
    try:
        store.set_disabled(name, disabled)
    except UserError as exc:
        raise click.UsageError(str(exc)) from exc
    _admin_entry(audit, "user_disabled" if disabled else "user_enabled", name=name)
    click.echo(f"{name}：{'已停用（其会话立即失效）' if disabled else '已启用'}")


@users.command("disable")
@click.argument("name")
@HOME
@click.pass_context
def users_disable(ctx: click.Context, name: str, home: Path | None) -> None:
    """Disable a user: their sessions end at their next request."""
    _set_disabled(ctx, name, home, True)


@users.command("enable")
@click.argument("name")
@HOME
@click.pass_context
def users_enable(ctx: click.Context, name: str, home: Path | None) -> None:
    """Enable a disabled user again."""
    _set_disabled(ctx, name, home, False)


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of standard input.")
@HOME
@click.pass_context
def users_passwd(ctx: click.Context, name: str, password_stdin: bool, home: Path | None) -> None:
    """Set a new password (ends the user's sessions and lifts a lock-out)."""
    from dashboard.auth import UserError

    _, store, audit = _store_and_audit(ctx, home)
    try:
        store.set_password(name, _read_password(password_stdin))
    except UserError as exc:
        raise click.UsageError(str(exc)) from exc
    _admin_entry(audit, "password_set", name=name)
    click.echo(f"{name}：密码已更新")


@users.command("list")
@HOME
@click.pass_context
def users_list(ctx: click.Context, home: Path | None) -> None:
    """The users, their roles, districts and state (never a hash)."""
    import time

    _, store, _ = _store_and_audit(ctx, home)
    rows = store.list()
    if not rows:
        click.echo(f"没有用户 / no users in {store.path}")
        return
    now = time.time()
    for u in rows:
        state = "停用" if u.disabled else ("锁定" if u.locked_until and u.locked_until > now else "正常")
        districts = "、".join(u.divisions) or "全市"
        click.echo(f"{u.name}\t{u.display_name}\t{u.role}（{u.role_zh}）\t{districts}\t{state}")


# ------------------------------------------------------------------------------------------------------------
# audit
# ------------------------------------------------------------------------------------------------------------
@dashboard.group("audit")
def audit_group() -> None:
    """The dashboard's audit log (HOME/dashboard/audit.jsonl)."""


@audit_group.command("verify")
@HOME
@click.pass_context
def audit_verify(ctx: click.Context, home: Path | None) -> None:
    """Check the log's hash chain; print the entries and the hash of the last one (keep it elsewhere)."""
    from dashboard.audit import verify

    _, _, audit = _store_and_audit(ctx, home)
    checked = verify(audit.path)
    if not checked.ok:
        click.echo(f"审计日志校验失败 / audit log broken: {checked.problem} ({audit.path})", err=True)
        sys.exit(1)
    click.echo(f"审计日志完好 / audit log intact: {checked.entries} entries, last hash {checked.head}")


main = dashboard

if __name__ == "__main__":
    dashboard()
