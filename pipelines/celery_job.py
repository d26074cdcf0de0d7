"""The nightly job as the Celery workers rebuild it: a module-level function and the arguments it is called with.

Apart from :mod:`pipelines.celery_night` because it builds the definitions (:mod:`pipelines.assemble`), which
in turn ask that module for the executor.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from lake.platform import platform_settings
from pipelines.assemble import build_definitions
from pipelines.celery_night import PASSED_ENV, night_executor
from pipelines.sources import load_config

__all__ = ["nightly_for_workers", "reconstructable_nightly"]


def nightly_for_workers(
    sources: str, home: str, retries: bool, env: dict[str, str] | None = None
) -> dg.JobDefinition:
    """The nightly job as the submitting process built it, rebuilt in a worker (and in the submitting process
    itself: Dagster reconstructs the job from this function and these arguments). ``env`` sets the deployment's
    path variables of the submitting process first: everything below reads the deployment from there."""
    for name, value in (env or {}).items():
        if name not in PASSED_ENV:
            raise ValueError(
                f"{name} is not a variable the night hands to its workers ({', '.join(PASSED_ENV)})"
            )
        os.environ[name] = value
    settings = platform_settings().execution
    defs = build_definitions(
        load_config(sources), home=Path(home), retries=retries, executor=night_executor(settings)
    )
    return defs.resolve_job_def("nightly")


def reconstructable_nightly(sources: Path, home: Path, retries: bool):
    """The nightly job as a :class:`dagster.ReconstructableJob`: what the Celery executor sends to a worker,
    with the paths this process reads and no secret."""
    env = {name: os.environ[name] for name in PASSED_ENV if os.environ.get(name, "").strip()}
    return dg.build_reconstructable_job(
        __name__,
        nightly_for_workers.__name__,
        reconstructable_kwargs={
            "sources": str(Path(sources).resolve()),
            "home": str(Path(home).resolve()),
            "retries": retries,
            "env": env,
        },
        reconstructor_working_directory=os.getcwd(),
    )
