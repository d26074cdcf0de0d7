"""Validation and dialect quoting of SQL identifiers taken from configuration."""

from __future__ import annotations

import pytest

from connectors.identifiers_sql import (
    IdentifierError,
    is_valid_identifier,
    qualified_name,
    quote_identifier,
    validate_identifier,
)


@pytest.mark.parametrize(
    "name",
    [
        "T_SCZT_DJXX",
        "ztid",
        "_private",
        "a1",
        "GXSJ2",
        "统一社会信用代码",
        "企业名称_2019",
        "Straße",
        "x" * 63,
    ],
)
def test_valid_identifiers_are_returned_unchanged(name):
    assert validate_identifier(name) == name
    assert is_valid_identifier(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x; DROP TABLE y",
        'a"b',
        "a`b",
        "a'b",
        "a]b",
        "with space",
        "schema.table",
        "a-b",
        "1abc",
        "９abc",  # full-width digit first
        "a\x00b",
        "a\nb",
        "a\u200bb",  # zero-width space
        "x" * 64,
        "a--",
        "a/*b*/",
    ],
)
def test_hostile_or_malformed_identifiers_are_rejected(name):
    with pytest.raises(IdentifierError) as info:
        validate_identifier(name, "column name")
    message = str(info.value)
    assert "column name" in message
    assert repr(name) in message
    assert not is_valid_identifier(name)


def test_identifier_error_is_a_value_error_and_explains_the_reason():
    with pytest.raises(ValueError, match="starts with a digit"):
        validate_identifier("2019年")
    with pytest.raises(IdentifierError, match="empty"):
        validate_identifier("")
    with pytest.raises(IdentifierError, match="at most 63"):
        validate_identifier("a" * 64)


@pytest.mark.parametrize("value", [None, 5, b"abc", ["a"]])
def test_non_text_is_rejected(value):
    with pytest.raises(IdentifierError, match="table name"):
        validate_identifier(value, "table name")


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("sqlite", '"T_SCZT_DJXX"'),
        ("postgresql", '"T_SCZT_DJXX"'),
        ("oracle", '"T_SCZT_DJXX"'),
        ("generic", '"T_SCZT_DJXX"'),
        ("mysql", "`T_SCZT_DJXX`"),
        ("mariadb", "`T_SCZT_DJXX`"),
        ("MySQL", "`T_SCZT_DJXX`"),
        ("postgresql+psycopg", '"T_SCZT_DJXX"'),
        ("mssql", "[T_SCZT_DJXX]"),
    ],
)
def test_quote_identifier_per_dialect(dialect, expected):
    assert quote_identifier("T_SCZT_DJXX", dialect) == expected


def test_quote_identifier_keeps_chinese_names():
    assert quote_identifier("统一社会信用代码", "postgresql") == '"统一社会信用代码"'
    assert quote_identifier("统一社会信用代码", "mysql") == "`统一社会信用代码`"


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql", "mariadb", "oracle"])
@pytest.mark.parametrize("name", ['x"; DROP TABLE y; --', "x`; DROP TABLE y", "a b"])
def test_quote_identifier_validates_before_quoting(dialect, name):
    with pytest.raises(IdentifierError):
        quote_identifier(name, dialect)


def test_qualified_name():
    assert qualified_name(None, "T_A", "postgresql") == '"T_A"'
    assert qualified_name("TAX", "DJ_NSRXX", "oracle") == '"TAX"."DJ_NSRXX"'
    assert qualified_name("tax", "dj_nsrxx", "mysql") == "`tax`.`dj_nsrxx`"
    assert qualified_name("main", "t", "sqlite") == '"main"."t"'


def test_qualified_name_validates_both_parts_and_says_which():
    with pytest.raises(IdentifierError, match="schema name"):
        qualified_name("a.b", "t", "postgresql")
    with pytest.raises(IdentifierError, match="table name"):
        qualified_name("s", "t; DROP TABLE u", "postgresql")
    with pytest.raises(IdentifierError, match="schema name"):
        qualified_name("", "t", "postgresql")


def test_quote_identifier_rejects_empty_dialect():
    with pytest.raises(ValueError, match="dialect"):
        quote_identifier("t", "")
