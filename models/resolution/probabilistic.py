"""The probabilistic pass of entity resolution (Splink 5 on DuckDB, or on Spark: ``linkage`` in platform.yaml), on
top of the deterministic clusters.

What :func:`resolve` does, in order:

1. **Profiles** (:func:`profiles_of`). Splink sees each deterministic cluster's *distinct* values of the compared
   columns once (a "profile"), not every record: the 3,000-enterprise demo has 42,795 enterprise records in 15,429
   profiles, and the registry, tax and social-security copies of one enterprise are one row. Pinyin and name
   prefixes are derived per profile (pinyin once per distinct character); the character bigram sets in DuckDB
   when the profiles are loaded (:func:`load_profiles`). Profiles of clusters without a validated key are
   numbered first (see the blocking notes in :mod:`models.resolution.splink_settings`).
2. **The model** is loaded from ``trained/<kind>.json`` (Splink's settings JSON with the trained m and u, written by
   :func:`train` / ``qst er-train``), so a nightly run does not retrain: it is deterministic and fast. When the file
   is missing the run trains on its own data and warns.
3. **Predict** the blocked pairs at or above the review threshold; keep pairs that join two *different*
   deterministic clusters and never a branch with a non-branch.
4. **Decide**: the ambiguity guard (:func:`unambiguous`) drops weak pairs that would bridge groups; then the
   must-link decisions and the kept pairs, strongest first, join clusters unless the join would put two different
   validated keys (two USCCs, two resident IDs) or a cannot-link pair in one entity (:func:`constrained`).
5. **Clusters**: connected components over the deterministic clusters and the kept edges. A deterministic cluster is
   never split; Splink and reviewers only join clusters.

Memory, which sets the design at scale (1M enterprises: 14.4M enterprise records, 4.9M profiles, 2 cores): the
nightly path (:func:`prepare_silver`) reads silver one group of columns at a time — the keys for the deterministic
pass, then the compared values, the record ids only after Splink — the profiles' text leaves Python for DuckDB
(bounded by :data:`DUCKDB_MEMORY_LIMIT`, spilling to disk) before Splink runs, and only ids, probabilities and
levels come back. Measured: peak 15.2 GB before, about 6 GB after (docs/benchmarks.md).

The prior (the probability that two random profiles match) is **recomputed per run**, not taken from the file: the
number of true matches among the compared pairs grows with the number of keyless profiles (each has a few true
partners), the number of pairs with the square of the profiles, so a prior trained on one estate is wrong by the
ratio of sizes on another (10x between a 100k and a 1M estate, which moves every probability). The trained prior
and the counts it was trained on are kept in the file (``quanshitong`` section) and rescaled:
``prior = trained_prior * (keyless / keyless_trained) * (P_trained (P_trained - 1)) / (P (P - 1))``, then taken over
the pairs that can match (a keyless profile on one side: two validated keys never join), which raises it by
:func:`models.resolution.splink_model.relevant_pairs_factor` (x12.6 for persons, x2.4 for enterprises on the 100k
city, the same at 1M): with the prior averaged over pairs that cannot match, person pairs of a masked ID and a
name scored 0.84 at 100k and 0.35 at 1M while 99 % of them were right, and recall drifted with the city's size.

Decisions (must-link / cannot-link, by record id, either order) are honoured as follows: must-link adds an edge
(rule ``"must_link"`` on records linked by nothing else); cannot-link forbids the two records' deterministic clusters
from ending in one entity: the Splink pairs that would join them are dropped (status ``"cannot_link"``), whichever
path they take. A validated identifier outranks a reviewer: when the deterministic pass itself put the two records
together, they stay together and the decision is reported in :attr:`Resolution.conflicts`; likewise a must-link
between two clusters with different validated keys is not applied and is reported.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from lake.platform import LinkageSettings, platform_settings
from models.resolution import names as name_pass
from models.resolution import splink_settings
from models.resolution.graph import components, constrained, decision_frame, unambiguous
from models.resolution.profiles import (
    PROFILE_COLUMNS,
    Kind,
    in_order,
    profile_values,
    profiles_of,
    related_cluster_of,
)
from models.resolution.splink_model import (
    load_model,
    load_profiles,
    predict_pairs,
    profile_counts,
    train_on_profiles,
    trained_dir,
)

#: Columns of the canonical tables the probabilistic pass reads (callers can read only these from silver).
COLUMNS: dict[str, list[str]] = {
    "enterprise": [
        "record_id",
        "name_comparison",
        "name_is_branch",
        "uscc",
        "uscc_status",
        "link_org_code",
        "division_code",
        "phone",
        "legal_rep_name",
        "address",
    ],
    "person": [
        "record_id",
        "name_comparison",
        "id_number",
        "id_number_status",
        "id_number_birth_date",
        "id_number_sex",
        "id_number_masked",
        "phone",
        "division_code",
        "address",
        "related_record_id",
    ],
}


_PAIR_SCHEMA = pl.Schema(
    {
        "record_id_l": pl.Utf8(),
        "record_id_r": pl.Utf8(),
        "match_probability": pl.Float64(),
        "match_weight": pl.Float64(),
        "levels": pl.Utf8(),
        "status": pl.Utf8(),
    }
)
_CONFLICT_SCHEMA = pl.Schema(
    {"record_id_l": pl.Utf8(), "record_id_r": pl.Utf8(), "decision": pl.Utf8(), "reason": pl.Utf8()}
)


@dataclass
class Resolution:
    """The outcome of :func:`resolve`.

    ``records``: ``record_id, cluster, rule, match_probability, match_weight, keyed``, every input record once:
    ``rule`` is the deterministic rule that linked it, else ``"splink"`` (a kept Splink pair), else ``"must_link"``
    (a reviewer's decision only), else null (alone); the probability and weight are those of the strongest kept
    Splink pair of its profile (null when none); ``keyed``: its entity holds a validated key (two keyed entities
    are two, whatever a reviewer says).
    ``pairs``: ``record_id_l, record_id_r, match_probability, match_weight, levels, status``: the kept Splink links
    (``"linked"``), the review band (``"review"``), the pairs the ambiguity guard or a validated key dropped
    (``"ambiguous"``), the pairs a cannot-link decision dropped (``"cannot_link"``) and the applied must-links
    (``"must_link"``). A pair is between two profiles, named by a representative record each (the smallest
    record id of the profile); ``levels`` is JSON ``{"comparison": "level label"}``, the levels that produced the
    weight.
    ``conflicts``: ``record_id_l, record_id_r, decision, reason``: decisions that could not be honoured.
    ``timings``: seconds per phase.
    """

    records: pl.DataFrame
    pairs: pl.DataFrame
    conflicts: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_CONFLICT_SCHEMA))
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Prepared:
    """What Splink and the graph decisions need of a kind's records (:func:`prepare_resolution`,
    :func:`prepare_silver`): the profiles, and per record, in one fixed order, its deterministic ``cluster``, the
    ``rule`` that made it and its ``profile_id``. The record ids come last (``record_ids``: the ids in that order,
    or how to read them): the 14 million ids of the 1M city are read after Splink has finished, not held through it.
    :func:`resolve_prepared` spends it (it drops the profiles' text once DuckDB has it)."""

    kind: Kind
    profiles: pl.DataFrame
    rows: pl.DataFrame  # cluster, rule, profile_id
    record_ids: pl.Series | Callable[[], pl.Series]
    timings: dict[str, float] = field(default_factory=dict)
    #: ``cluster_a, cluster_b``: deterministic clusters the name pass joins (:mod:`models.resolution.names`)
    name_edges: pl.DataFrame | None = None


#: What the name pass reads besides the profile values (which hold its comparison form, branch flag and key).
_NAME_EXTRA = [c for c in name_pass.NAME_COLUMNS if c not in PROFILE_COLUMNS["enterprise"]]


def _has_names(kind: Kind, columns: list[str] | set[str]) -> bool:
    return kind == "enterprise" and set(name_pass.NAME_COLUMNS) <= set(columns)


#: The order resolution reads a kind's records in, whatever order the canonical table's files hold them, so that its
#: ties (cluster numbers, profile ids, which record of a profile stands for it) break the same way every night: the
#: source key first, because the record id begins with the department's and table's names, which another city
#: (or a renamed one) spells otherwise.
READ_ORDER = ("source_pk", "record_id")


def _canonical_clusters(det: pl.DataFrame) -> pl.DataFrame:
    """Deterministic clusters numbered by their first record in :data:`READ_ORDER` (the rows' order)."""
    return (
        det.with_row_index("__row")
        .with_columns(cluster=pl.col("__row").min().over("cluster").cast(pl.Int64))
        .drop("__row")
    )


def prepare_resolution(
    records: pl.DataFrame, deterministic: pl.DataFrame, kind: Kind, related: pl.DataFrame | None = None
) -> Prepared:
    """The first half of :func:`resolve`, on records in memory: the profiles (:func:`profiles_of`) and each
    record's cluster, rule and profile. ``related`` (persons): ``record_id, cluster`` of the enterprise records."""
    started = time.perf_counter()
    order = [c for c in READ_ORDER if c in records.columns]
    if order:
        records = records.sort(order, maintain_order=True)
    det = _canonical_clusters(in_order(records, deterministic))
    rel = related_cluster_of(records, related)["related_cluster"] if kind == "person" else None
    values = records.select(profile_values(kind, records.columns))
    extra = records.select(_NAME_EXTRA) if _has_names(kind, records.columns) else None
    edges = name_pass.profile_edges(values, extra, det["cluster"])
    profiles, profile_id = profiles_of(values, det["cluster"], kind, rel)
    return Prepared(
        kind,
        profiles,
        det.with_columns(profile_id=profile_id),
        records["record_id"],
        {"prepare": time.perf_counter() - started},
        edges,
    )


def prepare_silver(
    home: Path | str,
    kind: Kind,
    related: pl.DataFrame | None = None,
    former_names: pl.DataFrame | None = None,
) -> Prepared:
    """The first half of :func:`resolve`, reading ``kind``'s canonical table from the silver of ``home`` one group
    of columns at a time (one Delta version throughout): the deterministic keys, then the compared columns, the
    record ids only when :func:`resolve_prepared` needs them. Why: the whole table at once is what made the
    resolution of the 1M city peak at 11 GB (14.4M records, 17 string columns: ~5 GB as Polars frames).
    ``former_names`` (enterprises): ``record_id`` and the name columns of names records bore on earlier nights
    (:mod:`models.gold.names_seen`), names of their clusters for the name pass."""
    from models.resolution.deterministic import ENTERPRISE_KEYS, PERSON_KEYS, clusters, key_columns
    from models.silver import scan_silver

    rules = ENTERPRISE_KEYS if kind == "enterprise" else PERSON_KEYS
    scan = scan_silver(Path(home), TABLES[kind])
    names = set(scan.collect_schema().names())
    timings: dict[str, float] = {}
    started = time.perf_counter()
    order = [c for c in READ_ORDER if c in names]
    perm = scan.select(pl.arg_sort_by(order)).collect().to_series() if order else None

    def read(columns: list[str] | list[pl.Expr]) -> pl.DataFrame:
        frame = scan.select(columns).collect()
        return frame if perm is None else frame.select(pl.all().gather(perm))

    timings["order"] = time.perf_counter() - started
    started = time.perf_counter()
    det = _canonical_clusters(clusters(read(key_columns(rules)), rules))
    timings["deterministic"] = time.perf_counter() - started
    started = time.perf_counter()
    rel = None
    if kind == "person":
        rel = related_cluster_of(read(["record_id", "related_record_id"]), related)["related_cluster"]
    values = read(profile_values(kind, names))
    timings["prepare"] = time.perf_counter() - started
    started = time.perf_counter()
    formers = None
    if former_names is not None and former_names.height:
        formers = name_pass.former_rows(
            read(["record_id"])["record_id"], det["cluster"], values, former_names
        )
    edges = name_pass.profile_edges(
        values, read(_NAME_EXTRA) if _has_names(kind, names) else None, det["cluster"], formers
    )
    timings["names"] = time.perf_counter() - started
    started = time.perf_counter()
    profiles, profile_id = profiles_of(values, det["cluster"], kind, rel)
    del values, rel
    timings["prepare"] += time.perf_counter() - started
    return Prepared(
        kind,
        profiles,
        det.with_columns(profile_id=profile_id),
        lambda: read(["record_id"])["record_id"],
        timings,
        edges,
    )


def resolve(
    records: pl.DataFrame,
    deterministic: pl.DataFrame,
    kind: Kind,
    related: pl.DataFrame | None = None,
    threshold: float | None = None,
    decisions: pl.DataFrame | None = None,
    model: dict | None = None,
    linkage: LinkageSettings | None = None,
) -> Resolution:
    """Resolve ``records`` (a canonical table, at least :data:`COLUMNS`), given their deterministic clusters
    (``record_id, cluster, rule`` from :func:`models.resolution.deterministic.link`). ``related``: for persons, the
    enterprise resolution (``record_id, cluster``), to compare a person by the enterprise it represents or works for.
    ``threshold``: the match probability a link needs, instead of the model's. ``decisions``: ``record_id_l,
    record_id_r, decision`` (``must_link`` | ``cannot_link``). ``model``: the trained model (Splink settings JSON),
    default ``trained/<kind>.json``. ``linkage``: the engine Splink runs on (default: the deployment's). The same
    as :func:`prepare_resolution`, then :func:`resolve_prepared`."""
    return resolve_prepared(
        prepare_resolution(records, deterministic, kind, related),
        threshold=threshold,
        decisions=decisions,
        model=model,
        linkage=linkage,
    )


def resolve_prepared(
    prepared: Prepared,
    threshold: float | None = None,
    decisions: pl.DataFrame | None = None,
    model: dict | None = None,
    linkage: LinkageSettings | None = None,
) -> Resolution:
    """The second half of :func:`resolve`: Splink's predictions, the guard, the decisions and the components.
    ``linkage``: the engine Splink predicts on, default the deployment's (``linkage`` of platform.yaml: DuckDB
    unless it says Spark); the same model gives the same pairs on both."""
    if linkage is None:
        linkage = platform_settings().linkage
    kind, profiles = prepared.kind, prepared.profiles
    timings: dict[str, float] = dict(prepared.timings)
    spec = splink_settings.MODELS[kind]
    link_at = spec["threshold"] if threshold is None else threshold
    review_at = min(spec["review_threshold"], link_at)
    started = time.perf_counter()
    if model is None:
        model = load_model(kind)
        if model is None:
            warnings.warn(
                f"no trained {kind} model in {trained_dir()}: training on this run's data "
                "(run `qst er-train` to save one)",
                stacklevel=2,
            )
            model = train_on_profiles(profiles, kind)
    timings["model"] = time.perf_counter() - started
    started = time.perf_counter()
    pairs = pl.DataFrame(
        schema={
            "profile_id_l": pl.Int64,
            "profile_id_r": pl.Int64,
            "match_probability": pl.Float64,
            "match_weight": pl.Float64,
            "levels": pl.Utf8,
        }
    )
    if profiles.height > 1:
        counts = profile_counts(profiles)
        con = load_profiles(profiles)
        # the compared text now lives in DuckDB: the graph decisions need only the ids and keys (the Prepared is spent)
        profiles = prepared.profiles = profiles.select("profile_id", "det_cluster", "key")
        try:
            pairs = predict_pairs(con, counts, kind, model, review_at, linkage)
        finally:
            con.close()
    timings["predict"] = time.perf_counter() - started
    started = time.perf_counter()
    ids = prepared.record_ids() if callable(prepared.record_ids) else prepared.record_ids
    if ids.len() != prepared.rows.height or ids.null_count():
        raise RuntimeError(
            f"{kind} resolution: {ids.len()} record ids ({ids.null_count()} null) for "
            f"{prepared.rows.height} records"
        )
    rows = prepared.rows.with_columns(record_id=ids)
    det, members = rows.select("record_id", "cluster", "rule"), rows.select("record_id", "profile_id")
    del ids
    timings["read ids"] = time.perf_counter() - started
    started = time.perf_counter()

    # nodes: deterministic clusters, numbered 0..n-1
    nodes = (
        det.select("cluster")
        .unique()
        .sort("cluster")
        .with_row_index("node")
        .with_columns(pl.col("node").cast(pl.Int64))
    )
    size = nodes.join(det.group_by("cluster").len(), on="cluster", maintain_order="left")["len"].to_numpy()
    node_keys = nodes.join(
        profiles.select(cluster="det_cluster", key="key").unique("cluster"),
        on="cluster",
        how="left",
        maintain_order="left",
    )
    key_codes = node_keys["key"].cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1).to_numpy()
    n = nodes.height
    p_node = (
        profiles.select("profile_id", cluster="det_cluster")
        .join(nodes, on="cluster")
        .select("profile_id", "node")
    )
    # the record that stands for a profile in a pair: its first in the read order (not the smallest id: see READ_ORDER)
    rep = members.group_by("profile_id").agg(rep=pl.col("record_id").first())
    pairs = (
        pairs.join(p_node.rename({"profile_id": "profile_id_l", "node": "a"}), on="profile_id_l")
        .join(p_node.rename({"profile_id": "profile_id_r", "node": "b"}), on="profile_id_r")
        .join(rep.rename({"profile_id": "profile_id_l", "rep": "record_id_l"}), on="profile_id_l")
        .join(rep.rename({"profile_id": "profile_id_r", "rep": "record_id_r"}), on="profile_id_r")
        # joins do not keep row order, and the greedy constraint pass breaks ties of probability by it:
        # a fixed order makes a rerun of a night give the same clusters
        .sort("profile_id_l", "profile_id_r")
    )
    candidates = pairs.filter(pl.col("match_probability") >= link_at)
    guard_ok = unambiguous(candidates, size, spec["strong_threshold"])
    candidates = candidates.with_columns(
        status=pl.when(guard_ok).then(pl.lit("linked")).otherwise(pl.lit("ambiguous"))
    )

    # decisions: record ids -> nodes
    dec = decision_frame(decisions)
    rec_node = det.select("record_id", "cluster").join(nodes, on="cluster").select("record_id", "node")
    dec = dec.join(
        rec_node.rename({"record_id": "record_id_l", "node": "a"}), on="record_id_l", how="left"
    ).join(rec_node.rename({"record_id": "record_id_r", "node": "b"}), on="record_id_r", how="left")
    conflicts = [
        dec.filter(pl.col("a").is_null() | pl.col("b").is_null()).select(
            "record_id_l", "record_id_r", "decision", reason=pl.lit("unknown record")
        )
    ]
    dec = dec.drop_nulls(["a", "b"])
    conflicts.append(
        dec.filter((pl.col("decision") == "cannot_link") & (pl.col("a") == pl.col("b"))).select(
            "record_id_l",
            "record_id_r",
            "decision",
            reason=pl.lit("validated identifiers put them together (deterministic pass)"),
        )
    )
    cannot = [
        (int(x), int(y))
        for x, y in dec.filter((pl.col("decision") == "cannot_link") & (pl.col("a") != pl.col("b")))
        .select("a", "b")
        .iter_rows()
    ]
    must = dec.filter((pl.col("decision") == "must_link") & (pl.col("a") != pl.col("b")))
    linked = candidates.filter(pl.col("status") == "linked")
    by_name = pl.DataFrame(schema={"a": pl.Int64, "b": pl.Int64})
    if prepared.name_edges is not None and prepared.name_edges.height:
        by_name = (
            prepared.name_edges.join(nodes.rename({"cluster": "cluster_a", "node": "a"}), on="cluster_a")
            .join(nodes.rename({"cluster": "cluster_b", "node": "b"}), on="cluster_b")
            .select("a", "b")
            .sort("a", "b")
        )
    edges = pl.concat(
        [
            must.select("a", "b", priority=pl.lit(2.0), src=pl.lit("must")),
            by_name.select("a", "b", priority=pl.lit(1.5), src=pl.lit("name")),
            linked.select("a", "b", priority=pl.col("match_probability"), src=pl.lit("splink")),
        ]
    )
    ok = constrained(n, key_codes, edges, cannot)
    must_ok = ok[: must.height]
    splink_ok = ok[must.height + by_name.height :]
    conflicts.append(
        must.filter(~pl.Series(must_ok, dtype=pl.Boolean)).select(
            "record_id_l",
            "record_id_r",
            "decision",
            reason=pl.lit("different validated identifiers or a cannot-link decision keep them apart"),
        )
    )
    # a dropped Splink edge: cannot_link when a cannot-link decision is what forbids it, else a key conflict
    cannot_nodes = np.array(cannot, dtype=np.int64).reshape(-1, 2)
    linked = linked.with_columns(ok=pl.Series(splink_ok, dtype=pl.Boolean))
    applied = edges.filter(pl.Series(ok, dtype=pl.Boolean))
    labels = (
        components(n, applied["a"].to_numpy(), applied["b"].to_numpy()) if n else np.empty(0, dtype=np.int64)
    )
    if len(cannot_nodes):
        # the edge would have joined the groups of a cannot-link pair
        ca, cb = labels[cannot_nodes[:, 0]], labels[cannot_nodes[:, 1]]
        forbidden = pl.DataFrame({"x": np.concatenate([ca, cb]), "y": np.concatenate([cb, ca])}).unique()
        linked = (
            linked.with_columns(
                x=pl.Series(labels[linked["a"].to_numpy()]), y=pl.Series(labels[linked["b"].to_numpy()])
            )
            .join(forbidden.with_columns(hit=pl.lit(True)), on=["x", "y"], how="left")
            .drop("x", "y")
        )
    else:
        linked = linked.with_columns(hit=pl.lit(None, pl.Boolean))
    linked = linked.with_columns(
        status=pl.when(pl.col("ok"))
        .then(pl.lit("linked"))
        .when(pl.col("hit"))
        .then(pl.lit("cannot_link"))
        .otherwise(pl.lit("ambiguous"))
    )
    timings["decide"] = time.perf_counter() - started
    started = time.perf_counter()

    # the pairs frame: kept links, review band, dropped pairs, applied must-links
    review = pairs.filter(pl.col("match_probability") < link_at).with_columns(status=pl.lit("review"))
    cols = list(_PAIR_SCHEMA)
    out_pairs = pl.concat(
        [
            linked.select(cols),
            candidates.filter(pl.col("status") == "ambiguous").select(cols),
            review.select(cols),
            must.filter(pl.Series(must_ok, dtype=pl.Boolean)).select(
                "record_id_l",
                "record_id_r",
                match_probability=pl.lit(None, pl.Float64),
                match_weight=pl.lit(None, pl.Float64),
                levels=pl.lit(None, pl.Utf8),
                status=pl.lit("must_link"),
            ),
        ],
        how="vertical_relaxed",
    )

    # per record: cluster, rule, the strongest kept Splink pair of its profile
    kept = linked.filter(pl.col("ok"))
    best = (
        pl.concat(
            [
                kept.select(profile_id="profile_id_l", p="match_probability", w="match_weight"),
                kept.select(profile_id="profile_id_r", p="match_probability", w="match_weight"),
            ]
        )
        .group_by("profile_id")
        .agg(match_probability=pl.col("p").max(), match_weight=pl.col("w").max())
    )
    must_nodes = applied.filter(pl.col("src") == "must")
    must_ids = pl.concat([must_nodes["a"], must_nodes["b"]]).unique().implode()
    name_nodes = applied.filter(pl.col("src") == "name")
    name_ids = pl.concat([name_nodes["a"], name_nodes["b"]]).unique().implode()
    out = rows.join(nodes, on="cluster", maintain_order="left")
    # an entity holding a validated key: a must-link with another keyed entity could not be honoured
    keyed = np.zeros(n, dtype=bool)
    keyed[labels[key_codes >= 0]] = True
    out = (
        out.with_columns(
            cluster=pl.Series(labels[out["node"].to_numpy()], dtype=pl.Int64),
            keyed=pl.Series(keyed[labels[out["node"].to_numpy()]], dtype=pl.Boolean),
        )
        .join(best, on="profile_id", how="left", maintain_order="left")
        .with_columns(
            rule=pl.when(pl.col("rule").is_not_null())
            .then("rule")
            .when(pl.col("node").is_in(name_ids))
            .then(pl.lit(name_pass.RULE))
            .when(pl.col("match_probability").is_not_null())
            .then(pl.lit("splink"))
            .when(pl.col("node").is_in(must_ids))
            .then(pl.lit("must_link"))
        )
        .select("record_id", "cluster", "rule", "match_probability", "match_weight", "keyed")
    )
    timings["components"] = time.perf_counter() - started
    conflict_frame = pl.concat(conflicts, how="vertical_relaxed").select(list(_CONFLICT_SCHEMA))
    return Resolution(records=out, pairs=out_pairs.select(cols), conflicts=conflict_frame, timings=timings)


def train(
    records: pl.DataFrame,
    deterministic: pl.DataFrame,
    kind: Kind,
    related: pl.DataFrame | None = None,
    *,
    seed: int = 1,
    max_pairs: float = 2e6,
) -> dict:
    """Retrain the model of ``kind`` on these records (u by random sampling, m and the prior by EM on the model's EM
    blocking rules) and return it as Splink's settings JSON (a dict), with a ``quanshitong`` section holding the
    counts the prior was trained on."""
    profiles = prepare_resolution(records, deterministic, kind, related).profiles
    return train_on_profiles(profiles, kind, seed=seed, max_pairs=max_pairs)


# ------------------------------------------------------------------------------------------------- reading, training

#: Silver table of each kind.
TABLES = {"enterprise": "int_enterprise_records", "person": "int_person_records"}


def read_records(home: Path | str, kind: Kind) -> pl.DataFrame:
    """The columns of ``kind``'s canonical table that resolution needs (deterministic keys and compared columns),
    read from the silver of ``home``: a 14-million-row table without its other columns."""
    from models import canonical
    from models.silver import read_silver

    schema = canonical.ENTERPRISE_SCHEMA if kind == "enterprise" else canonical.PERSON_SCHEMA
    keys = (
        [
            "source_department",
            "uscc",
            "uscc_status",
            "tin",
            "tin_kind",
            "tin_status",
            "link_org_code",
            "regno",
            "regno_status",
            "link_local_key",
        ]
        if kind == "enterprise"
        else []
    )
    wanted = [c for c in dict.fromkeys([*COLUMNS[kind], *keys]) if c in schema]
    return read_silver(Path(home), TABLES[kind], columns=wanted)
