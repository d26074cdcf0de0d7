"""Incremental canonical tables: a night rebuilds the mentions, events and cases of the source rows it changed only.

Why it gives what a full rebuild gives: the canonical builders (:mod:`models.canonical`) and the mention quarantine
are row-local -- one staged row gives its mentions whatever the other rows -- and every canonical row names its
source row (``source_department``, ``source_asset``, ``source_pk``). The rows a night changed are the bronze rows
written between the bronze version the canonical table was built from and the one each staging model now stands at
(:func:`models.staging_changes.bronze_changes`, by load batch id): deleting every canonical row of those keys and
adding the rows built from their staged rows (which carry the same batch ids) leaves the table a full rebuild
would give. A key deleted at the source, or now quarantined, has no staged row: its rows are only deleted.

Full, and why, when: no earlier build or no recorded state; the rules changed (the canonical builders, the staging
fingerprints of the feeding models, the city's time zone); the feeding models changed; a staging model has no state;
a table of records and its mention quarantine name different states; the bronze changes cannot be known; or more
than :data:`models.staging_changes.FULL_SHARE` of the rows changed.

The write is two commits (a MERGE deleting the changed keys' rows, an append of their new rows that records the
state): a night that stops between them leaves a last commit without state, which the next build sees and
rebuilds in full.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from lake.city import city_timezone
from lake.delta import open_delta
from lake.layout import bronze_path
from models import staging_changes
from models.staging.spec import StagingSpec

if TYPE_CHECKING:
    from deltalake import DeltaTable

__all__ = ["CanonicalPlan", "SourceChange", "canonical_fingerprint", "delete_keys", "plan_canonical", "state"]

SOURCES_KEY = "qst.canonical_sources"
FINGERPRINT_KEY = "qst.canonical_fingerprint"
KEY = ["source_department", "source_asset", "source_pk"]
_MODELS = Path(__file__).resolve().parent
_RULES = ("canonical.py", "roles.py", "events.py")


def canonical_fingerprint(table: str, staging_fingerprints: dict[str, str]) -> str:
    """A digest of what a canonical row depends on besides its staged row: the builders' code, the feeding staging
    models' fingerprints (their specs declare the mentions), the table and the city's time zone."""
    digest = hashlib.sha256(table.encode())
    for name in _RULES:
        digest.update((_MODELS / name).read_bytes())
    digest.update(json.dumps(sorted(staging_fingerprints.items())).encode())
    digest.update(city_timezone().encode())
    return digest.hexdigest()


def state(sources: dict[str, int], fingerprint: str) -> Any:
    """The commit properties recording which bronze version of each source a canonical build reflects."""
    from deltalake import CommitProperties

    return CommitProperties(
        custom_metadata={SOURCES_KEY: json.dumps(sources, sort_keys=True), FINGERPRINT_KEY: fingerprint}
    )


def _recorded(table: DeltaTable | None) -> tuple[dict[str, int], str] | None:
    if table is None:
        return None
    last = table.history(1)
    if not last or SOURCES_KEY not in last[0] or FINGERPRINT_KEY not in last[0]:
        return None
    return {k: int(v) for k, v in json.loads(last[0][SOURCES_KEY]).items()}, str(last[0][FINGERPRINT_KEY])


@dataclass(frozen=True)
class SourceChange:
    """The bronze rows of one feeding source written between the canonical build and the staging model's state."""

    spec: StagingSpec
    #: bronze at the version the staging model stands at
    bronze: DeltaTable
    changes: staging_changes.BronzeChanges


@dataclass(frozen=True)
class CanonicalPlan:
    """``changes`` None: a full build, because ``why_full``. ``sources``: the state the build will record."""

    sources: dict[str, int]
    fingerprint: str
    changes: list[SourceChange] | None
    why_full: str = ""


def plan_canonical(
    home: Path,
    specs: list[StagingSpec],
    staging: dict[str, DeltaTable | None],
    target: DeltaTable | None,
    quarantine: DeltaTable | None,
    table: str,
    incremental: str = "",
) -> CanonicalPlan:
    """How to bring ``target`` (a canonical table; ``quarantine`` its mention quarantine, None for tables of events
    or cases) up to the staging models ``staging`` (by spec source) of ``specs``. ``incremental``, when not empty,
    is why the build is full whatever changed: then only the state to record is computed, no bronze log read."""
    current: dict[str, int] = {}
    fingerprints: dict[str, str] = {}
    missing_state = []
    for spec in specs:
        model = staging.get(spec.source)
        if model is None:
            continue  # a staging model not built yet feeds nothing (as in a full build)
        recorded = staging_changes.staging_state(model)
        if recorded is None:
            missing_state.append(spec.source)
            continue
        current[spec.source], fingerprints[spec.source] = recorded
    fingerprint = canonical_fingerprint(table, fingerprints)

    def full(why: str) -> CanonicalPlan:
        return CanonicalPlan(current, fingerprint, None, why)

    if incremental:
        return full(incremental)
    if missing_state:
        return full(f"staging models without a recorded state: {', '.join(missing_state)}")
    built = _recorded(target)
    if built is None:
        return full("no earlier build" if target is None else "the last build recorded no state")
    if quarantine is not None and _recorded(quarantine) != built:
        return full("the table and its mention quarantine were left at different states")
    sources, built_with = built
    if built_with != fingerprint:
        return full("the rules changed (canonical builders, staging specs or the city's time zone)")
    if set(sources) != set(current):
        return full("the staging models feeding it changed")
    from lake.delta import delta_table

    changes: list[SourceChange] = []
    for spec in specs:
        since, upto = sources.get(spec.source), current.get(spec.source)
        if since is None or upto is None or since == upto:
            continue
        bronze = delta_table(bronze_path(home, spec.department, spec.asset), version=upto)
        change = staging_changes.bronze_changes(bronze, since)
        if isinstance(change, str):
            return full(f"{spec.source}: {change}")
        changes.append(SourceChange(spec, bronze, change))
    changed = sum(c.changes.changed_rows for c in changes)
    total = sum(c.changes.total_rows for c in changes)
    if total and changed > staging_changes.FULL_SHARE * total:
        return full(f"{changed:,} of {total:,} rows of the changed sources changed")
    return CanonicalPlan(current, fingerprint, changes)


def delete_keys(target: DeltaTable, keys: pl.DataFrame) -> int:
    """Delete every row of ``target`` whose (department, asset, source_pk) is one of ``keys`` (one MERGE commit,
    without state: see the module docstring); the number deleted."""
    if keys.height == 0:
        return 0
    from lake.delta import to_arrow

    source = to_arrow(keys.select(KEY).unique()).cast(pa.schema([(k, pa.string()) for k in KEY]))
    predicate = " AND ".join(f"t.{k} = s.{k}" for k in KEY)
    metrics = (
        target.merge(source, predicate=predicate, source_alias="s", target_alias="t", streamed_exec=True)
        .when_matched_delete()
        .execute()
    )
    return int(metrics.get("num_target_rows_deleted", 0))


@dataclass
class Applied:
    """What an incremental build did: keys replaced, rows added (by source), mentions quarantined (by source)."""

    keys: int = 0
    deleted: int = 0
    added: dict[str, int] | None = None
    quarantined: dict[str, int] | None = None


def _frames(
    dataset: Any, filter_: Any, batch_rows: int, columns: list[str] | None = None
) -> list[pl.DataFrame]:
    out = []
    for batch in dataset.to_batches(filter=filter_, columns=columns, batch_size=batch_rows):
        if batch.num_rows:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            out.append(frame)
    return out


def apply_changes(
    home: Path,
    table: str,
    plan: CanonicalPlan,
    infos: dict[str, Any],
    staging: dict[str, DeltaTable | None],
    batch_rows: int,
) -> Applied:
    """Replace the rows of the changed source rows of ``plan`` in the canonical ``table`` (and its mention quarantine),
    recording the plan's state on the last commit of each."""
    from lake.delta import append, table_dataset, to_arrow
    from lake.layout import quarantine_mentions_path, silver_path
    from models import canonical
    from models.staging.quarantine import MENTION_QUARANTINE_SCHEMA, mention_quarantine
    from models.staging.stage import source_pk

    assert plan.changes is not None
    builder, records = canonical.BUILDERS[table], table in canonical.RECORD_TABLES
    keys: list[pl.DataFrame] = []
    rows: list[pl.DataFrame] = []
    refused: list[pl.DataFrame] = []
    applied = Applied(added={}, quarantined={})
    assert applied.added is not None and applied.quarantined is not None
    for change in plan.changes:
        spec, info = change.spec, infos[change.spec.source]
        key_columns = ["_qst_file", "_qst_line"] if info.is_file_drop else list(info.primary_key)
        bronze_rows = table_dataset(change.bronze, change.changes.files)
        for frame in _frames(bronze_rows, change.changes.filter(), batch_rows, key_columns):
            keys.append(
                frame.select(
                    pl.lit(info.department).alias("source_department"),
                    pl.lit(info.asset).alias("source_asset"),
                    source_pk(info).alias("source_pk"),
                )
            )
        model = staging[spec.source]
        assert model is not None  # the plan has a state for every source it names
        for staged in _frames(table_dataset(model), change.changes.filter(), batch_rows):
            out = builder(staged, spec)
            if out.height:
                rows.append(out)
                applied.added[spec.source] = applied.added.get(spec.source, 0) + out.height
            if records:
                bad = mention_quarantine(staged, spec, table)
                if bad.height:
                    refused.append(bad)
                    applied.quarantined[spec.source] = applied.quarantined.get(spec.source, 0) + bad.height
    touched = pl.concat(keys) if keys else pl.DataFrame(schema=dict.fromkeys(KEY, pl.Utf8))
    applied.keys = touched.height
    commit = state(plan.sources, plan.fingerprint)
    targets = [(silver_path(home, table), rows, canonical.SCHEMAS[table])]
    if records:  # the quarantine first: a night stopped after it leaves the two at different states
        targets.insert(0, (quarantine_mentions_path(home, table), refused, MENTION_QUARANTINE_SCHEMA))
    for path, parts, schema in targets:
        target = open_delta(path)
        assert target is not None  # the plan is incremental only when the table has a recorded state
        deleted = delete_keys(target, touched)
        if path == targets[-1][0]:
            applied.deleted = deleted
        if parts:
            arrow_schema = to_arrow(pl.DataFrame(schema=schema)).schema
            data = pl.concat([p.select(list(schema)).cast(schema) for p in parts], how="vertical")
            append(path, to_arrow(data).cast(arrow_schema), commit_properties=commit)
        else:
            target.update_incremental()
            staging_changes.record_state(target, commit)
    return applied
