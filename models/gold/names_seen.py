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
        "name": pl.Utf8(),  # the name as written the last night it was seen (the comparison form is the key)
        "name_comparison": pl.Utf8(),
        "name_is_branch": pl.Boolean(),
        "name_region": pl.Utf8(),
        "name_legal_form": pl.Utf8(),
        "first_seen": pl.Date(),
        "last_seen": pl.Date(),
    }
)
_KEY = ["record_id", *NAME_COLUMNS]
Frame = pl.DataFrame | pl.LazyFrame


def _named(tonight: Frame) -> pl.LazyFrame:
    """Tonight's records with a name long enough to be evidence, one row per distinct (record, name)."""
    tonight = tonight.lazy()
    shown = ["name"] if "name" in tonight.collect_schema().names() else []
    return (
        tonight.select(*_KEY, *shown)
        .filter(pl.col("name_comparison").str.len_chars() >= MIN_COMPARISON_CHARS)
        .with_columns(pl.col("name_is_branch").fill_null(False))
        .unique(_KEY, keep="first", maintain_order=True)
    )


def observe(seen: Frame | None, tonight: Frame, night: dt.date) -> pl.DataFrame:
    """The names seen until ``night`` included: ``seen`` (the table as it was) with tonight's names of
    ``tonight`` (``record_id`` and :data:`NAME_COLUMNS` of the canonical enterprise records). Frames or lazy
    frames: the 1M city's 14M names are read and grouped by Polars' streaming engine, never held twice."""
    now = _named(tonight).with_columns(first_seen=pl.lit(night), last_seen=pl.lit(night))
    parts = [pl.LazyFrame(schema=SCHEMA), now]
    if seen is not None:
        seen = seen.lazy()
        parts.append(seen.select([c for c in SCHEMA if c in seen.collect_schema().names()]))
    cast = [p.cast({c: t for c, t in SCHEMA.items() if c in p.collect_schema().names()}) for p in parts]
    return (
        pl.concat(cast, how="diagonal")
        .group_by(_KEY)
        .agg(
            # the name as written the last night it was seen
            pl.col("name").sort_by("last_seen", nulls_last=False).drop_nulls().last(),
            pl.col("first_seen").min(),
            pl.col("last_seen").max(),
        )
        .sort(_KEY, nulls_last=True)
        .select(list(SCHEMA))
        .collect(engine="streaming")
    )


def former_names(seen: Frame | None, tonight: Frame, night: dt.date) -> pl.DataFrame:
    """``record_id`` and :data:`NAME_COLUMNS` of the names a record of ``tonight`` bore on a night before
    ``night`` and does not bear tonight. A record gone tonight has no former names (nothing to attach them to)."""
    empty = pl.DataFrame(schema={c: SCHEMA[c] for c in _KEY})
    if seen is None:
        return empty
    now = _named(tonight)
    earlier = seen.lazy().filter(pl.col("first_seen") < night).select(_KEY)
    return (
        earlier.join(now.select("record_id").unique(), on="record_id", how="semi")
        .join(now.select(_KEY), on=_KEY, how="anti", nulls_equal=True)
        .sort(_KEY, nulls_last=True)
        .collect(engine="streaming")
        .cast({c: SCHEMA[c] for c in _KEY})
    )


def former_names_by_entity(seen: Frame | None, tonight: Frame, night: dt.date, ids: Frame) -> pl.DataFrame:
    """``entity_id, observed_former_names`` (the names as written, distinct, sorted): the former names of each
    entity's records (:func:`former_names`), for the golden record's 曾用名. ``ids``: ``record_id, entity_id``."""
    formers = former_names(seen, tonight, night)
    if seen is None or formers.height == 0:
        return pl.DataFrame(schema={"entity_id": pl.Utf8, "observed_former_names": pl.List(pl.Utf8)})
    return (
        formers.lazy()
        .join(seen.lazy().select(*_KEY, "name"), on=_KEY, nulls_equal=True)
        .join(ids.lazy().select("record_id", "entity_id"), on="record_id")
        .filter(pl.col("name").is_not_null())
        .group_by("entity_id")
        .agg(observed_former_names=pl.col("name").unique().sort())
        .sort("entity_id")
        .collect(engine="streaming")
    )
