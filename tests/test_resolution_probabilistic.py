"""Entity resolution, the probabilistic pass (Splink 5 on DuckDB) on top of the deterministic clusters: it adds
recall, keeps precision, never splits a deterministic cluster, never puts a branch with its parent, explains every
link, queues the borderline pairs, honours reviewers' decisions, and runs from the trained model in the repository."""

from __future__ import annotations

import json

import polars as pl
import pytest

from models.resolution import probabilistic, splink_model, splink_settings
from models.resolution.deterministic import ENTERPRISE_KEYS, PERSON_KEYS, link
from models.resolution.evaluate import scores, truth_for_records
from models.resolution.probabilistic import resolve
from models.resolution.profiles import bigram_sql, pinyin
from models.silver import read_silver
from simulator import estate as est

pytestmark = pytest.mark.xdist_group("silver_estate")


def test_character_bigrams_are_characters_not_bytes():
    import duckdb

    values = ["张伟", "张玮强", "王", None, "", "张张张", "ab·c"]
    rows = duckdb.sql(
        f"SELECT {bigram_sql('s')} AS b FROM (SELECT unnest(?) AS s)", params=[values]
    ).fetchall()
    out = [None if b is None else sorted(b) for (b,) in rows]
    assert out == [["张伟"], ["张玮", "玮强"], ["王"], None, [""], ["张张"], ["ab", "b·", "·c"]]


def test_pinyin_is_per_character_and_catches_homophones():
    assert pinyin(pl.Series(["张伟", "张玮", None])).to_list() == ["zhangwei", "zhangwei", None]


@pytest.fixture(scope="module")
def resolved(silver_estate):
    out, home = silver_estate(enterprises=400, seed=31)
    truth = est.load_truth(out).collect()
    enterprises = read_silver(home, "int_enterprise_records")
    persons = read_silver(home, "int_person_records")
    e_det = link(enterprises, ENTERPRISE_KEYS)
    e_out = resolve(enterprises, e_det, "enterprise")
    p_det = link(persons, PERSON_KEYS)
    p_out = resolve(persons, p_det, "person", related=e_out.records)
    return {
        "out": out,
        "home": home,
        "truth": truth,
        "enterprise": (enterprises, e_det, e_out),
        "person": (persons, p_det, p_out),
    }


@pytest.mark.parametrize(("kind", "f1_floor"), [("enterprise", 0.97), ("person", 0.93)])
def test_probabilistic_pass_adds_recall_and_keeps_precision(resolved, kind, f1_floor):
    recs, det, res = resolved[kind]
    out = res.records
    truth = truth_for_records(resolved["truth"], recs)
    before, after = scores(det, truth), scores(out, truth)
    assert out.columns == ["record_id", "cluster", "rule", "match_probability", "match_weight", "keyed"]
    assert out.height == recs.height and out["record_id"].n_unique() == recs.height
    # keyed: the entity holds a validated key (what the engine's constraints read), the same for all its records
    if kind == "enterprise":
        key = (pl.col("uscc_status") == "valid") | pl.col("link_org_code").is_not_null()
    else:
        key = pl.col("id_number_status") == "valid"
    has_key = recs.select("record_id", has=key)
    per_entity = (
        out.join(has_key, on="record_id")
        .group_by("cluster")
        .agg(pl.col("keyed").n_unique().alias("n"), pl.col("keyed").first(), pl.col("has").any())
    )
    assert (per_entity["n"] == 1).all() and per_entity["keyed"].equals(per_entity["has"].fill_null(False))
    assert per_entity["keyed"].any() and not per_entity["keyed"].all()
    assert after["f1"] > before["f1"], (before, after)
    assert after["precision"] >= 0.99, after
    assert after["f1"] >= f1_floor, after  # a floor under today's figure (issue targets at 100k: 0.98 / 0.97)
    # Splink pairs are scored, deterministic-only records are not; a record the name pass joined says so (it
    # takes the enterprises' keyless mentions whose name identifies one enterprise: on this estate, all of them)
    linked = out.filter(pl.col("rule").is_in(["splink", "unique_name"]))
    assert linked.height > 0
    scored = linked.filter(pl.col("rule") == "splink")
    assert (
        scored.height == 0 or scored["match_probability"].min() >= splink_settings.MODELS[kind]["threshold"]
    )
    assert (
        out.filter(pl.col("rule").is_null())["match_probability"].null_count()
        == out.filter(pl.col("rule").is_null()).height
    )


@pytest.mark.parametrize("kind", ["enterprise", "person"])
def test_deterministic_clusters_are_never_split(resolved, kind):
    _, det, res = resolved[kind]
    joined = det.select("record_id", det="cluster").join(
        res.records.select("record_id", "cluster"), on="record_id"
    )
    assert joined.group_by("det").agg(pl.col("cluster").n_unique()).filter(pl.col("cluster") > 1).height == 0


def test_branches_never_share_a_cluster_with_their_parent(resolved):
    recs, _, res = resolved["enterprise"]
    entities = pl.read_parquet(resolved["out"] / "truth" / "enterprises" / "*.parquet")
    branches = entities.filter(pl.col("parent_id").is_not_null()).select("entity_id", "parent_id")
    assert branches.height > 0
    clusters = truth_for_records(resolved["truth"], recs).join(
        res.records.select("record_id", "cluster"), on="record_id"
    )
    per_entity = clusters.group_by("entity_id").agg(pl.col("cluster").unique())
    pairs = branches.join(per_entity, on="entity_id").join(
        per_entity.rename({"entity_id": "parent_id", "cluster": "parent_clusters"}), on="parent_id"
    )
    assert pairs.height > 0
    shared = pairs.filter(pl.col("cluster").list.set_intersection(pl.col("parent_clusters")).list.len() > 0)
    assert shared.height == 0, shared


@pytest.mark.parametrize("kind", ["enterprise", "person"])
def test_every_splink_link_says_why(resolved, kind):
    _, _, res = resolved[kind]
    linked = res.pairs.filter(pl.col("status") == "linked")
    in_pairs = set(linked["record_id_l"]) | set(linked["record_id_r"])
    splink_records = set(res.records.filter(pl.col("rule") == "splink")["record_id"])
    assert in_pairs and splink_records <= in_pairs
    comparisons = {
        c.get_comparison("duckdb").output_column_name for c in splink_settings.MODELS[kind]["comparisons"]()
    }
    for levels in linked["levels"].head(200):
        explained = json.loads(levels)
        assert set(explained) == comparisons and all(explained.values()), explained
    assert linked["match_weight"].null_count() == 0


@pytest.mark.parametrize("kind", ["enterprise", "person"])
def test_review_band_holds_the_borderline_pairs(resolved, kind):
    _, _, res = resolved[kind]
    model = splink_settings.MODELS[kind]
    review = res.pairs.filter(pl.col("status") == "review")
    assert review.height > 0
    assert review["match_probability"].min() >= model["review_threshold"]
    assert review["match_probability"].max() < model["threshold"]
    assert set(res.pairs["status"].unique()) <= {"linked", "review", "ambiguous", "cannot_link", "must_link"}


def test_decisions_are_honoured(resolved):
    recs, det, res = resolved["enterprise"]
    out = res.records
    # cannot-link: a pair the model links, between two records of different deterministic clusters
    dc = dict(zip(det["record_id"], det["cluster"], strict=True))
    linked = res.pairs.filter(pl.col("status") == "linked")
    a, b = next((x, y) for x, y in linked.select("record_id_l", "record_id_r").iter_rows() if dc[x] != dc[y])
    # must-link: two records the run left in different clusters
    cl = dict(zip(out["record_id"], out["cluster"], strict=True))
    alone = out.filter(pl.col("rule").is_null())["record_id"]
    c, d = alone[0], next(r for r in alone[1:] if cl[r] != cl[alone[0]])
    # a cannot-link inside one deterministic cluster is outranked by the validated identifier
    same = det.filter(
        pl.col("cluster") == det.group_by("cluster").len().filter(pl.col("len") > 1)["cluster"][0]
    )
    e, f = same["record_id"][0], same["record_id"][1]
    decisions = pl.DataFrame(
        {
            "record_id_l": [b, c, e],
            "record_id_r": [a, d, f],
            "decision": ["cannot_link", "must_link", "cannot_link"],
        }
    )
    again = resolve(recs, det, "enterprise", decisions=decisions)
    cl2 = dict(zip(again.records["record_id"], again.records["cluster"], strict=True))
    assert cl[a] == cl[b] and cl2[a] != cl2[b]
    assert cl2[c] == cl2[d]
    assert cl2[e] == cl2[f]
    assert again.conflicts.select("record_id_l", "record_id_r").rows() == [(e, f)]
    statuses = dict(
        zip(
            zip(again.pairs["record_id_l"], again.pairs["record_id_r"], strict=True),
            again.pairs["status"],
            strict=True,
        )
    )
    assert statuses[(a, b)] == "cannot_link" and statuses[(c, d)] == "must_link"
    rules = dict(zip(again.records["record_id"], again.records["rule"], strict=True))
    assert rules[c] == "must_link" and rules[d] == "must_link"


def test_reading_silver_in_column_groups_resolves_as_the_records_in_memory(resolved):
    """The nightly path (prepare_silver: keys, then compared columns, ids last) and the in-memory path agree,
    record for record, pair for pair; and a deterministic frame in another order than the records is matched by id."""
    e_recs, e_det, e_res = resolved["enterprise"]
    e_silver = probabilistic.resolve_prepared(probabilistic.prepare_silver(resolved["home"], "enterprise"))
    p_silver = probabilistic.resolve_prepared(
        probabilistic.prepare_silver(resolved["home"], "person", related=e_silver.records)
    )
    for res, (_, _, mem) in [(e_silver, resolved["enterprise"]), (p_silver, resolved["person"])]:
        assert res.records.sort("record_id").equals(mem.records.sort("record_id"))
        assert res.pairs.sort(pl.all()).equals(mem.pairs.sort(pl.all()))
        assert set(res.timings) >= {"deterministic", "prepare", "predict", "read ids"}
    shuffled = resolve(e_recs, e_det.sample(fraction=1.0, shuffle=True, seed=3), "enterprise")
    assert shuffled.records.sort("record_id").equals(e_res.records.sort("record_id"))


def test_saved_model_gives_the_clusters_training_gives(resolved, tmp_path):
    recs, det, _ = resolved["enterprise"]
    model = probabilistic.train(recs, det, "enterprise", max_pairs=2e5)
    splink_model.save_model("enterprise", model, tmp_path)
    loaded = splink_model.load_model("enterprise", tmp_path)
    assert loaded == json.loads(json.dumps(model))
    fresh = resolve(recs, det, "enterprise", model=model)
    again = resolve(recs, det, "enterprise", model=loaded)
    assert fresh.records.equals(again.records) and fresh.pairs.sort(pl.all()).equals(
        again.pairs.sort(pl.all())
    )


def test_the_prior_is_taken_over_the_pairs_that_can_match():
    """Pairs of two keyed profiles never match (two validated keys), so the prior is raised by all pairs over the
    pairs with a keyless side: with no keyed profile nothing changes; with 1 keyless of 4, 6 pairs of which 3 can
    match; and the factor does not move with the size of a city of the same make-up (the calibration issue)."""
    factor = splink_model.relevant_pairs_factor
    assert factor({"profiles": 10, "keyless": 10}) == pytest.approx(1.0)
    assert factor({"profiles": 4, "keyless": 1}) == pytest.approx(6 / 3)
    small, large = (
        factor({"profiles": 500_000, "keyless": 20_000}),
        factor({"profiles": 5_000_000, "keyless": 200_000}),
    )
    assert small > 10 and large == pytest.approx(small, rel=1e-3)
    model = {
        "probability_two_random_records_match": 1e-6,
        "quanshitong": {"profiles": 500_000, "keyless": 20_000},
    }
    # on the training estate itself the prior is the trained one times the factor
    assert splink_model._prior(model, {"profiles": 500_000, "keyless": 20_000}) == pytest.approx(1e-6 * small)


def test_common_names_weigh_less_than_rare_ones():
    """Term-frequency adjustment: two pairs agreeing on the same things weigh less on 张伟 than on a rare name."""
    n = 40
    names = ["张伟"] * (n + 2) + ["欧阳修远", "欧阳修远"]
    phones = (
        ["13800000001", "13800000001"] + [f"139{i:08d}" for i in range(n)] + ["13800000002", "13800000002"]
    )
    # p0 and the last record have no ID (keyless); every other record has a valid ID of its own
    ids = [None] + [f"4403011980010{i:05d}" for i in range(1, n + 2)] + ["440301198001019999", None]
    recs = pl.DataFrame(
        {
            "record_id": [f"p{i}" for i in range(len(names))],
            "name_comparison": names,
            "id_number": ids,
            "id_number_status": [("valid" if i else None) for i in ids],
            "id_number_birth_date": [None] * len(names),
            "id_number_sex": [None] * len(names),
            "phone": phones,
            "division_code": [None] * len(names),
            "address": [None] * len(names),
            "related_record_id": [None] * len(names),
        },
        schema_overrides={
            "id_number_birth_date": pl.Date,
            "id_number_sex": pl.Utf8,
            "division_code": pl.Utf8,
            "address": pl.Utf8,
            "related_record_id": pl.Utf8,
            "id_number_status": pl.Utf8,
        },
    )
    res = resolve(recs, link(recs, PERSON_KEYS), "person", threshold=1e-15)
    w = {
        frozenset((a, b)): (weight, levels)
        for a, b, weight, levels in res.pairs.select(
            "record_id_l", "record_id_r", "match_weight", "levels"
        ).iter_rows()
    }
    common, rare = w[frozenset(("p0", "p1"))], w[frozenset((f"p{n + 2}", f"p{n + 3}"))]
    assert common[1] == rare[1]  # the same levels on both pairs: only the name's frequency differs
    assert json.loads(common[1])["name_comparison"] == "name_comparison exact"
    assert common[0] < rare[0], (common, rare)


def test_a_masked_id_counts_by_the_digits_it_shows():
    """A court's masked ID (4403**********1233) against two persons of the same name: the one whose full ID shows
    the same digits gains, the other loses (splink_settings.PERSON, id_fragment)."""
    names = ["李晓明", "李晓明", "李晓明"] + [f"王{c}" for c in "一二三四五六七八九十"]
    ids = ["440304198812301233", None, "440305199001014567"] + [f"4403011980010{i:04d}1" for i in range(10)]
    masked = [None, "4403**********1233", None] + [None] * 10
    recs = pl.DataFrame(
        {
            "record_id": [f"p{i}" for i in range(len(names))],
            "name_comparison": names,
            "id_number": ids,
            "id_number_status": [
                ("valid" if i else "masked" if m else None) for i, m in zip(ids, masked, strict=True)
            ],
            "id_number_birth_date": [None] * len(names),
            "id_number_sex": [None] * len(names),
            "id_number_masked": masked,
            "phone": [None] * len(names),
            "division_code": [None] * len(names),
            "address": [None] * len(names),
            "related_record_id": [None] * len(names),
        },
        schema_overrides={
            "id_number_birth_date": pl.Date,
            "id_number_sex": pl.Utf8,
            "division_code": pl.Utf8,
            "address": pl.Utf8,
            "related_record_id": pl.Utf8,
            "id_number_status": pl.Utf8,
            "phone": pl.Utf8,
            "id_number_masked": pl.Utf8,
        },
    )
    res = resolve(recs, link(recs, PERSON_KEYS), "person", threshold=1e-15)
    w = {
        frozenset((a, b)): (weight, json.loads(levels))
        for a, b, weight, levels in res.pairs.select(
            "record_id_l", "record_id_r", "match_weight", "levels"
        ).iter_rows()
    }
    same, other = w[frozenset(("p1", "p0"))], w[frozenset(("p1", "p2"))]
    assert same[1]["id_fragment"] == "shown digits of a masked ID agree"
    assert other[1]["id_fragment"] == "All other comparisons"
    assert same[0] - other[0] > 15, (same, other)
    clusters = dict(res.records.select("record_id", "cluster").iter_rows())
    assert clusters["p1"] == clusters["p0"] != clusters["p2"]


def test_a_cannot_link_decision_outranks_the_name_pass(resolved):
    """A record joined to its enterprise by the name pass stays apart when a reviewer says it is another."""
    recs, det, res = resolved["enterprise"]
    out = res.records
    rules = dict(zip(out["record_id"], out["rule"], strict=True))
    cl = dict(zip(out["record_id"], out["cluster"], strict=True))
    named = out.filter(pl.col("rule") == "unique_name")
    assert named.height > 0
    a = named["record_id"][0]
    b = next(r for r, c in cl.items() if c == cl[a] and rules[r] in ("uscc", "org_code") and r != a)
    decisions = pl.DataFrame({"record_id_l": [a], "record_id_r": [b], "decision": ["cannot_link"]})
    again = resolve(recs, det, "enterprise", decisions=decisions)
    cl2 = dict(zip(again.records["record_id"], again.records["cluster"], strict=True))
    assert cl2[a] != cl2[b]
