"""Reading and writing the lake's Delta tables: the few ways every layer does it, written once.

Reads go through a plain pyarrow dataset over the snapshot's Parquet files (DESIGN.md: no DuckDB delta
extension offline). Writes from Polars go through Arrow with ``CompatLevel.oldest()``: Delta wants plain
(large) strings, not Polars' string views. deltalake and pyarrow.dataset are imported only when used:
together with pandas (which pyarrow.dataset pulls in) they cost tens of MB and a second of start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

if TYPE_CHECKING:
    import pyarrow.dataset as pds
    from deltalake import DeltaTable

__all__ = [
    "append",
    "arrow_schema",
    "open_delta",
    "overwrite",
    "read_dataset",
    "read_frame",
    "replace_where",
    "table_dataset",
    "to_arrow",
]


def open_delta(path: Path) -> DeltaTable | None:
    """The Delta table at ``path``, or None when none was committed there yet."""
    from deltalake import DeltaTable

    return DeltaTable(str(path)) if DeltaTable.is_deltatable(str(path)) else None


def arrow_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def table_dataset(table: DeltaTable, files: list[str] | None = None) -> pds.Dataset:
    # A plain Parquet dataset over the snapshot's files (delta-rs writes no deletion vectors and no
    # column mapping); files older than an added column read it as null. pyarrow's own local filesystem
    # also avoids an abort at interpreter exit seen with delta-rs' Python filesystem handler.
    import pyarrow.dataset as pds  # only when needed: it imports pandas (about 65 MB)

    return pds.dataset(
        table.file_uris() if files is None else files, schema=arrow_schema(table), format="parquet"
    )


def read_dataset(path: Path) -> pds.Dataset | None:
    """The committed table as a pyarrow dataset (None when there is no table yet) — how other modules
    read the lake (DuckDB registers it; DESIGN.md: no delta extension offline)."""
    table = open_delta(path)
    return None if table is None else table_dataset(table)


def read_frame(path: Path) -> pl.DataFrame | None:
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


def overwrite(path: Path | str, data: pl.DataFrame | Any, **options: Any) -> None:
    """Replace the table's content *and schema* in one commit: for tables rebuilt whole every night, whose
    columns may change with the code that builds them."""
    from deltalake import write_deltalake

    write_deltalake(path, _arrow_data(data), mode="overwrite", schema_mode="overwrite", **options)


def append(path: Path | str, data: pl.DataFrame | Any, **options: Any) -> None:
    """Add rows in one commit (creating the table on the first write): for logs nobody rewrites."""
    from deltalake import write_deltalake

    write_deltalake(path, _arrow_data(data), mode="append", **options)


def replace_where(path: Path | str, data: pl.DataFrame | Any, predicate: str, **options: Any) -> None:
    """Replace exactly the rows matching ``predicate`` with ``data``, in one atomic commit, so a rerun of
    a night (or a day) never doubles its rows. The table must exist."""
    from deltalake import write_deltalake

    write_deltalake(path, _arrow_data(data), mode="overwrite", predicate=predicate, **options)
