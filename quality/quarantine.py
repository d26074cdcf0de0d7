"""The reconciliations that prove the quarantine lost nothing, counted on the committed tables: per source table,
bronze live rows = silver rows + quarantined rows (:func:`reconcile`); per canonical record table and declared
mention, the staged rows where the mention applies = records emitted + mentions quarantined
(:func:`reconcile_mentions`).

The quarantine itself -- which rows, why, the table's shape -- is part of staging
(:mod:`models.staging.quarantine`); this is the check run after each staging model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from lake.delta import read_dataset
from lake.layout import bronze_path, quarantine_mentions_path, quarantine_rows_path, silver_path
from lake.storage import Location
from models.canonical import mention_applies
from models.roles import DERIVED_ROLES
from models.staging.spec import MentionSpec, StagingSpec
from models.staging.spec_conditions import condition_columns


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


def _count(path: Location, live_only: bool = False) -> int:
    import pyarrow.dataset as pds

    dataset = read_dataset(path)
    if dataset is None:
        return 0
    if live_only:
        return dataset.count_rows(filter=pds.field("_qst_deleted_at").is_null())
    return dataset.count_rows()


def reconcile(home: Path, spec: StagingSpec, staging: Location) -> Reconciliation:
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


# --------------------------------------------------------------------------------------------------
# Mentions: declared mentions expected per row = emitted + quarantined
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MentionCount:
    """One declared mention (a spec's role) of one canonical table, counted on the committed tables."""

    source: str  # <department>/<asset>
    role: str
    expected: int  # staged rows where the mention's ``when`` holds
    emitted: int  # records of the canonical table from that source with that role
    quarantined: int  # rows of the mentions' quarantine from that source with that role

    @property
    def ok(self) -> bool:
        return self.expected == self.emitted + self.quarantined


@dataclass(frozen=True)
class MentionReconciliation:
    table: str
    counts: tuple[MentionCount, ...]
    #: (source, role) with records or quarantine rows that no spec declares (a stale or foreign role)
    undeclared: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.counts) and not self.undeclared

    def describe(self) -> str:
        expected = sum(c.expected for c in self.counts)
        emitted = sum(c.emitted for c in self.counts)
        quarantined = sum(c.quarantined for c in self.counts)
        head = f"{self.table}: declared mentions {expected:,} = emitted {emitted:,} + quarantined {quarantined:,}"
        wrong = [
            f"{c.source} role {c.role}: expected {c.expected:,}, emitted {c.emitted:,}, quarantined "
            f"{c.quarantined:,} (MISMATCH by {c.expected - c.emitted - c.quarantined:+,})"
            for c in self.counts
            if not c.ok
        ]
        wrong += [f"{s} role {r}: records of a mention no spec declares" for s, r in self.undeclared]
        return head + (": ok" if not wrong else ": " + "; ".join(wrong))


def _by_source_role(path: Location) -> dict[tuple[str, str], int]:
    """Rows per (``<department>/<asset>``, role) of a committed table with lineage and ``role``."""
    dataset = read_dataset(path)
    if dataset is None:
        return {}
    frame = pl.from_arrow(dataset.to_table(columns=["source_department", "source_asset", "role"]))
    assert isinstance(frame, pl.DataFrame)  # a table is always a frame
    counts = frame.group_by("source_department", "source_asset", "role").len().iter_rows()
    return {(f"{d}/{a}", r): n for d, a, r, n in counts}


def _applies(home: Path, spec: StagingSpec, mention: MentionSpec) -> int:
    """Staged rows of ``spec`` where ``mention`` is declared to exist (its ``when`` holds)."""
    dataset = read_dataset(silver_path(home, spec.name))
    if dataset is None:
        return 0
    if mention.when is None:
        return dataset.count_rows()
    columns = sorted({c for _, c in condition_columns(mention.when)})
    frame = pl.from_arrow(dataset.to_table(columns=columns))
    assert isinstance(frame, pl.DataFrame)
    return frame.select(mention_applies(mention).sum()).item()


def reconcile_mentions(home: Path, table: str, specs: list[StagingSpec]) -> MentionReconciliation:
    """Every declared mention of ``specs`` for the canonical record ``table`` is accounted for: per spec and
    role, the staged rows where its ``when`` holds = the records emitted + the mentions quarantined, each
    counted on the committed tables (the staging model, the canonical table, the mentions' quarantine) so the
    check proves what is on disk. Records of derived roles (:data:`models.roles.DERIVED_ROLES`) are the
    canonical build's own, not declared mentions, and are left out."""
    home = Path(home)
    emitted = _by_source_role(silver_path(home, table))
    quarantined = _by_source_role(quarantine_mentions_path(home, table))
    group = "enterprises" if table == "int_enterprise_records" else "persons"
    counts = []
    declared = set()
    for spec in specs:
        for mention in getattr(spec, group):
            key = (spec.source, mention.role)
            declared.add(key)
            counts.append(
                MentionCount(
                    spec.source,
                    mention.role,
                    _applies(home, spec, mention),
                    emitted.get(key, 0),
                    quarantined.get(key, 0),
                )
            )
    undeclared = sorted(
        k for k in {*emitted, *quarantined} if k not in declared and k[1] not in DERIVED_ROLES
    )
    return MentionReconciliation(table, tuple(counts), tuple(undeclared))
