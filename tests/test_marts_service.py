"""办件效能 and 开办企业 marts against figures recomputed another way: from the service centre's raw SQLite
table, day by day with ``chinese_calendar`` in plain Python, never through the marts' calendar table."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections import defaultdict
from pathlib import Path

import chinese_calendar
import numpy as np
import polars as pl
import pytest
from conftest import estate_frame

from lake.delta import read_dataset
from lake.layout import quarantine_rows_path
from models.marts.calendar import CALENDAR_START
from models.marts.service import (
    COMMENTS,
    UNMAPPED_DEPARTMENT,
    build_service_marts,
    business_startup_cases,
    case_facts,
    mart_business_startup,
    mart_service_efficiency,
)
from models.standardize.codes import startup_items

pytestmark = pytest.mark.xdist_group("silver_estate")

#: The departments the service marts showed when they were a table in code: the simulated city's crosswalk
#: (deployments/simcity/crosswalks/service_item_departments.csv) must give the same.
SIMCITY_DEPARTMENTS = {
    "SX0001": ("samr", "市场监管局"),
    "SX0002": ("samr", "市场监管局"),
    "SX0003": ("samr", "市场监管局"),
    "SX0101": ("samr", "市场监管局"),
    "SX0201": ("housing", "住房和建设局"),
    "SX0301": ("public_security", "公安局"),
    "SX0401": ("tax", "税务局"),
    "SX0501": ("social", "人力资源和社会保障局"),
    "SX0601": ("env", "生态环境局"),
    "SX0701": ("public_security", "公安局"),
}

RAW_COLUMNS = [
    "BJBH",
    "SXBM",
    "SQRLX",
    "SQRZJHM",
    "SQSJ",
    "SLSJ",
    "BJSJ",
    "FDSX",
    "CNSX",
    "BLZT",
    "QD",
    "MYD",
]


def is_workday(d: dt.date) -> bool:
    try:
        return chinese_calendar.is_workday(d)
    except NotImplementedError:  # outside the official years the marts count Monday to Friday
        return d.weekday() < 5


def py_working_days(start: dt.date | None, end: dt.date | None) -> int | None:
    if start is None or end is None or end < start or start < CALENDAR_START:
        return None
    return sum(is_workday(start + dt.timedelta(days=k)) for k in range(1, (end - start).days + 1))


def to_date(text: str | None) -> dt.date | None:
    return None if text in (None, "") else dt.date.fromisoformat(text[:10])


@pytest.fixture(scope="module")
def estate(silver_estate) -> tuple[Path, Path, dt.date]:
    estate_dir, home = silver_estate(enterprises=400, seed=31)
    as_of = dt.date.fromisoformat(json.loads((estate_dir / "estate.json").read_text())["as_of"])
    return estate_dir, home, as_of


@pytest.fixture(scope="module")
def raw_cases(estate) -> list[dict]:
    """The raw cases silver kept (quarantined keys left out), with the per-case figures computed in Python."""
    estate_dir, home, as_of = estate
    quarantined = read_dataset(quarantine_rows_path(home, "service", "service_cases"))
    dropped = set() if quarantined is None else set(pl.from_arrow(quarantined.to_table())["source_pk"])
    frame = estate_frame(estate_dir, "service", f"SELECT {', '.join(RAW_COLUMNS)} FROM BJ_BJXX", RAW_COLUMNS)
    rows = []
    for r in frame.filter(~pl.col("BJBH").is_in(list(dropped))).iter_rows(named=True):
        accepted, completed = to_date(r["SLSJ"]), to_date(r["BJSJ"])
        finished = completed is not None
        elapsed = py_working_days(accepted, completed if finished else as_of)
        rows.append(
            {
                **r,
                "applied": to_date(r["SQSJ"]),
                "accepted": accepted,
                "completed": completed,
                "finished": finished,
                "days": elapsed if finished else None,
                "elapsed": elapsed,
                "overdue": elapsed is not None and elapsed > int(r["CNSX"]),
                "over_statutory": elapsed is not None and elapsed > int(r["FDSX"]),
                "score": int(r["MYD"]) if r["MYD"] is not None and 1 <= int(r["MYD"]) <= 5 else None,
            }
        )
    assert len(rows) > 300
    return rows


@pytest.fixture(scope="module")
def marts(estate) -> dict[str, pl.DataFrame]:
    _, home, as_of = estate
    return build_service_marts(home, as_of)


def test_efficiency_per_item_and_channel_matches_the_raw_table(raw_cases, marts):
    mart = marts["mart_service_efficiency"]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in raw_cases:
        groups[(r["SXBM"], r["QD"])].append(r)
    assert mart.height == len(groups)
    assert mart["cases"].sum() == len(raw_cases)
    for row in mart.iter_rows(named=True):
        rows = groups[(row["item_code"], row["channel"])]
        assert (row["department"], row["department_name_zh"]) == SIMCITY_DEPARTMENTS[row["item_code"]]
        days = [r["days"] for r in rows if r["finished"]]
        scores = [r["score"] for r in rows if r["score"] is not None]
        assert row["cases"] == len(rows)
        assert row["finished_cases"] == len(days)
        assert row["open_cases"] == sum(not r["finished"] for r in rows)
        assert row["returned_cases"] == sum(r["BLZT"] == "退件" for r in rows)
        assert row["overdue_cases"] == sum(r["overdue"] for r in rows)
        assert row["open_overdue_cases"] == sum(r["overdue"] and not r["finished"] for r in rows)
        assert row["over_statutory_cases"] == sum(r["over_statutory"] for r in rows)
        assessed = [r for r in rows if r["elapsed"] is not None]
        assert row["assessed_cases"] == len(assessed)
        assert row["overdue_rate"] == pytest.approx(row["overdue_cases"] / len(assessed))
        assert row["processing_days_mean"] == pytest.approx(np.mean(days))
        assert row["processing_days_median"] == pytest.approx(np.percentile(days, 50))
        assert row["processing_days_p90"] == pytest.approx(np.percentile(days, 90))
        assert row["processing_days_max"] == max(days)
        assert row["rated_cases"] == len(scores)
        if scores:
            assert row["satisfaction_avg"] == pytest.approx(np.mean(scores))
            assert row["satisfied_share"] == pytest.approx(sum(s >= 4 for s in scores) / len(scores))
            assert row["bad_review_share"] == pytest.approx(sum(s <= 2 for s in scores) / len(scores))
        assert row["promised_days"] == int(rows[0]["CNSX"]) and row["statutory_days"] == int(rows[0]["FDSX"])
    assert set(mart.columns) == set(COMMENTS["mart_service_efficiency"]["columns"])
    assert (
        mart["overdue_cases"].sum() > 0
    )  # the simulated centre is late now and then: the test means something


def norm_key(key: str | None) -> str | None:
    return None if key is None else unicodedata.normalize("NFKC", key).upper().replace(" ", "")


def test_business_startup_matches_the_raw_table(raw_cases, marts):
    startups = marts["mart_business_startup_cases"]
    by_key: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in raw_cases:
        by_key[(r["SXBM"], norm_key(r["SQRZJHM"]))].append(r)
    expected = {}
    for r in raw_cases:
        if r["SXBM"] != startup_items()["registration"] or r["SQRLX"] != "企业":
            continue
        steps = [r]
        for item in ("seal", "invoice"):
            found = sorted(
                (
                    c
                    for c in by_key[(startup_items()[item], norm_key(r["SQRZJHM"]))]
                    if 0 <= (c["applied"] - r["applied"]).days <= 30
                ),
                key=lambda c: (c["applied"], c["BJBH"]),
            )
            steps += found[:1]
        done = all(s["completed"] is not None for s in steps)
        end = max(s["completed"] for s in steps) if done else None
        expected[r["BJBH"]] = (len(steps), py_working_days(r["applied"], end))
    assert startups.height == len(expected) > 30
    for row in startups.iter_rows(named=True):
        n_steps, days = expected[row["registration_case_id"]]
        assert 1 + row["has_seal"] + row["has_invoice"] == n_steps
        assert row["startup_days"] == days
        assert row["within_target"] == (None if days is None else days <= 8)

    monthly = marts["mart_business_startup"]
    assert monthly["startups"].sum() == len(expected)
    finished = [d for _, d in expected.values() if d is not None]
    assert monthly["finished_startups"].sum() == len(finished)
    assert monthly["within_target_startups"].sum() == sum(d <= 8 for d in finished)
    for row in monthly.iter_rows(named=True):
        days = [
            d
            for case, (_, d) in expected.items()
            if d is not None
            and next(r for r in raw_cases if r["BJBH"] == case)["applied"].strftime("%Y-%m") == row["month"]
        ]
        if days:
            assert row["startup_days_mean"] == pytest.approx(np.mean(days))
            assert row["startup_days_median"] == pytest.approx(np.percentile(days, 50))
    assert set(monthly.columns) == set(COMMENTS["mart_business_startup"]["columns"])
    assert set(startups.columns) == set(COMMENTS["mart_business_startup_cases"]["columns"])


def cases_frame(**columns) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "case_id": [f"c{i}" for i in range(n)],
        "item_code": ["SX0001"] * n,
        "item_name": ["企业设立登记"] * n,
        "channel": ["窗口"] * n,
        "applicant_type": ["企业"] * n,
        "applicant_uscc": [f"U{i}" for i in range(n)],
        "applicant_uscc_status": ["valid"] * n,
        "applicant_name_comparison": [None] * n,
        "statutory_days": [15] * n,
        "promised_days": [3] * n,
        "case_status": ["completed"] * n,
        "satisfaction": [5] * n,
    }
    base |= columns
    frame = pl.DataFrame(base, schema_overrides={"applicant_name_comparison": pl.Utf8})
    for c in ("applied_at", "accepted_at", "completed_at"):
        frame = frame.with_columns(
            pl.col(c).str.to_datetime(time_zone="Asia/Shanghai").dt.convert_time_zone("UTC")
        )
    return frame


def test_rules_on_hand_made_cases():
    cases = cases_frame(
        # accepted the Friday before the 2024 National Day, done on the 8th: 29 Sep (make-up) and 30 Sep, 8 Oct
        applied_at=[
            "2024-09-27 09:00:00",
            "2024-09-27 09:00:00",
            "2024-09-20 10:00:00",
            "2026-10-20 10:00:00",
        ],
        accepted_at=[
            "2024-09-27 10:00:00",
            "2024-09-27 10:00:00",
            "2024-09-20 11:00:00",
            "2026-10-20 11:00:00",
        ],
        completed_at=["2024-10-08 16:00:00", "2024-09-30 23:30:00", None, None],
        case_status=["completed", "returned", "in_progress", "in_progress"],
        satisfaction=[5, 9, None, None],
    )
    facts = case_facts(cases, dt.date(2026, 10, 31)).collect()
    assert facts["processing_days"].to_list() == [3, 2, None, None]
    # 3 > promised 3? no. The open 2024 case is long overdue; the 2026 one waited 8 working days (> 3)
    assert facts["is_overdue"].to_list() == [False, False, True, True]
    assert facts["is_over_statutory"].to_list() == [False, False, True, False]
    # went overdue on the 4th working day after acceptance: 20 Oct 2026 -> 21, 22, 23, 26
    assert facts["overdue_on"][3] == dt.date(2026, 10, 26)
    assert facts["satisfaction"].to_list() == [5, None, None, None]
    mart = mart_service_efficiency(cases, dt.date(2026, 10, 31))
    row = mart.row(0, named=True)
    assert (row["cases"], row["finished_cases"], row["returned_cases"], row["open_cases"]) == (4, 2, 1, 2)
    assert (row["overdue_cases"], row["open_overdue_cases"], row["overdue_rate"]) == (2, 2, 0.5)


def test_startup_chain_on_hand_made_cases():
    cases = cases_frame(
        item_code=["SX0001", "SX0301", "SX0401", "SX0401", "SX0001"],
        applicant_uscc=["A", "A", "A", "A", "B"],
        applied_at=[
            "2026-02-12 09:00:00",
            "2026-02-25 09:00:00",
            "2026-02-26 09:00:00",
            "2026-06-01 09:00:00",
            "2026-03-02 09:00:00",
        ],
        accepted_at=[
            "2026-02-12 10:00:00",
            "2026-02-25 10:00:00",
            "2026-02-26 10:00:00",
            "2026-06-01 10:00:00",
            "2026-03-02 10:00:00",
        ],
        completed_at=[
            "2026-02-13 10:00:00",
            "2026-02-25 15:00:00",
            "2026-02-28 10:00:00",
            "2026-06-02 10:00:00",
            None,
        ],
        case_status=["completed"] * 4 + ["in_progress"],
    )
    startups = business_startup_cases(cases, dt.date(2026, 3, 3))
    a, b = startups.row(0, named=True), startups.row(1, named=True)
    # 12 Feb -> 28 Feb (make-up Saturday): 13, 14 (make-up), 24, 25, 26, 27, 28 = 7 working days
    assert (a["has_seal"], a["has_invoice"], a["complete_chain"], a["startup_days"], a["within_target"]) == (
        True,
        True,
        True,
        7,
        True,
    )
    assert a["invoice_case_id"] == "c2"  # the June invoice is outside the 30-day window
    assert (b["is_finished"], b["startup_days"], b["within_target"]) == (False, None, None)
    monthly = mart_business_startup(startups=startups)
    assert monthly["month"].to_list() == ["2026-02", "2026-03"]
    assert monthly["within_target_share"].to_list() == [1.0, None]


def test_item_departments_are_the_deployments_and_an_item_without_one_is_unmapped(tmp_path, monkeypatch):
    """Which department decides an item is a city's own data (its crosswalks/ folder): an item the list lacks is
    shown as unmapped (and noted by the marts build), never given a department by guess."""
    from models.marts.service import departments, unmapped_items
    from models.standardize.codes import crosswalk_names

    simcity = {r["item_code"]: (r["department"], r["department_name_zh"]) for r in departments().to_dicts()}
    assert simcity == SIMCITY_DEPARTMENTS
    assert "service_item_departments" not in crosswalk_names()  # not a code crosswalk
    root = tmp_path / "city"
    (root / "crosswalks").mkdir(parents=True)
    (root / "crosswalks" / "service_item_departments.csv").write_text(
        "item_code,department,department_name_zh,note\nSX0001,market,市场局,\n", encoding="utf-8"
    )
    monkeypatch.setenv("QST_DEPLOYMENT", str(root))
    cases = cases_frame(
        item_code=["SX0001", "ZZ9"],
        applied_at=["2026-10-20 10:00:00"] * 2,
        accepted_at=["2026-10-20 11:00:00"] * 2,
        completed_at=["2026-10-21 11:00:00"] * 2,
    )
    mart = mart_service_efficiency(cases, dt.date(2026, 10, 31))
    got = {r["item_code"]: (r["department"], r["department_name_zh"]) for r in mart.to_dicts()}
    assert got == {"SX0001": ("market", "市场局"), "ZZ9": UNMAPPED_DEPARTMENT}
    assert unmapped_items(mart) == ["ZZ9"]
    (root / "crosswalks" / "service_item_departments.csv").write_text(
        "item_code,department,department_name_zh,note\nSX0001,a,甲,\nSX0001,b,乙,\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match="two departments"):
        departments()


def test_a_city_names_its_own_start_up_items(tmp_path, monkeypatch):
    """Which service items make up 开办企业 is the deployment's: another city's codes find its start-ups, and a
    deployment that declares none gets an empty table of the same columns (a note says why)."""
    import shutil

    from lake.deployment import EXAMPLE_DEPLOYMENT

    city = tmp_path / "city"
    shutil.copytree(EXAMPLE_DEPLOYMENT, city)
    monkeypatch.setenv("QST_DEPLOYMENT", str(city))
    day = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    n = 2
    cases = pl.DataFrame(
        {
            "case_id": ["A1", "A2"],
            "item_code": ["KB-01", "KB-02"],
            "item_name": ["企业开办", "刻章"],
            "channel": ["窗口"] * n,
            "applicant_type": ["企业"] * n,
            "applicant_uscc": ["91440300MA5FXXXX0X"] * n,
            "applicant_uscc_status": ["valid"] * n,
            "applicant_name_comparison": ["某公司"] * n,
            "applied_at": [day, day + dt.timedelta(days=1)],
            "accepted_at": [day, day + dt.timedelta(days=1)],
            "completed_at": [day + dt.timedelta(days=1), day + dt.timedelta(days=2)],
            "statutory_days": [5] * n,
            "promised_days": [3] * n,
            "case_status": ["completed"] * n,
            "satisfaction": [5] * n,
        }
    )
    (city / "crosswalks" / "service_startup_steps.csv").write_text(
        "step,item_code,note\nregistration,KB-01,\nseal,KB-02,\ninvoice,KB-03,\n", encoding="utf-8"
    )
    assert startup_items() == {"registration": "KB-01", "seal": "KB-02", "invoice": "KB-03"}
    found = business_startup_cases(cases, dt.date(2026, 3, 31))
    assert found["registration_case_id"].to_list() == ["A1"]
    (city / "crosswalks" / "service_startup_steps.csv").unlink()
    assert startup_items() == {}
    empty = business_startup_cases(cases, dt.date(2026, 3, 31))
    assert empty.height == 0 and empty.columns == found.columns and empty.schema == found.schema
