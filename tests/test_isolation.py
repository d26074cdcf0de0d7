"""Heavy steps in fresh child processes (pipelines/isolation.py): the result or the error comes back as if called
here, and the step's own peak memory is measured -- not the parent's size, which a spawned child inherits in
``ru_maxrss``."""

from __future__ import annotations

import pytest

from pipelines.isolation import run_isolated, run_measured
from tests.isolation_helpers import fail, hold


def test_a_step_reports_its_own_peak_memory_not_its_parents() -> None:
    ballast = bytearray(600 * 1024 * 1024)  # the parent holds 600 MB while the child runs
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    small, small_peak = run_measured(hold, 10)
    big, big_peak = run_measured(hold, 400)
    assert small == 10 * 1024 * 1024 and big == 400 * 1024 * 1024
    assert big_peak >= 400  # the 400 MB it held, at least
    assert small_peak < 400  # a child of a 600 MB parent that held 10 MB
    assert big_peak - small_peak > 300
    del ballast


def test_an_error_in_the_child_is_raised_here() -> None:
    with pytest.raises(ValueError, match="bad night"):
        run_isolated(fail, "bad night")
