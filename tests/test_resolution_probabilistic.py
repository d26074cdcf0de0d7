"""Entity resolution, the probabilistic pass (Splink 5 on DuckDB) on top of the deterministic clusters: it adds
recall, keeps precision, never splits a deterministic cluster and never puts a branch with its parent."""

from __future__ import annotations

import polars as pl
import pytest

from models.resolution.deterministic import ENTERPRISE_KEYS, PERSON_KEYS, link
from models.resolution.evaluate import scores, truth_for_records
from models.resolution.probabilistic import _bigrams, resolve
from models.silver import read_silver
from simulator import estate as est

pytestmark = pytest.mark.xdist_group("silver_estate")


def test_character_bigrams_are_characters_not_bytes():
    out = pl.DataFrame({"s": ["张伟", "张玮强", "王", None]}).select(b=_bigrams("s"))["b"].to_list()
    assert out[0] == ["张伟"] and sorted(out[1]) == ["张玮", "玮强"] and out[2] == ["王"] and out[3] is None


@pytest.fixture(scope="module")
def resolved(silver_estate):
    out, home = silver_estate(enterprises=400, seed=31)
    truth = est.load_truth(out).collect()
    enterprises = read_silver(home, "int_enterprise_records")
    persons = read_silver(home, "int_person_records")
    e_det = link(enterprises, ENTERPRISE_KEYS)
    e_out = resolve(enterprises, e_det, "enterprise")
    p_det = link(persons, PERSON_KEYS)
    p_out = resolve(persons, p_det, "person", related=e_out)
    return {
        "out": out, "truth": truth,
        "enterprise": (enterprises, e_det, e_out), "person": (persons, p_det, p_out),
    }


@pytest.mark.parametrize(("kind", "precision_floor"), [("enterprise", 0.99), ("person", 0.99)])
def test_probabilistic_pass_adds_recall_and_keeps_precision(resolved, kind, precision_floor):
    recs, det, out = resolved[kind]
    truth = truth_for_records(resolved["truth"], recs)
    before, after = scores(det, truth), scores(out, truth)
    assert out.columns == ["record_id", "cluster", "rule", "match_probability"]
    assert out.height == recs.height and out["record_id"].n_unique() == recs.height
    assert after["f1"] > before["f1"], (before, after)
    assert after["precision"] >= precision_floor, after
    # Splink pairs are scored, deterministic-only records are not
    linked = out.filter(pl.col("rule") == "splink")
    assert linked.height > 0 and linked["match_probability"].min() >= 0.5


@pytest.mark.parametrize("kind", ["enterprise", "person"])
def test_deterministic_clusters_are_never_split(resolved, kind):
    _, det, out = resolved[kind]
    joined = det.select("record_id", det="cluster").join(out.select("record_id", "cluster"), on="record_id")
    assert joined.group_by("det").agg(pl.col("cluster").n_unique()).filter(pl.col("cluster") > 1).height == 0


def test_branches_never_share_a_cluster_with_their_parent(resolved):
    recs, _, out = resolved["enterprise"]
    entities = pl.read_parquet(resolved["out"] / "truth" / "enterprises" / "*.parquet")
    branches = entities.filter(pl.col("parent_id").is_not_null()).select("entity_id", "parent_id")
    assert branches.height > 0
    clusters = truth_for_records(resolved["truth"], recs).join(out.select("record_id", "cluster"), on="record_id")
    per_entity = clusters.group_by("entity_id").agg(pl.col("cluster").unique())
    pairs = (branches.join(per_entity, on="entity_id")
             .join(per_entity.rename({"entity_id": "parent_id", "cluster": "parent_clusters"}), on="parent_id"))
    assert pairs.height > 0
    shared = pairs.filter(pl.col("cluster").list.set_intersection(pl.col("parent_clusters")).list.len() > 0)
    assert shared.height == 0, shared
