"""Build, publish and prune one bureau's nightly export package.

A package is what a bureau (委办局) receives for one date: for each table it is entitled to, a Parquet file
and a CSV file (for spreadsheet users, in the bureau's encoding: UTF-8 with BOM or GB18030; cells a
spreadsheet would run as a formula neutralized, :mod:`models.exports.write`), a ``manifest.json`` (row count,
sha256 and schema of every file, the lake versions the marts were built from, when, under which entitlement
version), its Ed25519 signature ``manifest.json.sig`` and the signer's ``public_key.pem``
(:mod:`models.exports.signing`), and a ``README.md`` in Chinese and English that says what each column means.
Entitlements come from ``exports.yaml`` (:mod:`models.exports.entitlements`).

How the data is selected
    One read-only DuckDB connection to the marts file.  Per table a single query: the entitled columns only
    (every identifier validated and quoted), the structured row filters as SQL with bound parameters, the
    protections (:mod:`models.exports.protect`) as vectorized functions on the connection, and ``ORDER BY
    ALL`` on the *exported* values -- so the files are deterministic, and the row order says nothing about
    the clear values behind masks and hashes.  Rows stream to the writers in batches (bounded memory).

Determinism (a re-run for a date gives byte-identical data files and README)
    Rows are re-cut into Parquet row groups of a fixed size, whatever sizes DuckDB hands out; CSV text does
    not depend on batching; the README has no clock.  Only ``built_at`` in the manifest changes.

Publishing: never half a package, at any instant
    A package is built in ``<bureau>/.builds/<date>.<id>/`` (a hidden sibling), every file and the folder
    fsynced, then published by pointing the symlink ``<bureau>/<date>`` at it: a new link is created
    under a temporary name and ``rename``d over the old one.  POSIX ``rename`` replaces a symlink
    atomically, so at every instant ``<date>`` is either the old complete package or the new complete
    one.  A folder cannot be swapped that way (``rename`` onto a non-empty folder fails; ``renameat2
    (RENAME_EXCHANGE)`` is Linux-only, unsupported by some filesystems, and not in Python), and "rename
    the old aside, rename the new in" leaves an instant with no package at all.
    A reader should resolve the link once (``realpath``) and read everything from there, as
    :func:`models.exports.verify.verify_package` does: a replaced or pruned build is unpublished at once
    (the link moves or goes) but deleted only at the bureau's *next* export run, so a reader who resolved
    the link keeps a consistent package until then.  A crash at any point leaves the previous link and
    its package untouched; the orphaned build is removed by the next run.
    Runs for the same bureau are serialized by an ``flock`` on ``<bureau>/.lock``.

Retention
    After publishing, only the ``retention`` most recent dates stay published per bureau (by date, so a
    backfill of a date older than the window is unpublished at once).

Audit
    ``EXPORTS_ROOT/audit.jsonl`` gets one JSON line per event, appended under an ``flock`` and fsynced:
    ``published`` (bureau, date, tables with rows and file digests, the manifest's sha256, entitlement
    version, when, what was pruned) and ``failed`` (bureau, date, the error).  It never holds a secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from lake.delta import delta_table, exists
from lake.layout import lake_root
from lake.storage import Location
from models.exports.entitlements import (
    SHARING_EN,
    ExportError,
    ExportsConfig,
    entitlement_version,
)
from models.exports.plan import ExportPlan, make_plan, versions_in_lake
from models.exports.protect import KeyedHasher, resolve_key
from models.exports.publish import (
    AUDIT_LOG,
    BUILDS,
    LOCK,
    MANIFEST,
    PACKAGE_FORMAT,
    README,
    append_audit,
    bureau_lock,
    collect_garbage,
    fsync_dir,
    list_packages,
    package_path,
    prune_packages,
    publish_package,
    read_audit,
    sha256_and_sync,
    utc_now,
)
from models.exports.readme import readme_text
from models.exports.results import BureauOutcome, PackageResult, TableResult
from models.exports.signing import PUBLIC_KEY_FILE, SIGNATURE, public_pem, signing_key, signing_section
from models.exports.write import write_export_table

__all__ = [
    "AUDIT_LOG",
    "MANIFEST",
    "PACKAGE_FORMAT",
    "README",
    "BureauOutcome",
    "PackageResult",
    "TableResult",
    "export_all",
    "export_bureau",
    "list_packages",
    "package_path",
    "prune_packages",
    "read_audit",
]


# ---------------------------------------------------------------------------------------------------------
# the entry points


#: Gold tables a bureau may be entitled to that the marts file does not carry (the analysts' file holds no
#: full identifiers): read from the lake at the Delta version the marts were built from (``meta_build``).
GOLD_TABLES = ("dim_enterprise", "dim_person", "entity_crosswalk")


def _open_marts(marts: Path, lake: Location | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the marts file, with the gold tables it lacks registered from ``lake``
    (default: the ``lake`` folder beside the marts file) at the versions in its ``meta_build``, so that a
    package is built from one consistent state of the lake."""
    if not marts.is_file():
        raise ExportError(f"the marts file {marts} does not exist (build the marts first)")
    try:
        con = duckdb.connect(str(marts), read_only=True)
    except duckdb.Error as exc:
        raise ExportError(f"cannot open the marts file {marts} read-only: {exc}") from None
    con.execute("SET enable_progress_bar = false")  # the commands print their own progress
    lake = lake if lake is not None else lake_root(marts.parent)
    present = {
        r[0].lower()
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
        ).fetchall()
    }
    versions: dict[str, int] = {}
    if "meta_build" in present:
        versions = {
            str(t): int(v)
            for t, v in con.execute(
                "SELECT lake_table, delta_version FROM meta_build WHERE delta_version IS NOT NULL"
            ).fetchall()
        }
    for name in GOLD_TABLES:
        path = lake / "gold" / name
        if name in present or not exists(path):
            continue
        try:
            table = delta_table(path, version=versions.get(f"gold/{name}"))
        except Exception as exc:
            con.close()
            raise ExportError(
                f"cannot read the gold table {path} at version "
                f"{versions.get(f'gold/{name}', 'latest')}: {exc}"
            ) from None
        con.register(name, table.to_pyarrow_dataset())
    return con


def export_bureau(
    config: ExportsConfig,
    bureau: str,
    *,
    marts: str | Path,
    exports_root: str | Path,
    date: dt.date,
    environ: Mapping[str, str] | None = None,
    now: Callable[[], dt.datetime] = utc_now,
) -> PackageResult:
    """Build and publish one bureau's package for ``date`` (replacing one published for that date), prune by
    retention, and audit.  Raises :class:`ExportError` (missing table, column or secret ...) or an OS error.
    A failure before the swap publishes nothing: the package published for the date, if any, stays as it
    was.  A failure after it (fsyncing the folder, pruning, the audit line) leaves the new package published
    and whole, and is still raised.  Every failure is audited as ``failed``."""
    started = time.perf_counter()
    root = Path(exports_root)
    try:
        return _export_bureau(config, bureau, Path(marts), root, date, environ, now, started)
    except Exception as exc:
        append_audit(
            root,
            {
                "event": "failed",
                "at": now().isoformat(),
                "bureau": bureau,
                "date": date.isoformat(),
                "error": f"{type(exc).__name__}: {exc}",
            },
        )
        raise


def _export_bureau(
    config: ExportsConfig,
    bureau: str,
    marts: Path,
    root: Path,
    date: dt.date,
    environ: Mapping[str, str] | None,
    now: Callable[[], dt.datetime],
    started: float,
) -> PackageResult:
    config.bureau(bureau)
    hasher = KeyedHasher(resolve_key(config.hmac_key_env, environ)) if config.needs_hmac(bureau) else None
    signer = signing_key(config.signing_key_env, environ)
    public = signer.public_key()
    version = entitlement_version(config, bureau)
    formats = config.formats_of(bureau)
    encoding = config.csv_encoding_of(bureau)
    bureau_dir = root / bureau
    con = _open_marts(marts)
    try:
        plans, withheld, catalog = make_plan(con, config, bureau, date)
        lake = versions_in_lake(con, catalog)
        bureau_dir.mkdir(parents=True, exist_ok=True)
        with bureau_lock(bureau_dir / LOCK):
            collect_garbage(bureau_dir)
            build = bureau_dir / BUILDS / f"{date.isoformat()}.{uuid.uuid4().hex[:12]}"
            build.mkdir(parents=True)
            try:
                results: list[TableResult] = []
                entries: list[dict[str, Any]] = []
                for serial, plan in enumerate(plans):
                    try:
                        rows, files = write_export_table(con, plan, build, formats, encoding, hasher, serial)
                    except (duckdb.Error, pa.ArrowException, pl.exceptions.PolarsError) as exc:
                        raise ExportError(f"bureau {bureau}: table {plan.table}: {exc}") from exc
                    results.append(
                        TableResult(
                            plan.ent.output_name,
                            plan.table,
                            plan.ent.sharing,
                            rows,
                            tuple(f["path"] for f in files),
                        )
                    )
                    entries += files
                (build / README).write_text(
                    readme_text(config, bureau, date, version, plans, results, withheld, encoding, public),
                    encoding="utf-8",
                )
                (build / PUBLIC_KEY_FILE).write_text(public_pem(public), encoding="ascii")
                entries += [{"path": README, "format": "readme"}, {"path": PUBLIC_KEY_FILE, "format": "pem"}]
                for entry in entries:
                    entry["sha256"], entry["bytes"] = sha256_and_sync(build / entry["path"])
                manifest = _manifest(
                    config, bureau, date, version, now(), lake, plans, results, withheld, entries, marts
                )
                manifest["signing"] = signing_section(public)
                manifest_bytes = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
                for name, data in ((MANIFEST, manifest_bytes), (SIGNATURE, signer.sign(manifest_bytes))):
                    with open(build / name, "wb") as f:
                        f.write(data)
                        f.flush()
                        os.fsync(f.fileno())
                fsync_dir(build)
                fsync_dir(build.parent)
                replaced = publish_package(bureau_dir, build, date)
            finally:
                # whatever failed, a build the date's link does not point at is removed (a failure after the
                # swap, e.g. fsyncing the folder, leaves the new package published and whole)
                if os.path.realpath(bureau_dir / date.isoformat()) != os.path.realpath(build):
                    shutil.rmtree(build, ignore_errors=True)
            pruned = prune_packages(root, bureau, config.retention_of(bureau))
    finally:
        con.close()
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    result = PackageResult(
        bureau,
        date,
        package_path(root, bureau, date),
        build,
        tuple(results),
        tuple(withheld),
        version,
        manifest_sha,
        replaced,
        tuple(pruned),
        time.perf_counter() - started,
    )
    append_audit(
        root,
        {
            "event": "published",
            "at": manifest["built_at"],
            "bureau": bureau,
            "date": date.isoformat(),
            "entitlement_version": version,
            "package": f"{bureau}/{date.isoformat()}",
            "build": os.path.relpath(build, root),
            "manifest_sha256": manifest_sha,
            "signed_by": manifest["signing"]["fingerprint"],
            "replaced": replaced,
            "pruned": list(pruned),
            "tables": [
                {
                    "name": r.name,
                    "source_table": r.source_table,
                    "sharing": r.sharing,
                    "rows": r.rows,
                    "files": {e["path"]: e["sha256"] for e in entries if e.get("table") == r.name},
                }
                for r in results
            ],
            "withheld": [w["table"] for w in withheld],
        },
    )
    return result


def _manifest(
    config: ExportsConfig,
    bureau: str,
    date: dt.date,
    version: str,
    built_at: dt.datetime,
    lake: list[dict[str, Any]],
    plans: list[ExportPlan],
    results: list[TableResult],
    withheld: list[dict[str, Any]],
    entries: list[dict[str, Any]],
    marts: Path,
) -> dict[str, Any]:
    tables = []
    for plan, res in zip(plans, results, strict=True):
        ent = plan.ent
        tables.append(
            {
                "name": res.name,
                "source_table": plan.table,
                "sharing": ent.sharing,
                "sharing_en": SHARING_EN[ent.sharing],
                "purpose": ent.purpose,
                "agreement": ent.agreement,
                "valid_until": ent.valid_until.isoformat() if ent.valid_until else None,
                "rows_filter": [c.describe() for c in ent.rows or []],
                "rows": res.rows,
                "columns": [
                    {"name": c.output, "from": c.source, "protection": c.rule.describe()}
                    for c in plan.columns
                ],
                "withheld_columns": [
                    name for name, rule in (ent.columns or {}).items() if rule.protect == "drop"
                ],
                "files": list(res.files),
            }
        )
    return {
        "format": PACKAGE_FORMAT,
        "bureau": bureau,
        "bureau_title": config.bureau(bureau).title,
        "department": config.department_of(bureau),
        "date": date.isoformat(),
        "built_at": built_at.isoformat(),
        "entitlement_version": version,
        "source": {"marts": marts.name},
        "lake_versions": lake,
        "tables": tables,
        "withheld": withheld,
        "files": sorted(entries, key=lambda e: e["path"]),
    }


def export_all(
    config: ExportsConfig,
    *,
    marts: str | Path,
    exports_root: str | Path,
    date: dt.date,
    bureaus: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    on_outcome: Callable[[BureauOutcome], None] | None = None,
) -> list[BureauOutcome]:
    """Export every bureau (or those named), each isolated: a failing bureau is reported and the others still
    export."""
    outcomes = []
    for key in bureaus if bureaus is not None else list(config.bureaus):
        started = time.perf_counter()
        try:
            result = export_bureau(
                config, key, marts=marts, exports_root=exports_root, date=date, environ=environ
            )
            outcome = BureauOutcome(key, result=result, seconds=time.perf_counter() - started)
        except Exception as exc:
            message = str(exc) if isinstance(exc, ExportError) else f"{type(exc).__name__}: {exc}"
            outcome = BureauOutcome(key, error=message, seconds=time.perf_counter() - started)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes
