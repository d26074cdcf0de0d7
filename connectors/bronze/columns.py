"""The columns bronze adds to every source table: lineage, and the reader's flags.

Source columns, ``_qst_flags`` (from the reader), then the lineage of :data:`LINEAGE`:

``_qst_source``       ``<department>.<table>`` the row came from
``_qst_batch_id``     the load (run id) that last *wrote* this version of the row
``_qst_extracted_at`` when that load extracted it (UTC)
``_qst_row_hash``     64-bit hash (``long``) of the row's source values (below)
``_qst_deleted_at``   null while the row exists at the source; when a key snapshot or a full snapshot
                      no longer saw the key. Rows are never physically deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

LINEAGE = ("_qst_source", "_qst_batch_id", "_qst_extracted_at", "_qst_row_hash", "_qst_deleted_at")


FLAGS = "_qst_flags"


UTC_TS = pa.timestamp("us", tz="UTC")


LINEAGE_FIELDS = [
    pa.field("_qst_source", pa.string()),
    pa.field("_qst_batch_id", pa.string()),
    pa.field("_qst_extracted_at", UTC_TS),
    pa.field("_qst_row_hash", pa.int64()),
    pa.field("_qst_deleted_at", UTC_TS),
]


RESERVED = frozenset((*LINEAGE, FLAGS))


def repeat_text(value: str, n: int) -> pa.Array:
    """``value`` ``n`` times, as a string array."""
    data = value.encode()
    if len(data) * n >= 2**31:
        return pa.repeat(value, n)
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(data))
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)])


def repeat_utc(moment: datetime, n: int) -> pa.Array:
    """``moment`` ``n`` times, as a UTC microsecond timestamp array."""
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return pa.Array.from_buffers(UTC_TS, n, [None, pa.py_buffer(np.full(n, micros, dtype=np.int64))])
