"""Profiles: what Splink compares of a kind's records. A profile is one deterministic cluster's distinct values of
the compared columns, so the registry, tax and social-security copies of one enterprise are one row for Splink (the
3,000-enterprise demo: 42,795 enterprise records in 15,429 profiles). Pinyin and name prefixes are derived per
profile (pinyin once per distinct character), the character bigram sets in DuckDB when the profiles are loaded
(:func:`models.resolution.splink_model.load_profiles`). Profiles of clusters without a validated key are numbered
first (see the blocking notes in :mod:`models.resolution.splink_settings`).
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from models.resolution import splink_settings

Kind = Literal["enterprise", "person"]

#: The compared columns that define a profile (besides the deterministic cluster).
PROFILE_COLUMNS = {
    "enterprise": [
        "name_comparison",
        "name_is_branch",
        "division_code",
        "phone",
        "legal_rep_name",
        "address",
    ],
    "person": [
        "name_comparison",
        "id_number",
        "birth_date",
        "id_number_sex",
        "id_number_masked",
        "phone",
        "division_code",
        "related_cluster",
        "address",
    ],
}

#: The character-bigram columns Splink compares (distinct bigrams of a text; a one-character text is its own
#: "bigram"), derived in DuckDB when the profiles are loaded (:func:`load_profiles`): ``derived <- source``.
BIGRAMS = {"name_bigrams": "name_comparison", "address_bigrams": "address"}


def bigram_sql(col: str) -> str:
    """DuckDB SQL for the distinct character bigrams of ``col``. DuckDB's ``length`` and ``substring`` count
    characters (``strlen`` counts bytes), so 张伟强 gives 张伟, 伟强 — not byte pairs."""
    return (
        f"CASE WHEN length({col}) <= 1 THEN [{col}] "
        f"ELSE list_distinct([substring({col}, i, 2) FOR i IN range(1, length({col}))]) END"
    )


def pinyin(names: pl.Series) -> pl.Series:
    """Toneless pinyin of each name, character by character: pypinyin runs once per distinct *character* (a few
    thousand), not per name (pypinyin costs ~0.3 ms a name: 100 s for the names of a million-enterprise estate). A
    polyphone gets its default reading, the same on both sides of a comparison, which is what matching needs."""
    from pypinyin import lazy_pinyin

    chars = names.drop_nulls().str.split("").explode().drop_nulls().unique()
    table = pl.DataFrame(
        {"c": chars, "p": ["".join(lazy_pinyin(c)) for c in chars.to_list()]},
        schema={"c": pl.Utf8, "p": pl.Utf8},
    )
    mapping = dict(zip(table["c"].to_list(), table["p"].to_list(), strict=True))
    return (
        names.str.split("")
        .list.eval(pl.element().replace_strict(mapping, default=pl.element()))
        .list.join("")
    )


def source_row(record_id: pl.Expr) -> pl.Expr:
    """The source row of a record id (``<department>.<asset>:<source_pk>:<role>`` without the role)."""
    return record_id.str.replace(r":[^:]*$", "")


def related_cluster_of(records: pl.DataFrame, related: pl.DataFrame | None) -> pl.DataFrame:
    """``record_id, related_cluster`` in the order of ``records``: the enterprise a person record is about — the one it represents
    (``related_record_id``), else the enterprise mentioned on the same source row (an insured person's employer)."""
    if related is None:
        return records.select("record_id", related_cluster=pl.lit(None, pl.Utf8))
    rel = related.select("record_id", cluster=pl.col("cluster").cast(pl.Utf8))
    same_row = rel.group_by(row=source_row(pl.col("record_id"))).agg(row_cluster=pl.col("cluster").min())
    base = records.select("record_id", "related_record_id")
    return (
        base.join(
            rel.rename({"record_id": "related_record_id", "cluster": "direct"}),
            on="related_record_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(row=source_row(pl.col("record_id")))
        .join(same_row, on="row", how="left", maintain_order="left")
        .select("record_id", related_cluster=pl.coalesce("direct", "row_cluster"))
    )


def validated_key(kind: Kind) -> pl.Expr:
    """A record's validated key (the smallest of :data:`splink_settings.CLUSTER_KEYS` it has), else null."""
    return pl.coalesce(
        [
            pl.when(pl.col(status) == "valid").then(pl.col(col)) if status else pl.col(col)
            for col, status in splink_settings.CLUSTER_KEYS[kind]
        ]
    )


def profile_values(kind: Kind, columns: list[str] | set[str]) -> list[pl.Expr]:
    """What a profile holds of a record, as expressions over the canonical table (which has ``columns``): the
    compared values of :data:`PROFILE_COLUMNS` (``related_cluster`` aside: it comes from the enterprise resolution) and the
    record's validated ``key``. Evaluated inside the silver scan, only these columns are ever materialized."""
    exprs: list[pl.Expr] = []
    for col in PROFILE_COLUMNS[kind]:
        if col == "related_cluster":
            continue
        if col == "birth_date":
            ids = pl.col("id_number")
            # the birth date of the ID, also when the ID fails its check (a typing error rarely hits the date)
            exprs.append(
                pl.coalesce(
                    pl.col("id_number_birth_date"),
                    pl.when(ids.str.len_chars() == 18)
                    .then(ids.str.slice(6, 8))
                    .str.strptime(pl.Date, "%Y%m%d", strict=False),
                )
                .cast(pl.Utf8)
                .alias(col)
            )
        elif col == "name_is_branch":
            exprs.append(pl.col(col).fill_null(False))
        elif (
            col not in columns
        ):  # e.g. id_number_masked, on records from before silver kept masked IDs' digits
            exprs.append(pl.lit(None, pl.Utf8).alias(col))
        else:
            exprs.append(pl.col(col))
    return [*exprs, validated_key(kind).alias("key")]


def in_order(records: pl.DataFrame, deterministic: pl.DataFrame) -> pl.DataFrame:
    """``cluster, rule`` of each record of ``records``, in its order: free when ``deterministic`` is in the same
    order (what :func:`models.resolution.deterministic.link` returns), a join otherwise."""
    if deterministic.height == records.height and deterministic["record_id"].equals(records["record_id"]):
        return deterministic.select("cluster", "rule")
    return (
        records.select("record_id")
        .join(
            deterministic.select("record_id", "cluster", "rule"),
            on="record_id",
            how="left",
            maintain_order="left",
        )
        .select("cluster", "rule")
    )


def profiles_of(
    values: pl.DataFrame, det_cluster: pl.Series, kind: Kind, related_cluster: pl.Series | None = None
) -> tuple[pl.DataFrame, pl.Series]:
    """The frame handed to Splink, one row per profile (``profile_id``, ``det_cluster``, ``keyless``, ``key``, the
    compared and derived columns), and the ``profile_id`` of each row of ``values`` (records, as
    :func:`profile_values` gives them), given each record's deterministic cluster and (persons) related enterprise
    cluster. A profile is (deterministic cluster, a 64-bit hash of the compared values); a hash collision could only
    merge two profiles of one deterministic cluster, which are linked anyway. The dedup runs on integers (which
    record first shows each profile), and the text is gathered once, for the profiles only."""
    cols = PROFILE_COLUMNS[kind]
    frame = values.with_columns(det_cluster=det_cluster.cast(pl.Int64))
    if kind == "person":
        frame = frame.with_columns(
            related_cluster=(
                pl.lit(None, pl.Utf8) if related_cluster is None else related_cluster.cast(pl.Utf8)
            )
        )
    hashes = frame.select("det_cluster", profile_hash=pl.struct(cols).hash(seed=0))
    keys = (
        frame.select("det_cluster", "key").drop_nulls("key").group_by("det_cluster").agg(pl.col("key").min())
    )
    ids = (
        hashes.with_row_index("first")
        .group_by("det_cluster", "profile_hash")
        .agg(pl.col("first").min())
        .join(keys, on="det_cluster", how="left")
        .with_columns(keyless=pl.col("key").is_null())
        .sort("keyless", "det_cluster", "profile_hash", descending=[True, False, False])
        .with_row_index("profile_id")
        .with_columns(pl.col("profile_id").cast(pl.Int64))
    )
    profile_id = hashes.join(
        ids.select("det_cluster", "profile_hash", "profile_id"),
        on=["det_cluster", "profile_hash"],
        how="left",
        maintain_order="left",
    )["profile_id"]
    profiles = ids.select("profile_id", "det_cluster", "keyless", "key").hstack(
        frame.select(cols).gather(ids["first"])
    )
    del frame, hashes, keys, ids
    model = splink_settings.MODELS[kind]
    name = pl.col("name_comparison")
    profiles = profiles.with_columns(
        name_prefix2=name.str.slice(0, 2),
        name_prefix1=name.str.slice(0, 1),
        name_block=pl.when(name.count().over("name_comparison") <= model["name_block_max"]).then(name),
    )
    if kind == "person":  # only the person model compares pinyin (homophone given names)
        # the digits a masked ID still shows (first 4, last 4), read the same way from a full ID: a court's
        # 4403**********123X can meet the registry's 440304198812301233 (splink_settings.PERSON, id_fragment)
        shown = pl.coalesce(pl.col("id_number"), pl.col("id_number_masked"))
        shown = pl.when(shown.str.len_chars() == 18).then(shown)
        profiles = profiles.with_columns(
            name_pinyin=pinyin(profiles["name_comparison"]),
            id_head=shown.str.slice(0, 4),
            id_tail=shown.str.slice(14, 4),
        )
    return profiles, profile_id
