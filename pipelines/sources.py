"""Dagster definitions built from ``sources.yaml``.

* :func:`source_table_specs` -- the departments' legacy tables and file drops as external assets: one
  :class:`dagster.AssetSpec` per source table and per file drop, keyed ``legacy/<department>/<asset>``.
  Quanshitong does not materialize them; they stand for the data the departments own, upstream of the
  bronze assets.
* :func:`load_config` -- the validated configuration, or :class:`SourcesLoadError` naming the file.

Only wiring lives here; what the configuration means is defined in :mod:`connectors.config`.
Metadata never holds a connection URL, a password or an environment variable's value.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from connectors.config import load_sources
from connectors.config_schema import DepartmentConfig, FileDropConfig, SourcesConfig, TableConfig
from lake.yamlfile import ConfigError

__all__ = [
    "LEGACY_PREFIX",
    "SourcesLoadError",
    "legacy_asset_key",
    "legacy_group_name",
    "load_config",
    "source_table_specs",
]

LEGACY_PREFIX = "legacy"


def legacy_asset_key(department: str, asset: str) -> dg.AssetKey:
    """Key of a department's legacy table or file drop: ``legacy/<department>/<asset>``."""
    return dg.AssetKey([LEGACY_PREFIX, department, asset])


def legacy_group_name(department: str) -> str:
    return f"{LEGACY_PREFIX}_{department}"


def _department_label(dept: DepartmentConfig) -> str:
    return f"{dept.title} [{dept.key}]" if dept.title else dept.key


def _connection_kind(dept: DepartmentConfig) -> str:
    return "sqlite" if dept.connection is not None and dept.connection.kind == "sqlite" else "sql"


def _table_spec(dept: DepartmentConfig, table: TableConfig) -> dg.AssetSpec:
    assert table.asset is not None  # always set once the configuration is validated
    source = f"{table.source_schema}.{table.name}" if table.source_schema else table.name
    metadata: dict[str, object] = {
        "department": dept.key,
        "source_table": table.name,
        "primary_key": dg.MetadataValue.json(list(table.primary_key)),
        "mode": table.mode,
    }
    if table.source_schema:
        metadata["source_schema"] = table.source_schema
    if table.cursor:
        metadata["cursor"] = table.cursor
        metadata["cursor_kind"] = table.cursor_kind
    return dg.AssetSpec(
        key=legacy_asset_key(dept.key, table.asset),
        description=(
            f"Legacy table `{source}` of {_department_label(dept)}, read "
            f"{'incrementally' if table.is_incremental else 'in full (snapshot)'} into bronze. "
            "Owned by the department; Quanshitong only reads it."
        ),
        group_name=legacy_group_name(dept.key),
        kinds={_connection_kind(dept)},
        metadata=metadata,
    )


def _file_spec(dept: DepartmentConfig, drop: FileDropConfig) -> dg.AssetSpec:
    metadata: dict[str, object] = {
        "department": dept.key,
        "folder": str(drop.folder),
        "pattern": drop.pattern,
        "format": drop.format,
        "header_rows": drop.header_rows,
    }
    if drop.format == "csv":
        metadata["encoding"] = drop.encoding
    if drop.sheet is not None:
        metadata["sheet"] = str(drop.sheet)
    return dg.AssetSpec(
        key=legacy_asset_key(dept.key, drop.name),
        description=(
            f"File drop `{drop.name}` of {_department_label(dept)}: {drop.format} files matching "
            f"`{drop.pattern}`. Owned by the department; Quanshitong only reads it."
        ),
        group_name=legacy_group_name(dept.key),
        kinds={"file", drop.format},
        metadata=metadata,
    )


def source_table_specs(config: SourcesConfig) -> list[dg.AssetSpec]:
    """External asset specs for every source table and file drop, in configuration order."""
    specs = [_table_spec(dept, table) for dept, table in config.iter_tables()]
    specs += [_file_spec(dept, drop) for dept, drop in config.iter_files()]
    return specs


class SourcesLoadError(RuntimeError):
    """The sources configuration could not be loaded; ``path`` is the file that was tried."""

    def __init__(self, path: Path, detail: str):
        self.path = path
        super().__init__(
            f"Quanshitong cannot load its sources configuration {str(path)!r}:\n{detail}\n"
            "(set QST_SOURCES to the sources.yaml to use, or QST_HOME to the data folder "
            "holding estate/sources.yaml)"
        )


def load_config(path: str | Path) -> SourcesConfig:
    """The validated ``sources.yaml`` at ``path``; :class:`SourcesLoadError` naming it if that file is
    missing or invalid."""
    path = Path(path)
    try:
        return load_sources(path)
    except ConfigError as exc:
        raise SourcesLoadError(path, str(exc)) from None
