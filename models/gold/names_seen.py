"""The names each enterprise record has borne, night after night: a change log (曾用名) read off the sources' own
history, for a city whose registry keeps no change log.

Why: when an enterprise renames, its registry row is updated in place (same key, new name) while the other
departments go on filing it under the old name; if the registry row carries no identifier the others share (an
old registration number only, or no key at all), tonight nothing ties the row to its enterprise any more — last
night the shared name did. On a simulated city moved on five nights, every rename made a new golden enterprise
this way and the fragments grew night after night. The old name is not lost: the record bore it on an earlier
night. So gold keeps, per enterprise record, the distinct names it has borne (``first_seen``, ``last_seen``); a name
a record bore before and does not bear tonight is one of its former names, which the name pass
(:mod:`models.resolution.names`) counts as a name of the record's cluster, exactly as a declared former name.

The table (``HOME/lake/gold/names_seen``) is rewritten every night; first and last seen are a minimum and a
maximum, so a rerun of a night, or a backfill of an earlier one, gives the same table. It holds one row per named
record and per name it changed to, a column of names per record, not a copy of silver's rows.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from models.resolution.names import MIN_COMPARISON_CHARS, NAME_COLUMNS

SCHEMA = pl.Schema(
    {
        "record_id": pl.Utf8(),
        "name_comparison": pl.Utf8(),
        "name_is_branch": pl.Boolean(),
        "name_region": pl.Utf8(),
        "name_legal_form": pl.Utf8(),
        "first_seen": pl.Date(),
        "last_seen": pl.Date(),
    }
)
_KEY = ["record_id", *NAME_COLUMNS]


def _named(tonight: pl.DataFrame) -> pl.DataFrame:
    """Tonight's records with a name long enough to be evidence, one row per distinct (record, name)."""
    return (
        tonight.select(_KEY)
        .filter(pl.col("name_comparison").str.len_chars() >= MIN_COMPARISON_CHARS)
        .with_columns(pl.col("name_is_branch").fill_null(False))
        .unique(maintain_order=True)
    )


def observe(seen: pl.DataFrame | None, tonight: pl.DataFrame, night: dt.date) -> pl.DataFrame:
    """The names seen until ``night`` included: ``seen`` (the table as it was) with tonight's names of
    ``tonight`` (``record_id`` and :data:`NAME_COLUMNS` of the canonical enterprise records)."""
    now = _named(tonight).with_columns(first_seen=pl.lit(night), last_seen=pl.lit(night))
    parts = [pl.DataFrame(schema=SCHEMA), now.cast(SCHEMA)]
    if seen is not None:
        parts.append(seen.select(list(SCHEMA)).cast(SCHEMA))
    return (
        pl.concat(parts)
        .group_by(_KEY)
        .agg(pl.col("first_seen").min(), pl.col("last_seen").max())
        .sort(_KEY, nulls_last=True)
        .select(list(SCHEMA))
    )


def former_names(seen: pl.DataFrame | None, tonight: pl.DataFrame, night: dt.date) -> pl.DataFrame:
    """``record_id`` and :data:`NAME_COLUMNS` of the names a record of ``tonight`` bore on a night before
    ``night`` and does not bear tonight. A record gone tonight has no former names (nothing to attach them to)."""
    empty = pl.DataFrame(schema={c: SCHEMA[c] for c in _KEY})
    if seen is None or seen.height == 0:
        return empty
    now = _named(tonight)
    earlier = seen.filter(pl.col("first_seen") < night).select(_KEY)
    return (
        earlier.join(now.select("record_id").unique(), on="record_id", how="semi")
        .join(now, on=_KEY, how="anti", nulls_equal=True)
        .sort(_KEY, nulls_last=True)
    )
