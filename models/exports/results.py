"""What an export reports: per table, per package, per bureau of a night.

Why a module of its own: the package builder returns these and the README generator reads them; apart, neither
imports the other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class TableResult:
    name: str  # the files' stem in the package
    source_table: str
    sharing: str
    rows: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class PackageResult:
    bureau: str
    date: dt.date
    path: Path  # EXPORTS_ROOT/<bureau>/<date> (the published link)
    build: Path  # the folder it points at
    tables: tuple[TableResult, ...]
    withheld: tuple[dict[str, Any], ...]
    entitlement_version: str
    manifest_sha256: str
    replaced: bool  # a package for this date existed and was replaced
    pruned: tuple[str, ...]  # dates unpublished by retention
    seconds: float

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def files(self) -> int:
        return sum(len(t.files) for t in self.tables) + 2  # + manifest and README


@dataclass(frozen=True)
class BureauOutcome:
    bureau: str
    result: PackageResult | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None
