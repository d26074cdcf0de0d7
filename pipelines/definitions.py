"""The Dagster code location of Quanshitong (loaded by ``workspace.yaml``).

``defs`` is built from the ``sources.yaml`` chosen by :func:`pipelines.home.sources_path`
(``QST_SOURCES``, else ``$QST_HOME/estate/sources.yaml``, else the repository's ``sources.yaml``).
A missing or invalid file raises :class:`SourcesLoadError` naming the file, so
``dagster definitions validate`` fails loudly instead of showing an empty asset graph.
To build definitions for another configuration (tests, ``qst run``), use :mod:`pipelines.assemble`.
"""

from __future__ import annotations

from pipelines.assemble import load_definitions
from pipelines.home import sources_path

defs = load_definitions(sources_path())
