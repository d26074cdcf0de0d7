"""The probabilistic pass of entity resolution (Splink 5, DuckDB backend), on top of the deterministic clusters.

What :func:`resolve` does, in order:

1. **Profiles** (:func:`profiles_of`). Splink sees each deterministic cluster's *distinct* values of the compared
   columns once (a "profile"), not every record: the 3,000-enterprise demo has 42,795 enterprise records in 15,429
   profiles, and the registry, tax and social-security copies of one enterprise are one row. Pinyin and name
   prefixes are derived per profile (pinyin once per distinct character); the character bigram sets in DuckDB
   when the profiles are loaded (:func:`_load_profiles`). Profiles of clusters without a validated key are
   numbered first (see the blocking notes in :mod:`models.resolution.splink_settings`).
2. **The model** is loaded from ``trained/<kind>.json`` (Splink's settings JSON with the trained m and u, written by
   :func:`train` / ``qst er-train``), so a nightly run does not retrain: it is deterministic and fast. When the file
   is missing the run trains on its own data and warns.
3. **Predict** the blocked pairs at or above the review threshold; keep pairs that join two *different*
   deterministic clusters and never a branch with a non-branch.
4. **Decide**: the ambiguity guard (:func:`_unambiguous`) drops weak pairs that would bridge groups; then the
   must-link decisions and the kept pairs, strongest first, join clusters unless the join would put two different
   validated keys (two USCCs, two resident IDs) or a cannot-link pair in one entity (:func:`_constrained`).
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
``prior = trained_prior * (keyless / keyless_trained) * (P_trained (P_trained - 1)) / (P (P - 1))``. On the
training data itself this is the trained prior, so loading the file gives the clusters training gives.

Decisions (must-link / cannot-link, by record id, either order) are honoured as follows: must-link adds an edge
(rule ``"must_link"`` on records linked by nothing else); cannot-link forbids the two records' deterministic clusters
from ending in one entity: the Splink pairs that would join them are dropped (status ``"cannot_link"``), whichever
path they take. A validated identifier outranks a reviewer: when the deterministic pass itself put the two records
together, they stay together and the decision is reported in :attr:`Resolution.conflicts`; likewise a must-link
between two clusters with different validated keys is not applied and is reported.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from models.resolution import splink_settings

Kind = Literal["enterprise", "person"]
log = logging.getLogger(__name__)

#: Where the trained models live (in the repository, reviewed like code).
TRAINED = Path(__file__).resolve().parent / "trained"

#: Columns of the canonical tables the probabilistic pass reads (callers can read only these from silver).
COLUMNS: dict[str, list[str]] = {
    "enterprise": ["record_id", "name_comparison", "name_is_branch", "uscc", "uscc_status", "link_org_code",
                   "division_code", "phone", "legal_rep_name", "address"],
    "person": ["record_id", "name_comparison", "id_number", "id_number_status", "id_number_birth_date",
               "id_number_sex", "id_number_masked", "phone", "division_code", "address", "related_record_id"],
}
#: The compared columns that define a profile (besides the deterministic cluster).
_PROFILE = {
    "enterprise": ["name_comparison", "name_is_branch", "division_code", "phone", "legal_rep_name", "address"],
    "person": ["name_comparison", "id_number", "birth_date", "id_number_sex", "id_number_masked", "phone",
               "division_code", "related_cluster", "address"],
}
#: DuckDB settings of the connection Splink uses: bounded memory, the machine's two cores.
DUCKDB_MEMORY_LIMIT = "3GB"
DUCKDB_THREADS = 2


@dataclass
class Resolution:
    """The outcome of :func:`resolve`.

    ``records``: ``record_id, cluster, rule, match_probability, match_weight``, every input record once: ``rule``
    is the deterministic rule that linked it, else ``"splink"`` (a kept Splink pair), else ``"must_link"`` (a
    reviewer's decision only), else null (alone); the probability and weight are those of the strongest kept
    Splink pair of its profile (null when none).
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


_PAIR_SCHEMA = {"record_id_l": pl.Utf8, "record_id_r": pl.Utf8, "match_probability": pl.Float64,
                "match_weight": pl.Float64, "levels": pl.Utf8, "status": pl.Utf8}
_CONFLICT_SCHEMA = {"record_id_l": pl.Utf8, "record_id_r": pl.Utf8, "decision": pl.Utf8, "reason": pl.Utf8}


# ---------------------------------------------------------------------------------------------------------- profiles

#: The character-bigram columns Splink compares (distinct bigrams of a text; a one-character text is its own
#: "bigram"), derived in DuckDB when the profiles are loaded (:func:`_load_profiles`): ``derived <- source``.
BIGRAMS = {"name_bigrams": "name_comparison", "address_bigrams": "address"}


def bigram_sql(col: str) -> str:
    """DuckDB SQL for the distinct character bigrams of ``col``. DuckDB's ``length`` and ``substring`` count
    characters (``strlen`` counts bytes), so 张伟强 gives 张伟, 伟强 — not byte pairs."""
    return (f"CASE WHEN length({col}) <= 1 THEN [{col}] "
            f"ELSE list_distinct([substring({col}, i, 2) FOR i IN range(1, length({col}))]) END")


def _pinyin(names: pl.Series) -> pl.Series:
    """Toneless pinyin of each name, character by character: pypinyin runs once per distinct *character* (a few
    thousand), not per name (pypinyin costs ~0.3 ms a name: 100 s for the names of a million-enterprise estate). A
    polyphone gets its default reading, the same on both sides of a comparison, which is what matching needs."""
    from pypinyin import lazy_pinyin

    chars = names.drop_nulls().str.split("").explode().drop_nulls().unique()
    table = pl.DataFrame({"c": chars, "p": ["".join(lazy_pinyin(c)) for c in chars.to_list()]},
                         schema={"c": pl.Utf8, "p": pl.Utf8})
    mapping = dict(zip(table["c"].to_list(), table["p"].to_list(), strict=True))
    return names.str.split("").list.eval(pl.element().replace_strict(mapping, default=pl.element())).list.join("")


def _row(record_id: pl.Expr) -> pl.Expr:
    """The source row of a record id (``<department>.<asset>:<source_pk>:<role>`` without the role)."""
    return record_id.str.replace(r":[^:]*$", "")


def _related_cluster(records: pl.DataFrame, related: pl.DataFrame | None) -> pl.DataFrame:
    """``record_id, related_cluster`` in the order of ``records``: the enterprise a person record is about — the one it represents
    (``related_record_id``), else the enterprise mentioned on the same source row (an insured person's employer)."""
    if related is None:
        return records.select("record_id", related_cluster=pl.lit(None, pl.Utf8))
    rel = related.select("record_id", cluster=pl.col("cluster").cast(pl.Utf8))
    same_row = rel.group_by(row=_row(pl.col("record_id"))).agg(row_cluster=pl.col("cluster").min())
    base = records.select("record_id", "related_record_id")
    return (base.join(rel.rename({"record_id": "related_record_id", "cluster": "direct"}), on="related_record_id",
                      how="left", maintain_order="left")
            .with_columns(row=_row(pl.col("record_id")))
            .join(same_row, on="row", how="left", maintain_order="left")
            .select("record_id", related_cluster=pl.coalesce("direct", "row_cluster")))


def _key(kind: Kind) -> pl.Expr:
    """A record's validated key (the smallest of :data:`splink_settings.CLUSTER_KEYS` it has), else null."""
    return pl.coalesce([pl.when(pl.col(status) == "valid").then(pl.col(col)) if status else pl.col(col)
                        for col, status in splink_settings.CLUSTER_KEYS[kind]])


def profile_values(kind: Kind, columns: list[str] | set[str]) -> list[pl.Expr]:
    """What a profile holds of a record, as expressions over the canonical table (which has ``columns``): the
    compared values of :data:`_PROFILE` (``related_cluster`` aside: it comes from the enterprise resolution) and the
    record's validated ``key``. Evaluated inside the silver scan, only these columns are ever materialized."""
    exprs: list[pl.Expr] = []
    for col in _PROFILE[kind]:
        if col == "related_cluster":
            continue
        if col == "birth_date":
            ids = pl.col("id_number")
            # the birth date of the ID, also when the ID fails its check (a typing error rarely hits the date)
            exprs.append(pl.coalesce(pl.col("id_number_birth_date"),
                                     pl.when(ids.str.len_chars() == 18).then(ids.str.slice(6, 8))
                                     .str.strptime(pl.Date, "%Y%m%d", strict=False)).cast(pl.Utf8).alias(col))
        elif col == "name_is_branch":
            exprs.append(pl.col(col).fill_null(False))
        elif col not in columns:  # e.g. id_number_masked, on records from before silver kept masked IDs' digits
            exprs.append(pl.lit(None, pl.Utf8).alias(col))
        else:
            exprs.append(pl.col(col))
    return [*exprs, _key(kind).alias("key")]


def _in_order(records: pl.DataFrame, deterministic: pl.DataFrame) -> pl.DataFrame:
    """``cluster, rule`` of each record of ``records``, in its order: free when ``deterministic`` is in the same
    order (what :func:`models.resolution.deterministic.link` returns), a join otherwise."""
    if deterministic.height == records.height and deterministic["record_id"].equals(records["record_id"]):
        return deterministic.select("cluster", "rule")
    return records.select("record_id").join(deterministic.select("record_id", "cluster", "rule"), on="record_id",
                                            how="left", maintain_order="left").select("cluster", "rule")


def profiles_of(values: pl.DataFrame, det_cluster: pl.Series, kind: Kind,
                related_cluster: pl.Series | None = None) -> tuple[pl.DataFrame, pl.Series]:
    """The frame handed to Splink, one row per profile (``profile_id``, ``det_cluster``, ``keyless``, ``key``, the
    compared and derived columns), and the ``profile_id`` of each row of ``values`` (records, as
    :func:`profile_values` gives them), given each record's deterministic cluster and (persons) related enterprise
    cluster. A profile is (deterministic cluster, a 64-bit hash of the compared values); a hash collision could only
    merge two profiles of one deterministic cluster, which are linked anyway. The dedup runs on integers (which
    record first shows each profile), and the text is gathered once, for the profiles only."""
    cols = _PROFILE[kind]
    frame = values.with_columns(det_cluster=det_cluster.cast(pl.Int64))
    if kind == "person":
        frame = frame.with_columns(
            related_cluster=(pl.lit(None, pl.Utf8) if related_cluster is None else related_cluster.cast(pl.Utf8)))
    hashes = frame.select("det_cluster", profile_hash=pl.struct(cols).hash(seed=0))
    keys = (frame.select("det_cluster", "key").drop_nulls("key").group_by("det_cluster").agg(pl.col("key").min()))
    ids = (hashes.with_row_index("first").group_by("det_cluster", "profile_hash").agg(pl.col("first").min())
           .join(keys, on="det_cluster", how="left")
           .with_columns(keyless=pl.col("key").is_null())
           .sort("keyless", "det_cluster", "profile_hash", descending=[True, False, False])
           .with_row_index("profile_id").with_columns(pl.col("profile_id").cast(pl.Int64)))
    profile_id = hashes.join(ids.select("det_cluster", "profile_hash", "profile_id"),
                             on=["det_cluster", "profile_hash"], how="left", maintain_order="left")["profile_id"]
    profiles = ids.select("profile_id", "det_cluster", "keyless", "key").hstack(frame.select(cols).gather(ids["first"]))
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
        profiles = profiles.with_columns(name_pinyin=_pinyin(profiles["name_comparison"]),
                                         id_head=shown.str.slice(0, 4), id_tail=shown.str.slice(14, 4))
    return profiles, profile_id


# ------------------------------------------------------------------------------------------------------------ Splink

def _connection() -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    # what does not fit spills here (an in-memory DuckDB would otherwise write .tmp/ into the working directory)
    spill = Path(tempfile.gettempdir()) / "qst-splink-spill"
    con.execute(f"SET temp_directory = '{spill.as_posix()}'")
    con.execute(f"SET threads = {DUCKDB_THREADS}")
    con.execute("SET preserve_insertion_order = false")
    return con


#: The DuckDB table of the profiles Splink reads (:func:`_load_profiles`).
PROFILE_TABLE = "qst_profiles"


def _load_profiles(profiles: pl.DataFrame) -> Any:
    """A DuckDB connection (:func:`_connection`) holding ``profiles`` as :data:`PROFILE_TABLE`, with the bigram
    columns (:data:`BIGRAMS`) derived there. Why in DuckDB: the bigram lists of the 1M city's 4.9M profiles cost
    several GB as Polars lists (a 16-byte view per bigram, copied again on the way into DuckDB); a DuckDB table
    stays within the connection's memory limit and spills to disk beyond it."""
    con = _connection()
    con.register("qst_profiles_arrow", profiles.drop("key").to_arrow())
    derived = ", ".join(f"{bigram_sql(source)} AS {name}" for name, source in BIGRAMS.items())
    con.execute(f"CREATE TABLE {PROFILE_TABLE} AS SELECT *, {derived} FROM qst_profiles_arrow")
    con.unregister("qst_profiles_arrow")
    return con


def _linker(con: Any, settings: Any) -> Any:
    """A Splink linker over the profiles loaded in ``con`` (:func:`_load_profiles`)."""
    from splink import DuckDBAPI, Linker

    logging.getLogger("splink").setLevel(logging.ERROR)
    return Linker(DuckDBAPI(connection=con).register(PROFILE_TABLE), settings, log_level=logging.ERROR)


def _counts(profiles: pl.DataFrame) -> dict[str, int]:
    return {"profiles": profiles.height, "keyless": int(profiles["keyless"].sum())}


def _initial_prior(counts: dict[str, int]) -> float:
    """Before training: each keyless profile assumed to have one true partner among the other profiles."""
    n = counts["profiles"]
    return float(min(max(counts["keyless"] / (n * (n - 1) / 2), 1e-9), 0.5)) if n > 1 else 1e-4


def _prior(model: dict[str, Any], counts: dict[str, int]) -> float:
    """The trained prior rescaled to this run's profiles (see the module docstring)."""
    meta = model.get("quanshitong") or {}
    trained = model.get("probability_two_random_records_match")
    if not meta or trained is None or counts["profiles"] < 2:
        return _initial_prior(counts)
    p0, k0 = meta["profiles"], max(meta["keyless"], 1)
    n = counts["profiles"]
    prior = trained * (max(counts["keyless"], 1) / k0) * (p0 * (p0 - 1)) / (n * (n - 1))
    return float(min(max(prior, 1e-12), 0.5))


def _train_on_profiles(profiles: pl.DataFrame, kind: Kind, *, seed: int = 1, max_pairs: float = 2e6) -> dict:
    from splink.internals.exceptions import EMTrainingException

    model = splink_settings.MODELS[kind]
    counts = _counts(profiles)
    con = _load_profiles(profiles)
    try:
        linker = _linker(con, splink_settings.settings(kind, _initial_prior(counts)))
        linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
        for rule in model["em_blocking"]():
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(rule)
            except (EMTrainingException, ValueError) as err:  # a rule with no pairs, or a level EM drove to m = 0
                log.warning("EM on %s skipped: %s", rule, str(err).splitlines()[0])
        out = _fixed(_floored(linker.misc.save_model_to_json(), counts["profiles"]), model.get("fixed", {}))
    finally:
        con.close()
    out["quanshitong"] = {"kind": kind, **counts}
    return out


def _fixed(model: dict, fixed: dict[str, dict[str, dict[str, float]]]) -> dict:
    """Set the m and u that the settings fix from first principles (``fixed`` in :mod:`splink_settings`: levels
    no training rule can estimate), documented there."""
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            level.update(fixed.get(comparison["output_column_name"], {}).get(level.get("label_for_charts", ""), {}))
    return model


#: The smallest m and u a trained level keeps. On the simulated estates EM drives the levels it never sees among
#: matches to m = 0 (fuzzy names, a different division): a weight of minus infinity, so one typo would veto any
#: link. A floor keeps such a level strong evidence against, not a veto; an untrained u (random sampling met no
#: agreement, e.g. on phones) becomes one in the number of profiles, and an untrained m makes the level neutral.
M_FLOOR = 1e-3


def _floored(model: dict, profiles: int) -> dict:
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            if not level.get("u_probability"):
                level["u_probability"] = 1.0 / max(profiles, 2)
            m = level.get("m_probability")
            # a level EM never trained (no pair of its rules reached it) says nothing: m = u, weight 0
            level["m_probability"] = level["u_probability"] if m is None else max(m, M_FLOOR)
    return model


def train(records: pl.DataFrame, deterministic: pl.DataFrame, kind: Kind,
          related: pl.DataFrame | None = None, *, seed: int = 1, max_pairs: float = 2e6) -> dict:
    """Retrain the model of ``kind`` on these records (u by random sampling, m and the prior by EM on the model's EM
    blocking rules) and return it as Splink's settings JSON (a dict), with a ``quanshitong`` section holding the
    counts the prior was trained on."""
    profiles = prepare_resolution(records, deterministic, kind, related).profiles
    return _train_on_profiles(profiles, kind, seed=seed, max_pairs=max_pairs)


def save_model(kind: Kind, model: dict, directory: Path | str = TRAINED) -> Path:
    path = Path(directory) / f"{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_model(kind: Kind, directory: Path | str = TRAINED) -> dict | None:
    path = Path(directory) / f"{kind}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _level_labels(linker: Any) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for comparison in linker._settings_obj.comparisons:
        out[comparison.output_column_name] = {
            level.comparison_vector_value: level.label_for_charts for level in comparison.comparison_levels}
    return out


def predict_pairs(con: Any, counts: dict[str, int], kind: Kind, model: dict, threshold: float) -> pl.DataFrame:
    """``profile_id_l, profile_id_r, match_probability, match_weight, levels``: the Splink pairs at or above
    ``threshold`` between the profiles loaded in ``con`` (:func:`_load_profiles`; ``counts`` of them for the prior)
    that join two different deterministic clusters and never a branch with a non-branch.

    Only what the graph needs leaves DuckDB: Splink's output keeps the compared columns of both sides (to say which
    level each pair hit), bigram lists included — 1.4M pairs at 1M enterprises, several GB as a Python frame."""
    settings = {k: v for k, v in model.items() if k != "quanshitong"}
    settings["probability_two_random_records_match"] = _prior(model, counts)
    settings["retain_matching_columns"] = True  # with it the gamma columns: which level each pair hit
    linker = _linker(con, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predicted = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
    labels = _level_labels(linker)
    branch = " AND name_is_branch_l = name_is_branch_r" if "name_is_branch" in splink_settings.RETAINED[kind] else ""
    gammas = ", ".join(f"gamma_{c}" for c in labels)
    # the graph joins deterministic clusters: of the pairs between two clusters (a court party against each
    # profile of one enterprise) only the strongest can matter, so only it is kept (fewer pairs, less memory)
    pairs = con.sql(f"""
        SELECT profile_id_l, profile_id_r, match_probability, match_weight, {gammas}
        FROM {predicted.physical_name}
        WHERE det_cluster_l <> det_cluster_r{branch}
        QUALIFY row_number() OVER (PARTITION BY least(det_cluster_l, det_cluster_r),
                                                greatest(det_cluster_l, det_cluster_r)
                                   ORDER BY match_probability DESC, profile_id_l, profile_id_r) = 1
        ORDER BY profile_id_l, profile_id_r""").pl()
    predicted.drop_table_from_database_and_remove_from_cache()
    levels = pl.struct([pl.col(f"gamma_{c}").replace_strict(m, default=None, return_dtype=pl.Utf8).alias(c)
                        for c, m in labels.items()]).struct.json_encode()
    return pairs.select(pl.col("profile_id_l", "profile_id_r").cast(pl.Int64), "match_probability", "match_weight",
                        levels=levels)


# ---------------------------------------------------------------------------------------------------- graph decisions

def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _unambiguous(edges: pl.DataFrame, size: np.ndarray, strong: float) -> pl.Series:
    """Which edges (``a, b, match_probability`` between deterministic clusters of ``size`` records) survive the
    guard: a weak edge (probability below ``strong``) is kept when the smaller of the two groups it joins is a lone
    record and reaches at most one other group of several records by weak edges (the groups are the components of
    the strong edges). Two groups that each have their own evidence join only by a strong pair; a court record with
    only a name does not join two same-named enterprises of different districts: it joins one, or stays alone when
    both are as likely."""
    n = len(size)
    if edges.height == 0:
        return pl.Series(dtype=pl.Boolean)
    is_strong = (edges["match_probability"] >= strong).to_numpy()
    ea, eb = edges["a"].to_numpy(), edges["b"].to_numpy()
    group = _components(n, ea[is_strong], eb[is_strong])
    gsize = np.bincount(group, weights=size, minlength=n)
    ga, gb = group[ea], group[eb]
    weak = pl.DataFrame({"e": np.arange(edges.height), "ga": ga, "gb": gb}).filter(
        ~pl.Series(is_strong) & (pl.col("ga") != pl.col("gb")))
    sizes = pl.DataFrame({"g": np.arange(n), "len": gsize})
    both = pl.concat([weak.select(g="ga", other="gb"), weak.select(g="gb", other="ga")])
    # partners that are groups of several records (two lone records of one name may join each other)
    partners = (both.join(sizes.rename({"g": "other"}), on="other").group_by("g")
                .agg(partners=pl.col("other").filter(pl.col("len") > 1).n_unique()))
    weak = (weak.join(sizes.rename({"g": "ga", "len": "sa"}), on="ga").join(sizes.rename({"g": "gb", "len": "sb"}), on="gb")
            .with_columns(small=pl.when(pl.col("sa") <= pl.col("sb")).then("ga").otherwise("gb"))
            .join(partners.rename({"g": "small"}), on="small")
            .filter((pl.col("partners") <= 1) & (pl.min_horizontal("sa", "sb") == 1)))
    ok = is_strong.copy()
    ok[weak["e"].to_numpy()] = True
    return pl.Series(ok)


def _constrained(n: int, keys: np.ndarray, edges: pl.DataFrame, cannot: list[tuple[int, int]]) -> np.ndarray:
    """Which ``edges`` (``a, b, priority``; nodes are deterministic clusters, ``keys[i]`` their validated key or -1)
    may be applied: greedily by priority (highest first), an edge joins two groups unless the union would hold two
    different keys or both ends of a ``cannot`` pair. Only the components where the plain union would break a
    constraint are walked edge by edge; every other edge is applied."""
    ok = np.ones(edges.height, dtype=bool)
    if edges.height == 0:
        return ok
    ea, eb = edges["a"].to_numpy(), edges["b"].to_numpy()
    comp = _components(n, ea, eb)
    nodes = pl.DataFrame({"c": comp, "k": keys}).filter(pl.col("k") >= 0)
    bad = set(nodes.group_by("c").agg(pl.col("k").n_unique()).filter(pl.col("k") > 1)["c"].to_list())
    bad |= {int(comp[x]) for x, y in cannot if comp[x] == comp[y]}
    if not bad:
        return ok
    forbid: dict[int, set[int]] = {}
    for x, y in cannot:
        forbid.setdefault(x, set()).add(y)
        forbid.setdefault(y, set()).add(x)
    idx = np.flatnonzero(np.isin(comp[ea], list(bad)))
    order = idx[np.argsort(-edges["priority"].to_numpy()[idx], kind="stable")]
    parent: dict[int, int] = {}
    members: dict[int, set[int]] = {}
    key: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in order:
        ra, rb = find(int(ea[e])), find(int(eb[e]))
        if ra == rb:
            continue
        ma, mb = members.get(ra, {ra}), members.get(rb, {rb})
        ka, kb = key.get(ra, int(keys[ra])), key.get(rb, int(keys[rb]))
        small, other = (ma, mb) if len(ma) <= len(mb) else (mb, ma)
        if (ka >= 0 and kb >= 0 and ka != kb) or any(forbid.get(m, set()) & other for m in small):
            ok[e] = False
            continue
        parent[rb] = ra
        members[ra] = ma | mb
        members.pop(rb, None)
        key[ra] = ka if ka >= 0 else kb
    return ok


# ----------------------------------------------------------------------------------------------------------- resolve

def _decisions(decisions: pl.DataFrame | None) -> pl.DataFrame:
    if decisions is None or decisions.height == 0:
        return pl.DataFrame(schema={"record_id_l": pl.Utf8, "record_id_r": pl.Utf8, "decision": pl.Utf8})
    bad = decisions.filter(~pl.col("decision").is_in(["must_link", "cannot_link"]))
    if bad.height:
        raise ValueError(f"unknown decisions: {bad['decision'].unique().to_list()}")
    return decisions.select("record_id_l", "record_id_r", "decision").unique()


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


def prepare_resolution(records: pl.DataFrame, deterministic: pl.DataFrame, kind: Kind,
                       related: pl.DataFrame | None = None) -> Prepared:
    """The first half of :func:`resolve`, on records in memory: the profiles (:func:`profiles_of`) and each
    record's cluster, rule and profile. ``related`` (persons): ``record_id, cluster`` of the enterprise records."""
    started = time.perf_counter()
    det = _in_order(records, deterministic)
    rel = _related_cluster(records, related)["related_cluster"] if kind == "person" else None
    profiles, profile_id = profiles_of(records.select(profile_values(kind, records.columns)), det["cluster"], kind,
                                       rel)
    return Prepared(kind, profiles, det.with_columns(profile_id=profile_id), records["record_id"],
                    {"prepare": time.perf_counter() - started})


def prepare_silver(home: Path | str, kind: Kind, related: pl.DataFrame | None = None) -> Prepared:
    """The first half of :func:`resolve`, reading ``kind``'s canonical table from the silver of ``home`` one group
    of columns at a time (one Delta version throughout): the deterministic keys, then the compared columns, the
    record ids only when :func:`resolve_prepared` needs them. Why: the whole table at once is what made the
    resolution of the 1M city peak at 11 GB (14.4M records, 17 string columns: ~5 GB as Polars frames)."""
    from models.resolution.deterministic import ENTERPRISE_KEYS, PERSON_KEYS, clusters, key_columns
    from models.silver import scan_silver

    rules = ENTERPRISE_KEYS if kind == "enterprise" else PERSON_KEYS
    scan = scan_silver(Path(home), TABLES[kind])
    names = set(scan.collect_schema().names())
    timings: dict[str, float] = {}
    started = time.perf_counter()
    det = clusters(scan.select(key_columns(rules)).collect(), rules)
    timings["deterministic"] = time.perf_counter() - started
    started = time.perf_counter()
    rel = None
    if kind == "person":
        rel = _related_cluster(scan.select("record_id", "related_record_id").collect(), related)["related_cluster"]
    values = scan.select(profile_values(kind, names)).collect()
    profiles, profile_id = profiles_of(values, det["cluster"], kind, rel)
    del values, rel
    timings["prepare"] = time.perf_counter() - started
    return Prepared(kind, profiles, det.with_columns(profile_id=profile_id),
                    lambda: scan.select("record_id").collect()["record_id"], timings)


def resolve(records: pl.DataFrame, deterministic: pl.DataFrame, kind: Kind,
            related: pl.DataFrame | None = None, threshold: float | None = None,
            decisions: pl.DataFrame | None = None, model: dict | None = None) -> Resolution:
    """Resolve ``records`` (a canonical table, at least :data:`COLUMNS`), given their deterministic clusters
    (``record_id, cluster, rule`` from :func:`models.resolution.deterministic.link`). ``related``: for persons, the
    enterprise resolution (``record_id, cluster``), to compare a person by the enterprise it represents or works for.
    ``threshold``: the match probability a link needs, instead of the model's. ``decisions``: ``record_id_l,
    record_id_r, decision`` (``must_link`` | ``cannot_link``). ``model``: the trained model (Splink settings JSON),
    default ``trained/<kind>.json``. The same as :func:`prepare_resolution`, then :func:`resolve_prepared`."""
    return resolve_prepared(prepare_resolution(records, deterministic, kind, related), threshold=threshold,
                            decisions=decisions, model=model)


def resolve_prepared(prepared: Prepared, threshold: float | None = None, decisions: pl.DataFrame | None = None,
                     model: dict | None = None) -> Resolution:
    """The second half of :func:`resolve`: Splink's predictions, the guard, the decisions and the components."""
    kind, profiles = prepared.kind, prepared.profiles
    timings: dict[str, float] = dict(prepared.timings)
    spec = splink_settings.MODELS[kind]
    link_at = spec["threshold"] if threshold is None else threshold
    review_at = min(spec["review_threshold"], link_at)
    started = time.perf_counter()
    if model is None:
        model = load_model(kind)
        if model is None:
            warnings.warn(f"no trained {kind} model in {TRAINED}: training on this run's data "
                          "(run `qst er-train` to save one)", stacklevel=2)
            model = _train_on_profiles(profiles, kind)
    timings["model"] = time.perf_counter() - started
    started = time.perf_counter()
    pairs = pl.DataFrame(schema={"profile_id_l": pl.Int64, "profile_id_r": pl.Int64, "match_probability": pl.Float64,
                                 "match_weight": pl.Float64, "levels": pl.Utf8})
    if profiles.height > 1:
        counts = _counts(profiles)
        con = _load_profiles(profiles)
        # the compared text now lives in DuckDB: the graph decisions need only the ids and keys (the Prepared is spent)
        profiles = prepared.profiles = profiles.select("profile_id", "det_cluster", "key")
        try:
            pairs = predict_pairs(con, counts, kind, model, review_at)
        finally:
            con.close()
    timings["predict"] = time.perf_counter() - started
    started = time.perf_counter()
    ids = prepared.record_ids() if callable(prepared.record_ids) else prepared.record_ids
    if ids.len() != prepared.rows.height or ids.null_count():
        raise RuntimeError(f"{kind} resolution: {ids.len()} record ids ({ids.null_count()} null) for "
                           f"{prepared.rows.height} records")
    rows = prepared.rows.with_columns(record_id=ids)
    det, members = rows.select("record_id", "cluster", "rule"), rows.select("record_id", "profile_id")
    del ids
    timings["read ids"] = time.perf_counter() - started
    started = time.perf_counter()

    # nodes: deterministic clusters, numbered 0..n-1
    nodes = det.select("cluster").unique().sort("cluster").with_row_index("node").with_columns(pl.col("node").cast(pl.Int64))
    size = nodes.join(det.group_by("cluster").len(), on="cluster", maintain_order="left")["len"].to_numpy()
    node_keys = (nodes.join(profiles.select(cluster="det_cluster", key="key").unique("cluster"), on="cluster",
                            how="left", maintain_order="left"))
    key_codes = node_keys["key"].cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1).to_numpy()
    n = nodes.height
    p_node = profiles.select("profile_id", cluster="det_cluster").join(nodes, on="cluster").select("profile_id", "node")
    rep = members.group_by("profile_id").agg(rep=pl.col("record_id").min())
    pairs = (pairs.join(p_node.rename({"profile_id": "profile_id_l", "node": "a"}), on="profile_id_l")
             .join(p_node.rename({"profile_id": "profile_id_r", "node": "b"}), on="profile_id_r")
             .join(rep.rename({"profile_id": "profile_id_l", "rep": "record_id_l"}), on="profile_id_l")
             .join(rep.rename({"profile_id": "profile_id_r", "rep": "record_id_r"}), on="profile_id_r")
             # joins do not keep row order, and the greedy constraint pass breaks ties of probability by it:
             # a fixed order makes a rerun of a night give the same clusters
             .sort("profile_id_l", "profile_id_r"))
    candidates = pairs.filter(pl.col("match_probability") >= link_at)
    guard_ok = _unambiguous(candidates, size, spec["strong_threshold"])
    candidates = candidates.with_columns(status=pl.when(guard_ok).then(pl.lit("linked")).otherwise(pl.lit("ambiguous")))

    # decisions: record ids -> nodes
    dec = _decisions(decisions)
    rec_node = det.select("record_id", "cluster").join(nodes, on="cluster").select("record_id", "node")
    dec = (dec.join(rec_node.rename({"record_id": "record_id_l", "node": "a"}), on="record_id_l", how="left")
           .join(rec_node.rename({"record_id": "record_id_r", "node": "b"}), on="record_id_r", how="left"))
    conflicts = [dec.filter(pl.col("a").is_null() | pl.col("b").is_null())
                 .select("record_id_l", "record_id_r", "decision", reason=pl.lit("unknown record"))]
    dec = dec.drop_nulls(["a", "b"])
    conflicts.append(dec.filter((pl.col("decision") == "cannot_link") & (pl.col("a") == pl.col("b")))
                     .select("record_id_l", "record_id_r", "decision",
                             reason=pl.lit("validated identifiers put them together (deterministic pass)")))
    cannot = [(int(x), int(y)) for x, y in dec.filter((pl.col("decision") == "cannot_link")
                                                       & (pl.col("a") != pl.col("b"))).select("a", "b").iter_rows()]
    must = dec.filter((pl.col("decision") == "must_link") & (pl.col("a") != pl.col("b")))
    linked = candidates.filter(pl.col("status") == "linked")
    edges = pl.concat([
        must.select("a", "b", priority=pl.lit(2.0), src=pl.lit("must")),
        linked.select("a", "b", priority=pl.col("match_probability"), src=pl.lit("splink")),
    ])
    ok = _constrained(n, key_codes, edges, cannot)
    must_ok = ok[:must.height]
    splink_ok = ok[must.height:]
    conflicts.append(must.filter(~pl.Series(must_ok, dtype=pl.Boolean)).select(
        "record_id_l", "record_id_r", "decision",
        reason=pl.lit("different validated identifiers or a cannot-link decision keep them apart")))
    # a dropped Splink edge: cannot_link when a cannot-link decision is what forbids it, else a key conflict
    cannot_nodes = np.array(cannot, dtype=np.int64).reshape(-1, 2)
    linked = linked.with_columns(ok=pl.Series(splink_ok, dtype=pl.Boolean))
    applied = edges.filter(pl.Series(ok, dtype=pl.Boolean))
    labels = _components(n, applied["a"].to_numpy(), applied["b"].to_numpy()) if n else np.empty(0, dtype=np.int64)
    if len(cannot_nodes):
        # the edge would have joined the groups of a cannot-link pair
        ca, cb = labels[cannot_nodes[:, 0]], labels[cannot_nodes[:, 1]]
        forbidden = pl.DataFrame({"x": np.concatenate([ca, cb]), "y": np.concatenate([cb, ca])}).unique()
        linked = (linked.with_columns(x=pl.Series(labels[linked["a"].to_numpy()]), y=pl.Series(labels[linked["b"].to_numpy()]))
                  .join(forbidden.with_columns(hit=pl.lit(True)), on=["x", "y"], how="left")
                  .drop("x", "y"))
    else:
        linked = linked.with_columns(hit=pl.lit(None, pl.Boolean))
    linked = linked.with_columns(status=pl.when(pl.col("ok")).then(pl.lit("linked"))
                                 .when(pl.col("hit")).then(pl.lit("cannot_link")).otherwise(pl.lit("ambiguous")))
    timings["decide"] = time.perf_counter() - started
    started = time.perf_counter()

    # the pairs frame: kept links, review band, dropped pairs, applied must-links
    review = pairs.filter(pl.col("match_probability") < link_at).with_columns(status=pl.lit("review"))
    cols = list(_PAIR_SCHEMA)
    out_pairs = pl.concat([
        linked.select(cols),
        candidates.filter(pl.col("status") == "ambiguous").select(cols),
        review.select(cols),
        must.filter(pl.Series(must_ok, dtype=pl.Boolean)).select(
            "record_id_l", "record_id_r", match_probability=pl.lit(None, pl.Float64),
            match_weight=pl.lit(None, pl.Float64), levels=pl.lit(None, pl.Utf8), status=pl.lit("must_link")),
    ], how="vertical_relaxed")

    # per record: cluster, rule, the strongest kept Splink pair of its profile
    kept = linked.filter(pl.col("ok"))
    best = (pl.concat([kept.select(profile_id="profile_id_l", p="match_probability", w="match_weight"),
                       kept.select(profile_id="profile_id_r", p="match_probability", w="match_weight")])
            .group_by("profile_id").agg(match_probability=pl.col("p").max(), match_weight=pl.col("w").max()))
    must_nodes = applied.filter(pl.col("src") == "must")
    must_nodes = pl.concat([must_nodes["a"], must_nodes["b"]]).unique().implode()
    out = rows.join(nodes, on="cluster", maintain_order="left")
    out = (out.with_columns(cluster=pl.Series(labels[out["node"].to_numpy()], dtype=pl.Int64))
           .join(best, on="profile_id", how="left", maintain_order="left")
           .with_columns(rule=pl.when(pl.col("rule").is_not_null()).then("rule")
                         .when(pl.col("match_probability").is_not_null()).then(pl.lit("splink"))
                         .when(pl.col("node").is_in(must_nodes)).then(pl.lit("must_link")))
           .select("record_id", "cluster", "rule", "match_probability", "match_weight"))
    timings["components"] = time.perf_counter() - started
    conflict_frame = pl.concat(conflicts, how="vertical_relaxed").select(list(_CONFLICT_SCHEMA))
    return Resolution(records=out, pairs=out_pairs.select(cols), conflicts=conflict_frame, timings=timings)


# ------------------------------------------------------------------------------------------------- reading, training

#: Silver table of each kind.
TABLES = {"enterprise": "int_enterprise_records", "person": "int_person_records"}


def read_records(home: Path | str, kind: Kind) -> pl.DataFrame:
    """The columns of ``kind``'s canonical table that resolution needs (deterministic keys and compared columns),
    read from the silver of ``home``: a 14-million-row table without its other columns."""
    from models import canonical
    from models.silver import read_silver

    schema = canonical.ENTERPRISE_SCHEMA if kind == "enterprise" else canonical.PERSON_SCHEMA
    keys = ["source_department", "uscc", "uscc_status", "tin", "tin_kind", "tin_status", "link_org_code", "regno",
            "regno_status", "local_id"] if kind == "enterprise" else []
    wanted = [c for c in dict.fromkeys([*COLUMNS[kind], *keys]) if c in schema]
    return read_silver(Path(home), TABLES[kind], columns=wanted)


def describe(model: dict) -> list[str]:
    """One line per comparison level: its label, m, u and match weight (log2 m/u), for a reviewer of a retrain."""
    import math

    lines = [f"prior (probability two random profiles match): {model.get('probability_two_random_records_match')}"]
    for comparison in model.get("comparisons", []):
        lines.append(f"{comparison['output_column_name']}:")
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            weight = f"{math.log2(m / u):+.2f}" if m and u else "n/a"
            tf = "  (term-frequency adjusted)" if level.get("tf_adjustment_column") else ""
            lines.append(f"  {level.get('label_for_charts', level['sql_condition'])[:60]:<60} m={m if m is None else round(m, 4)!s:<8}"
                         f" u={u if u is None else round(u, 6)!s:<10} weight={weight}{tf}")
    return lines
