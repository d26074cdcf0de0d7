"""The nightly job as the Celery workers rebuild it: a module-level function and the arguments it is called with.

Apart from :mod:`pipelines.celery_night` because it builds the definitions (:mod:`pipelines.assemble`), which
in turn ask that module for the executor.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import dagster as dg

from lake.deployment import current_deployment
from lake.platform import platform_settings
from pipelines.assemble import build_definitions
from pipelines.celery_night import PASSED_ENV, night_executor
from pipelines.sources import load_config

__all__ = ["fingerprint", "nightly_for_workers", "reconstructable_nightly"]


def nightly_for_workers(
    sources: str,
    home: str,
    retries: bool,
    variables: dict[str, str] | None = None,
    deployment: str | None = None,
) -> dg.JobDefinition:
    """The nightly job as the submitting process built it, rebuilt in a worker (and in the submitting process
    itself: Dagster reconstructs the job from this function and these arguments). ``variables`` sets the
    deployment's path variables of the submitting process first: everything below reads the deployment from
    there; ``deployment`` is the submitting process's :func:`fingerprint` of it, checked here."""
    for name, value in (variables or {}).items():
        if name not in PASSED_ENV:
            raise ValueError(
                f"{name} is not a variable the night hands to its workers ({', '.join(PASSED_ENV)})"
            )
        os.environ[name] = value
    seen = fingerprint(Path(sources), variables or {})
    if deployment is not None and seen != deployment:
        raise RuntimeError(
            f"this worker sees another deployment than the machine that submitted the night (sources.yaml "
            f"{sources}, the deployment folder {current_deployment().root}): every machine must read the same "
            "files. Deploy them to this machine too and restart its workers (`qst worker --help`)."
        )
    settings = platform_settings().execution
    defs = build_definitions(
        load_config(sources), home=Path(home), retries=retries, executor=night_executor(settings)
    )
    return defs.resolve_job_def("nightly")


def fingerprint(sources: Path, variables: dict[str, str]) -> str:
    """A digest of what the night's definitions are built from: the sources.yaml, every file of the deployment
    folder and of the folders the path variables name. Shipped with the job, it tells a worker that reads other
    files (a machine not yet deployed to) and makes a changed deployment a new job: Dagster keeps the last
    job a worker built and would otherwise reuse it for the next night."""
    roots = [sources, current_deployment().root, *(Path(value) for value in variables.values())]
    files: set[Path] = set()
    for root in roots:
        if root.is_file():
            files.add(root.resolve())
        elif root.is_dir():
            for folder, _, names in os.walk(root, followlinks=True):
                files.update((Path(folder) / name).resolve() for name in names)
    digest = hashlib.sha256()
    for path in sorted(files):
        if path.is_file():  # a dangling link: nothing to read
            digest.update(f"{path}\0{path.stat().st_size}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def reconstructable_nightly(sources: Path, home: Path, retries: bool):
    """The nightly job as a :class:`dagster.ReconstructableJob`: what the Celery executor sends to a worker,
    with the paths this process reads and no secret."""
    variables = {name: os.environ[name] for name in PASSED_ENV if os.environ.get(name, "").strip()}
    sources = Path(sources).resolve()
    return dg.build_reconstructable_job(
        __name__,
        nightly_for_workers.__name__,
        reconstructable_kwargs={
            "sources": str(sources),
            "home": str(Path(home).resolve()),
            "retries": retries,
            "variables": variables,
            "deployment": fingerprint(sources, variables),
        },
        reconstructor_working_directory=os.getcwd(),
    )
