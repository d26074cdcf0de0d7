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
from pipelines.marts import MARTS_KEY
from pipelines.resources import LakeResource

EXPORTS_PREFIX = "exports"


def export_asset_key(bureau: str) -> dg.AssetKey:
    return dg.AssetKey([EXPORTS_PREFIX, bureau])


def _bureau_asset(config_path: Path, bureau: str, title: str) -> dg.AssetsDefinition:
    @dg.asset(key=export_asset_key(bureau), deps=[MARTS_KEY], group_name=EXPORTS_PREFIX, kinds={"parquet", "csv"},
              partitions_def=daily_partitions,
              description=f"{title}: the night's package in HOME/exports/{bureau}/<date> (Parquet, CSV, manifest.json, "
                          f"README.md), masked and hashed by {config_path.name}; verify with `qst verify-export`.")
    def _export(context: AssetExecutionContext, lake: LakeResource):
        from models.exports import export_bureau, load_entitlements

        home = lake.home_path()
        result = export_bureau(load_entitlements(config_path), bureau, marts=home / "marts.duckdb",
                               exports_root=home / "exports", date=dt.date.fromisoformat(context.partition_key))
        context.log.info(f"{bureau}: {result.rows:,} rows in {result.files} files -> {result.path}")
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(result.path)), "rows": result.rows, "files": result.files,
            "tables": dg.MetadataValue.json({t.name: t.rows for t in result.tables}),
            "withheld": dg.MetadataValue.json(list(result.withheld)),
            "manifest_sha256": result.manifest_sha256, "entitlement_version": result.entitlement_version,
            "replaced": result.replaced, "seconds": round(result.seconds, 1)})

    return _export


def export_assets(config_path: Path) -> list[dg.AssetsDefinition]:
    """One asset per bureau; an invalid ``exports.yaml`` raises its ConfigError (every problem, with lines)."""
    from models.exports import load_entitlements

    config = load_entitlements(config_path)
    return [_bureau_asset(config_path, key, bureau.title) for key, bureau in config.bureaus.items()]
