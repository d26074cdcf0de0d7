"""`qst marts`: rebuild the analysts' DuckDB file (HOME/marts.duckdb) from the lake, now or as of an earlier day.

Thin: options in, :func:`models.marts.build.build_marts` does the work (the nightly run does the same through
the ``marts`` asset of :mod:`pipelines.marts`). Why a command as well: an audit question ("what did we know on
the 3rd?") is answered by rebuilding the marts as of that day into another folder, without touching tonight's.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import click

from lake.layout import lake_root


def _versions(values: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        name, sep, version = value.partition("=")
        if not sep or not version.strip().isdigit():
            raise click.BadParameter(
                f"{value!r}: expected TABLE=VERSION, e.g. gold/dim_enterprise=3", param_hint="--as-of-version"
            )
        out[name.strip()] = int(version)
    return out


@click.command("marts")
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="QST_HOME",
    default="data",
    show_default=True,
    help="The data folder whose lake to read (also $QST_HOME).",
)
@click.option(
    "--as-of-date",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    metavar="YYYY-MM-DD",
    help="Build from each lake table as it stood at the end of this day (the city's time zone).",
)
@click.option(
    "--as-of-version",
    "as_of_versions",
    multiple=True,
    metavar="TABLE=VERSION",
    help="Pin a lake table to a Delta version, e.g. gold/dim_enterprise=3 (repeatable; wins over "
    "--as-of-date).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write the marts (and their data dictionary) under this folder instead of HOME, so an audit "
    "rebuild leaves tonight's marts alone.",
)
@click.option("--memory-limit", default=None, metavar="SIZE", help="DuckDB's memory limit, e.g. 6GB.")
def marts(
    home: Path,
    as_of_date: dt.datetime | None,
    as_of_versions: tuple[str, ...],
    out: Path | None,
    memory_limit: str | None,
) -> None:
    """Build every mart into a new DuckDB file and replace HOME/marts.duckdb with it atomically (open analyst
    sessions keep reading the old file). Prints the time and rows of each mart."""
    from models.marts.build import build_marts, describe

    versions = _versions(as_of_versions)
    target = home
    if out is not None:
        # the build writes beside the lake it reads; an audit build reads HOME's lake through a link (a lake
        # declared in platform.yaml -- another folder, an object store -- is the same for both: no link)
        out.mkdir(parents=True, exist_ok=True)
        lake = lake_root(home)
        if isinstance(lake, Path) and lake == home / "lake":
            link = out / "lake"
            if not link.exists():
                link.symlink_to(lake.resolve(), target_is_directory=True)
            elif link.resolve() != lake.resolve():
                raise click.ClickException(f"{link} exists and is not {lake}; choose another --out")
        target = out
    try:
        report = build_marts(
            target,
            as_of_versions=versions or None,
            as_of_date=as_of_date.date() if as_of_date else None,
            memory_limit=memory_limit,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(describe(report))
    if shutil.which("duckdb") is None:
        click.echo(
            f"query it: .venv/bin/python -c \"import duckdb; duckdb.connect('{report.path}', read_only=True)\""
        )
    else:
        click.echo(f"query it: duckdb -readonly {report.path}")
