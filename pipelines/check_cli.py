"""`qst check`: lint the deployment (sources.yaml, specs/, crosswalks/, exports.yaml) against its sources.

Thin: the checks are :func:`quality.deployment_check.check_deployment`. Why a command: a new city's defects used to
surface 1.5 minutes into a night inside a traceback; this finds them all at once, in seconds, before any data
moves. ``qst run`` runs the same check first (:func:`check_before_run`) unless ``--skip-check``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

__all__ = ["SKIP_CHECK_OPTION", "check", "check_before_run"]

#: ``qst run --skip-check``: the run's own option, defined here beside the check it skips.
SKIP_CHECK_OPTION = click.option(
    "--skip-check",
    is_flag=True,
    help="Do not run `qst check` first (by default a deployment with errors stops before any data moves).",
)


def _paths(config_path: Path | None, home: Path) -> tuple[Path, Path, Path]:
    """sources.yaml, specs/ and exports.yaml as `qst run` resolves them (pipelines.home)."""
    from pipelines.home import exports_path, sources_path, staging_specs_folder

    if config_path is None:
        os.environ.setdefault("QST_HOME", str(home))
        config_path = sources_path()
    return config_path, staging_specs_folder(), exports_path()


def _report(config_path: Path | None, home: Path):
    from quality.deployment_check import check_deployment

    sources, specs, exports = _paths(config_path, home)
    return check_deployment(sources, specs, exports), sources


@click.command("check")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The sources.yaml to check (default: as `qst run`: $QST_SOURCES, else the deployment's; without a "
    "deployment declared, HOME/estate/sources.yaml when the simulator wrote one).",
)
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="QST_HOME",
    default="data",
    show_default=True,
    help="The data folder (only to find HOME/estate/sources.yaml, as `qst run` does; also $QST_HOME).",
)
def check(config_path: Path | None, home: Path) -> None:
    """Check a deployment before any data moves, and report every problem at once: each spec against its
    source table's columns, every code value of the sources against the crosswalks (printing the CSV rows to
    add), incremental cursors stored as text, the event-type vocabulary, and exports.yaml against the marts'
    contract. Reads the sources (column lists, the distinct values of code columns), never writes. Exits 1 on any
    error; warnings and notes do not fail."""
    from quality.deployment_check import iter_lines

    started = time.perf_counter()
    report, sources = _report(config_path, home)
    click.echo(f"checking the deployment of {sources} ...")
    for line in iter_lines(report):
        click.echo(line)
    click.echo(f"checked in {time.perf_counter() - started:.1f}s")
    if not report.ok:
        sys.exit(1)


def check_before_run(config_path: Path | None, home: Path) -> None:
    """`qst run`'s first step: the errors and warnings of `qst check`; on errors a usage error (exit 2, as every
    mistake of the user's: a bad date, an unknown asset, a missing file), so a night with a broken deployment
    stops before it extracts anything and cron tells it from a failed night (exit 1)."""
    started = time.perf_counter()
    report, _ = _report(config_path, home)
    for f in report.findings:
        if f.severity != "note":
            click.echo(str(f))
    click.echo(f"qst check: {report.summary()} ({time.perf_counter() - started:.1f}s)")
    if not report.ok:
        error = click.ClickException(
            "the deployment has errors (above): nothing was run. Fix them (qst check shows every one), or "
            "run with --skip-check"
        )
        error.exit_code = 2
        raise error
