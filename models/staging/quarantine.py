"""Quarantine: the rows silver cannot use, kept with their reasons and their full original content.

The rules are data (the ``quarantine:`` section of each staging spec, :mod:`models.staging.spec`); this module
evaluates them and owns the quarantine table's shape, and that of the mentions' quarantine (a declared mention a
staged row could not give: :func:`mention_quarantine`, at :func:`lake.layout.quarantine_mentions_path`). One quarantine table per source table, at
:func:`lake.layout.quarantine_rows_path` (``HOME/lake/quarantine/rows/<department>/<asset>``), rewritten as a
whole with its staging model, so a rerun can neither double nor keep a stale row (and staging models of
different departments never contend for one Delta table). That nothing was lost on the way is a check, and
lives with the checks: :func:`quality.quarantine.reconcile`.
"""

from __future__ import annotations

import polars as pl

from models.canonical import (
    ENTERPRISE_IDENTIFYING,
    PERSON_IDENTIFYING,
    mention_applies,
    mention_identified,
)
from models.staging.spec import StagingSpec

QUARANTINE_SCHEMA = pl.Schema(
    {
        "source_department": pl.Utf8(),
        "source_table": pl.Utf8(),
        "source_asset": pl.Utf8(),
        "source_pk": pl.Utf8(),
        "reasons": pl.List(pl.Utf8),
        "original": pl.Utf8(),
        "_qst_batch_id": pl.Utf8(),
        "_qst_row_hash": pl.Int64(),
    }
)
_LINEAGE = ["source_department", "source_table", "source_asset", "source_pk"]


def reasons(spec: StagingSpec) -> pl.Expr:
    """A list of the reason codes of every rule of ``spec`` that the row breaks (empty: the row is fine)."""
    checks: list[pl.Expr] = []
    for rule in spec.quarantine:
        if rule.all_missing:
            cond = pl.all_horizontal([pl.col(c).is_null() for c in rule.all_missing])
        elif rule.invalid:
            cond = pl.col(f"{rule.invalid}_status") == "invalid"
        else:
            assert rule.missing is not None  # QuarantineRule validates that exactly one of the three is given
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
    optional = {
        c: pl.col(c) if c in bad.columns else pl.lit(None, QUARANTINE_SCHEMA[c])
        for c in ("_qst_batch_id", "_qst_row_hash")
    }
    return bad.select(*_LINEAGE, reasons=pl.col("__reasons"), original=text, **optional).cast(
        QUARANTINE_SCHEMA
    )


# --------------------------------------------------------------------------------------------------
# Mentions: each declared mention of a staged row is emitted to the canonical tables or quarantined here
# --------------------------------------------------------------------------------------------------
#: Why a declared mention was not emitted: its row has no name and no identifier for it.
NO_NAME_NO_IDENTIFIER = "mention_without_name_or_identifier"
MENTION_QUARANTINE_SCHEMA = pl.Schema(
    {
        "source_department": pl.Utf8(),
        "source_table": pl.Utf8(),
        "source_asset": pl.Utf8(),
        "source_pk": pl.Utf8(),
        "staging_model": pl.Utf8(),
        "mention_kind": pl.Utf8(),
        "role": pl.Utf8(),
        "reason": pl.Utf8(),
    }
)


def mention_quarantine(staged: pl.DataFrame, spec: StagingSpec, table: str) -> pl.DataFrame:
    """The declared mentions of ``spec`` for the canonical ``table`` (``int_enterprise_records`` or
    ``int_person_records``) that the rows of ``staged`` could not give, in :data:`MENTION_QUARANTINE_SCHEMA`:
    the mention's ``when`` holds but the row has no name and no identifier for it. Why: a row that silently
    loses a party (a person filed under an enterprise's prefix, a name column read empty) is a record lost
    to entity resolution; here it is named by its spec, role and row key, and counted by the reconciliation."""
    enterprises = table == "int_enterprise_records"
    kind = "enterprise" if enterprises else "person"
    mentions = spec.enterprises if enterprises else spec.persons
    identifying: tuple[str, ...] = ENTERPRISE_IDENTIFYING if enterprises else PERSON_IDENTIFYING
    parts = [
        staged.filter(mention_applies(m) & ~mention_identified(staged.columns, m, identifying)).select(
            *_LINEAGE,
            staging_model=pl.lit(spec.name),
            mention_kind=pl.lit(kind),
            role=pl.lit(m.role),
            reason=pl.lit(NO_NAME_NO_IDENTIFIER),
        )
        for m in mentions
    ]
    parts = [p for p in parts if p.height]
    if not parts:
        return pl.DataFrame(schema=MENTION_QUARANTINE_SCHEMA)
    return pl.concat(parts).cast(MENTION_QUARANTINE_SCHEMA)
