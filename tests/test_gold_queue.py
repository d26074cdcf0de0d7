"""The review queue on tiny frames (issue 16, item 4): one item per pair of tonight's entities, only the items a
decision could change, decided items kept but not open, ranked by consequence then uncertainty, explained in
Chinese."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from models.gold.explain import compared, explain
from models.gold.queue import open_items, review_items, review_queue

UTC = dt.UTC


def pairs(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "record_id_l": pl.Utf8,
            "record_id_r": pl.Utf8,
            "match_probability": pl.Float64,
            "match_weight": pl.Float64,
            "levels": pl.Utf8,
            "status": pl.Utf8,
        },
        orient="row",
    )


def ids(mapping: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame({"record_id": list(mapping), "entity_id": list(mapping.values())})


def decisions(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(
        [(*r, "王审核", "", dt.datetime(2026, 11, 1, i, tzinfo=UTC)) for i, r in enumerate(rows)],
        schema={
            "entity_type": pl.Utf8,
            "record_id_l": pl.Utf8,
            "record_id_r": pl.Utf8,
            "decision": pl.Utf8,
            "reviewer": pl.Utf8,
            "note": pl.Utf8,
            "decided_at": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )


NAME = json.dumps({"name_comparison": "name_comparison exact", "phone": "phone is NULL"})
IDS = ids({"a1": "E1", "a2": "E1", "b1": "E2", "c1": "E3", "d1": "E4", "d2": "E4", "e1": "E1", "f1": "E5"})


def test_record_pairs_collapse_into_one_item_per_pair_of_entities():
    items = review_items(
        pairs(
            ("a1", "b1", 0.04, -4.6, NAME, "review"),
            ("b1", "a2", 0.05, -4.2, NAME, "review"),  # the same two entities, stronger, the other way round
            ("d1", "d2", 0.045, -4.4, NAME, "review"),  # ended in one entity anyway: no question left
            ("a1", "c1", 0.5, 0.0, NAME, "linked"),  # not borderline
            ("c1", "f1", 0.09, -3.3, NAME, "ambiguous"),  # both entities keyed: no decision could change them
        ),
        IDS,
        "enterprise",
        keyed=pl.DataFrame({"record_id": ["c1", "f1"], "keyed": [True, True]}),
    )
    # the strongest pair stands for the item, its sides as the resolution gave them
    assert items.select("l_entity_id", "r_entity_id", "record_id_l", "record_id_r", "pairs").rows() == [
        ("E2", "E1", "b1", "a2", 2)
    ]
    assert items["match_probability"].to_list() == [0.05] and not items["same_entity"].any()


def test_decided_items_stay_visible_but_not_open_and_follow_their_entities():
    items = review_items(
        pairs(
            ("a1", "b1", 0.04, -4.6, NAME, "review"),
            ("a1", "e1", None, None, None, "must_link"),  # applied: now one entity
        ),
        IDS,
        "enterprise",
        decisions(
            ("enterprise", "e1", "a1", "must_link"),
            ("enterprise", "a2", "b1", "cannot_link"),  # another record of E1 against E2: covers the item
            ("enterprise", "c1", "d2", "cannot_link"),  # never paired: an item of its own, decided
            ("person", "a1", "b1", "must_link"),  # another kind
        ),
    )
    got = {(r["l_entity_id"], r["r_entity_id"]): r for r in items.to_dicts()}
    assert set(got) == {("E1", "E1"), ("E1", "E2"), ("E3", "E4")}
    assert got["E1", "E1"]["same_entity"] and got["E1", "E1"]["decision"] == "must_link"
    assert got["E1", "E2"]["decision"] == "cannot_link" and got["E1", "E2"]["record_id_l"] == "a1"
    assert got["E3", "E4"]["status"] == "decided" and got["E3", "E4"]["record_id_r"] == "d2"
    assert open_items(items).height == 0
    stakes = {e: {"records": 1, "risk_events": 0, "headcount": None} for e in ("E1", "E2", "E3", "E4")}
    queue = _queue("enterprise", items, stakes)
    assert (
        queue.height == 3 and queue["rank"].null_count() == 3 and queue["explanation_zh"].is_not_null().all()
    )


def _queue(kind: str, items: pl.DataFrame, consequence: dict) -> pl.DataFrame:
    records = pl.DataFrame(
        {
            "record_id": items["record_id_l"].to_list() + items["record_id_r"].to_list(),
            "name": "深圳市源惠贸易有限公司",
            "name_comparison": "源惠贸易",
        }
    )
    names = pl.DataFrame({"name_comparison": ["源惠贸易"], "name_records": [37], "name_entities": [12]})
    frame = pl.DataFrame([{"entity_id": e, **v} for e, v in consequence.items()])
    frame = frame.cast({c: pl.Int64 for c in frame.columns if c != "entity_id"})
    return review_queue(items, records.unique("record_id"), frame, names, kind, 0.06)


def test_enterprises_are_ranked_by_risk_then_headcount_then_uncertainty():
    ent = {f"r{i}": f"E{i}" for i in range(1, 11)}
    items = review_items(
        pairs(
            ("r1", "r2", 0.031, -4.99, NAME, "review"),  # no risk, 8 employees
            ("r3", "r4", 0.031, -4.99, NAME, "review"),  # no risk, 150 employees
            ("r5", "r6", 0.031, -4.99, NAME, "review"),  # a risk event, no headcount
            ("r7", "r8", 0.059, -4.06, NAME, "review"),  # no risk, 900 employees, nearest the threshold
            ("r9", "r10", 0.031, -4.99, NAME, "review"),  # no risk, 1,200 employees
        ),
        ids(ent),
        "enterprise",
    )
    stakes = {e: {"records": 2, "risk_events": 0, "headcount": None} for e in ent.values()}
    stakes["E2"]["headcount"], stakes["E3"]["headcount"], stakes["E8"]["headcount"] = 8, 150, 900
    stakes["E6"]["risk_events"], stakes["E10"]["headcount"] = 1, 1200
    queue = _queue("enterprise", items, stakes)
    # 1,200 is an order of magnitude above 900; 150 and 900 are one, so the uncertain pair goes first
    assert queue["l_entity_id"].to_list() == ["E5", "E9", "E7", "E3", "E1"]
    assert queue["rank"].to_list() == [1, 2, 3, 4, 5]
    first = queue.row(0, named=True)
    assert first["risk_events"] == 1 and first["records"] == 4
    assert "风险事件 1 条" in first["explanation_zh"]
    assert "该名称在本市 37 条记录中出现，分属 12 个主体" in first["explanation_zh"]
    assert "参保 150 人" in queue.row(3, named=True)["explanation_zh"]


def test_persons_tied_to_risky_enterprises_or_with_many_records_come_first():
    per = {f"p{i}": f"P{i}" for i in range(1, 7)}
    items = review_items(
        pairs(
            ("p1", "p2", 0.3, -1.2, NAME, "review"),
            ("p3", "p4", 0.3, -1.2, NAME, "review"),
            ("p5", "p6", 0.3, -1.2, NAME, "review"),
        ),
        ids(per),
        "person",
    )
    stakes = {e: {"records": 1, "risk_events": 0, "tied_risk_events": 0} for e in per.values()}
    stakes["P6"]["tied_risk_events"] = 2  # the legal representative of an enterprise with two penalties
    stakes["P3"]["records"] = 9
    queue = _queue("person", items, stakes)
    assert queue["l_entity_id"].to_list() == ["P5", "P3", "P1"]
    assert "关联企业风险事件 2 条" in queue["explanation_zh"][0]


def test_the_explanation_names_what_agrees_what_differs_and_what_is_missing():
    levels = json.dumps(
        {
            "name_comparison": "name_comparison exact",
            "address": "address bigram jaccard >= 0.5",
            "phone": "phone is NULL",
            "division_code": "All other comparisons",
            "legal_rep_name": "Exact match on legal_rep_name",
        }
    )
    assert compared(levels) == "名称一致、地址相似、法定代表人一致；行政区划不同；无从比较：电话"
    row = {
        "levels": levels,
        "l_uscc": "91440300MA5D8X1234",
        "l_uscc_status": "valid",
        "r_uscc": "91440300MA5D8X9999",
        "r_uscc_status": "valid",
        "l_name_comparison": "源惠贸易",
        "r_name_comparison": "源惠商贸",
        "l_name_records": 3,
        "l_name_entities": 1,
        "r_name_records": 5,
        "r_name_entities": 2,
        "status": "ambiguous",
        "match_probability": 0.9,
        "pairs": 3,
    }
    text = explain(row, "enterprise", 0.06)
    assert "统一社会信用代码不同" in text
    assert "「源惠贸易」3 条记录、1 个主体" in text and "「源惠商贸」5 条记录、2 个主体" in text
    assert "歧义保护" in text and "另有 2 对记录同样待定" in text
    # a level label no pattern knows is shown as it is, never hidden
    assert compared(json.dumps({"grid": "grid within 500 m"})) == "grid：grid within 500 m"


def test_items_sharing_an_entity_are_one_group_shown_together():
    """A court party's record resembling two same-named enterprises is two items and one question: they are
    shown together, at the place of the more consequential one."""
    ent = {"c": "E1", "x": "E2", "y": "E3", "p": "E4", "q": "E5"}
    items = review_items(
        pairs(
            ("c", "x", 0.031, -4.99, NAME, "review"),  # a risk event: first
            ("p", "q", 0.05, -4.2, NAME, "review"),  # nearer the threshold than the next
            ("c", "y", 0.031, -5.0, NAME, "review"),  # the same court party: with its group, not after p~q
        ),
        ids(ent),
        "enterprise",
    )
    stakes = {e: {"records": 1, "risk_events": 0, "headcount": None} for e in ent.values()}
    stakes["E2"]["risk_events"] = 1
    queue = _queue("enterprise", items, stakes)
    assert queue.select("l_entity_id", "r_entity_id", "rank", "group", "group_items").rows() == [
        ("E1", "E2", 1, 1, 2),
        ("E1", "E3", 2, 1, 2),
        ("E4", "E5", 3, 2, 1),
    ]
    assert "与相邻 1 项涉及相同主体" in queue["explanation_zh"][1]
