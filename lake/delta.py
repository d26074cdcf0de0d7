"""Reading and writing the lake's Delta tables: the few ways every layer does it, written once.

Reads go through a plain pyarrow dataset over the snapshot's Parquet files (DESIGN.md: no DuckDB delta
extension offline). Writes from Polars go through Arrow with ``CompatLevel.oldest()``: Delta wants plain
(large) strings, not Polars' string views. deltalake and pyarrow.dataset are imported only when used:
together with pandas (which pyarrow.dataset pulls in) they cost tens of MB and a second of start-up.

Every function takes a :data:`lake.storage.Location`: a local folder, or a folder of an object store whose
``storage_options`` (endpoint, region, credentials from the environment) are passed here, once, so no caller
needs to know where the lake is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from lake.storage import Location, arrow_files, storage_options

if TYPE_CHECKING:
    import pyarrow.dataset as pds
    from deltalake import DeltaTable

__all__ = [
    "append",
    "arrow_schema",
    "delta_table",
    "exists",
    "open_delta",
    "overwrite",
    "read_dataset",
    "read_frame",
    "replace_where",
    "scan_pinned",
    "table_dataset",
    "to_arrow",
]


def exists(path: Location) -> bool:
    """Whether a Delta table was committed at ``path`` (on local disk: its ``_delta_log`` folder, no I/O
    beyond a stat; on an object store: delta-rs looks for the log)."""
    if isinstance(path, Path):
        return (path / "_delta_log").is_dir()
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(str(path), storage_options=storage_options(path))


def delta_table(path: Location | str, version: int | None = None) -> DeltaTable:
    """The Delta table at ``path`` (at ``version``, else the latest); raises if there is none."""
    from deltalake import DeltaTable

    return DeltaTable(str(path), version=version, storage_options=storage_options(path))


def open_delta(path: Location) -> DeltaTable | None:
    """The Delta table at ``path``, or None when none was committed there yet."""
    from deltalake import DeltaTable

    options = storage_options(path)
    return (
        DeltaTable(str(path), storage_options=options)
        if DeltaTable.is_deltatable(str(path), options)
        else None
    )


def scan_pinned(path: Location) -> pl.LazyFrame:
    """A lazy Polars scan of the table at its current version (several passes read the same rows)."""
    options = storage_options(path)
    return pl.scan_delta(str(path), version=delta_table(path).version(), storage_options=options)


def arrow_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def table_dataset(table: DeltaTable, files: list[str] | None = None) -> pds.Dataset:
    # A plain Parquet dataset over the snapshot's files (delta-rs writes no deletion vectors and no
    # column mapping); files older than an added column read it as null. pyarrow's own local filesystem
    # also avoids an abort at interpreter exit seen with delta-rs' Python filesystem handler.
    import pyarrow.dataset as pds  # only when needed: it imports pandas (about 65 MB)

    paths, filesystem = arrow_files(table.file_uris() if files is None else files)
    return pds.dataset(paths, schema=arrow_schema(table), format="parquet", filesystem=filesystem)


def read_dataset(path: Location) -> pds.Dataset | None:
    """The committed table as a pyarrow dataset (None when there is no table yet) — how other modules
    read the lake (DuckDB registers it; DESIGN.md: no delta extension offline)."""
    table = open_delta(path)
    return None if table is None else table_dataset(table)


def read_frame(path: Location) -> pl.DataFrame | None:
    """The whole committed table as a Polars frame, None when there is none (small tables only)."""
    dataset = read_dataset(path)
    if dataset is None:
        return None
    frame = pl.from_arrow(dataset.to_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def to_arrow(frame: pl.DataFrame) -> pa.Table:
    # Delta wants plain (large) strings, not Polars' string views
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def _arrow_data(data: pl.DataFrame | Any) -> Any:
    return to_arrow(data) if isinstance(data, pl.DataFrame) else data


def _with_storage(path: Location | str, options: dict[str, Any]) -> dict[str, Any]:
    if "storage_options" not in options:
        options = {**options, "storage_options": storage_options(path)}
    return options


def overwrite(path: Location | str, data: pl.DataFrame | Any, **options: Any) -> None:
    """Replace the table's content *and schema* in one commit: for tables rebuilt whole every night, whose
    columns may change with the code that builds them."""
    from deltalake import write_deltalake

    write_deltalake(
        str(path),
        _arrow_data(data),
        mode="overwrite",
        schema_mode="overwrite",
        **_with_storage(path, options),
    )


def append(path: Location | str, data: pl.DataFrame | Any, **options: Any) -> None:
    """Add rows in one commit (creating the table on the first write): for logs nobody rewrites."""
    from deltalake import write_deltalake

    write_deltalake(str(path), _arrow_data(data), mode="append", **_with_storage(path, options))


def replace_where(path: Location | str, data: pl.DataFrame | Any, predicate: str, **options: Any) -> None:
    """Replace exactly the rows matching ``predicate`` with ``data``, in one atomic commit, so a rerun of
    a night (or a day) never doubles its rows. The table must exist."""
    from deltalake import write_deltalake

    write_deltalake(
        str(path), _arrow_data(data), mode="overwrite", predicate=predicate, **_with_storage(path, options)
    )
