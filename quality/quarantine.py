"""The reconciliation that proves the quarantine lost nothing: per source table, bronze live rows = silver rows
+ quarantined rows, counted on the committed tables.

The quarantine itself -- which rows, why, the table's shape -- is part of staging
(:mod:`models.staging.quarantine`); this is the check run after each staging model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lake.delta import read_dataset
from lake.layout import bronze_path, quarantine_rows_path, silver_path
from models.staging.spec import StagingSpec


@dataclass(frozen=True)
class Reconciliation:
    department: str
    asset: str
    bronze_live_rows: int
    silver_rows: int
    quarantined_rows: int

    @property
    def ok(self) -> bool:
        return self.bronze_live_rows == self.silver_rows + self.quarantined_rows

    def describe(self) -> str:
        verdict = (
            "ok"
            if self.ok
            else f"MISMATCH by {self.bronze_live_rows - self.silver_rows - self.quarantined_rows:+,}"
        )
        return (
            f"{self.department}/{self.asset}: bronze live {self.bronze_live_rows:,} = silver "
            f"{self.silver_rows:,} + quarantined {self.quarantined_rows:,}: {verdict}"
        )


def _count(path: Path, live_only: bool = False) -> int:
    import pyarrow.dataset as pds

    dataset = read_dataset(path)
    if dataset is None:
        return 0
    if live_only:
        return dataset.count_rows(filter=pds.field("_qst_deleted_at").is_null())
    return dataset.count_rows()


def reconcile(home: Path, spec: StagingSpec, staging: Path) -> Reconciliation:
    """Count what is committed -- bronze's live rows (not flagged deleted), the staging model's rows and the
    quarantined rows -- so the check proves the tables on disk, not what a run believed it wrote."""
    return Reconciliation(
        spec.department,
        spec.asset,
        bronze_live_rows=_count(bronze_path(home, spec.department, spec.asset), live_only=True),
        silver_rows=_count(staging),
        quarantined_rows=_count(quarantine_rows_path(home, spec.department, spec.asset)),
    )


def reconcile_staging(home: Path, spec: StagingSpec) -> Reconciliation:
    """The check of the staging model of ``spec`` just built: its own silver table against its bronze table."""
    return reconcile(home, spec, silver_path(home, spec.name))


def departments_reconcile(home: Path, departments: list[str]) -> tuple[bool, str]:
    """Every department of the deployment's ``sources.yaml`` is in ``int_departments`` exactly once, and no other:
    the marts and the dashboard name departments from it, so a missing one would show as a bare key."""
    dataset = read_dataset(silver_path(Path(home), "int_departments"))
    written = [] if dataset is None else dataset.to_table(columns=["department"]).column(0).to_pylist()
    missing = sorted(set(departments) - set(written))
    extra = sorted(set(written) - set(departments))
    doubled = sorted({d for d in written if written.count(d) > 1})
    ok = not (missing or extra or doubled)
    if ok:
        return True, f"int_departments: the {len(departments)} departments of sources.yaml, each once"
    return False, f"int_departments: missing {missing}, not in sources.yaml {extra}, more than once {doubled}"
