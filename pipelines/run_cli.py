"""`qst run`: one night of the pipeline from the command line, and the table it prints (what each asset did,
its rows, its peak memory, whether it ran incrementally, which worker ran it).

Kept apart from :mod:`pipelines.cli` so that the command, its options and its report read in one sitting; the
demo prints its night through the same :func:`run_night`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lake.layout import lake_root
from pipelines.check_cli import SKIP_CHECK_OPTION, check_before_run
from pipelines.cli_options import HOME_OPTION
from pipelines.home import LAYERS

if TYPE_CHECKING:  # the runner imports Dagster: the CLI loads it only for the commands that run
    from pipelines.runner import AssetOutcome


def _night(value: str | None) -> str | None:
    """``--date``: a night that exists, or one line and exit code 2 (not a Dagster traceback)."""
    if value is None:
        return None
    from pipelines.runner import check_partition

    try:
        return check_partition(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--date'") from None


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The sources.yaml to run (default: $QST_SOURCES, else the deployment's; without a deployment "
    "declared, HOME/estate/sources.yaml when the simulator wrote one).",
)
@HOME_OPTION
@click.option(
    "--date",
    "partition",
    default=None,
    metavar="YYYY-MM-DD",
    callback=lambda _ctx, _param, value: _night(value),
    help="The nightly partition to run (default: the last complete day, 02:00 in the city's time zone).",
)
@click.option(
    "--select",
    multiple=True,
    metavar="DEPT[/ASSET]",
    help="Only these departments or assets of sources.yaml and what depends on them, e.g. "
    "--select DEPT --select DEPT/ASSET.",
)
@click.option(
    "--until",
    type=click.Choice(LAYERS),
    default=LAYERS[-1],
    show_default=True,
    help="The last layer to build: bronze (only extract), silver (staging models and canonical "
    "tables), quality (the scorecard and Data Docs), gold (entity resolution, golden records), "
    "marts (HOME/marts.duckdb), exports (each bureau's package).",
)
@click.option(
    "--no-retries",
    is_flag=True,
    help="Fail at once instead of retrying a failing source with backoff (20s, 40s, 80s).",
)
@click.option(
    "--full",
    is_flag=True,
    help="Rebuild silver from every bronze row tonight, as the weekly full night does "
    "(incremental.full_rebuild_on in platform.yaml), and report the rows an incremental build had left "
    "different. Use it after mending data by hand or to check the incremental nights.",
)
@SKIP_CHECK_OPTION
def run(
    config_path: Path | None,
    home: Path,
    partition: str | None,
    select: tuple[str, ...],
    until: str,
    no_retries: bool,
    full: bool,
    skip_check: bool,
) -> None:
    """Run the nightly pipeline and wait for it: every department's tables and file drops into bronze, then
    silver (staging models, quarantine, canonical tables, quality checks), entity resolution and golden records
    (gold), the marts and each bureau's export, with the same assets the Dagster UI shows. The night runs in this
    process, or on Celery workers when the deployment's platform.yaml says `execution: {mode: celery}` (start
    them with `qst worker`). Prints what each asset did and its peak memory; exits 1 if anything failed.
    `qst check` runs first: a deployment with errors stops here."""
    if not skip_check:
        check_before_run(config_path, home)
    outcome = run_night(
        config_path, home, partition, list(select), retries=not no_retries, until=until, full=full
    )
    if not outcome.ok:
        sys.exit(1)


def _checks(a) -> str:
    from pipelines.silver import WARNING_CHECKS

    return ", ".join(
        f"{k} {'ok' if v else ('WARN' if k in WARNING_CHECKS else 'FAILED')}" for k, v in a.checks.items()
    )


def failed_check_lines(a: AssetOutcome) -> list[str]:
    """Under an asset's row, what each of its failed checks said: for an expectation suite the rules, their
    columns and up to five values that broke them — the asset's name alone does not tell what to fix."""
    return [f"      {name}: {a.notes[name]}" for name, ok in a.checks.items() if not ok and name in a.notes]


def run_night(
    config_path: Path | None,
    home: Path,
    partition: str | None,
    select: list[str],
    retries: bool = True,
    until: str = LAYERS[-1],
    full: bool = False,
):
    import os

    from pipelines.home import sources_path
    from pipelines.runner import run_pipeline
    from pipelines.sources import SourcesLoadError, load_config

    if config_path is None:
        os.environ.setdefault("QST_HOME", str(home))
        config_path = sources_path()
    try:
        config = load_config(config_path)
    except SourcesLoadError as exc:
        raise click.ClickException(str(exc)) from None
    started = time.perf_counter()
    click.echo(f"running the nightly pipeline for {config_path} into {lake_root(home)} ...")
    try:
        outcome = run_pipeline(
            config, home, partition=partition, select=select, retries=retries, until=until, full=full
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(
        f"run {outcome.run_id} (partition {outcome.partition}) in {time.perf_counter() - started:.1f}s"
    )
    bronze = [a for a in outcome.assets if a.key.startswith("bronze/")]
    rest = [a for a in outcome.assets if not a.key.startswith("bronze/")]
    if bronze:
        click.echo(
            f"  {'asset':<44}{'status':<13}{'read':>9}{'new':>9}{'changed':>9}{'deleted':>9}{'bronze':>9}"
            "  checks"
        )
    for a in bronze:
        m = a.metadata
        checks = _checks(a)
        if "files_loaded" in m:  # a file drop
            checks = f"{m['files_loaded']} file(s) loaded, {m['files_quarantined']} quarantined"
        click.echo(
            f"  {a.key:<44}{a.status:<13}{m.get('rows_read', m.get('rows_loaded', '')):>9}"
            f"{m.get('rows_inserted', ''):>9}{m.get('rows_updated', ''):>9}"
            f"{m.get('rows_marked_deleted', ''):>9}{m.get('bronze_live_rows', ''):>9}  {checks}"
        )
        if a.error:
            click.echo(f"      error: {a.error}")
    if rest:
        click.echo(
            f"\n  {'asset':<44}{'status':<13}{'bronze':>9}{'rows':>9}{'quarant.':>9}{'rows/s':>9}"
            f"{'peak MB':>9}  checks"
        )
    for a in rest:
        m = a.metadata
        rows = m.get("silver_rows", m.get("rows", ""))
        # a silver table built incrementally says how many source rows it rebuilt
        changed = m.get("changed_bronze_rows", m.get("changed_source_rows"))
        mode = f"  (incremental: {changed} changed)" if m.get("mode") == "incremental" else ""
        click.echo(
            f"  {a.key:<44}{a.status:<13}{m.get('bronze_live_rows', ''):>9}{rows:>9}"
            f"{m.get('quarantined_rows', ''):>9}{m.get('rows_per_second', ''):>9}"
            f"{m.get('peak_memory_mb', ''):>9}  {_checks(a)}{mode}"
        )
        if a.error:
            click.echo(f"      error: {a.error}")
        # e.g. a golden attribute group no staging spec declares authority for (pipelines/gold.py)
        for warning in m.get("warnings") or []:
            click.echo(f"      warning: {warning}")
        for line in failed_check_lines(a):
            click.echo(line)
    for table in outcome.unstaged:
        click.echo(
            f"  note: bronze/{table} has no staging spec (the deployment's specs/): it is not in silver"
        )
    if outcome.workers:  # the Celery mode: where each step ran
        hosts: dict[str, int] = {}
        for worker in outcome.workers.values():
            hosts[worker] = hosts.get(worker, 0) + 1
        click.echo("  steps by worker: " + ", ".join(f"{w} {n}" for w, n in sorted(hosts.items())))
    failed = [a.key for a in outcome.assets if a.status == "failed"]
    if outcome.warnings:
        click.echo(f"warnings (soft expectations, see the Data Docs): {', '.join(outcome.warnings)}")
    if outcome.ok:
        click.echo("all assets succeeded and every blocking check passed")
    else:
        click.echo(
            f"FAILED assets: {', '.join(failed) or 'none'}; failed checks: "
            f"{', '.join(outcome.failed_checks) or 'none'}"
        )
    return outcome


def print_scorecard(home: Path, day: str) -> None:
    """The department totals of the scorecard for ``day``: what a leader reads first."""
    import datetime as dt

    from quality.scorecard import department_totals, read_scorecard

    card = department_totals(read_scorecard(home), dt.date.fromisoformat(day))
    if card.is_empty():
        return

    def pct(v: float | None) -> str:
        return "   -" if v is None else f"{v * 100:5.1f}%"

    click.echo(f"\n  报送考核 department scorecard for {day} (formula: quality/scorecard.py)")
    click.echo(
        f"  {'department':<12}{'received':>9}{'及时率':>8}{'完整率':>8}{'标识有效':>8}{'隔离率':>8}{'score':>7}  grade"
    )
    for r in card.sort("department").to_dicts():
        score = "" if r["score"] is None else f"{r['score']:.1f}"
        click.echo(
            f"  {r['department']:<12}{r['records_received']:>9,}{pct(r['timeliness_rate']):>10}"
            f"{pct(r['completeness_rate']):>10}{pct(r['valid_identifier_rate']):>10}"
            f"{pct(r['quarantine_rate']):>10}{score:>7}  {r['grade'] or ''}"
        )
