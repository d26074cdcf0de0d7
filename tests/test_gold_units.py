"""Gold building blocks without a lake: stable ids across nights, survivorship, branches, decisions."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from lake.deployment import EXAMPLE_DEPLOYMENT
from models.gold.golden import declared_authority
from models.gold.identity import assign_ids
from models.gold.review import read_decisions, record_decision
from models.gold.survivorship import golden_records, link_branches
from models.staging.spec import load_specs

#: the simulated city's authority, as its staging specs declare it
SIMCITY = declared_authority(load_specs(EXAMPLE_DEPLOYMENT / "specs"))


def clusters(mapping: dict[str, int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"record_id": list(mapping), "cluster": list(mapping.values())},
        schema={"record_id": pl.Utf8, "cluster": pl.Int64},
    )


def ids_of(assignment) -> dict[str, str]:
    return dict(assignment.ids.iter_rows())


def history(assignment) -> set[tuple]:
    return {(r["old_id"], r["new_id"], r["reason"]) for r in assignment.history.to_dicts()}


def test_first_night_mints_in_a_stable_order():
    first = assign_ids(clusters({"b": 7, "a": 7, "c": 3}), None, "enterprise")
    assert ids_of(first) == {"a": "E0000000001", "b": "E0000000001", "c": "E0000000002"}
    assert history(first) == {(None, "E0000000001", "new"), (None, "E0000000002", "new")}
    # the cluster numbers are arbitrary: renumbering them changes nothing
    again = assign_ids(clusters({"b": 0, "a": 0, "c": 99}), None, "enterprise")
    assert ids_of(again) == ids_of(first) and history(again) == history(first)


def test_a_cluster_that_gains_records_keeps_its_id():
    night1 = assign_ids(clusters({"a": 1, "b": 1, "c": 2}), None, "enterprise").ids
    night2 = assign_ids(
        clusters({"a": 5, "b": 5, "new": 5, "c": 6, "d": 7}), night1, "enterprise", last_minted=2
    )
    ids = ids_of(night2)
    assert ids["a"] == ids["b"] == ids["new"] == "E0000000001" and ids["c"] == "E0000000002"
    assert ids["d"] == "E0000000003"
    assert history(night2) == {(None, "E0000000003", "new")}  # nothing else changed


def test_merge_keeps_the_larger_id_and_records_the_other():
    night1 = pl.DataFrame(
        {"record_id": ["a", "b", "c", "x"], "entity_id": ["E0000000001"] * 3 + ["E0000000002"]}
    )
    night2 = assign_ids(clusters({"a": 1, "b": 1, "c": 1, "x": 1}), night1, "enterprise", last_minted=2)
    assert set(ids_of(night2).values()) == {"E0000000001"}
    assert history(night2) == {("E0000000002", "E0000000001", "merged")}


def test_merge_of_equal_sizes_keeps_the_older_id():
    night1 = pl.DataFrame({"record_id": ["a", "x"], "entity_id": ["E0000000009", "E0000000004"]})
    night2 = assign_ids(clusters({"a": 1, "x": 1}), night1, "enterprise", last_minted=9)
    assert set(ids_of(night2).values()) == {"E0000000004"}
    assert history(night2) == {("E0000000009", "E0000000004", "merged")}


def test_split_gives_the_smaller_part_a_new_id_never_a_reused_one():
    night1 = pl.DataFrame({"record_id": ["a", "b", "c", "d", "e"], "entity_id": ["E0000000005"] * 5})
    night2 = assign_ids(
        clusters({"a": 1, "b": 1, "c": 1, "d": 2, "e": 2}), night1, "enterprise", last_minted=12
    )
    ids = ids_of(night2)
    assert ids["a"] == ids["b"] == ids["c"] == "E0000000005"
    assert ids["d"] == ids["e"] == "E0000000013"  # after the largest ever minted (12), not after 5
    assert history(night2) == {("E0000000005", "E0000000013", "split")}
    assert night2.history.filter(pl.col("reason") == "split")["records"].item() == 2


def test_an_id_whose_records_are_all_gone_is_retired():
    night1 = pl.DataFrame({"record_id": ["a", "gone"], "entity_id": ["P0000000001", "P0000000002"]})
    night2 = assign_ids(clusters({"a": 1}), night1, "person", last_minted=2)
    assert ids_of(night2) == {"a": "P0000000001"}
    assert history(night2) == {("P0000000002", None, "retired")}


def test_every_previous_id_is_kept_or_accounted_for_in_a_shuffle():
    import random

    rng = random.Random(3)
    records = [f"r{i:03d}" for i in range(300)]
    night1 = assign_ids(clusters({r: rng.randrange(60) for r in records}), None, "enterprise")
    survivors = [r for r in records if rng.random() > 0.1]
    night2 = assign_ids(
        clusters({r: rng.randrange(50) for r in survivors}),
        night1.ids,
        "enterprise",
        last_minted=night1.minted,
    )
    previous = set(night1.ids["entity_id"])
    tonight = set(night2.ids["entity_id"])
    changed = set(night2.history.filter(pl.col("reason").is_in(["merged", "retired"]))["old_id"])
    assert previous - tonight == changed  # every id that disappeared is in the history
    minted = set(night2.history.filter(pl.col("reason").is_in(["new", "split"]))["new_id"])
    assert tonight - previous == minted and not (minted & previous)
    # every survivor has an id, and the ids are as many as the clusters: one id per cluster
    assert night2.ids.height == len(survivors)
    assert night2.ids["entity_id"].n_unique() == night2.kept + night2.minted


def records(**cols) -> pl.DataFrame:
    n = len(next(iter(cols.values())))
    base = {
        "record_id": [f"r{i}" for i in range(n)],
        "source_department": ["samr"] * n,
        "source_asset": ["registrations"] * n,
        "updated_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * n,
    }
    return pl.DataFrame({**base, **cols})


def test_survivorship_by_authority_then_recency_then_validity():
    def t(d: int) -> dt.datetime:
        return dt.datetime(2026, 1, d, tzinfo=dt.UTC)

    frame = pl.DataFrame(
        {
            "record_id": ["tax1", "reg_old", "reg_new", "soc1"],
            "source_department": ["tax", "samr", "samr", "social"],
            "source_asset": ["taxpayers", "registrations", "registrations", "employers"],
            "updated_at": [t(20), t(1), t(9), t(30)],
            "name": ["税务名", "旧名称", "新名称", "社保名"],
            "name_comparison": ["a", "b", "c", "d"],
            "name_is_branch": [False] * 4,
            "name_parent_comparison": [None] * 4,
            "uscc": ["U-tax", "U-bad", None, "U-soc"],
            "uscc_status": ["valid", "invalid", "missing", "valid"],
            "phone": ["0755-1", None, "0755-2", None],
        },
        schema_overrides={"name_parent_comparison": pl.Utf8},
    )
    for c in (
        "regno",
        "regno_status",
        "link_org_code",
        "tin",
        "tin_status",
        "status",
        "legal_rep_name",
        "legal_rep_id_number",
        "address",
        "division_code",
        "industry",
        "industry_section",
        "role",
    ):
        frame = frame.with_columns(pl.lit(None, pl.Utf8).alias(c))
    frame = frame.with_columns(
        founded_on=pl.lit(None, pl.Date), registered_capital_wan=pl.lit(None, pl.Float64)
    )
    ids = pl.DataFrame({"record_id": frame["record_id"], "entity_id": ["E1"] * 4})
    g = golden_records(frame, ids, "enterprise", SIMCITY).to_dicts()[0]
    assert g["name"] == "新名称" and g["name_from"] == "reg_new"  # the registry, its latest record
    assert g["uscc"] == "U-tax" and g["uscc_from"] == "tax1"  # the registry's USCC is invalid: tax's wins
    assert g["phone"] == "0755-1" and g["phone_from"] == "tax1"  # tax first for phones
    assert g["status"] is None and g["status_from"] is None  # nobody said: null, no invented source
    assert g["records"] == 4 and g["departments"] == ["samr", "social", "tax"]


def test_branches_link_to_a_unique_parent_only():
    golden = pl.DataFrame(
        {
            "entity_id": ["E1", "E2", "E3", "E4", "E5"],
            "name_comparison": ["源惠贸易", "源惠贸易福田区分公司", "同名", "同名", "同名南山区分公司"],
            "is_branch": [False, True, False, False, True],
            "name_parent_comparison": [None, "源惠贸易", None, None, "同名"],
        }
    )
    out = dict(link_branches(golden).select("entity_id", "parent_entity_id").iter_rows())
    assert out == {"E1": None, "E2": "E1", "E3": None, "E4": None, "E5": None}


def test_decisions_latest_wins_in_either_order(tmp_path):
    record_decision(tmp_path, "enterprise", "b", "a", "must-link", "王审核")
    record_decision(tmp_path, "enterprise", "a", "b", "cannot_link", "李审核", note="different districts")
    record_decision(tmp_path, "person", "p1", "p2", "must_link", "王审核")
    d = read_decisions(tmp_path, "enterprise")
    assert d.select("record_id_l", "record_id_r", "decision", "reviewer").rows() == [
        ("a", "b", "cannot_link", "李审核")
    ]
    assert read_decisions(tmp_path).height == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("company", "a", "b", "must_link", "x"), "entity type"),
        (("enterprise", "a", "b", "maybe", "x"), "must-link or cannot-link"),
        (("enterprise", "a", "a", "must_link", "x"), "two different records"),
        (("enterprise", "a", "b", "must_link", " "), "who decided"),
    ],
)
def test_bad_decisions_are_refused(tmp_path, args, message):
    with pytest.raises(ValueError, match=message):
        record_decision(tmp_path, *args)
    with pytest.raises(ValueError, match="no enterprise record zz"):
        record_decision(tmp_path, "enterprise", "a", "zz", "must_link", "x", known_records={"a"})
