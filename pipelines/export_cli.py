"""`qst export` and `qst verify-export`: the nightly bureau exports from the command line.

Thin on purpose (as `pipelines/cli.py`): parse options, call :mod:`models.exports`, print.  The commands are
standalone ``click.command`` objects, registered on the ``qst`` group with ``main.add_command``.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from lake.city import city_zone
from pipelines.home import exports_path

__all__ = ["export", "verify_export"]


def _default_date() -> dt.date:
    """The last complete day in the city's time zone (the nightly partition the marts were built for)."""
    return dt.datetime.now(city_zone()).date() - dt.timedelta(days=1)


@click.command("export")
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="QST_HOME",
    default="data",
    show_default=True,
    help="The data folder: reads HOME/marts.duckdb, writes HOME/exports/ (also $QST_HOME).",
)
@click.option(
    "--date",
    "date",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    metavar="YYYY-MM-DD",
    help="The date of the packages (default: yesterday in the city's time zone).",
)
@click.option(
    "--bureau",
    "bureaus",
    multiple=True,
    metavar="BUREAU",
    help="Only this bureau (repeatable); default every bureau of the config.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The entitlements (default: $QST_EXPORTS, else the deployment's exports.yaml).",
)
@click.option(
    "--marts",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The marts file to export from (default HOME/marts.duckdb).",
)
@click.option(
    "--out",
    "exports_root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The exports root (default HOME/exports).",
)
def export(
    home: Path,
    date: dt.datetime | None,
    bureaus: tuple[str, ...],
    config_path: Path | None,
    marts: Path | None,
    exports_root: Path | None,
) -> None:
    """Build each bureau's package for a date from the marts: the entitled tables, columns and rows, masked
    and hashed, as Parquet and CSV with a manifest and a README, published atomically in
    EXPORTS/<bureau>/<date>. Bureaus are isolated: one failing does not stop the others. Exits 1 if any
    bureau failed."""
    from lake.yamlfile import ConfigError
    from models.exports import BureauOutcome, export_all, load_entitlements

    config_path = config_path or exports_path(home)
    try:
        config = load_entitlements(config_path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    unknown = [b for b in bureaus if b not in config.bureaus]
    if unknown:
        click.echo(
            f"unknown bureau(s): {', '.join(unknown)}; {config_path} has: {', '.join(config.bureaus)}",
            err=True,
        )
        sys.exit(2)
    day = date.date() if date is not None else _default_date()
    marts = marts or home / "marts.duckdb"
    exports_root = exports_root or home / "exports"
    click.echo(f"exporting {day.isoformat()} from {marts} into {exports_root} ({config_path})")

    def show(o: BureauOutcome) -> None:
        if o.result is not None:
            r = o.result
            extra = " (replaced)" if r.replaced else ""
            if r.pruned:
                extra += f", pruned {', '.join(r.pruned)}"
            if r.withheld:
                extra += f", withheld {', '.join(w['table'] for w in r.withheld)}"
            click.echo(
                f"  {o.bureau:<10} ok      {r.rows:>10,} rows  {r.files:>3} files  {o.seconds:6.1f} s"
                f"  -> {r.path}{extra}"
            )
        else:
            click.echo(f"  {o.bureau:<10} FAILED  {o.seconds:6.1f} s  {o.error}")

    outcomes = export_all(
        config,
        marts=marts,
        exports_root=exports_root,
        date=day,
        bureaus=list(bureaus) or None,
        on_outcome=show,
    )
    failed = [o.bureau for o in outcomes if not o.ok]
    click.echo(
        f"{len(outcomes) - len(failed)} bureau(s) exported, {len(failed)} failed"
        + (f": {', '.join(failed)}" if failed else "")
    )
    if failed:
        sys.exit(1)


@click.command("verify-export")
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--public-key",
    "public_key_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    envvar="QST_EXPORT_PUBLIC_KEY",
    default=None,
    help="The city's Ed25519 public key (PEM, or the base64 of its 32 bytes), as the city published it (also "
    "$QST_EXPORT_PUBLIC_KEY). Without it the signature is checked against the key the package names, which "
    "proves the package whole but not who made it.",
)
def verify_export(path: Path, public_key_file: Path | None) -> None:
    """Check an export package (EXPORTS/<bureau>/<date>) against its manifest.json: the manifest's signature,
    every file present and listed, sha256, size, row counts, schemas, CSV encoding and cell lengths. Prints
    each mismatch; exits 1 on any."""
    from models.exports import verify_package
    from models.exports.signing import load_public_key

    key = None
    if public_key_file is not None:
        try:
            key = load_public_key(public_key_file.read_bytes())
        except ValueError as exc:
            raise click.BadParameter(f"{public_key_file}: {exc}", param_hint="--public-key") from None
    report = verify_package(path, key)
    click.echo(str(report))
    if not report.ok:
        sys.exit(1)
