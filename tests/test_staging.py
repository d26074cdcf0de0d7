"""The staging engine and its specs: every kind, the mention conditions, quarantine rules and the errors a
data engineer sees when a spec is wrong."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from lake.deployment import EXAMPLE_DEPLOYMENT
from lake.yamlfile import ConfigError
from models import canonical
from models.events import CATEGORY_KEYS
from models.staging.spec import StagingSpec, load_spec, load_specs
from models.staging.stage import SourceInfo, StagingError, stage
from models.standardize.identifiers import key_kind


def _uscc(org_body8: str) -> str:
    """A valid USCC whose embedded organization code is valid too (built with the check algorithms)."""
    from models import identifiers as idf

    body17 = "91440300" + org_body8 + idf.org_check_char(org_body8)
    return body17 + idf.uscc_check_char(body17)


USCC = _uscc("MA5FXT4K")
INFO = SourceInfo("samr", "registrations", "T_SCZT_DJXX", ("ZTID",))


def spec(**overrides) -> StagingSpec:
    data = {
        "source": "samr/registrations",
        "grain": "test",
        "columns": {
            "local_id": {"from": "ZTID"},
            "name": {"from": "QYMC", "as": "enterprise_name"},
            "uscc": {"from": "TYSHXYDM", "as": "uscc"},
            "capital": {"from": "ZCZB", "as": "capital_wan"},
            "founded_on": {"from": "CLRQ", "as": "date"},
            "status": {"from": "DJZT", "as": "code", "crosswalk": "status"},
            "legal_rep_name": {"from": "FDDBR", "as": "person_name"},
        },
        "enterprises": [{"role": "subject"}],
        "persons": [{"role": "legal_rep", "prefix": "legal_rep_", "related": "subject"}],
        "events": [
            {
                "type": "registration",
                "event_category": "business_registration",
                "subject": "subject",
                "date": "founded_on",
                "status": "status",
            }
        ],
        "quarantine": [
            {"reason": "no_name_no_identifier", "all_missing": ["name", "uscc"]},
            {"reason": "unparseable_founded_on", "invalid": "founded_on"},
        ],
        "mandatory": ["name", "uscc"],
    }
    data.update(overrides)
    return StagingSpec.model_validate(data)


def bronze_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ZTID": ["A", "B", "C", "D", "E"],
            "QYMC": [
                "深圳市大码科技有限公司 ",
                "NULL",
                "深圳市大码科技有限责任公司（已注销）",
                "深圳市乙贸易有限公司",
                "腾讯科技（深圳）有限公司",
            ],
            "TYSHXYDM": [
                USCC.lower(),
                "无",
                "９" + USCC[1:],
                None,
                USCC[:-1] + ("0" if USCC[-1] != "0" else "1"),
            ],
            "ZCZB": ["500万元人民币", "12.5", "0.2亿元", "5000000元", "很多"],
            "CLRQ": ["2019年3月1日", "20190301", "2019/3/1", "0000-00-00", "not a date"],
            "DJZT": ["1", "3", "9", None, "吊销"],
            "FDDBR": ["张伟", None, "张伟", "李四", None],
            "_qst_batch_id": ["b1"] * 5,
            "_qst_row_hash": [1, 2, 3, 4, 5],
            "_qst_flags": [None] * 5,
        }
    )


# ---------------------------------------------------------------------------------------------------------
def test_every_shipped_spec_loads_and_is_named_after_its_model():
    specs = load_specs()
    assert len(specs) >= 15
    for source, s in specs.items():
        assert ((EXAMPLE_DEPLOYMENT / "specs") / f"{s.name}.yaml").exists(), source
        assert s.quarantine, f"{s.name} has no quarantine rule: a row with nothing usable would reach silver"


def test_stage_standardizes_each_kind():
    out = stage(bronze_frame(), spec(quarantine=[]), INFO)  # no rules: every row is staged
    rows = {r["source_pk"]: r for r in out.rows.to_dicts()}
    a = rows["A"]
    assert a["name"] == "深圳市大码科技有限公司" and a["name_legal_form"] == "有限责任公司"
    assert a["uscc"] == USCC and a["uscc_status"] == "valid"  # lower case folded
    assert a["capital"] == Decimal(500) and a["capital_status"] == "ok"
    assert a["founded_on"] == dt.date(2019, 3, 1) and a["founded_on_status"] == "ok"
    assert a["status"] == "active" and a["status_source"] == "1" and a["status_unmapped"] is False
    c = rows["C"]
    assert c["uscc"] == USCC and c["uscc_status"] == "valid"  # a full-width digit folded
    assert c["name_comparison"] == a["name_comparison"] and c["name_status_suffix"] == "已注销"
    assert c["capital"] == Decimal(2000)  # 0.2亿 = 2000万
    assert c["status"] is None and c["status_unmapped"] is True and c["status_source"] == "9"
    b = rows["B"]
    assert b["name"] is None and b["uscc"] is None and b["uscc_status"] == "missing"
    assert b["capital"] == Decimal("12.5") and b["status"] == "deregistered"
    d = rows["D"]
    assert d["capital"] == Decimal(500) and d["founded_on"] is None and d["founded_on_status"] == "sentinel"
    for r in rows.values():
        assert r["source_department"] == "samr" and r["source_table"] == "T_SCZT_DJXX"


def test_quarantine_keeps_every_reason_and_the_original_row():
    out = stage(bronze_frame(), spec(), INFO)
    assert out.rows.height + out.quarantined.height == 5
    q = {r["source_pk"]: r for r in out.quarantined.to_dicts()}
    assert set(q) == {"B", "E"}
    # B: name 'NULL' and uscc '无' are null markers -> no name and no identifier
    out_b = stage(bronze_frame().filter(pl.col("ZTID") == "B"), spec(), INFO)
    assert out_b.quarantined["reasons"].to_list() == [["no_name_no_identifier"]]
    original = json.loads(out_b.quarantined["original"][0])
    assert original["QYMC"] == "NULL" and original["TYSHXYDM"] == "无" and original["ZTID"] == "B"
    # E: an invalid date (and an invalid USCC check, which is only flagged, never quarantined)
    assert q["E"]["reasons"] == ["unparseable_founded_on"]
    assert "E" not in out.rows["source_pk"].to_list()


def test_b_with_null_markers_is_quarantined_within_the_whole_frame():
    out = stage(bronze_frame(), spec(), INFO)
    assert sorted(out.quarantined["source_pk"].to_list()) == ["B", "E"]
    assert sorted(out.rows["source_pk"].to_list()) == ["A", "C", "D"]


def test_mentions_and_events_follow_the_spec():
    s = spec()
    out = stage(bronze_frame(), s, INFO)
    ent = canonical.enterprise_records(out.rows, s)
    per = canonical.person_records(out.rows, s)
    ev = canonical.events(out.rows, s)
    assert ent["record_id"].to_list() == [f"samr.registrations:{k}:subject" for k in ("A", "C", "D")]
    assert ent.schema == pl.Schema(canonical.ENTERPRISE_SCHEMA)
    # the org code inside a valid USCC becomes the link key to pre-2015 records
    a = ent.filter(pl.col("source_pk") == "A").row(0, named=True)
    assert a["link_org_code"] == USCC[8:17] and a["link_org_code_source"] == "uscc"
    # D has a name but no USCC: a mention without a link key
    d = ent.filter(pl.col("source_pk") == "D").row(0, named=True)
    assert d["uscc_status"] == "missing" and d["link_org_code"] is None and d["local_id"] == "D"
    # persons: only rows with a legal representative's name; related to the enterprise of the same row
    assert sorted(per["source_pk"].to_list()) == ["A", "C", "D"]
    assert per.filter(pl.col("source_pk") == "A")["related_record_id"][0] == "samr.registrations:A:subject"
    assert ev["event_type"].unique().to_list() == ["registration"]
    assert ev.filter(pl.col("source_pk") == "A")["event_date"][0] == dt.date(2019, 3, 1)
    assert ev.filter(pl.col("source_pk") == "A")["subject_kind"][0] == "enterprise"


def test_only_if_and_when_split_a_mixed_key_column():
    s = StagingSpec.model_validate(
        {
            "source": "courts/case_parties",
            "grain": "test",
            "columns": {
                "party_type": {"from": "DSRLX"},
                "key_kind": {"from": "ZJHM", "as": "key_kind"},
                "party_name": {"from": "DSRMC", "as": "enterprise_name", "only_if": {"party_type": ["法人"]}},
                "party_uscc": {"from": "ZJHM", "as": "uscc", "only_if": {"key_kind": ["uscc"]}},
                "person_name": {"from": "DSRMC", "as": "person_name", "only_if": {"party_type": ["自然人"]}},
                "person_id_number": {
                    "from": "ZJHM",
                    "as": "resident_id",
                    "only_if": {"key_kind": ["resident_id"]},
                },
            },
            "enterprises": [{"role": "party", "prefix": "party_", "when": {"party_type": ["法人"]}}],
            "persons": [{"role": "party", "prefix": "person_", "when": {"party_type": ["自然人"]}}],
            "quarantine": [{"reason": "nothing", "all_missing": ["party_name", "person_name"]}],
        }
    )
    frame = pl.DataFrame(
        {
            "ID": [1, 2, 3],
            "DSRLX": ["法人", "自然人", "自然人"],
            "DSRMC": ["深圳市甲公司", "王五", "赵六"],
            "ZJHM": [USCC, "11010519491231002X", "4403**********1234"],
        }
    )
    out = stage(frame, s, SourceInfo("courts", "case_parties", "AJ_DSR", ("ID",)))
    r = out.rows.sort("source_pk").to_dicts()
    assert [x["key_kind"] for x in r] == ["uscc", "resident_id", "resident_id"]
    assert r[0]["party_uscc"] == USCC and r[0]["person_id_number_status"] == "missing"
    assert r[1]["person_id_number_status"] == "valid" and r[1]["party_uscc_status"] == "missing"
    assert r[2]["person_id_number_status"] == "masked" and r[1]["party_name"] is None
    ent = canonical.enterprise_records(out.rows, s)
    per = canonical.person_records(out.rows, s)
    assert ent["source_pk"].to_list() == ["1"] and sorted(per["source_pk"].to_list()) == ["2", "3"]
    assert set(ent["record_id"]).isdisjoint(per["record_id"])  # same role, one kind per row


def test_key_kind_prefers_a_valid_resident_id_and_reads_shapes():
    values = ["11010519491231002X", USCC, "MA0Q8NAQ-3", "4403**********1234", None, "abc"]
    kinds = pl.DataFrame({"k": values}).select(key_kind("k"))["k"].to_list()
    assert kinds == ["resident_id", "uscc", "org_code", "resident_id", "missing", "unknown"]


def test_composite_and_file_drop_keys_match_the_truth_format():
    s = StagingSpec.model_validate(
        {
            "source": "tax/credit_ratings",
            "grain": "t",
            "columns": {"tin": {"from": "NSRSBH", "as": "tin"}},
            "enterprises": [{"role": "subject"}],
            "quarantine": [{"reason": "no_identifier", "all_missing": ["tin"]}],
        }
    )
    frame = pl.DataFrame({"NSRSBH": [USCC], "PJND": [2023]})
    out = stage(frame, s, SourceInfo("tax", "credit_ratings", "XY_NSPJ", ("NSRSBH", "PJND")))
    assert out.rows["source_pk"].to_list() == [f"{USCC}|2023"]
    drop = StagingSpec.model_validate(
        {
            "source": "streets/rosters",
            "grain": "t",
            "columns": {"name": {"from": "姓名", "as": "person_name"}},
            "persons": [{"role": "subject"}],
            "quarantine": [{"reason": "no_name", "all_missing": ["name"]}],
        }
    )
    frame = pl.DataFrame({"姓名": ["王五"], "_qst_file": ["a.csv"], "_qst_line": [7]})
    out = stage(frame, drop, SourceInfo("streets", "rosters", "rosters", (), is_file_drop=True))
    assert out.rows["source_pk"].to_list() == ["a.csv#7"]


def test_a_missing_bronze_column_is_a_clear_error():
    with pytest.raises(StagingError, match=r"stg_samr__registrations.*T_SCZT_DJXX.*'ZCZB'"):
        stage(bronze_frame().drop("ZCZB"), spec(), INFO)


# ---------------------------------------------------------------------------------------------------------
# spec errors
def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_spec_errors_name_file_line_and_key(tmp_path):
    path = write(
        tmp_path,
        "stg_samr__registrations.yaml",
        """\
source: samr/registrations
grain: test
columns:
  name: {from: QYMC, as: enterprise_nam}
  uscc: {from: TYSHXYDM, as: uscc, crosswalks: status}
""",
    )
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    assert f"{path}:4" in text and "columns.name.as" in text
    assert f"{path}:5" in text and "crosswalks" in text and "did you mean 'crosswalk'" in text


def test_spec_references_are_checked(tmp_path):
    path = write(
        tmp_path,
        "x.yaml",
        """\
source: samr/registrations
grain: test
columns:
  name: {from: QYMC, as: enterprise_name}
enterprises: [{role: subject, prefix: firm_}]
events: [{type: registration, event_category: business_registration, subject: owner, date: founded_on}]
quarantine: [{reason: bad, invalid: name}]
mandatory: [uscc]
""",
    )
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    for fragment in (
        "no staging column starts with 'firm_'",
        "no mention has role 'owner'",
        "'founded_on' is not a staging column",
        "'name' has no status",
        "mandatory: 'uscc'",
    ):
        assert fragment in text, fragment


def test_service_cases_declaration_is_checked_at_its_lines(tmp_path):
    path = write(
        tmp_path,
        "x.yaml",
        """\
source: service/service_cases
grain: test
columns:
  case_id: {from: BJBH}
  item_code: {from: SXBM}
  channel: {from: QD}
  applicant_name: {from: SQRMC, as: enterprise_name}
enterprises: [{role: applicant, prefix: applicant_}]
service_cases:
  case_id: case_id
  item_code: item_cod
  applied_at: channel
  applicant: owner
""",
    )
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    assert f"{path}:11:3: service_cases.item_code: 'item_cod' is not a staging column" in text
    assert f"{path}:12:3: service_cases.applied_at: 'channel' is read as 'text'" in text
    assert f"{path}:13:3: service_cases.applicant: no enterprise mention has role 'owner'" in text


def test_spec_file_must_be_named_after_its_model(tmp_path):
    write(
        tmp_path,
        "registrations.yaml",
        ((EXAMPLE_DEPLOYMENT / "specs") / "stg_samr__registrations.yaml").read_text(encoding="utf-8"),
    )
    with pytest.raises(ConfigError, match=r"must be named stg_samr__registrations\.yaml"):
        load_specs(tmp_path)


def test_declared_expectations_are_checked(tmp_path):
    path = write(
        tmp_path,
        "x.yaml",
        """\
source: samr/registrations
grain: test
columns:
  name: {from: QYMC, as: enterprise_name}
quarantine: [{reason: no_name, all_missing: [name]}]
expectations:
  - {rule: in_set, column: name}
  - {rule: between, column: name, values: [a]}
""",
    )
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    assert f"{path}:7:5: expectations[0]: 'values' goes with rule 'in_set'" in text
    assert f"{path}:8:5: expectations[1]: 'values' goes with rule 'in_set'" in text
    path.write_text(
        path.read_text(encoding="utf-8").split("expectations:")[0]
        + "expectations: [{rule: not_null, column: uscc}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"expectations\[0\]\.column: 'uscc' is not a staging column"):
        load_spec(path)


def test_declared_expectations_join_the_suite():
    from quality.expectations import suite_for_staging

    s = spec(
        expectations=[
            {"rule": "in_set", "column": "status", "values": ["active"], "severity": "soft"},
            {"rule": "not_null", "column": "uscc"},
        ]
    )
    suite = suite_for_staging(s)
    declared = {r.name: r for r in suite.rules if r.name.endswith("_declared")}
    assert declared["status_in_set_declared"].severity == "soft"
    assert declared["status_in_set_declared"].kwargs["value_set"] == ["active"]
    assert declared["uscc_not_null_declared"].severity == "hard"


def test_standardizing_repeated_values_once_gives_the_same_rows(monkeypatch):
    """Batches of 2,000 rows and more standardize each distinct value of a repeating column once and join
    the result back; the rows must be exactly those of the row-by-row path."""
    import models.staging.stage as engine

    base = bronze_frame()
    frame = pl.concat([base.with_columns(ZTID=pl.col("ZTID") + str(i)) for i in range(600)])  # 3,000 rows
    fast = stage(frame, spec(), INFO)
    monkeypatch.setattr(engine, "_DEDUPE_MIN_ROWS", 10**9)
    slow = stage(frame, spec(), INFO)
    assert fast.rows.height == 1_800 and fast.rows.equals(slow.rows)
    assert fast.quarantined.equals(slow.quarantined)


# ---------------------------------------------------------------------------------------------------------
# event categories (models/events.py)
SPEC_WITH_EVENT = """\
source: samr/penalties
grain: test
columns:
  name: {{from: XDRMC, as: enterprise_name}}
  decided_on: {{from: JDRQ, as: date}}
enterprises: [{{role: subject}}]
events:
  - {{type: xzcf, subject: subject, date: decided_on{category}}}
"""


def test_an_unknown_event_category_names_file_line_key_and_the_categories(tmp_path):
    path = write(
        tmp_path, "stg_samr__penalties.yaml", SPEC_WITH_EVENT.format(category=", event_category: penalti")
    )
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    assert f"{path}:8" in text and "events[0].event_category" in text
    assert "unknown event category 'penalti'" in text
    for category in CATEGORY_KEYS:
        assert category in text
    assert "market_penalty (市场监管行政处罚)" in text


def test_an_event_without_a_category_is_an_error_listing_the_categories(tmp_path):
    path = write(tmp_path, "stg_samr__penalties.yaml", SPEC_WITH_EVENT.format(category=""))
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    assert f"{path}:8" in text and "events[0].event_category" in text and "required" in text
    assert all(category in text for category in CATEGORY_KEYS)


def test_the_declared_category_reaches_int_events(tmp_path):
    path = write(
        tmp_path,
        "stg_samr__penalties.yaml",
        SPEC_WITH_EVENT.format(category=", event_category: market_penalty"),
    )
    spec = load_spec(path)
    staged = pl.DataFrame(
        {
            "source_department": ["samr"],
            "source_table": ["T_XZCF"],
            "source_asset": ["penalties"],
            "source_pk": ["1"],
            "name": ["深圳市某某有限公司"],
            "decided_on": [dt.date(2026, 1, 2)],
        }
    )
    events = canonical.events(staged, spec)
    assert events.select("event_type", "event_category").row(0) == ("xzcf", "market_penalty")
    assert events.schema == canonical.EVENT_SCHEMA


def test_every_shipped_event_declares_a_category():
    """The example deployment's events and their categories (a change here changes what the marts count)."""
    declared = {
        e.type: e.event_category for s in load_specs(EXAMPLE_DEPLOYMENT / "specs").values() for e in s.events
    }
    assert declared["admin_penalty"] == "market_penalty"
    assert declared["env_penalty"] == "environmental_penalty"
    assert set(declared.values()) <= set(CATEGORY_KEYS)


def test_a_bare_year_dates_a_tax_rating_event():
    s = StagingSpec.model_validate(
        {
            "source": "tax/credit_ratings",
            "grain": "t",
            "columns": {
                "tin": {"from": "NSRSBH", "as": "tin"},
                "rating_year": {"from": "ND", "as": "year"},
                "rating": {"from": "PJJG"},
            },
            "enterprises": [{"role": "subject"}],
            "events": [
                {
                    "type": "tax_rating",
                    "event_category": "tax_rating",
                    "subject": "subject",
                    "date": "rating_year",
                    "category": "rating",
                }
            ],
        }
    )
    frame = pl.DataFrame({"NSRSBH": [USCC, USCC], "ND": ["2024年度", "20xx"], "PJJG": ["A", "B"]})
    out = stage(frame, s, SourceInfo("tax", "credit_ratings", "XY_NSPJ", ("NSRSBH", "ND")))
    assert out.rows["rating_year_status"].to_list() == ["ok", "invalid"]
    ev = canonical.events(out.rows, s)
    assert ev["event_date"].to_list() == [dt.date(2024, 1, 1), None]
