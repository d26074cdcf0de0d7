"""Names records bore on earlier nights (models.gold.names_seen): the table is a min/max over nights, so reruns and
backfills give the same table; a name borne before and not tonight is a former name (the whole night:
tests/test_gold.py, a renamed record keeps its enterprise)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from models.gold import names_seen

D1, D2, D3 = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def names(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "record_id": [r for r, _ in rows],
            "name_comparison": [n for _, n in rows],
            "name_is_branch": [False] * len(rows),
            "name_region": ["深圳市"] * len(rows),
            "name_legal_form": ["有限公司"] * len(rows),
        }
    )


def test_a_name_borne_before_is_a_former_name_and_reruns_change_nothing():
    night1 = names(
        [("reg:1", "富腾日教育咨询"), ("tax:9", "富腾日教育咨询"), ("reg:2", "和"), ("reg:3", "远宇佳电子")]
    )
    seen = names_seen.observe(None, night1, D1)
    assert "reg:2" not in seen["record_id"].to_list()  # too short to be evidence
    assert names_seen.former_names(seen, night1, D1).height == 0
    night2 = names([("reg:1", "和辉科技"), ("tax:9", "富腾日教育咨询")])  # reg:1 renamed, reg:3 gone
    formers = names_seen.former_names(seen, night2, D2)
    assert formers.select("record_id", "name_comparison").rows() == [("reg:1", "富腾日教育咨询")]
    seen2 = names_seen.observe(seen, night2, D2)
    assert names_seen.observe(seen2, night2, D2).equals(seen2)  # a rerun of night 2
    assert names_seen.former_names(seen2, night2, D2).equals(formers)
    # the former name stays one on later nights; a name first seen tonight is not a former name tonight
    night3 = names([("reg:1", "和辉科技"), ("tax:9", "富腾日教育咨询")])
    assert names_seen.former_names(seen2, night3, D3).equals(formers)
    row = seen2.filter(pl.col("name_comparison") == "富腾日教育咨询", pl.col("record_id") == "reg:1").row(
        0, named=True
    )
    assert (row["first_seen"], row["last_seen"]) == (D1, D1)
    # a backfill of night 1 after night 2 keeps night 2's names and dates
    assert names_seen.observe(seen2, night1, D1).equals(seen2)
