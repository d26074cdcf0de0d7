"""Where Quanshitong keeps its data and finds its ``sources.yaml``.

* ``QST_HOME`` -- the data folder (default ``./data``, relative to the current directory).
* ``QST_STAGING_SPECS`` -- a folder of staging specs (``stg_<department>__<asset>.yaml``) to use instead of
  the shipped ``models/staging/specs`` (a deployment keeps its own beside its ``sources.yaml``).
* ``QST_EXPORTS`` -- the bureaus' entitlements (``exports.yaml``).  When unset: ``<home>/exports.yaml`` if
  that file exists, else the example ``exports.yaml`` at the repository root.
* ``QST_SOURCES`` -- the ``sources.yaml`` to load.  When unset: ``<home>/estate/sources.yaml`` if that
  file exists (the estate the simulator wrote), else the example ``sources.yaml`` at the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["LAYERS", "REPO_ROOT", "exports_path", "quanshitong_home", "sources_path", "staging_specs_folder"]

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


def sources_path() -> Path:
    """The ``sources.yaml`` to load (absolute; it is not checked to exist when ``QST_SOURCES`` is set)."""
    explicit = _env_path("QST_SOURCES")
    if explicit is not None:
        return explicit
    estate = quanshitong_home() / "estate" / "sources.yaml"
    if estate.is_file():
        return estate
    return REPO_ROOT / "sources.yaml"


def exports_path(home: Path | None = None) -> Path:
    """The ``exports.yaml`` to load: ``$QST_EXPORTS``, else ``<home>/exports.yaml``, else the repository's."""
    explicit = _env_path("QST_EXPORTS")
    if explicit is not None:
        return explicit
    local = (home or quanshitong_home()) / "exports.yaml"
    return local if local.is_file() else REPO_ROOT / "exports.yaml"


def staging_specs_folder() -> Path | None:
    """``$QST_STAGING_SPECS``, or None for the shipped ``models/staging/specs``."""
    return _env_path("QST_STAGING_SPECS")
