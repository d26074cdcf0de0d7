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
from pipelines.check_cli import check
from pipelines.cli_options import HOME_OPTION

DEMO_ENTERPRISES = 3_000


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
    from pipelines.run_cli import print_scorecard, run_night
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
    outcome = run_night(estate / "sources.yaml", home, state.as_of, [])
    print_scorecard(home, state.as_of)
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
        "然后在浏览器打开它显示的本机一次性登录链接 (it prints a one-time sign-in link for this machine; "
        f"add users with .venv/bin/qst dashboard users add NAME --role leader --home {home})"
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
    from pipelines.run_cli import run
    from pipelines.worker_cli import worker

    for command in (
        run,
        er_train,
        marts,
        export,
        verify_export,
        dashboard,
        check,
        review,
        recast_cursor,
        worker,
    ):
        main.add_command(command)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
