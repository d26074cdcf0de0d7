"""A deployment: everything one city declares, in one folder.

A city onboards by configuration alone, so what differs between cities lives outside the code, in a folder
found from one setting (``--deployment DIR`` on the command line, ``QST_DEPLOYMENT`` in the environment)::

    <deployment>/
      sources.yaml        the departments' databases and file drops (connectors/config.py: the format)
      specs/*.yaml        one staging spec per source table (models/staging/spec.py: the format)
      crosswalks/*.csv    the departments' code lists -> canonical codes (models/standardize/codes.py)
      exports.yaml        what each bureau receives (models/exports/entitlements.py)
      trained/*.json      the linkage models trained on this city (qst er-train)

Nothing of a deployment is read from inside the packages. Without the setting, the example deployment of
the repository is used: the simulated city the demo and the tests run (``deployments/simcity``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEPLOYMENT_ENV", "EXAMPLE_DEPLOYMENT", "Deployment", "current_deployment"]

#: The environment variable naming the deployment folder (``qst --deployment DIR`` sets it for the run).
DEPLOYMENT_ENV = "QST_DEPLOYMENT"

#: The repository's example deployment: the simulated city.
EXAMPLE_DEPLOYMENT = Path(__file__).resolve().parent.parent / "deployments" / "simcity"


@dataclass(frozen=True)
class Deployment:
    """The paths of one deployment folder; whether each exists is for its reader to say (with the path)."""

    root: Path

    @property
    def sources(self) -> Path:
        return self.root / "sources.yaml"

    @property
    def specs(self) -> Path:
        return self.root / "specs"

    @property
    def crosswalks(self) -> Path:
        return self.root / "crosswalks"

    @property
    def exports(self) -> Path:
        return self.root / "exports.yaml"

    @property
    def trained(self) -> Path:
        return self.root / "trained"

    @property
    def is_example(self) -> bool:
        return self.root == EXAMPLE_DEPLOYMENT


def current_deployment() -> Deployment:
    """The deployment of this process: ``$QST_DEPLOYMENT``, else the example. Read at each call (never cached
    at import), so a command's ``--deployment`` and a test's environment take effect everywhere."""
    value = os.environ.get(DEPLOYMENT_ENV, "").strip()
    if not value:
        return Deployment(EXAMPLE_DEPLOYMENT)
    root = Path(value).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(
            f"{DEPLOYMENT_ENV}={value}: no such folder (a deployment is a folder: sources.yaml, specs/, crosswalks/, exports.yaml, trained/)"
        )
    return Deployment(root)
