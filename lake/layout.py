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
      .dagster/                               Dagster's instance (runs, event log)

The two quarantines hold different things -- whole *files* refused at landing, single *rows* refused at
staging -- so their functions have different names. Changing where something lives means changing it
here (and the README, which shows the same tree).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "MARTS_FILE",
    "bronze_path",
    "dagster_path",
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


def lake_root(home: Path | str) -> Path:
    """``HOME/lake``: every Delta table lives below it (the marts attach it read-only)."""
    return Path(home) / "lake"


def bronze_path(home: Path, department: str, asset: str) -> Path:
    """``<home>/lake/bronze/<department>/<asset>``; the names must be single path components."""
    for what, name in (("department", department), ("asset", asset)):
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise ValueError(f"bronze_path: {what} {name!r} is not a valid folder name")
    return Path(home) / "lake" / "bronze" / department / asset


def quarantine_files_path(home: Path, department: str, drop: str) -> Path:
    """The file drop ``drop``'s refused files: one row per file that could not be read, and why."""
    return Path(home) / "lake" / "quarantine" / "files" / department / drop


def quarantine_rows_path(home: Path, department: str, asset: str) -> Path:
    """The rows of a bronze table that staging refused, each with its reasons (never silently dropped)."""
    return Path(home) / "lake" / "quarantine" / "rows" / department / asset


def quarantine_mentions_path(home: Path, table: str) -> Path:
    """The declared mentions that staged rows could not give to the canonical ``table`` (a mention with no name
    and no identifier on its row), each with its reason: every mention is emitted or accounted for here."""
    return Path(home) / "lake" / "quarantine" / "mentions" / table


def silver_path(home: Path, name: str) -> Path:
    return Path(home) / "lake" / "silver" / name


def gold_path(home: Path, name: str) -> Path:
    return Path(home) / "lake" / "gold" / name


def decisions_path(home: Path) -> Path:
    """The reviewers' decisions: kept apart from gold, which is rebuilt every night and must not lose them."""
    return Path(home) / "lake" / "review" / "decisions"


def scorecard_path(home: Path) -> Path:
    return Path(home) / "lake" / "quality" / "scorecard"


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
