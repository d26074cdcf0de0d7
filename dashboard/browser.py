"""Driving headless Chromium against the dashboard: shared by the browser tests and the benchmark.

Why here: both must measure the same thing — a page is *ready* when its frame (``#page-<id>``) is in the DOM,
Dash has no callback in flight, and every chart on it has been drawn by plotly.js with at least one trace
holding data (plotly's own ``_fullData``: the figure's arrays travel base64-encoded, so ``data`` cannot be read). Debian's ``chromium`` and ``chromium-driver`` are used through Selenium (no browser download).
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
    "--lang=zh-CN",
    "--hide-scrollbars",
)

#: JavaScript: resolves with performance.now() once the page ``id`` is ready (see the module docstring), or
#: with -1 after the timeout.
READY_JS = """
const [pageId, minGraphs, timeoutMs, done] = arguments;
const t0 = performance.now();
function graphsReady() {
  const graphs = document.querySelectorAll('.dash-graph');
  if (graphs.length < minGraphs) return false;
  for (const g of graphs) {
    const plot = g.querySelector('.js-plotly-plot');
    if (!plot || !plot._fullLayout || !plot._fullData || !plot.calcdata) return false;
    if (!plot._fullData.some(t => t._length > 0 || (t.z && t.z.length > 0) || (t.values && t.values.length > 0)))
      return false;
  }
  return true;
}
function check() {
  const root = document.getElementById('page-' + pageId);
  const busy = document.querySelector('[data-dash-is-loading="true"]');
  if (root && !busy && graphsReady()) { done(performance.now()); return; }
  if (performance.now() - t0 > timeoutMs) { done(-1); return; }
  requestAnimationFrame(check);
}
check();
"""


def chromium_missing() -> str | None:
    """Why the browser cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f"{path} is not installed (make test installs it as root: scripts/setup_test_env.sh)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (uv sync --group dev)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(home: Path, port: int | None = None, **options: Any) -> Iterator[str]:
    """The dashboard of ``home`` served by werkzeug in a thread; yields its base URL. ``options``: those of
    :func:`dashboard.app.create_app` (``users``, ``audit``, ``local_token`` ...)."""
    import logging

    from werkzeug.serving import make_server

    from dashboard.app import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = port or free_port()
    server = make_server("127.0.0.1", port, create_app(home, **options).server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(5)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Selenium, logging the console and the network (CDP performance log)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="qst-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Visit:
    url: str
    ready_ms: float  # navigation start -> ready; -1 when it never became ready
    console_errors: list[str]
    requested_urls: list[str]


def visit(driver: Any, url: str, page_id: str, *, min_graphs: int = 0, timeout_ms: int = 30_000) -> Visit:
    """Open ``url`` and wait until the page ``page_id`` is ready; the console errors (SEVERE) and every URL the
    page requested since the previous visit."""
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(url)
    ready = driver.execute_async_script(READY_JS, page_id, min_graphs, timeout_ms)
    ready_ms = -1.0 if ready < 0 else float(ready)  # performance.now() counts from navigation start
    errors = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    requested = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            requested.append(msg["params"]["request"]["url"])
    return Visit(url, ready_ms, errors, requested)


def sign_in(driver: Any, base: str, name: str, password: str, *, timeout_s: float = 60) -> bool:
    """Sign in through the sign-in form as a person would (signing out first when someone is signed in); True
    when the dashboard's frame shows the user."""
    driver.delete_all_cookies()
    driver.get(base + "/login")
    driver.find_element("id", "username").send_keys(name)
    driver.find_element("id", "password").send_keys(password)
    driver.find_element("id", "login-submit").click()
    return wait_for(driver, "document.getElementById('who') !== null", timeout_s)


def wait_for(driver: Any, js_condition: str, timeout_s: float = 20) -> bool:
    """Poll a JavaScript boolean expression until it is true."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if driver.execute_script(f"return !!({js_condition});"):
            return True
        time.sleep(0.1)
    return False
