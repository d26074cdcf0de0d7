"""Everything Quanshitong defines, assembled for one ``sources.yaml``.

Kept apart from :mod:`pipelines.definitions` (the code location, which loads the configured file when
imported) so that tests, ``qst run`` and benchmarks can build definitions for any configuration.
Each domain owns its pieces: ``pipelines/sources.py`` the departments' legacy tables,
``pipelines/bronze.py`` the bronze assets, their partitions, schedule and file-drop sensor;
``pipelines/silver.py`` the staging models and canonical tables; ``pipelines/quality.py`` the scorecard
and the Data Docs; ``pipelines/gold.py`` entity resolution and the golden records; ``pipelines/marts.py`` the analysts' DuckDB file;
``pipelines/exports.py`` one export per bureau of ``exports.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from connectors.config_schema import SourcesConfig
from pipelines import bronze, exports, gold, marts, quality, silver
from pipelines.home import exports_path
from pipelines.resources import LakeResource
from pipelines.sources import load_config, source_table_specs


def build_definitions(
    config: SourcesConfig,
    *,
    home: Path | None = None,
    retries: bool = True,
    exports_config: Path | None = None,
    executor: dg.ExecutorDefinition | None = None,
) -> dg.Definitions:
    """All definitions for a validated configuration; ``home`` overrides ``QST_HOME`` for the lake;
    ``exports_config`` is the bureaus' entitlements (default :func:`pipelines.home.exports_path`);
    ``executor`` runs the jobs (default Dagster's; :func:`pipelines.celery_night.night_executor` for
    ``execution.mode: celery``)."""
    nightly = bronze.nightly_job()
    silver_assets = silver.silver_assets(config)
    downstream = []
    # entity resolution needs the canonical tables, the marts need gold, the exports the marts
    if silver_assets:
        # the staging tables built here: a mart's optional department inputs show as lineage when they exist
        staged = frozenset(key.path[-1] for asset in silver_assets for key in asset.keys)
        downstream = [
            *gold.gold_assets(silver.configured_specs(config)),
            *marts.marts_assets(silver_tables=staged),
            *exports.export_assets(exports_config or exports_path(home)),
        ]
    return dg.Definitions(
        assets=[
            *source_table_specs(config),
            *bronze.bronze_assets(config, retries=retries),
            *silver_assets,
            *quality.quality_assets(config),
            *downstream,
        ],
        jobs=[nightly],
        schedules=[bronze.nightly_schedule(nightly)],
        sensors=[bronze.file_drop_sensor(config)] if list(config.iter_files()) else [],
        resources={"lake": LakeResource(home=str(home) if home else "")},
        executor=executor,
    )


def load_definitions(path: str | Path, *, home: Path | None = None) -> dg.Definitions:
    """The code location's definitions: with the Celery executor when the deployment's ``platform.yaml``
    says ``execution.mode: celery``, so a run launched from the UI or the schedule goes to the workers too."""
    from lake.platform import platform_settings
    from pipelines.celery_night import night_executor

    executor = night_executor(platform_settings().execution)
    return build_definitions(load_config(path), home=home, executor=executor)
