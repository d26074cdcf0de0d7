"""Crosswalks from the departments' code lists to canonical codes: the files validate, every value the
simulator emits is covered (on vocab.py and on a simulated estate), and the mapping agrees with the truth."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import estate_frame

from models.standardize import codes
from models.standardize.codes import CANONICAL, TARGETS, crosswalk, crosswalk_names, map_code
from simulator import vocab
from simulator.estate import load_truth

# (crosswalk, department, table, column) for every coded column of the simulated estate
CODED_COLUMNS = [
    ("status", "samr", "T_SCZT_DJXX", "DJZT"),
    ("status", "tax", "DJ_NSRXX", "NSRZTDM"),
    ("industry", "samr", "T_SCZT_DJXX", "HYDM"),
    ("industry", "tax", "DJ_NSRXX", "HYMC"),
    ("service_status", "service", "BJ_BJXX", "BLZT"),
    ("insurance_status", "social", "SB_GRCBXX", "CBZT"),
]


def mapped(values: list[str | None], *args, **kw) -> list[dict]:
    return (
        pl.DataFrame({"v": values}, schema={"v": pl.Utf8}).select(m=map_code("v", *args, **kw))["m"].to_list()
    )


def test_every_crosswalk_loads_and_validates():
    assert crosswalk_names() == sorted(TARGETS)
    for name in crosswalk_names():
        df = crosswalk(name)
        assert df.height > 0
        assert df.columns == [*codes.KEYS, *TARGETS[name], "note"]
        for column, allowed in CANONICAL.get(name, {}).items():
            assert set(df[column]) <= allowed


def test_industry_sections_agree_with_gbt4754_divisions():
    df = crosswalk("industry")
    assert (codes._section_of(df["industry_code"]) == df["section"]).all()
    sections = codes.gbt4754_sections()
    assert sections.height == 20 and sections["section"].to_list() == list("ABCDEFGHIJKLMNOPQRST")
    assert codes._section_of(pl.Series(["0111", "6510", "52", "9700", "9900"])).to_list() == [
        "A",
        "I",
        "F",
        "T",
        None,
    ]
    # SAMR's code already carries its section letter: it must be the one the crosswalk gives
    samr = df.filter(pl.col("department") == "samr")
    assert (samr["source_value"].str.slice(0, 1) == samr["section"]).all()
    assert (samr["source_value"].str.slice(1) == samr["industry_code"]).all()


def test_vocab_values_are_all_covered():
    expected = {
        ("status", "samr", "DJZT"): set(vocab.SAMR_STATUS.values()),
        ("status", "tax", "NSRZTDM"): set(vocab.TAX_STATUS.values()),
        ("industry", "samr", "HYDM"): {c for _, c, _ in vocab.INDUSTRIES}
        | {c for _, c in vocab.INDIVIDUAL_TRADES},
        ("industry", "tax", "HYMC"): {t for _, _, t in vocab.INDUSTRIES} | {"零售业"},
        ("service_status", "service", "BLZT"): set(vocab.SERVICE_STATUS),
        ("insurance_status", "social", "CBZT"): set(vocab.INSURANCE_STATUS.values()),
    }
    for (name, dept, column), values in expected.items():
        rows = mapped(sorted(values), name, dept, column)
        assert not any(r["unmapped"] for r in rows), (name, dept, column)


def test_canonical_meaning_of_the_vocab_codes():
    samr = {v: k for k, v in vocab.SAMR_STATUS.items()}
    assert [r["canonical_status"] for r in mapped(list(samr), "status", "samr", "DJZT")] == list(
        samr.values()
    )
    tax = {v: k for k, v in vocab.TAX_STATUS.items()}
    assert [r["canonical_status"] for r in mapped(list(tax), "status", "tax", "NSRZTDM")] == list(
        tax.values()
    )
    ins = {v: k for k, v in vocab.INSURANCE_STATUS.items()}
    assert [r["canonical_status"] for r in mapped(list(ins), "insurance_status", "social", "CBZT")] == list(
        ins.values()
    )
    for word, code, text in vocab.INDUSTRIES:
        assert mapped([code], "industry", "samr", "HYDM")[0] == {
            "industry_code": code[1:],
            "section": code[0],
            "unmapped": False,
        }, word
        assert mapped([text], "industry", "tax", "HYMC")[0]["industry_code"] == code[1:], word


def test_unmapped_values_are_flagged_never_silently_dropped():
    rows = mapped(["1", "９", "x", None, "", "  ", " 3 ", "３"], "status", "samr", "DJZT")
    assert [(r["canonical_status"], r["unmapped"]) for r in rows] == [
        ("active", False),
        (None, True),
        (None, True),
        (None, False),
        (None, False),
        (None, False),
        ("deregistered", False),
        ("deregistered", False),
    ]
    rows = mapped(["软件开发", "养猪"], "industry", "tax", "HYMC")
    assert rows[1] == {"industry_code": None, "section": None, "unmapped": True}


def test_map_code_is_an_expression_composable_with_others():
    df = pl.DataFrame({"DJZT": ["1", "2"], "HYDM": ["I6510", "Z9999"], "n": [1, 2]})
    out = (
        df.lazy()
        .select(
            map_code("DJZT", "status", "samr", "DJZT", table="T_SCZT_DJXX").alias("s"),
            map_code(pl.col("HYDM"), "industry", "samr", "HYDM").alias("i"),
            pl.col("n"),
        )
        .collect()
    )
    assert out["s"].struct.field("canonical_status").to_list() == ["active", "revoked"]
    assert out["i"].struct.field("unmapped").to_list() == [False, True]
    assert out.select(pl.col("i").struct.field("unmapped").sum()).item() == 1  # what silver reports


def test_map_code_configuration_errors():
    with pytest.raises(ValueError, match="unknown crosswalk"):
        map_code("v", "colours", "samr", "DJZT")
    with pytest.raises(ValueError, match="no rows"):
        map_code("v", "status", "samr", "NO_SUCH_COLUMN")
    with pytest.raises(ValueError, match="no rows"):
        map_code("v", "status", "samr", "DJZT", table="T_OTHER")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            (
                "department,source_table,source_column,source_value,canonical_status,note\n"
                "samr,T,C,1,active,\nsamr,T,C,1,revoked,\n"
            ),
            "duplicate keys",
        ),
        (
            "department,source_table,source_column,source_value,canonical_status,note\nsamr,T,C,1,alive,\n",
            "not in",
        ),
        (
            "department,source_table,source_column,source_value,canonical_status,note\nsamr,T,C,,active,\n",
            "empty key",
        ),
        ("department,source_table,source_column,source_value,status,note\nsamr,T,C,1,active,\n", "columns"),
    ],
)
def test_invalid_crosswalk_files_are_rejected(tmp_path, monkeypatch, content, message):
    (tmp_path / "crosswalks").mkdir()
    (tmp_path / "crosswalks" / "status.csv").write_text(content, encoding="utf-8")
    monkeypatch.setenv("QST_DEPLOYMENT", str(tmp_path))
    with pytest.raises(ValueError, match=message):
        crosswalk("status")


def test_industry_codes_must_match_their_section(tmp_path, monkeypatch):
    (tmp_path / "crosswalks").mkdir()
    (tmp_path / "crosswalks" / "industry.csv").write_text(
        "department,source_table,source_column,source_value,industry_code,section,note\n"
        "tax,DJ_NSRXX,HYMC,软件开发,6510,C,\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("QST_DEPLOYMENT", str(tmp_path))
    with pytest.raises(ValueError, match="section"):
        crosswalk("industry")


# ------------------------------------------------------------------------------------------------------------
# a simulated estate: every distinct value maps, and maps to what the truth says
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def estate(simulated_estate) -> Path:
    return simulated_estate(enterprises=5000, seed=5)


@pytest.mark.parametrize(("name", "dept", "table", "column"), CODED_COLUMNS)
def test_every_distinct_value_of_the_estate_is_mapped(estate, name, dept, table, column):
    values = estate_frame(estate, dept, f"SELECT DISTINCT {column} FROM {table}", ["v"])["v"]
    assert values.len() > 1
    rows = pl.DataFrame({"v": values}).with_columns(m=map_code("v", name, dept, column, table=table))
    unmapped = rows.filter(pl.col("m").struct.field("unmapped"))["v"].to_list()
    assert unmapped == [], f"{dept}.{table}.{column}: values not in {name}.csv: {unmapped}"


def _subjects(estate: Path, table: str) -> pl.DataFrame:
    truth = (
        load_truth(estate)
        .filter(
            (pl.col("table") == table)
            & (pl.col("role") == "subject")
            & (pl.col("entity_type") == "enterprise")
        )
        .select("pk", "entity_id")
        .collect()
    )
    ents = pl.read_parquet(estate / "truth" / "enterprises" / "*.parquet").select(
        "entity_id", "status", "hydm", "hymc", "kind"
    )
    return truth.join(ents, on="entity_id")


def test_estate_codes_map_to_the_true_status_and_industry(estate):
    reg = estate_frame(estate, "samr", "SELECT ZTID, DJZT, HYDM FROM T_SCZT_DJXX", ["pk", "DJZT", "HYDM"])
    reg = reg.join(_subjects(estate, "T_SCZT_DJXX"), on="pk").with_columns(
        s=map_code("DJZT", "status", "samr", "DJZT"), i=map_code("HYDM", "industry", "samr", "HYDM")
    )
    assert (reg["s"].struct.field("canonical_status") == reg["status"]).all()
    assert (reg["i"].struct.field("industry_code") == reg["hydm"].str.slice(1)).all()

    tax = estate_frame(estate, "tax", "SELECT DJXH, NSRZTDM, HYMC FROM DJ_NSRXX", ["pk", "NSRZTDM", "HYMC"])
    tax = tax.join(_subjects(estate, "DJ_NSRXX"), on="pk").with_columns(
        s=map_code("NSRZTDM", "status", "tax", "NSRZTDM"), i=map_code("HYMC", "industry", "tax", "HYMC")
    )
    # the tax bureau's own code list: it has no 'revoked' (those become 非正常户) nor 'moved_out' (停业)
    tax_view = {
        "active": "active",
        "revoked": "abnormal",
        "deregistered": "deregistered",
        "moved_out": "suspended",
    }
    assert (tax["s"].struct.field("canonical_status") == tax["status"].replace_strict(tax_view)).all()
    # the tax bureau files its own industry text (the simulator draws a branch's apart from its registered
    # code, as departments do disagree): compare with the text's meaning in the city's code list
    meaning = {text: code for _, code, text in vocab.INDUSTRIES} | {"零售业": "F52"}
    want = tax["hymc"].replace_strict(meaning)
    code = tax["i"].struct.field("industry_code")
    assert (code == want.str.slice(1)).all() and (
        tax["i"].struct.field("section") == want.str.slice(0, 1)
    ).all()
    assert (code.filter(tax["kind"] == "individual") == "52").all()  # 零售业: division level
    agree = tax.filter(pl.col("kind") != "branch")
    assert (
        agree["i"].struct.field("industry_code").filter(agree["kind"] == "enterprise")
        == agree.filter(pl.col("kind") == "enterprise")["hydm"].str.slice(1)
    ).all()
