"""`qst`: the Quanshitong command line.

Thin on purpose: each command parses its options and calls a plain function (simulator/, connectors/,
models/, quality/) or materializes Dagster assets; no rule lives here.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import click

from connectors.config import redact_url

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
def main() -> None:
    """Quanshitong (全视通): pull every department's legacy database into one lake, resolve who is who,
    and serve marts, dashboards and bureau exports.

    Start with `qst demo`; see README.md for the whole tour."""


@main.command()
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder of the estate: one SQLite file per department, file drops, truth, sources.yaml.")
@click.option("--enterprises", type=click.IntRange(min=1), default=None,
              help="How many enterprises the city has (about 15 source records each; 3,000,000 gives a "
                   "Shenzhen-sized estate of ~45 million records). Required unless --advance-days.")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Random seed: the same seed and options give identical data.")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default="2026-10-31", show_default=True,
              help="The date the estate describes (the last day anything happened).")
@click.option("--target", "targets", multiple=True, metavar="DEPT=URL",
              help="Put a department in a database instead of a SQLite file, e.g. "
                   "--target tax=postgresql+psycopg://postgres@127.0.0.1/test. Repeatable. The URL is "
                   "recorded only as an environment variable name (QST_<DEPT>_URL) in sources.yaml; "
                   "export it before running the pipeline or --advance-days.")
@click.option("--rate", "rates", multiple=True, metavar="NAME=VALUE",
              help="Override a messiness rate (0..1), e.g. --rate key_typo=0.02. Repeatable; "
                   "`qst simulate --list-rates` shows them all.")
@click.option("--advance-days", type=click.IntRange(min=1), default=None,
              help="Instead of generating: apply this many days of realistic change to the estate in --out "
                   "(new registrations, updates with fresh stamps, late arrivals, deletions, "
                   "deregistrations, name and representative changes, new filings, cases, penalties).")
@click.option("--list-rates", is_flag=True, help="Print the messiness rates and their defaults, then exit.")
def simulate(out: Path, enterprises: int | None, seed: int, as_of: dt.datetime, targets: tuple[str, ...],
             rates: tuple[str, ...], advance_days: int | None, list_rates: bool) -> None:
    """Generate a simulated city's legacy estate (departments, file drops, truth), or move it forward.

    Every department keeps its own dialect (pinyin-initial column names, code lists, date formats, null
    markers, key schemes) and the silos disagree as in shared/domain/legacy-estate.md. The truth file
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
        state = advance_estate(out, advance_days, progress=_echo_err)
        click.echo(f"advanced {advance_days} day(s) in {time.perf_counter() - started:.1f}s; "
                   f"the estate is now as of {state.as_of}")
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
        state = simulate_estate(out, enterprises=enterprises, seed=seed, as_of=as_of.date(),
                                targets=target_urls, profile=profile, progress=_echo_err)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    seconds = time.perf_counter() - started
    _summary(out, state, seconds)


def _summary(out: Path, state, seconds: float) -> None:
    total = sum(state.rows.values())
    click.echo(f"\nSimulated estate in {out} ({state.enterprises:,} enterprises, seed {state.seed}, "
               f"as of {state.as_of}): {total:,} source records in {seconds:.1f}s "
               f"({total / max(seconds, 1e-9):,.0f} rows/s)")
    for key in sorted(state.rows):
        click.echo(f"  {key:<28}{state.rows[key]:>12,}")
    click.echo(f"  truth:        {out / 'truth'}  (which entity each record is; never read by the pipeline)")
    click.echo(f"  sources.yaml: {out / 'sources.yaml'}")
    if state.targets:
        vars_ = sorted(v.removeprefix("url_env:") for v in state.targets.values())
        click.echo(f"  departments on servers read their URL from: {', '.join(vars_)}")


@main.command()
@click.option("--home", type=click.Path(path_type=Path, file_okay=False), envvar="QST_HOME", default="data",
              show_default=True, help="Where Quanshitong keeps everything (also $QST_HOME).")
@click.option("--enterprises", type=click.IntRange(min=100), default=DEMO_ENTERPRISES, show_default=True,
              help="Size of the demo city.")
@click.option("--seed", type=int, default=42, show_default=True)
def demo(home: Path, enterprises: int, seed: int) -> None:
    """Simulate a small city and run everything the pipeline can do so far, then say what was produced."""
    from simulator.estate import simulate as simulate_estate

    started = time.perf_counter()
    estate = home / "estate"
    click.echo(f"[1/1] simulating a city of {enterprises:,} enterprises into {estate} ...")
    state = simulate_estate(estate, enterprises=enterprises, seed=seed)
    _summary(estate, state, time.perf_counter() - started)
    click.echo("\nNext:")
    click.echo("  dagster dev -w workspace.yaml      # the asset graph in the Dagster UI (http://127.0.0.1:3000)")
    click.echo(f"  sqlite3 {estate / 'samr.sqlite'} 'select * from T_SCZT_DJXX limit 5'")
    click.echo(f"demo finished in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
