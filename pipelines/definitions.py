"""The Dagster code location of Quanshitong (loaded by ``workspace.yaml``).

``defs`` is built from the ``sources.yaml`` chosen by :func:`pipelines.home.sources_path`
(``QST_SOURCES``, else ``$QST_HOME/estate/sources.yaml``, else the repository's ``sources.yaml``).
A missing or invalid file raises :class:`SourcesLoadError` naming the file, so
``dagster definitions validate`` fails loudly instead of showing an empty asset graph.

Importing this module loads that file; to build definitions for another configuration (tests), use
:func:`build_definitions` / :func:`load_definitions` from :mod:`pipelines.sources`, re-exported here.
"""

from __future__ import annotations

from pipelines.home import sources_path
from pipelines.sources import SourcesLoadError, build_definitions, load_definitions

__all__ = ["SourcesLoadError", "build_definitions", "defs", "load_definitions"]

defs = load_definitions(sources_path())
