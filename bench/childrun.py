"""Run a bench script again as a child process and measure it: its ``RESULT {json}`` line, wall seconds and the
peak resident memory of the child and its own children (Spark's JVM, DuckDB's threads are in-process), sampled
every 0.1 s. Shared by the benches that compare two engines on the same records, so each runs in a fresh process
and its peak is its own."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rss_tree(proc) -> int:
    """Resident bytes of ``proc`` (a psutil.Process) and all its descendants."""
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


@dataclass
class ChildRun:
    result: dict | None
    seconds: float
    peak_mb: float
    output: str  # every line but the RESULT line


def run_child(script: str, args: list[str], timeout: float, keep=lambda line: True) -> ChildRun:
    """``python script *args`` from the repository root, killed (with its children) after ``timeout`` seconds;
    ``keep`` filters the output lines returned."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, script, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ps = psutil.Process(proc.pid)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            with contextlib.suppress(Exception):  # the process ended between two samples
                peak[0] = max(peak[0], rss_tree(ps))
            time.sleep(0.1)

    threading.Thread(target=sample, daemon=True).start()
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for p in [*ps.children(recursive=True), ps]:
            with contextlib.suppress(psutil.Error):
                p.kill()
        out, _ = proc.communicate()
        out += f"\n(killed after {timeout:.0f}s)"
    done.set()
    result, lines = None, []
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
        elif keep(line):
            lines.append(line)
    return ChildRun(result, time.perf_counter() - started, peak[0] / 2**20, "\n".join(lines))
