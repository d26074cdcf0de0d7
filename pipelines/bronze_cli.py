"""``recast-cursor``: convert a bronze cursor column stored as text into the type ``sources.yaml`` now declares.

The way out of one schema drift a load refuses (see "Cursors" in :mod:`connectors.config`): a timestamp
cursor held as TEXT in the source was loaded before its ``type`` was declared, so bronze stored text and
no watermark can be computed from it. Bronze is the system of record -- it keeps rows since deleted at the
source and when each row first landed -- so it is converted in place, never replaced by a fresh read:
:func:`connectors.bronze.recast_text_column` does the work, with the reader's own parse for the column
(configured type, department ``source_timezone``), so the next night's re-read compares unchanged.

Run it as ``qst recast-cursor DEPARTMENT ASSET`` (thin: options in, the work
in :mod:`connectors`; registered on the ``qst`` group by ``pipelines.cli``).
"""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.home import quanshitong_home, sources_path


@click.command("recast-cursor")
@click.argument("department")
@click.argument("asset")
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The data folder whose bronze to convert (default $QST_HOME or ./data).",
)
@click.option(
    "--sources",
    "sources_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The sources.yaml declaring the cursor's type (default: the deployment's, or $QST_SOURCES).",
)
def recast_cursor(department: str, asset: str, home: Path | None, sources_file: Path | None) -> None:
    """Convert bronze table DEPARTMENT/ASSET's text timestamp cursor to its declared type, keeping every row."""
    from connectors import bronze
    from connectors.config import load_sources
    from connectors.readers import SourceReadError, planned_cursor
    from lake.layout import bronze_path
    from lake.yamlfile import ConfigError

    home = (home or quanshitong_home()).resolve()
    try:
        config = load_sources(sources_file or sources_path())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    found = [(d, t) for d, t in config.iter_tables() if d.key == department and t.asset == asset]
    if not found:
        raise click.ClickException(f"no table {department}/{asset} in the sources configuration")
    dept, table = found[0]
    if table.mode != "incremental" or table.cursor_kind == "id" or not table.cursor:
        raise click.ClickException(f"{department}/{asset} has no timestamp cursor; nothing to recast")
    try:
        planned, problem = planned_cursor(dept, table)
    except SourceReadError as exc:
        raise click.ClickException(str(exc)) from None
    if problem is not None:
        raise click.ClickException(
            f"department {department!r}, table {table.name!r}, column {table.cursor!r}: {problem}; "
            "declare it first, then recast"
        )
    column = table.output_name(table.cursor)
    zone = dept.effective_timezone(config.defaults).key
    path = bronze_path(home, department, asset)
    try:
        rows = bronze.recast_text_column(path, column, planned.choice, zone=zone)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if rows == 0:
        click.echo(f"{department}/{asset}: {column} is already stored as {planned.arrow_type}; nothing to do")
    else:
        click.echo(
            f"{department}/{asset}: {column} recast to {planned.arrow_type} ({zone}) in {rows} rows, "
            "none lost; the next run loads it again"
        )


if __name__ == "__main__":  # pragma: no cover
    recast_cursor()
