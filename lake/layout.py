"""The layout of HOME, the data folder: every path Quanshitong reads or writes under it, in one place.

::

    HOME/
      lake/bronze/<department>/<asset>        one Delta table per source table (connectors)
      lake/quarantine/files/<department>/<drop>  file drops that could not be read, one row per file
      lake/quarantine/rows/<department>/<asset>  staged rows a quarantine rule refused, with reasons
      lake/quarantine/mentions/<table>        declared mentions a staged row could not give, with reasons
      lake/silver/<name>                      staged and intermediate tables (models)
      lake/gold/<name>                        resolved entities, crosswalk, history, review queue
      lake/review/decisions                   reviewers' match / no-match decisions
      lake/quality/scorecard                  the nightly data-quality scorecard
      marts.duckdb                            the marts the dashboard and exports read
      docs/validations, docs/data_docs        the last validation of each table, Great Expectations docs
      docs/data_dictionary.md                 the marts' data dictionary
      exports/                                the bureaus' export packages
      dashboard/users.sqlite                  the dashboard's users, roles and districts (hashed passwords)
      dashboard/audit.jsonl                   the dashboard's append-only audit log
      .dagster/                               Dagster's instance (runs, event log)

The Delta tables (``lake/`` above) may live elsewhere: ``lake.root`` of the deployment's ``platform.yaml``
(:mod:`lake.platform`) puts them in another folder or an object store (``s3://bucket/prefix``, then the same
tree below the prefix); the lake functions below return a :data:`lake.storage.Location` under that root. The
rest (the marts, docs, exports, Dagster's instance) stays under HOME on local disk; an object-store lake keeps
its local side (bronze's writer locks and spools) in ``HOME/.lake_local``.

The two quarantines hold different things -- whole *files* refused at landing, single *rows* refused at
staging -- so their functions have different names. Changing where something lives means changing it
here (and the README, which shows the same tree).
"""

from __future__ import annotations

import functools
from pathlib import Path

from lake.deployment import Deployment, current_deployment
from lake.storage import Location, parse_root

__all__ = [
    "MARTS_FILE",
    "bronze_path",
    "dagster_path",
    "dashboard_audit_path",
    "dashboard_users_path",
    "data_dictionary_path",
    "data_docs_path",
    "decisions_path",
    "exports_root",
    "gold_path",
    "lake_root",
    "marts_path",
    "quarantine_files_path",
    "quarantine_mentions_path",
    "quarantine_rows_path",
    "scorecard_path",
    "silver_path",
    "validations_path",
]

#: The marts' DuckDB file, directly under HOME.
MARTS_FILE = "marts.duckdb"


@functools.lru_cache(maxsize=8)
def _declared_root(platform_file: Path, stamp: tuple[int, int]) -> str | None:
    # one read per version of the file (stamp: its mtime and size), not one per table path; imported here:
    # pydantic and the YAML loader are not needed where no platform.yaml exists
    from lake.platform import platform_settings

    return platform_settings(Deployment(platform_file.parent)).lake.root


def lake_root(home: Path | str) -> Location:
    """Where every Delta table lives: ``HOME/lake`` unless the deployment's ``platform.yaml`` declares
    ``lake.root`` (another folder, or ``s3://bucket/prefix``). Read at each call (cached per version of the
    file), so a command's ``--deployment`` and a test's environment take effect everywhere."""
    platform_file = current_deployment().root / "platform.yaml"  # lake.platform.PLATFORM_FILE
    try:
        stat = platform_file.stat()
    except FileNotFoundError:
        return Path(home) / "lake"
    return parse_root(_declared_root(platform_file, (stat.st_mtime_ns, stat.st_size)), home)


def bronze_path(home: Path, department: str, asset: str) -> Location:
    """``<home>/lake/bronze/<department>/<asset>``; the names must be single path components."""
    for what, name in (("department", department), ("asset", asset)):
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise ValueError(f"bronze_path: {what} {name!r} is not a valid folder name")
    return lake_root(home) / "bronze" / department / asset


def quarantine_files_path(home: Path, department: str, drop: str) -> Location:
    """The file drop ``drop``'s refused files: one row per file that could not be read, and why."""
    return lake_root(home) / "quarantine" / "files" / department / drop


def quarantine_rows_path(home: Path, department: str, asset: str) -> Location:
    """The rows of a bronze table that staging refused, each with its reasons (never silently dropped)."""
    return lake_root(home) / "quarantine" / "rows" / department / asset


def quarantine_mentions_path(home: Path, table: str) -> Location:
    """The declared mentions that staged rows could not give to the canonical ``table`` (a mention with no name
    and no identifier on its row), each with its reason: every mention is emitted or accounted for here."""
    return lake_root(home) / "quarantine" / "mentions" / table


def silver_path(home: Path, name: str) -> Location:
    return lake_root(home) / "silver" / name


def gold_path(home: Path, name: str) -> Location:
    return lake_root(home) / "gold" / name


def decisions_path(home: Path) -> Location:
    """The reviewers' decisions: kept apart from gold, which is rebuilt every night and must not lose them."""
    return lake_root(home) / "review" / "decisions"


def scorecard_path(home: Path) -> Location:
    return lake_root(home) / "quality" / "scorecard"


def marts_path(home: Path | str) -> Path:
    return Path(home) / MARTS_FILE


def validations_path(home: Path) -> Path:
    """Where each silver table's last validation is kept, so the Data Docs never validate a table twice."""
    return Path(home) / "docs" / "validations"


def data_docs_path(home: Path) -> Path:
    """The Great Expectations Data Docs site (``index.html`` inside)."""
    return Path(home) / "docs" / "data_docs"


def data_dictionary_path(home: Path) -> Path:
    return Path(home) / "docs" / "data_dictionary.md"


def exports_root(home: Path) -> Path:
    """The default root of the bureaus' export packages (``qst export --root`` may put them elsewhere)."""
    return Path(home) / "exports"


def dagster_path(home: Path | str) -> Path:
    """Dagster's instance folder; ``qst run`` uses it when ``DAGSTER_HOME`` is not set."""
    return Path(home).resolve() / ".dagster"


def dashboard_users_path(home: Path | str) -> Path:
    """The dashboard's users file (SQLite: roles, districts, Argon2id hashes, lock-out counters): state that
    changes at every failed sign-in, so under HOME rather than in the deployment's version-controlled folder."""
    return Path(home) / "dashboard" / "users.sqlite"


def dashboard_audit_path(home: Path | str) -> Path:
    """The dashboard's audit log (append-only JSON lines, hash-chained): outside the marts, which are rebuilt."""
    return Path(home) / "dashboard" / "audit.jsonl"
