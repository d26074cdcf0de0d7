"""Conditions of staging specs (``only_if``, ``when``): negation, null tests and OR, compiled to one Polars
expression, and the errors a data engineer sees when one is wrong."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lake.yamlfile import ConfigError
from models import canonical
from models.staging.spec import StagingSpec, load_spec
from models.staging.spec_conditions import condition_columns, condition_expr
from models.staging.stage import SourceInfo, stage

FRAME = pl.DataFrame(
    {
        "t": ["a", "b", None, "c"],
        "u": ["x", None, "y", None],
    }
)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"t": ["a", "b"]}, [True, True, False, False]),
        ({"t": ["a"], "u": ["x"]}, [True, False, False, False]),
        ({"not": {"t": ["a"]}}, [False, True, True, True]),  # a null value is in no list: not-in holds
        ({"u": None}, [False, True, False, True]),
        ({"not": {"u": None}}, [True, False, True, False]),
        ({"any": [{"t": ["c"]}, {"u": ["y"]}]}, [False, False, True, True]),
        ({"all": [{"t": ["a", "b"]}, {"u": None}]}, [False, True, False, False]),
        ({"not": {"any": [{"t": None}, {"u": None}]}}, [True, False, False, False]),
        ({"any": [{"t": ["b"]}], "u": None}, [False, True, False, False]),
    ],
)
def test_a_condition_compiles_to_one_expression_that_is_never_null(cond, expected):
    expr = condition_expr(cond)
    assert expr is not None
    assert FRAME.select(expr.alias("c"))["c"].to_list() == expected


def test_the_columns_of_a_condition_are_listed_with_their_paths():
    cond = {"not": {"a": None}, "any": [{"b": ["1"]}, {"all": [{"c": ["2"]}]}]}
    assert condition_columns(cond) == [
        (("not", "a"), "a"),
        (("any", 0, "b"), "b"),
        (("any", 1, "all", 0, "c"), "c"),
    ]
    assert condition_expr(None) is None and condition_expr({}) is None


def _parties_spec(**mentions) -> StagingSpec:
    return StagingSpec.model_validate(
        {
            "source": "courts/case_parties",
            "grain": "test",
            "columns": {
                "party_type": {"from": "LX"},
                "party_name": {
                    "from": "MC",
                    "as": "enterprise_name",
                    "only_if": {"not": {"party_type": ["自然人"]}},
                },
                "person_name": {
                    "from": "MC",
                    "as": "person_name",
                    "only_if": {"any": [{"party_type": ["自然人"]}, {"party_type": None}]},
                },
            },
            **mentions,
        }
    )


def test_only_if_and_when_take_negation_null_tests_and_or():
    s = _parties_spec(
        enterprises=[{"role": "party", "prefix": "party_", "when": {"not": {"party_type": ["自然人"]}}}],
        persons=[
            {
                "role": "party",
                "prefix": "person_",
                "when": {"any": [{"party_type": ["自然人"]}, {"party_type": None}]},
            }
        ],
    )
    frame = pl.DataFrame(
        {"ID": [1, 2, 3], "LX": ["法人", "自然人", None], "MC": ["甲有限公司", "王五", "赵六"]}
    )
    rows = stage(frame, s, SourceInfo("courts", "case_parties", "AJ", ("ID",))).rows.sort("source_pk")
    assert rows["party_name"].to_list() == ["甲有限公司", None, "赵六"]  # not 自然人: a null type passes
    assert rows["person_name"].to_list() == [None, "王五", "赵六"]
    ent = canonical.enterprise_records(rows, s)
    per = canonical.person_records(rows, s)
    assert ent["source_pk"].to_list() == ["1", "3"]
    assert sorted(per["source_pk"].to_list()) == ["2", "3"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stg_courts__case_parties.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_malformed_condition_is_reported_at_its_line(tmp_path):
    path = _write(
        tmp_path,
        """\
source: courts/case_parties
grain: test
columns:
  party_type: {from: LX}
  party_name:
    from: MC
    only_if:
      not: {party_type: 自然人}
enterprises:
  - role: party
    prefix: party_
    when:
      any: []
""",
    )
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    assert f"{path}:8" in text and "columns.party_name.only_if.not.party_type" in text
    assert "a list of values" in text
    assert f"{path}:13" in text and "'any' takes a non-empty list" in text


def test_an_unknown_column_in_a_condition_is_named_at_its_line(tmp_path):
    path = _write(
        tmp_path,
        """\
source: courts/case_parties
grain: test
columns:
  party_name:
    from: MC
    only_if: {not: {party_typ: [自然人]}}
  party_type: {from: LX}
enterprises:
  - role: party
    prefix: party_
    when:
      any:
        - {party_type: [法人]}
        - {party_uscc: null}
""",
    )
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    assert f"{path}:6" in text and "'party_typ' is not a staging column defined above this one" in text
    assert f"{path}:14" in text and "enterprises[0].when.any[1].party_uscc" in text
    assert "'party_uscc' is not a staging column of this spec" in text


def test_a_number_among_the_values_must_be_quoted_and_operators_are_no_column_names():
    with pytest.raises(ValueError, match="values are text"):
        _parties_spec(enterprises=[{"role": "party", "prefix": "party_", "when": {"party_type": [1]}}])
    with pytest.raises(ValueError, match="operator of conditions"):
        StagingSpec.model_validate({"source": "a/b", "grain": "g", "columns": {"not": {"from": "X"}}})
