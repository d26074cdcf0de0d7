"""Incremental staging: a night restages only the bronze rows it changed, and keeps the staging model by MERGE.

Why it gives what a full rebuild gives: staging is row-local -- one live bronze row becomes one staged row or one
quarantine row, whatever the other rows are (:func:`models.staging.stage.stage`). Every bronze write (an append, a
MERGE of changed rows, a soft delete) adds files to the Delta table; a row written since the version silver was built
from is therefore in a file of bronze's current snapshot that was not in that version's snapshot. Restaging the rows
of those files (a MERGE rewrites a file's unchanged rows too: restaging them gives the same rows) and replacing their
keys in the staging model and its quarantine -- deleting the keys that are gone or now quarantined -- leaves both
tables equal to a rebuild from every live row. Keys of files that left the snapshot are replaced too, so a row
physically removed from bronze (bronze never does that, a repaired table might) also leaves silver.

When that reasoning does not hold, the build is full, and the report says why: no earlier build; the staging rules
changed (the spec, the deployment's crosswalks, the standardizers' code or reference data -- a fingerprint of all of
them is kept with the build); the bronze version the last build read is no longer in bronze's log; the staging model
and its quarantine were left at different bronze versions (a night that stopped between the two commits); or the
night changed more than :data:`FULL_SHARE` of bronze's rows, where one streaming pass is cheaper than a MERGE.

The state lives in the tables' own commit metadata (``qst.bronze_version``, ``qst.staging_fingerprint``), written in
the same atomic commit as the rows: a failed night leaves the previous state and is redone whole the next time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from connectors.bronze.deltafiles import add_actions
from lake.deployment import current_deployment
from lake.storage import Location, storage_options
from models.staging.spec import StagingSpec
from models.staging.stage import SourceInfo, source_pk

if TYPE_CHECKING:
    from deltalake import DeltaTable

__all__ = [
    "FULL_SHARE",
    "BronzeChanges",
    "Plan",
    "bronze_changes",
    "built_with",
    "commit_state",
    "drift_rows",
    "merge_rows",
    "plan",
    "record_state",
    "staging_fingerprint",
    "staging_state",
    "touched_keys",
]

#: Above this share of bronze's rows changed in one night, the build is full: a MERGE rewrites the files it touches,
#: and past this point that is most files anyway.
FULL_SHARE = 0.3

VERSION_KEY = "qst.bronze_version"
FINGERPRINT_KEY = "qst.staging_fingerprint"
TOMBSTONE = "qst_tombstone"

_MODELS = Path(__file__).resolve().parent
#: What staging's result depends on besides the rows and the spec: the engine, the standardizers, their data.
_RULE_SOURCES = (_MODELS / "staging", _MODELS / "standardize", _MODELS / "data")


@cache
def _code_digest() -> str:
    digest = hashlib.sha256()
    for folder in _RULE_SOURCES:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in {".py", ".csv"}:
                digest.update(path.relative_to(_MODELS).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def staging_fingerprint(spec: StagingSpec, info: SourceInfo) -> str:
    """A digest of everything a staged row depends on other than its bronze row: the spec, what the engine knows of
    the source (key, time zone), the deployment's crosswalks and the staging code and reference data. Two builds
    with the same fingerprint stage the same row the same way."""
    digest = hashlib.sha256(_code_digest().encode())
    digest.update(spec.model_dump_json().encode())
    digest.update(json.dumps([info.department, info.asset, info.table, list(info.primary_key)]).encode())
    digest.update(json.dumps([info.is_file_drop, str(info.timezone)]).encode())
    crosswalks = current_deployment().crosswalks
    for path in sorted(crosswalks.glob("*.csv")) if crosswalks.is_dir() else []:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _state(table: DeltaTable) -> tuple[int, str] | None:
    """The bronze version and fingerprint recorded by the table's last commit, if it recorded them."""
    last = table.history(1)
    if not last:
        return None
    version, fingerprint = last[0].get(VERSION_KEY), last[0].get(FINGERPRINT_KEY)
    if version is None or fingerprint is None:
        return None
    return int(version), str(fingerprint)


def staging_state(table: DeltaTable) -> tuple[int, str] | None:
    """The bronze version a staging model stands at and the fingerprint of its rules, as its last build recorded."""
    return _state(table)


def record_state(table: DeltaTable, properties: Any) -> None:
    """An empty commit that records a build's state where the build changed no row."""
    from lake.delta import arrow_schema

    table.create_write_transaction(
        [], mode="append", schema=arrow_schema(table), commit_properties=properties
    )


def built_with(table: DeltaTable) -> str | None:
    """The fingerprint of the rules the table's last build used, if it recorded one."""
    state = _state(table)
    return None if state is None else state[1]


def commit_state(bronze_version: int, fingerprint: str) -> Any:
    """The commit properties that record a build's state, for the write or MERGE that commits its rows."""
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata={VERSION_KEY: str(bronze_version), FINGERPRINT_KEY: fingerprint})


@dataclass(frozen=True)
class BronzeChanges:
    """The rows bronze wrote since the last build: those of ``files`` whose ``_qst_batch_id`` is one of ``batches``
    (live, or flagged deleted), ``changed_rows`` of bronze's ``total_rows``."""

    files: list[str]
    batches: list[str]
    changed_rows: int
    total_rows: int

    def filter(self) -> Any:
        import pyarrow.dataset as pds

        # cast: delta-rs' files hold string views where the table's schema says string, and pyarrow's statistics
        # pushdown has no kernel comparing the two
        return pds.field("_qst_batch_id").cast(pa.string()).isin(pa.array(self.batches, pa.string()))


@dataclass(frozen=True)
class Plan:
    """What a build does: ``changes`` is None for a full build, whose reason is ``why_full``."""

    bronze_version: int
    fingerprint: str
    changes: BronzeChanges | None
    why_full: str = ""


#: Commits that change no row (delta-rs' operation names): a table property (the key snapshot's time), a column added
#: (null in every older row: a spec that reads it has another fingerprint), a compaction, a vacuum.
NO_ROW_CHANGED = frozenset({"SET TBLPROPERTIES", "ADD COLUMN", "OPTIMIZE", "VACUUM START", "VACUUM END"})


def _file_rows(table: DeltaTable) -> dict[str, int]:
    actions = add_actions(table)
    return dict(zip(actions["path"].to_list(), actions["num_records"].fill_null(0).to_list(), strict=True))


def _batches_between(bronze: DeltaTable, since: int) -> list[str] | str:
    """The loads (``qst.batch_id``) of bronze's commits after version ``since`` up to the table's loaded version, or
    why they cannot be known."""
    version = bronze.version()
    batches: set[str] = set()
    # the newest commits down to ``since`` only: a table's whole log grows night after night
    for commit in bronze.history(max(version - since, 1)):
        if not since < commit.get("version", -1) <= version:
            continue
        batch = commit.get("qst.batch_id")
        if batch is not None:
            batches.add(str(batch))
        elif commit.get("operation") not in NO_ROW_CHANGED:
            return f"bronze commit {commit.get('version')} ({commit.get('operation')}) records no load"
    return sorted(batches)


def bronze_changes(bronze: DeltaTable, since: int) -> BronzeChanges | str:
    """The rows bronze wrote after version ``since`` up to the version ``bronze`` is loaded at, or why they cannot
    be known (then a build must be full).

    Why batch ids and not new files: a MERGE of a few changed rows rewrites every file that holds one, and changes
    scattered over a large table touch most files; every write of a row (append, update, flag deleted or back)
    sets its ``_qst_batch_id`` to the load's, so the rows of the new files that carry a load after ``since`` are
    exactly the rows written since (a rewritten, unchanged row keeps its older load)."""
    if since > bronze.version():
        return f"bronze is at version {bronze.version()}, older than the {since} silver was built from"
    batches = _batches_between(bronze, since)
    if isinstance(batches, str):
        return batches
    now = _file_rows(bronze)
    total = sum(now.values())
    try:
        from lake.delta import delta_table

        before = set(_file_rows(delta_table(bronze.table_uri, version=since)))
    except Exception as exc:  # a version whose log was cleaned up: nothing to compare against
        return f"bronze version {since} is no longer readable ({type(exc).__name__})"
    # the form DeltaTable.file_uris() gives: a plain path for a local table, the URI otherwise
    root = bronze.table_uri.removeprefix("file://").rstrip("/")
    files = [f"{root}/{p}" for p in now if p not in before]
    changes = BronzeChanges(files, batches, 0, total)
    if files and batches:
        from lake.delta import table_dataset

        changed = table_dataset(bronze, files).count_rows(filter=changes.filter())
        changes = BronzeChanges(files, batches, changed, total)
    return changes


def plan(
    bronze: DeltaTable, staging: DeltaTable | None, quarantine: DeltaTable | None, fingerprint: str
) -> Plan:
    """Incremental when the staging model and its quarantine were built by the same rules from one bronze version,
    every bronze commit since names its load (:func:`bronze_changes`), and the night changed at most
    :data:`FULL_SHARE` of bronze's rows; else full, and why."""
    version = bronze.version()

    def full(why: str) -> Plan:
        return Plan(version, fingerprint, None, why)

    if staging is None or quarantine is None:
        return full("no earlier build")
    state, other = _state(staging), _state(quarantine)
    if state is None:
        return full("the last build recorded no bronze version")
    if state != other:
        return full("the staging model and its quarantine were left at different bronze versions")
    since, built_with = state
    if built_with != fingerprint:
        return full("the staging rules changed (spec, crosswalks or standardizers)")
    changes = bronze_changes(bronze, since)
    if isinstance(changes, str):
        return full(changes)
    total = changes.total_rows
    if total and changes.changed_rows > FULL_SHARE * total:
        return full(f"{changes.changed_rows:,} of {total:,} bronze rows changed (more than {FULL_SHARE:.0%})")
    return Plan(version, fingerprint, changes)


def touched_keys(frames: list[pl.DataFrame], info: SourceInfo) -> pl.Series:
    """The source keys (``source_pk``) of bronze rows, live or deleted: every key whose staging row is replaced."""
    keys = [f.select(source_pk(info).alias("source_pk")) for f in frames if f.height]
    if not keys:
        return pl.Series("source_pk", [], dtype=pl.Utf8)
    return pl.concat(keys)["source_pk"].unique()


def merge_rows(
    target: DeltaTable, rows: pl.DataFrame, keys: pl.Series, properties: Any, writer_properties: Any = None
) -> dict[str, int]:
    """Replace the rows of ``keys`` in ``target`` by ``rows`` (keyed by ``source_pk``, at most one row per key) in one
    MERGE commit: a key with a row is updated or inserted, a key without one is deleted. The commit records the
    build's state (``properties``); when nothing needs to change, an empty commit records it, so the staging model
    and its quarantine always name the same bronze version."""
    from lake.delta import arrow_schema, to_arrow

    schema = arrow_schema(target)
    present = rows["source_pk"] if rows.height else pl.Series("source_pk", [], dtype=pl.Utf8)
    gone = keys.filter(~keys.is_in(present.implode()))
    tombstones = pl.DataFrame({"source_pk": gone}, schema={"source_pk": pl.Utf8})
    source = pl.concat(
        [
            rows.with_columns(pl.lit(False).alias(TOMBSTONE)),
            tombstones.with_columns(pl.lit(True).alias(TOMBSTONE)),
        ],
        how="diagonal_relaxed",
    )
    before = target.version()
    metrics: dict[str, int] = {}
    if source.height:
        fields = [*schema, pa.field(TOMBSTONE, pa.bool_())]
        arrow = to_arrow(source.select([f.name for f in fields])).cast(pa.schema(fields))
        quoted = f"s.`{TOMBSTONE}`"
        metrics = dict(
            target.merge(
                arrow,
                predicate="t.source_pk = s.source_pk",
                source_alias="s",
                target_alias="t",
                streamed_exec=True,
                writer_properties=writer_properties,
                commit_properties=properties,
            )
            .when_matched_delete(predicate=quoted)
            .when_matched_update_all(predicate=f"NOT {quoted}", except_cols=[TOMBSTONE])
            .when_not_matched_insert_all(predicate=f"NOT {quoted}", except_cols=[TOMBSTONE])
            .execute()
        )
        target.update_incremental()
    if target.version() == before:
        record_state(target, properties)
    return metrics


def drift_rows(path: Location, before: int) -> int:
    """How many rows of the table at ``path`` differ between version ``before`` and now, by key (``source_pk``):
    changed, gone or new. A weekly full rebuild reports it for tables an incremental night kept: anything but 0
    is drift the incremental path let in (an expected one: a resident ID whose birth date was in the future when
    first staged)."""

    def digests(version: int | None) -> pl.LazyFrame:
        scan = pl.scan_delta(str(path), version=version, storage_options=storage_options(path))
        return scan.select("source_pk", pl.struct(pl.exclude("source_pk")).hash(seed=0).alias("digest"))

    joined = digests(before).join(digests(None), on="source_pk", how="full", coalesce=True)
    differ = pl.col("digest").ne_missing(pl.col("digest_right"))
    return int(joined.select(differ.sum()).collect().item())
