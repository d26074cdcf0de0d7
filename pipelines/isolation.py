"""Run a heavy step of the night in a fresh child process, so that its memory goes back to the machine when it ends.

Why: ``qst run`` executes the whole night in one process, and Polars, Arrow and DuckDB each keep the memory they
freed for reuse. On the estate of a million enterprises the resolution, the golden records and the marts each
peak at several GB; in one process those high-water marks add up until the kernel kills the run (measured: 24 GB,
killed, on this 24 GB machine). A child per heavy step holds only its own peak. The Dagster UI's default
multiprocess executor already runs each step in its own process; this makes ``qst run`` (and tests) behave the same.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: Set to 0 to run the heavy steps in the calling process (debugging with breakpoints).
ISOLATE_ENV = "QST_ISOLATE_STEPS"


def run_isolated(fn: Callable[..., T], /, *args, **kwargs) -> T:
    """``fn(*args, **kwargs)`` in a fresh ``spawn`` child; its return value or its exception, as if called here.
    ``fn`` must be importable (a module-level function) and its arguments and result picklable."""
    if os.environ.get(ISOLATE_ENV, "1") == "0":
        return fn(*args, **kwargs)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args, **kwargs).result()
