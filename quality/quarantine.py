"""Quarantine: the rows silver cannot use, kept with their reasons and their full original content, and the
reconciliation that proves nothing was lost: per source table, bronze live rows = silver rows + quarantined.

The rules are data (the ``quarantine:`` section of each staging spec, :mod:`models.staging.spec`); this module
evaluates them and owns the quarantine table's shape. One quarantine table per source table, at
``HOME/lake/quarantine/rows/<department>/<asset>``, rewritten as a whole with its staging model, so a rerun
can neither double nor keep a stale row (and staging models of different departments never contend for
one Delta table).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from models.staging.spec import StagingSpec

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source_department": pl.Utf8, "source_table": pl.Utf8, "source_asset": pl.Utf8, "source_pk": pl.Utf8,
    "reasons": pl.List(pl.Utf8), "original": pl.Utf8, "_qst_batch_id": pl.Utf8, "_qst_row_hash": pl.Int64,
}
_LINEAGE = ["source_department", "source_table", "source_asset", "source_pk"]


def quarantine_path(home: Path, department: str, asset: str) -> Path:
    return Path(home) / "lake" / "quarantine" / "rows" / department / asset


def reasons(spec: StagingSpec) -> pl.Expr:
    """A list of the reason codes of every rule of ``spec`` that the row breaks (empty: the row is fine)."""
    checks: list[pl.Expr] = []
    for rule in spec.quarantine:
        if rule.all_missing:
            cond = pl.all_horizontal([pl.col(c).is_null() for c in rule.all_missing])
        elif rule.invalid:
            cond = pl.col(f"{rule.invalid}_status") == "invalid"
        else:
            cond = pl.col(rule.missing).is_null()
        checks.append(pl.when(cond.fill_null(False)).then(pl.lit(rule.reason)))
    if not checks:
        return pl.lit([], dtype=pl.List(pl.Utf8))
    return pl.concat_list(checks).list.drop_nulls()


def quarantine_rows(bad: pl.DataFrame, bronze_columns: list[str]) -> pl.DataFrame:
    """Quarantine rows of ``bad`` (the lineage columns, ``__reasons`` and the bronze columns): the original
    row -- every bronze column as text -- as one JSON object, so the table's schema never depends on the
    source's and an analyst sees exactly what the department sent."""
    if bad.height == 0:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    original = [c for c in bronze_columns if c != "_qst_row_hash"]
    text = pl.struct([pl.col(c).cast(pl.Utf8) for c in original]).struct.json_encode()
    optional = {c: pl.col(c) if c in bad.columns else pl.lit(None, QUARANTINE_SCHEMA[c])
                for c in ("_qst_batch_id", "_qst_row_hash")}
    return bad.select(*_LINEAGE, reasons=pl.col("__reasons"), original=text, **optional).cast(QUARANTINE_SCHEMA)


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
        verdict = "ok" if self.ok else f"MISMATCH by {self.bronze_live_rows - self.silver_rows - self.quarantined_rows:+,}"
        return (f"{self.department}/{self.asset}: bronze live {self.bronze_live_rows:,} = silver "
                f"{self.silver_rows:,} + quarantined {self.quarantined_rows:,}: {verdict}")


def _count(path: Path, live_only: bool = False) -> int:
    import pyarrow.dataset as pds

    from connectors.bronze import read_dataset

    dataset = read_dataset(path)
    if dataset is None:
        return 0
    if live_only:
        return dataset.count_rows(filter=pds.field("_qst_deleted_at").is_null())
    return dataset.count_rows()


def reconcile(home: Path, spec: StagingSpec, staging: Path) -> Reconciliation:
    """Count what is committed -- bronze's live rows (not flagged deleted), the staging model's rows and the
    quarantined rows -- so the check proves the tables on disk, not what a run believed it wrote."""
    from connectors.bronze import bronze_path

    return Reconciliation(
        spec.department, spec.asset,
        bronze_live_rows=_count(bronze_path(home, spec.department, spec.asset), live_only=True),
        silver_rows=_count(staging),
        quarantined_rows=_count(quarantine_path(home, spec.department, spec.asset)))
