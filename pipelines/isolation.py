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
import resource
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: Set to 0 to run the heavy steps in the calling process (debugging with breakpoints).
ISOLATE_ENV = "QST_ISOLATE_STEPS"


def run_isolated(fn: Callable[..., T], /, *args, **kwargs) -> T:
    """``fn(*args, **kwargs)`` in a fresh ``spawn`` child; its return value or its exception, as if called here.
    ``fn`` must be importable (a module-level function) and its arguments and result picklable."""
    return run_measured(fn, *args, **kwargs)[0]


def _peak_mb() -> float:
    """This process's high-water mark of resident memory, in MB. From the kernel's VmHWM where there is one:
    ``ru_maxrss`` survives ``execve``, so a spawned child would report its parent's size at the fork."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


def _call_measured(fn: Callable[..., T], args: tuple, kwargs: dict) -> tuple[T, float]:
    return fn(*args, **kwargs), _peak_mb()


def run_measured(fn: Callable[..., T], /, *args, **kwargs) -> tuple[T, float]:
    """:func:`run_isolated`, and the step's peak resident memory in MB -- the child's own high-water mark, which
    is what the step needed (the run's output and the asset's metadata say it: issue 17 asks each heavy step's
    memory to be visible). With ``QST_ISOLATE_STEPS=0`` it is the calling process's high-water mark so far."""
    if os.environ.get(ISOLATE_ENV, "1") == "0":
        return _call_measured(fn, args, kwargs)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_call_measured, fn, args, kwargs).result()
