"""Bureau export assets: one per bureau of ``exports.yaml``, after the marts, isolated from each other.

Wiring only: :func:`models.exports.export_bureau` builds, publishes, prunes and audits a package. One asset per
bureau so that a bureau whose entitlement is broken (or whose secret is missing) fails alone, shows red alone in
the Dagster UI, and can be re-run alone; the package's date is the night's partition.
"""

# no `from __future__ import annotations`: Dagster inspects the `context` annotation at definition time

import datetime as dt
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.bronze import daily_partitions
from pipelines.gold import gold_asset_key
from pipelines.marts import MARTS_KEYS, marts_asset_key
from pipelines.resources import LakeResource

EXPORTS_PREFIX = "exports"


def export_asset_key(bureau: str) -> dg.AssetKey:
    return dg.AssetKey([EXPORTS_PREFIX, bureau])


def _marts_read(tables: list[str]) -> list[dg.AssetKey]:
    """The mart tables a bureau's package is made from (gold tables for the few it is entitled to from the
    lake), and ``meta_build`` (its manifest copies the lake versions): the lineage of one bureau, so that a
    broken mart holds back only the bureaus it feeds."""
    from models.exports.package import GOLD_TABLES

    keys = []
    for t in dict.fromkeys([*tables, "meta_build"]):
        if marts_asset_key(t) in MARTS_KEYS:
            keys.append(marts_asset_key(t))
        elif t in GOLD_TABLES:
            keys.append(gold_asset_key(t))
    return keys


def _bureau_asset(config_path: Path, bureau: str, title: str, tables: list[str]) -> dg.AssetsDefinition:
    @dg.asset(
        key=export_asset_key(bureau),
        deps=_marts_read(tables),
        group_name=EXPORTS_PREFIX,
        kinds={"parquet", "csv"},
        partitions_def=daily_partitions,
        description=f"{title}: the night's package in HOME/exports/{bureau}/<date> (Parquet, CSV, manifest.json, "
        f"README.md), masked and hashed by {config_path.name}; verify with `qst verify-export`.",
    )
    def _export(context: AssetExecutionContext, lake: LakeResource):
        from models.exports import export_bureau, load_entitlements

        home = lake.home_path()
        result = export_bureau(
            load_entitlements(config_path),
            bureau,
            marts=home / "marts.duckdb",
            exports_root=home / "exports",
            date=dt.date.fromisoformat(context.partition_key),
        )
        context.log.info(f"{bureau}: {result.rows:,} rows in {result.files} files -> {result.path}")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(result.path)),
                "rows": result.rows,
                "files": result.files,
                "tables": dg.MetadataValue.json({t.name: t.rows for t in result.tables}),
                "withheld": dg.MetadataValue.json(list(result.withheld)),
                "manifest_sha256": result.manifest_sha256,
                "entitlement_version": result.entitlement_version,
                "replaced": result.replaced,
                "seconds": round(result.seconds, 1),
            }
        )

    return _export


def export_assets(config_path: Path) -> list[dg.AssetsDefinition]:
    """One asset per bureau; an invalid ``exports.yaml`` raises its ConfigError (every problem, with lines)."""
    from models.exports import load_entitlements

    config = load_entitlements(config_path)
    return [
        _bureau_asset(config_path, key, bureau.title, [t.table for t in bureau.tables])
        for key, bureau in config.bureaus.items()
    ]
