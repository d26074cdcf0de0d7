"""Bronze: land a source table's Arrow stream in its Delta table -- nothing lost, nothing doubled.

One Delta table per source table at ``<home>/lake/bronze/<department>/<asset>``. A reader delivers the
source columns (renamed and typed, timestamps in UTC) plus the nullable string column ``_qst_flags``;
this module adds the lineage columns and upserts by primary key. No Dagster and no source SQL here.

Upsert rules
============
* A key not in the table is inserted. A key whose ``_qst_row_hash`` is unchanged is *not* rewritten
  (no file churn, no commit at all when nothing changed); its ``_qst_batch_id``/``_qst_extracted_at``
  keep saying when this version first landed. A changed row is replaced (Delta MERGE) and
  ``_qst_deleted_at`` cleared; so is an unchanged row that was flagged deleted (it is back at the source).
* The same key several times in one stream (a look-back re-read, a row updated while being read): the
  last occurrence wins -- inside a chunk by de-duplication, across chunks because a later read of a key
  is always committed after the earlier one.
* Keys compare null-safely. A row whose key has a null (legacy tables without constraints) is identified
  by its key *and* its row hash: re-reading it never doubles it and two different such rows are both kept.

The package
===========
:mod:`.load` the public operations and their crash safety and locking; :mod:`.merge` a load's chunks and
commits; :mod:`.keys` key snapshots and deletion flags; :mod:`.schema` schema drift; :mod:`.rowhash` the row
hash; :mod:`.deltafiles` what is read of the Delta log and files; :mod:`.columns` the lineage columns.
Lake paths are :func:`lake.layout.bronze_path`; other layers read bronze with :func:`lake.delta.read_dataset`.
"""

from __future__ import annotations

from .columns import FLAGS, LINEAGE
from .load import (
    DEFAULT_MAX_ROWS_PER_COMMIT,
    last_key_snapshot,
    mark_deleted,
    recast_text_column,
    replace_snapshot,
    stored_type,
    table_info,
    upsert_batches,
    watermark,
)
from .merge import LoadResult
from .rowhash import ROW_HASH_VERSION
from .schema import SchemaChange, SchemaDriftError

__all__ = [
    "DEFAULT_MAX_ROWS_PER_COMMIT",
    "FLAGS",
    "LINEAGE",
    "ROW_HASH_VERSION",
    "LoadResult",
    "SchemaChange",
    "SchemaDriftError",
    "last_key_snapshot",
    "mark_deleted",
    "recast_text_column",
    "replace_snapshot",
    "stored_type",
    "table_info",
    "upsert_batches",
    "watermark",
]
