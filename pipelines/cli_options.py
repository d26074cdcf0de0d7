"""Options shared by the ``qst`` commands that live in several modules."""

from __future__ import annotations

from pathlib import Path

import click

HOME_OPTION = click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="QST_HOME",
    default="data",
    show_default=True,
    help="Where Quanshitong keeps everything: lake/, marts.duckdb, exports/, docs/ (also $QST_HOME).",
)
