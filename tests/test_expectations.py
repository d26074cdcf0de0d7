"""The silver expectation suites (quality/expectations.py): derived from the specs, run with GX 1.x.

The staging frames are real: a small synthetic bronze table of the shipped ``samr/registrations`` spec, staged
by the real engine, so the vocabulary rules are checked against what the standardizers actually write.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from lake.deployment import EXAMPLE_DEPLOYMENT
from models import canonical
from models.identifiers import id_check_char, org_check_char, regno_check_digit, uscc_check_char
from models.staging.spec import load_specs
from models.staging.spec_kinds import STATUS_KINDS
from models.staging.stage import LINEAGE, SourceInfo, stage
from models.standardize import DATE_STATUSES, STATUSES
from quality.expectations import (
    STATUS_VOCABULARIES,
    Rule,
    Suite,
    suite_for_intermediate,
    suite_for_staging,
)
from quality.validation import RuleResult, build_data_docs, to_pandas, validate

SPECS = load_specs()
REGISTRATIONS = SPECS["samr/registrations"]
N = 300


def _bronze(n: int) -> pl.DataFrame:
    """``n`` clean rows of SAMR's T_SCZT_DJXX, in bronze's types."""
    rows = []
    for i in range(n):
        org = f"{i:08d}" + org_check_char(f"{i:08d}")
        uscc = "91440300" + org
        regno = f"4403000{i:07d}"
        person = f"44030319800101{i % 1000:03d}"
        rows.append(
            {
                "ZTID": f"ZT{i:012d}",
                "TYSHXYDM": uscc + uscc_check_char(uscc),
                "ZCH": regno + regno_check_digit(regno),
                "QYMC": "深圳市源丰科技有限公司" if i % 2 else "深圳市隆数教育咨询有限公司",
                "QYLX": "1100",
                "FDDBR": "张伟",
                "FDDBRZJHM": person + id_check_char(person),
                "ZCZB": "500万元人民币",
                "CLRQ": dt.date(2005, 1, 1) + dt.timedelta(days=i),
                "HZRQ": dt.date(2020, 1, 1) + dt.timedelta(days=i),
                "DJZT": str(1 + i % 4),
                "JYFW": "国内贸易",
                "ZS": "深圳市南山区科技园路1号",
                "XZQHDM": "440305",
                "HYDM": "F5261",
                "LXDH": "13800138000",
                "GXSJ": dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i),
            }
        )
    return pl.DataFrame(rows, schema_overrides={"GXSJ": pl.Datetime("us", "UTC")})


@pytest.fixture(scope="module")
def staged() -> pl.DataFrame:
    result = stage(_bronze(N), REGISTRATIONS, SourceInfo("samr", "registrations", "T_SCZT_DJXX", ("ZTID",)))
    assert result.quarantined.height == 0
    return result.rows


@pytest.fixture(scope="module")
def suite() -> Suite:
    return suite_for_staging(REGISTRATIONS)


# ---- suites as data -----------------------------------------------------------------------------------
def test_staging_suite_names_the_spec_columns(suite: Suite) -> None:
    assert suite.name == "stg_samr__registrations"
    hard = {r.name for r in suite.rules if r.severity == "hard"}
    soft = {r.name for r in suite.rules if r.severity == "soft"}
    assert {f"{c}_not_null" for c in LINEAGE} | {"source_pk_unique"} <= hard
    assert {
        "uscc_status_in_vocabulary",
        "regno_status_in_vocabulary",
        "legal_rep_id_number_status_in_vocabulary",
        "founded_on_status_in_vocabulary",
        "registered_capital_wan_status_in_vocabulary",
        "phone_kind_in_vocabulary",
    } <= hard
    assert suite.rule("uscc_status_in_vocabulary").kwargs["value_set"] == sorted(STATUSES)
    assert suite.rule("founded_on_status_in_vocabulary").kwargs["value_set"] == sorted(DATE_STATUSES)
    assert {f"{c}_complete" for c in REGISTRATIONS.mandatory} <= soft
    assert all(suite.rule(f"{c}_complete").kwargs["mostly"] == 0.9 for c in REGISTRATIONS.mandatory)
    assert {
        "uscc_valid_rate",
        "regno_valid_rate",
        "legal_rep_id_number_valid_rate",
        "status_mapped",
        "industry_mapped",
        "founded_on_plausible",
        "approved_on_plausible",
    } <= soft
    assert suite.rule("industry_mapped").kwargs["column"] == "industry_unmapped"
    # every rule reads a column the staging model has; columns without a rule (free text) get none
    assert set(suite.columns) <= set(LINEAGE) | set(REGISTRATIONS.output_columns())
    assert "business_scope" not in suite.columns


def test_every_shipped_spec_and_table_gives_a_runnable_suite() -> None:
    import great_expectations.expectations as gxe

    suites = [suite_for_staging(s) for s in SPECS.values()]
    suites += [suite_for_intermediate(t) for t in canonical.INTERMEDIATE_TABLES]
    for s in suites:
        assert s.rules and {r.severity for r in s.rules} == {"hard", "soft"}, s.name
        for r in s.rules:
            assert isinstance(getattr(gxe, r.expectation)(**r.kwargs), gxe.Expectation), (s.name, r.name)
    assert set(STATUS_VOCABULARIES) == set(STATUS_KINDS)  # a new kind with a status needs its vocabulary


def test_intermediate_vocabularies_come_from_the_specs() -> None:
    events = suite_for_intermediate("int_events")
    assert events.rule("event_type_in_vocabulary").kwargs["value_set"] == sorted(
        {e.type for s in SPECS.values() for e in s.events}
    )
    assert events.rule("subject_kind_in_vocabulary").kwargs["value_set"] == ["enterprise", "person"]
    assert events.rule("event_id_unique").severity == "hard"
    persons = suite_for_intermediate("int_person_records")
    assert set(persons.rule("role_in_vocabulary").kwargs["value_set"]) == {
        m.role for s in SPECS.values() for m in s.persons
    }
    assert persons.rule("id_number_status_in_vocabulary").kwargs["value_set"] == sorted(STATUSES)
    enterprises = suite_for_intermediate("int_enterprise_records")
    assert "tin_kind_in_vocabulary" in {r.name for r in enterprises.rules}
    with pytest.raises(ValueError, match="not an intermediate table"):
        suite_for_intermediate("int_nothing")


@pytest.fixture
def own_specs(tmp_path: Path) -> Path:
    """A deployment's spec folder: the shipped specs, with registrations also declaring an approval event
    (a new city's market regulator publishes the date its registry approved a change, 核准日期)."""
    folder = tmp_path / "specs"
    shutil.copytree(EXAMPLE_DEPLOYMENT / "specs", folder)
    path = folder / "stg_samr__registrations.yaml"
    text = path.read_text(encoding="utf-8")
    declared = "  - {type: registration, event_category: business_registration, subject: subject, date: founded_on, status: status, reference: uscc}\n"
    assert declared in text
    extra = "  - {type: registry_approval, event_category: other, subject: subject, date: approved_on}\n"
    path.write_text(text.replace(declared, declared + extra), encoding="utf-8")
    return folder


def test_a_deployments_own_event_type_passes_the_events_suite_built_from_its_specs(
    staged: pl.DataFrame, own_specs: Path
) -> None:
    specs = load_specs(own_specs)
    assert "registry_approval" not in {e.type for s in SPECS.values() for e in s.events}
    events = canonical.events(staged, specs["samr/registrations"])
    assert set(events["event_type"]) == {"registration", "registry_approval"}
    report = validate(events, suite_for_intermediate("int_events", specs))
    assert report.passed_hard, report.describe("hard")
    assert "registry_approval" in report.suite.rule("event_type_in_vocabulary").kwargs["value_set"]
    # its category is declared by the deployment's specs, hence accepted
    assert "other" in report.suite.rule("event_category_in_vocabulary").kwargs["value_set"]
    assert set(events["event_category"]) == {"business_registration", "other"}
    # the shipped specs do not know them (no shipped event is 'other'): the same frame fails the suite they make
    assert validate(events, suite_for_intermediate("int_events")).failed_hard == [
        "event_type_in_vocabulary",
        "event_category_in_vocabulary",
    ]


def test_a_failed_canonical_check_names_the_rule_the_column_and_samples(
    staged: pl.DataFrame, own_specs: Path
) -> None:
    events = canonical.events(staged, load_specs(own_specs)["samr/registrations"])
    report = validate(events, suite_for_intermediate("int_events", SPECS))
    message = report.describe("hard")
    assert message.startswith("int_events: event_type_in_vocabulary on column event_type: ")
    assert f"{N} unexpected value(s) (50.00%), e.g. 'registry_approval'; " in message
    assert message.endswith(
        f"event_category_in_vocabulary on column event_category: {N} unexpected value(s) (50.00%), e.g. 'other'"
    )
    failure = report.to_metadata()["failures"]
    assert failure == [
        {
            "rule": "event_type_in_vocabulary",
            "column": "event_type",
            "severity": "hard",
            "samples": ["registry_approval"],
        },
        {
            "rule": "event_category_in_vocabulary",
            "column": "event_category",
            "severity": "hard",
            "samples": ["other"],
        },
    ]
    assert report.describe("soft") == f"int_events: every soft rule passed on {2 * N} row(s)"


# ---- validation -----------------------------------------------------------------------------------------
def test_clean_frame_passes_and_no_progress_bars(
    staged: pl.DataFrame, suite: Suite, capsys: pytest.CaptureFixture[str]
) -> None:
    report = validate(staged, suite)
    assert capsys.readouterr().err == ""  # GX's tqdm bars are off
    assert report.passed_hard and report.failed_soft == [], [
        (r.rule.name, r.observed) for r in report.results if not r.success
    ]
    assert (report.rows, report.validated_rows, report.sampled) == (N, N, False)
    assert [r.rule for r in report.results] == suite.rules
    assert (
        report.results[suite.rules.index(suite.rule("uscc_status_in_vocabulary"))].observed["element_count"]
        == N
    )
    assert json.loads(json.dumps(report.to_metadata()))["passed_hard"] is True


def test_hard_failures_block_and_are_named(staged: pl.DataFrame, suite: Suite) -> None:
    pk = staged["source_pk"].to_list()
    bad = staged.with_columns(
        source_pk=pl.Series([pk[0], pk[0], *pk[2:]]),
        uscc_status=pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("bogus")).otherwise("uscc_status"),
    )
    report = validate(bad, suite)
    assert not report.passed_hard
    assert sorted(report.failed_hard) == ["source_pk_unique", "uscc_status_in_vocabulary"]
    vocab = next(r for r in report.results if r.rule.name == "uscc_status_in_vocabulary")
    assert vocab.observed["unexpected_count"] == 1 and vocab.observed["partial_unexpected_list"] == ["bogus"]
    meta = json.loads(json.dumps(report.to_metadata()))
    assert meta["rules"]["source_pk_unique"]["success"] is False
    assert meta["rules"]["source_pk_unique"]["unexpected_count"] == 2


def test_a_missing_column_fails_its_rule_with_the_reason(staged: pl.DataFrame, suite: Suite) -> None:
    report = validate(staged.drop("phone_kind"), suite)
    assert set(report.failed_hard) == {"phone_kind_in_vocabulary", "phone_kind_not_null"}
    failed = next(r for r in report.results if r.rule.name == "phone_kind_not_null")
    assert "phone_kind" in failed.observed["exception"]


def test_soft_failures_warn_without_blocking(staged: pl.DataFrame, suite: Suite) -> None:
    holes = staged.with_columns(
        legal_rep_name=pl.when(pl.int_range(pl.len()) % 10 < 3).then(None).otherwise("legal_rep_name")
    )
    report = validate(holes, suite)
    assert report.passed_hard
    assert report.failed_soft == ["legal_rep_name_complete"]
    observed = next(r for r in report.results if r.rule.name == "legal_rep_name_complete").observed
    assert observed["unexpected_percent"] == pytest.approx(30.0)


def test_validity_rate_counts_only_identifiers_written_in_full(staged: pl.DataFrame, suite: Suite) -> None:
    """Missing or masked identifiers are not invalid ones; 30% invalid among the rest is."""
    i = pl.int_range(pl.len())
    masked = staged.with_columns(
        uscc_status=pl.when(i % 2 == 0)
        .then(pl.lit("missing"))
        .when(i % 4 == 1)
        .then(pl.lit("masked"))
        .otherwise("uscc_status")
    )
    assert validate(masked, suite).failed_soft == []
    invalid = staged.with_columns(
        uscc_status=pl.when(i % 10 < 3).then(pl.lit("invalid")).otherwise("uscc_status")
    )
    assert validate(invalid, suite).failed_soft == ["uscc_valid_rate"]


def test_large_frames_are_sampled(staged: pl.DataFrame, suite: Suite) -> None:
    report = validate(staged.to_arrow(), suite, sample_rows=100, seed=1)  # pyarrow input too
    assert (report.rows, report.validated_rows, report.sampled) == (N, 100, True)
    assert report.to_metadata()["sampled"] is True
    not_null = next(r for r in report.results if r.rule.name == "source_pk_not_null")
    assert not_null.observed["element_count"] == 100
    assert not validate(staged, suite, sample_rows=N).sampled
    presampled = validate(staged, suite, total_rows=45_000_000)  # sampled in storage by the caller
    assert (presampled.rows, presampled.validated_rows, presampled.sampled) == (45_000_000, N, True)


def test_types_pandas_trips_on_are_converted() -> None:
    frame = pl.DataFrame(
        {
            "amount": pl.Series([1.5, 2.25], dtype=pl.Decimal(18, 2)),
            "on": [dt.date(2020, 1, 1), dt.date(2101, 1, 1)],
            "at": pl.Series([dt.datetime(2020, 1, 1, 16, tzinfo=dt.UTC)] * 2, dtype=pl.Datetime("us", "UTC")),
            "tags": [["a"], ["b"]],
        }
    )
    pdf = to_pandas(frame, ["amount", "on", "at"])
    assert list(pdf.columns) == ["amount", "on", "at"]  # the list column, which no rule reads, is dropped
    assert str(pdf["amount"].dtype) == "float64" and pdf["at"].dt.tz is None
    assert str(pdf["on"].dtype).startswith("datetime64")
    bounds = {"min_value": dt.datetime(1949, 10, 1), "max_value": dt.datetime(2100, 1, 1)}
    rules = [
        Rule(
            "amount_positive",
            "hard",
            "ExpectColumnValuesToBeBetween",
            {"column": "amount", "min_value": 0, "max_value": 2},
            "amounts are small",
        ),
        Rule("on_plausible", "soft", "ExpectColumnValuesToBeBetween", {"column": "on", **bounds}, "dates"),
        Rule("at_plausible", "soft", "ExpectColumnValuesToBeBetween", {"column": "at", **bounds}, "times"),
    ]
    report = validate(frame, Suite("t_types", rules))
    assert report.failed_hard == ["amount_positive"] and report.failed_soft == ["on_plausible"]
    assert all("exception" not in r.observed for r in report.results)


def test_intermediate_name_completeness_ignores_sources_without_names() -> None:
    """Tax filings name their taxpayer by TIN only; their records must not count as incomplete."""

    def records(asset: str, department: str, names: list[str | None]) -> pl.DataFrame:
        n = len(names)
        given = pl.DataFrame(
            {
                "record_id": [f"{department}.{asset}:{i}:subject" for i in range(n)],
                "source_department": department,
                "source_table": "T",
                "source_asset": asset,
                "source_pk": [str(i) for i in range(n)],
                "role": "subject",
                "name": names,
            },
            schema_overrides={"name": pl.Utf8},
        )
        schema = canonical.ENTERPRISE_SCHEMA
        return given.with_columns(
            pl.lit(None, t).alias(c) for c, t in schema.items() if c not in given.columns
        ).select(list(schema))

    suite = suite_for_intermediate("int_enterprise_records")
    nameless_source = records("filings", "tax", [None] * 50)
    named = records("registrations", "samr", ["甲公司"] * 50)
    assert validate(pl.concat([nameless_source, named]), suite).failed_soft == []
    holes = records("registrations", "samr", ["甲公司"] * 40 + [None] * 10)
    report = validate(pl.concat([nameless_source, holes]), suite)
    assert report.passed_hard and report.failed_soft == ["name_complete"]


# ---- Data Docs -------------------------------------------------------------------------------------------
def test_data_docs_show_the_last_result_of_each_suite(
    staged: pl.DataFrame, suite: Suite, tmp_path: Path
) -> None:
    other = replace(suite, name="stg_test__other")
    first = validate(staged, suite)
    last = validate(staged.with_columns(uscc_status=pl.lit("bogus")), suite)
    index = build_data_docs([first, validate(staged, other), last], tmp_path / "docs")
    assert index == tmp_path / "docs" / "index.html" and index.is_file()
    html = index.read_text(encoding="utf-8")
    assert "stg_samr__registrations" in html and "stg_test__other" in html
    pages = list((tmp_path / "docs" / "validations" / "stg_samr__registrations").rglob("*.html"))
    assert len(pages) == 1  # one result per suite: the last one, which failed
    assert "bogus" in pages[0].read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="not made by validate"):
        build_data_docs([replace(first, gx_result=None)], tmp_path / "docs")


def test_a_failure_shows_up_to_five_distinct_values() -> None:
    rule = Rule("role_in_vocabulary", "hard", "ExpectColumnValuesToBeInSet", {"column": "role"}, "why")
    listed = ["a", "a", "b", "c", "b", "d", "e", "f", "g"]
    result = RuleResult(rule, False, {"unexpected_count": 9, "partial_unexpected_list": listed})
    assert result.samples == ["a", "b", "c", "d", "e"]
    assert (
        result.describe()
        == "role_in_vocabulary on column role: 9 unexpected value(s), e.g. 'a', 'b', 'c', 'd', 'e'"
    )
    broken = RuleResult(rule, False, {"exception": "column role not found"})
    assert broken.describe() == "role_in_vocabulary on column role: could not run: column role not found"
