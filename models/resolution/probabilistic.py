"""The probabilistic pass of entity resolution (Splink 5, DuckDB backend), on top of the deterministic clusters.

What it does, in order:

1. derive the character-aware columns the model compares (:func:`prepare`: bigram sets, pinyin, name prefixes);
2. estimate the prior from the deterministic pass (its pairs, over all pairs), u by random sampling, m by EM on
   the model's EM blocking rules (:mod:`models.resolution.splink_settings` holds the model, as data);
3. predict the pairs of the blocking rules above the model's threshold, keep only pairs that join *different*
   deterministic clusters and never a branch with a non-branch;
4. connected components over the deterministic edges plus the kept Splink edges: records linked by the
   deterministic pass stay together (a deterministic cluster is never split), Splink only joins clusters.

The result keeps, per record, the rule of the deterministic pass (or ``"splink"`` when only Splink linked it) and
the highest probability of a kept Splink pair the record is in (null when none).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import polars as pl

from models.resolution import splink_settings

Kind = Literal["enterprise", "person"]


def _bigrams(col: str) -> pl.Expr:
    s = pl.col(col)
    # distinct character bigrams; a one-character string is its own "bigram"
    return (pl.when(s.str.len_chars() <= 1).then(pl.concat_list(s))
            .otherwise(pl.concat_list(s.str.split(""))
                       .list.eval(pl.element() + pl.element().shift(-1)).list.head(s.str.len_chars() - 1))
            .list.unique())


def _pinyin(names: pl.Series) -> pl.Series:
    from pypinyin import lazy_pinyin

    return names.map_elements(lambda n: "".join(lazy_pinyin(n)), return_dtype=pl.Utf8, skip_nulls=True)


def prepare(records: pl.DataFrame, deterministic: pl.DataFrame, kind: Kind,
            related: pl.DataFrame | None = None) -> pl.DataFrame:
    """The frame handed to Splink: the compared columns, the derived ones, and the deterministic cluster.
    ``related`` (persons): ``record_id, cluster`` of the enterprise records, so that a legal representative
    compares by the enterprise (cluster) it represents (``related_cluster``)."""
    if kind == "enterprise":
        cols = ["record_id", "name_comparison", "name_is_branch", "uscc", "uscc_status", "link_org_code",
                "division_code", "phone", "legal_rep_name", "address"]
    else:
        cols = ["record_id", "name_comparison", "id_number", "id_number_status", "id_number_birth_date",
                "id_number_sex", "phone", "division_code", "employer_local_id", "address"]
    frame = records.select(cols)
    if kind == "person":
        rel = (records.select("record_id", "related_record_id").join(
            related.select(related_record_id="record_id", related_cluster=pl.col("cluster").cast(pl.Utf8)),
            on="related_record_id", how="left").select("record_id", "related_cluster")
            if related is not None and "related_record_id" in records.columns
            else records.select("record_id", related_cluster=pl.lit(None, pl.Utf8)))
        frame = frame.join(rel, on="record_id", how="left")
    frame = frame.join(deterministic.select("record_id", det_cluster="cluster"), on="record_id")
    if "name_is_branch" not in frame.columns:
        frame = frame.with_columns(name_is_branch=pl.lit(False))
    frame = frame.with_columns(
        pl.col("name_is_branch").fill_null(False),
        name_bigrams=_bigrams("name_comparison"),
        address_bigrams=_bigrams("address"),
        name_prefix2=pl.col("name_comparison").str.slice(0, 2),
        name_prefix1=pl.col("name_comparison").str.slice(0, 1),
        name_pinyin=_pinyin(frame["name_comparison"]),
    )
    if "id_number_birth_date" in frame.columns:
        frame = frame.with_columns(pl.col("id_number_birth_date").cast(pl.Utf8))
    return frame


def _prior(deterministic: pl.DataFrame, assumed_recall: float = 0.8) -> float:
    """P(two random records match): the deterministic pairs, scaled by the share of true pairs it is assumed to
    find, over all pairs."""
    n = deterministic.height
    pairs = deterministic.group_by("cluster").len().select((pl.col("len") * (pl.col("len") - 1) // 2).sum()).item()
    total = n * (n - 1) / 2
    return float(min(max(pairs / assumed_recall / total, 1e-7), 0.5)) if total else 1e-4


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def predict_pairs(frame: pl.DataFrame, deterministic: pl.DataFrame, kind: Kind, *, seed: int = 1,
                  max_pairs: float = 2e6, threshold: float | None = None) -> pl.DataFrame:
    """``record_id_l, record_id_r, match_probability``: the Splink pairs above the model's threshold that join
    two different deterministic clusters and never a branch with a non-branch."""
    from splink import DuckDBAPI, Linker

    logging.getLogger("splink").setLevel(logging.WARNING)
    model = splink_settings.MODELS[kind]
    db = DuckDBAPI()
    linker = Linker(db.register(frame.to_arrow()), splink_settings.settings(kind, _prior(deterministic)),
                    log_level=logging.WARNING)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    from splink.internals.exceptions import EMTrainingException

    for rule in model["em_blocking"]():
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except (EMTrainingException, ValueError) as err:  # a rule with no pairs, or a level EM drove to m = 0
            logging.getLogger(__name__).warning("EM on %s skipped: %s", rule, str(err).splitlines()[0])
    predicted = linker.inference.predict(threshold_match_probability=model["threshold"] if threshold is None else threshold)
    pairs = pl.from_arrow(predicted.as_pyarrow_table())
    assert isinstance(pairs, pl.DataFrame)
    keep = (pl.col("det_cluster_l") != pl.col("det_cluster_r")) & (pl.col("name_is_branch_l") == pl.col("name_is_branch_r"))
    for col, status in splink_settings.CONFLICTING_KEYS[kind]:
        usable = [pl.col(f"{col}_l").is_not_null(), pl.col(f"{col}_r").is_not_null()]
        if status:
            usable += [pl.col(f"{status}_l") == "valid", pl.col(f"{status}_r") == "valid"]
        keep &= ~(pl.all_horizontal(usable).fill_null(False) & (pl.col(f"{col}_l") != pl.col(f"{col}_r")))
    return (pairs.filter(keep)
            .select("record_id_l", "record_id_r", "match_probability"))


def _unambiguous(edges: pl.DataFrame, anchors: pl.DataFrame, strong: float) -> pl.DataFrame:
    """Drop the weak edges (probability below ``strong``) of a group that would bridge two groups: the groups are
    the components of the deterministic and strong edges; a weak edge is kept when the smaller of its two groups
    reaches at most one other group of several records by weak edges, and is a lone record (two groups that each
    have their own evidence join only by a strong pair). A court record with only a name is not allowed to join two
    same-named enterprises of different districts; it joins one, or stays alone when both are as likely."""
    n = anchors.height
    if edges.height == 0 or n == 0:
        return edges
    is_strong = (edges["match_probability"] >= strong).to_numpy()
    a = np.concatenate([edges["a"].to_numpy()[is_strong], anchors["__i"].to_numpy()]).astype(np.int64)
    b = np.concatenate([edges["b"].to_numpy()[is_strong], anchors["anchor"].to_numpy()]).astype(np.int64)
    group = pl.Series("g", _components(n, a, b), dtype=pl.Int64)
    size = pl.DataFrame({"g": group}).group_by("g").len()
    weak = edges.with_row_index("__e").filter(pl.col("match_probability") < strong)
    ga, gb = group.gather(weak["a"].cast(pl.Int64)), group.gather(weak["b"].cast(pl.Int64))
    weak = weak.with_columns(ga=ga, gb=gb).filter(pl.col("ga") != pl.col("gb"))
    both = pl.concat([weak.select(g="ga", other="gb"), weak.select(g="gb", other="ga")])
    # partners that are groups of several records (two lone records of one name may join each other)
    partners = (both.join(size.rename({"g": "other"}), on="other").group_by("g")
                .agg(partners=pl.col("other").filter(pl.col("len") > 1).n_unique()))
    weak = (weak.join(size.rename({"g": "ga", "len": "sa"}), on="ga").join(size.rename({"g": "gb", "len": "sb"}), on="gb")
            .with_columns(small=pl.when(pl.col("sa") <= pl.col("sb")).then("ga").otherwise("gb"))
            .join(partners.rename({"g": "small"}), on="small").filter((pl.col("partners") <= 1) & (pl.min_horizontal("sa", "sb") == 1)))
    keep = pl.concat([edges.with_row_index("__e").filter(pl.col("match_probability") >= strong)["__e"], weak["__e"]])
    return edges.with_row_index("__e").filter(pl.col("__e").is_in(keep.implode())).drop("__e")


def resolve(records: pl.DataFrame, deterministic: pl.DataFrame, kind: Kind,
            related: pl.DataFrame | None = None, threshold: float | None = None) -> pl.DataFrame:
    """``record_id, cluster, rule, match_probability`` for every record of ``records`` (a canonical table),
    given its deterministic clusters (``record_id, cluster, rule`` from
    :func:`models.resolution.deterministic.link`). ``related``: for persons, the enterprise resolution
    (``record_id, cluster``), used to compare legal representatives by the enterprise they represent.
    ``threshold``: the match probability a pair needs, instead of the model's."""
    frame = prepare(records, deterministic, kind, related)
    pairs = predict_pairs(frame, deterministic, kind, threshold=threshold) if frame.height > 1 else pl.DataFrame(
        schema={"record_id_l": pl.Utf8, "record_id_r": pl.Utf8, "match_probability": pl.Float64})
    det = deterministic.select("record_id", "cluster", "rule").with_row_index("__i")
    index = det.select("record_id", "__i")
    edges = (pairs.join(index.rename({"record_id": "record_id_l", "__i": "a"}), on="record_id_l")
             .join(index.rename({"record_id": "record_id_r", "__i": "b"}), on="record_id_r"))
    # deterministic edges: each record to the first record of its cluster
    anchors = det.join(det.group_by("cluster").agg(anchor=pl.col("__i").min()), on="cluster")
    edges = _unambiguous(edges, anchors, splink_settings.MODELS[kind]["strong_threshold"])
    a = np.concatenate([edges["a"].to_numpy(), anchors["__i"].to_numpy()]).astype(np.int64)
    b = np.concatenate([edges["b"].to_numpy(), anchors["anchor"].to_numpy()]).astype(np.int64)
    labels = _components(det.height, a, b) if det.height else np.empty(0, dtype=np.int64)
    best = (pl.concat([edges.select(record_id="record_id_l", p="match_probability"),
                       edges.select(record_id="record_id_r", p="match_probability")])
            .group_by("record_id").agg(match_probability=pl.col("p").max()))
    return (det.with_columns(cluster=pl.Series(labels, dtype=pl.Int64))
            .join(best, on="record_id", how="left", maintain_order="left")
            .with_columns(rule=pl.when(pl.col("rule").is_null() & pl.col("match_probability").is_not_null())
                          .then(pl.lit("splink")).otherwise(pl.col("rule")))
            .select("record_id", "cluster", "rule", "match_probability"))
