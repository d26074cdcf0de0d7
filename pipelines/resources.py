"""Dagster resources: where the lake lives. Connections are not resources: each department's URL is
read from its environment variable at the moment of reading (connectors/config.py), never stored."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines.home import quanshitong_home


class LakeResource(dg.ConfigurableResource):
    """Quanshitong's home folder: the lake at ``home/lake``, marts, exports and docs beside it."""

    home: str = ""

    def home_path(self) -> Path:
        return Path(self.home).resolve() if self.home else quanshitong_home()
