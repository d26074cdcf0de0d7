"""Where Quanshitong keeps its data and finds the deployment it runs.

* ``QST_DEPLOYMENT`` (``qst --deployment DIR``) -- the deployment folder: ``sources.yaml``, ``specs/``,
  ``crosswalks/``, ``exports.yaml``, ``trained/`` (:mod:`lake.deployment`). Unset: the example deployment
  ``deployments/simcity`` (the simulated city).
* ``QST_HOME`` -- the data folder (default ``./data``, relative to the current directory).
* ``QST_SOURCES``, ``QST_STAGING_SPECS``, ``QST_EXPORTS`` -- one file or folder of a deployment replaced
  by another (a test, a trial of a new spec). Without ``QST_DEPLOYMENT`` and ``QST_SOURCES``, the
  ``sources.yaml`` the simulator wrote into ``<home>/estate/`` is preferred to the example's (the demo).
"""

from __future__ import annotations

import os
from pathlib import Path

from lake.deployment import DEPLOYMENT_ENV, current_deployment

__all__ = [
    "LAYERS",
    "REPO_ROOT",
    "exports_path",
    "quanshitong_home",
    "sources_path",
    "staging_specs_folder",
]

#: The layers of a night, in order: `qst run --until LAYER` builds the ones up to LAYER.
LAYERS = ("bronze", "silver", "quality", "gold", "marts", "exports")

#: The repository root: the parent of the ``pipelines`` package.
REPO_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else None


def quanshitong_home() -> Path:
    """The data folder: ``$QST_HOME`` or ``./data``, as an absolute path (it need not exist yet)."""
    return _env_path("QST_HOME") or Path("data").resolve()


def _deployment_declared() -> bool:
    return _env_path(DEPLOYMENT_ENV) is not None


def sources_path() -> Path:
    """The ``sources.yaml`` to load (absolute; it is not checked to exist when ``QST_SOURCES`` is set)."""
    explicit = _env_path("QST_SOURCES")
    if explicit is not None:
        return explicit
    if not _deployment_declared():
        estate = quanshitong_home() / "estate" / "sources.yaml"
        if estate.is_file():
            return estate
    return current_deployment().sources


def exports_path(home: Path | None = None) -> Path:
    """The ``exports.yaml`` to load: ``$QST_EXPORTS``, else the deployment's."""
    return _env_path("QST_EXPORTS") or current_deployment().exports


def staging_specs_folder() -> Path:
    """``$QST_STAGING_SPECS``, else the deployment's ``specs/``."""
    return _env_path("QST_STAGING_SPECS") or current_deployment().specs
