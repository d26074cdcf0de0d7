"""`qst`: the Quanshitong command line.

Thin on purpose: each command parses its options and calls a plain function (simulator/, connectors/,
models/, quality/) or materializes Dagster assets; no rule lives here.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from connectors.config_schema import redact_url
from lake.deployment import DEPLOYMENT_ENV
from lake.layout import (
    data_dictionary_path,
    data_docs_path,
    exports_root,
    lake_root,
    marts_path,
    scorecard_path,
)
from pipelines.check_cli import SKIP_CHECK_OPTION, check, check_before_run
from pipelines.cli_options import HOME_OPTION
from pipelines.home import LAYERS

if TYPE_CHECKING:  # the runner imports Dagster: the CLI loads it only for the commands that run
    from pipelines.runner import AssetOutcome

DEMO_ENTERPRISES = 3_000


def _night(value: str | None) -> str | None:
    """``--date``: a night that exists, or one line and exit code 2 (not a Dagster traceback)."""
    if value is None:
        return None
    from pipelines.runner import check_partition

    try:
        return check_partition(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--date'") from None


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key or not value:
            raise click.BadParameter(f"{v!r}: expected {what}", param_hint=f"--{what.split('=')[0].lower()}")
        out[key.strip()] = value.strip()
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="quanshitong", prog_name="qst")
@click.option(
    "--deployment",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="The city's deployment folder: sources.yaml, specs/, crosswalks/, exports.yaml, trained/ "
    "(also $QST_DEPLOYMENT; default: the example deployment deployments/simcity). See docs/onboarding.md.",
)
def main(deployment: Path | None) -> None:
    """Quanshitong (全视通): pull every department's legacy database into one lake, resolve who is who,
    and serve marts, dashboards and bureau exports.

    Start with `qst demo`; see README.md for the whole tour."""
    if deployment is not None:
        # through the environment, so the steps the night runs in child processes see it too
        os.environ[DEPLOYMENT_ENV] = str(deployment.resolve())


@main.command()
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder of the estate: one SQLite file per department, file drops, truth, sources.yaml.",
)
@click.option(
    "--enterprises",
    type=click.IntRange(min=1),
    default=None,
    help="How many enterprises the city has (about 15 source records each; 3,000,000 gives a "
    "Shenzhen-sized estate of ~45 million records). Required unless --advance-days.",
)
@click.option(
    "--seed",
    type=int,
    default=42,
    show_default=True,
    help="Random seed: the same seed and options give identical data.",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(["%Y-%m-%d"]),
    default="2026-10-31",
    show_default=True,
    help="The date the estate describes (the last day anything happened).",
)
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="DEPT=URL",
    help="Put a department in a database instead of a SQLite file, e.g. "
    "--target tax=postgresql+psycopg://postgres@127.0.0.1/test. Repeatable. The URL is "
    "recorded only as an environment variable name (QST_<DEPT>_URL) in sources.yaml; "
    "export it before running the pipeline or --advance-days.",
)
@click.option(
    "--rate",
    "rates",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a messiness rate (0..1), e.g. --rate key_typo=0.02. Repeatable; "
    "`qst simulate --list-rates` shows them all.",
)
@click.option(
    "--advance-days",
    type=click.IntRange(min=1),
    default=None,
    help="Instead of generating: apply this many days of realistic change to the estate in --out "
    "(new registrations, updates with fresh stamps, late arrivals, deletions, "
    "deregistrations, name and representative changes, new filings, cases, penalties).",
)
@click.option("--list-rates", is_flag=True, help="Print the messiness rates and their defaults, then exit.")
@click.option(
    "--city",
    default="simcity",
    show_default=True,
    help="The city's shape (simulator/shapes.py: which departments exist, how their tables, columns, dates, "
    "cursors and keys are written): simcity (the first simulated city) or rivercity (a registry with its "
    "change log, tax, urban management, a housing fund; no environment bureau nor street rosters).",
)
def simulate(
    out: Path,
    enterprises: int | None,
    seed: int,
    as_of: dt.datetime,
    targets: tuple[str, ...],
    rates: tuple[str, ...],
    advance_days: int | None,
    list_rates: bool,
    city: str,
) -> None:
    """Generate a simulated city's legacy estate (departments, file drops, truth), or move it forward.

    Every department keeps its own dialect (pinyin-initial column names, code lists, date formats, null
    markers, key schemes) and the silos disagree as in docs/domain/legacy-estate.md. The truth file
    (DIR/truth/) says which true enterprise or person each source record refers to; the pipeline never
    reads it."""
    import dataclasses

    from simulator.estate import advance as advance_estate
    from simulator.estate import simulate as simulate_estate
    from simulator.mess import MessProfile

    if list_rates:
        for f in dataclasses.fields(MessProfile):
            click.echo(f"{f.name:<26}{f.default}")
        return
    if advance_days is not None:
        if enterprises is not None or targets:
            raise click.UsageError("--advance-days works on an existing estate: drop --enterprises/--target")
        started = time.perf_counter()
        try:
            state = advance_estate(out, advance_days, progress=_echo_err)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        click.echo(
            f"advanced {advance_days} day(s) in {time.perf_counter() - started:.1f}s; "
            f"the estate is now as of {state.as_of}"
        )
        return
    if enterprises is None:
        raise click.UsageError("--enterprises is required (or use --advance-days on an existing estate)")
    try:
        profile = MessProfile.with_overrides({k: float(v) for k, v in _pairs(rates, "NAME=VALUE").items()})
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rate") from None
    target_urls = _pairs(targets, "DEPT=URL")
    for dept, url in target_urls.items():
        _echo_err(f"department {dept} -> {redact_url(url)}")
    started = time.perf_counter()
    try:
        state = simulate_estate(
            out,
            enterprises=enterprises,
            seed=seed,
            as_of=as_of.date(),
            targets=target_urls,
            profile=profile,
            progress=_echo_err,
            city=city,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    seconds = time.perf_counter() - started
    _summary(out, state, seconds)


def _summary(out: Path, state, seconds: float) -> None:
    total = sum(state.rows.values())
    click.echo(
        f"\nSimulated estate in {out} (city {state.city}, {state.enterprises:,} enterprises, seed {state.seed}, "
        f"as of {state.as_of}): {total:,} source records in {seconds:.1f}s "
        f"({total / max(seconds, 1e-9):,.0f} rows/s)"
    )
    for key in sorted(state.rows):
        click.echo(f"  {key:<28}{state.rows[key]:>12,}")
    click.echo(f"  truth:        {out / 'truth'}  (which entity each record is; never read by the pipeline)")
    click.echo(f"  sources.yaml: {out / 'sources.yaml'}")
    if state.targets:
        vars_ = sorted(v.removeprefix("url_env:") for v in state.targets.values())
        click.echo(f"  departments on servers read their URL from: {', '.join(vars_)}")


@main.command()
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
@SKIP_CHECK_OPTION
def run(
    config_path: Path | None,
    home: Path,
    partition: str | None,
    select: tuple[str, ...],
    until: str,
    no_retries: bool,
    skip_check: bool,
) -> None:
    """Run the nightly pipeline in-process (for the demo, cron and tests): every department's tables and
    file drops into bronze, then silver (staging models, quarantine, canonical tables, quality checks), entity
    resolution and golden records (gold), the marts and each bureau's export, with the same assets the Dagster
    UI shows. Exits 1 if anything failed. `qst check` runs first: a deployment with errors stops here."""
    if not skip_check:
        check_before_run(config_path, home)
    outcome = _run(config_path, home, partition, list(select), retries=not no_retries, until=until)
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


def _run(
    config_path: Path | None,
    home: Path,
    partition: str | None,
    select: list[str],
    retries: bool = True,
    until: str = LAYERS[-1],
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
        outcome = run_pipeline(config, home, partition=partition, select=select, retries=retries, until=until)
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


def _print_scorecard(home: Path, day: str) -> None:
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


@main.command()
@HOME_OPTION
@click.option(
    "--enterprises",
    type=click.IntRange(min=100),
    default=DEMO_ENTERPRISES,
    show_default=True,
    help="Size of the demo city.",
)
@click.option("--seed", type=int, default=42, show_default=True)
def demo(home: Path, enterprises: int, seed: int) -> None:
    """Simulate a small city and run the whole night on it -- bronze, silver, quality, entity resolution, the
    marts and the bureau exports -- then say what was produced and how to open the dashboard."""
    import os
    import secrets

    from models.exports.signing import SIGNING_KEY_ENV, new_key_text
    from models.marts.person import PII_KEY_ENV as HMAC_KEY_ENV  # the exports' hmac_key_env too
    from simulator.estate import simulate as simulate_estate

    started = time.perf_counter()
    estate = home / "estate"
    click.echo(f"[1/2] simulating a city of {enterprises:,} enterprises into {estate} ...")
    state = simulate_estate(estate, enterprises=enterprises, seed=seed)
    _summary(estate, state, time.perf_counter() - started)
    if not os.environ.get(HMAC_KEY_ENV):
        # the keyed hashes of the exports and the marts need a secret, which lives only in the environment;
        # the demo makes one up for this process (hashes then differ from run to run), never printed
        os.environ[HMAC_KEY_ENV] = secrets.token_urlsafe(32)
        click.echo(
            f"\n{HMAC_KEY_ENV} is not set: the demo uses a random key for this run (set it to keep the "
            "keyed hashes of IDs stable across runs)"
        )
    if not os.environ.get(SIGNING_KEY_ENV):
        # likewise the key that signs the packages' manifests (a night without one exports nothing)
        os.environ[SIGNING_KEY_ENV] = new_key_text()
        click.echo(
            f"{SIGNING_KEY_ENV} is not set: the demo signs the packages with a random key for this run (each "
            "package carries its public key, public_key.pem)"
        )
    click.echo(
        "\n[2/2] the nightly pipeline: legacy databases and file drops into bronze, standardized into "
        "silver, scored, resolved into one id per enterprise and person (gold), the marts built and each "
        "bureau's export published ..."
    )
    # the night after the simulated city's as-of day: its records are that day's submissions
    outcome = _run(estate / "sources.yaml", home, state.as_of, [])
    _print_scorecard(home, state.as_of)
    click.echo("\nWhat was produced:")
    click.echo(f"  {home / 'estate'}          the simulated departments (SQLite files, file drops, truth)")
    click.echo(
        f"  {lake_root(home) / 'bronze'}     one Delta table per source table: lake/bronze/<department>/<table>"
    )
    click.echo(
        f"  {lake_root(home) / 'silver'}     staging models stg_<department>__<table> and the canonical "
        "int_enterprise_records, int_person_records, int_events, int_service_cases, int_departments"
    )
    click.echo(f"  {lake_root(home) / 'quarantine' / 'rows'}   rows silver could not use, with reasons")
    click.echo(f"  {scorecard_path(home)}   the department scorecard (报送考核)")
    click.echo(
        f"  {lake_root(home) / 'gold'}       entity_crosswalk, entity_id_history, review_queue, dim_enterprise, "
        "dim_person"
    )
    click.echo(
        f"  {marts_path(home)}     the marts (一企一档, 一人一档, 信用风险预警 ...); "
        f"dictionary: {data_dictionary_path(home)}"
    )
    click.echo(f"  {exports_root(home)}          each bureau's package: exports/<bureau>/{state.as_of}")
    click.echo(
        f"  {data_docs_path(home) / 'index.html'}   Great Expectations Data Docs of every silver table"
    )
    click.echo("\nNext:")
    click.echo(
        f"  .venv/bin/qst er-eval --truth {estate} --home {home}   # entity resolution against the truth"
    )
    bureau = example_bureau()
    if bureau is not None:
        click.echo(f"  .venv/bin/qst verify-export {exports_root(home) / bureau / state.as_of}")
    click.echo("  make dagster                       # the Dagster UI at http://127.0.0.1:3000 with this run")
    click.echo(f"  .venv/bin/qst simulate --out {estate} --advance-days 1 && .venv/bin/qst run --home {home}")
    click.echo(f"demo finished in {time.perf_counter() - started:.1f}s")
    click.echo(
        f"\n打开决策驾驶舱 (open the dashboard): .venv/bin/qst dashboard --home {home}，"
        "然后在浏览器打开 http://127.0.0.1:8050/"
    )
    if not outcome.ok:
        sys.exit(1)


def example_bureau() -> str | None:
    """The first bureau of the deployment's ``exports.yaml``, for the demo's example command: a bureau is the
    deployment's, never a name in code (None when the deployment exports nothing or its file is unreadable)."""
    from lake.yamlfile import ConfigError
    from models.exports.entitlements import load_entitlements
    from pipelines.home import exports_path

    try:
        return next(iter(load_entitlements(exports_path()).bureaus), None)
    except (ConfigError, OSError):
        return None


@main.command("er-eval")
@click.option(
    "--truth",
    "truth",
    type=click.Path(path_type=Path, exists=True),
    required=True,
    help="The truth: a simulated estate (or its truth/ folder), or a Parquet file with the columns department, "
    "table, pk, role, entity_type, entity_id (one row per source record and entity it refers to).",
)
@HOME_OPTION
@click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the scores as JSON to this file.",
)
def er_eval(truth: Path, home: Path, json_out: Path | None) -> None:
    """Score tonight's entity resolution (HOME/lake/gold/entity_crosswalk) against a truth: pairwise precision,
    recall and F1, and B-cubed F1, for enterprises and persons. Truth records that reached no crosswalk record
    (quarantined or lost) count against recall and are reported."""
    import json

    from models.gold.evaluation import evaluate_gold

    try:
        result = evaluate_gold(home, truth)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"  {'kind':<12}{'precision':>10}{'recall':>10}{'F1':>10}{'B-cubed F1':>12}{'records':>12}"
        f"{'entities':>10}{'clusters':>10}"
    )
    for kind, s in result.items():
        click.echo(
            f"  {kind:<12}{s['precision']:>10.4f}{s['recall']:>10.4f}{s['f1']:>10.4f}{s['bcubed_f1']:>12.4f}"
            f"{s['records']:>12,}{s['entities']:>10,}{s['clusters']:>10,}"
        )
        if s["records_without_truth"]:
            click.echo(
                f"      {s['records_without_truth']:,} {kind} record(s) have no truth row (not scored)"
            )
        if s["shared_name_only_records"]:
            click.echo(
                f"      {s['shared_name_only_records']:,} {kind} record(s) known by a name other {kind}s bear "
                f"and nothing else: within reach of the evidence, recall <= {s['ceiling_recall']:.4f}, "
                f"F1 <= {s['ceiling_f1']:.4f}"
            )
        if s["truth_missing"]:
            click.echo(
                f"      {s['truth_missing']:,} {kind} truth record(s) reached no crosswalk record "
                "(quarantined or lost): counted against recall"
            )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n")
        click.echo(f"scores written to {json_out}")


def _register_commands() -> None:
    """The commands that live in their own modules (each thin, each importing its work lazily)."""
    from pipelines.bronze_cli import recast_cursor
    from pipelines.dashboard_cli import dashboard
    from pipelines.er_cli import er_train
    from pipelines.export_cli import export, verify_export
    from pipelines.marts_cli import marts
    from pipelines.review_cli import review
    from pipelines.worker_cli import worker

    for command in (er_train, marts, export, verify_export, dashboard, check, review, recast_cursor, worker):
        main.add_command(command)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
