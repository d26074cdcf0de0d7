"""The party rule (models/standardize/parties.py) and the ``party_kind`` kind that applies it: a party column
mixing enterprises and persons, with no type column, split into enterprise and person mentions."""

from __future__ import annotations

import polars as pl
import pytest

from models import canonical
from models import identifiers as idf
from models.staging.spec import StagingSpec
from models.staging.stage import SourceInfo, stage
from models.standardize.parties import PARTY_KINDS, party_kind


def _uscc(org_body8: str) -> str:
    body17 = "91440300" + org_body8 + idf.org_check_char(org_body8)
    return body17 + idf.uscc_check_char(body17)


USCC = _uscc("MA5FXT4K")
ORG = "MA5FXT4K" + idf.org_check_char("MA5FXT4K")
OLD_TIN = "440300" + ORG
ID18 = "11010519491231002X"
ID18_MISTYPED = "11010519491231003X"  # check digit fails: proves nothing
ID15 = "110105491231002"


def kinds(names: list[str | None], keys: list[str | None] | None = None) -> list[str]:
    frame = pl.DataFrame({"n": names, "k": keys if keys is not None else [None] * len(names)}, strict=False)
    expr = party_kind("n", "k") if keys is not None else party_kind("n")
    return frame.select(expr)["n"].to_list()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("深圳市甲科技有限公司", "enterprise"),
        ("深圳市甲科技有限责任公司（已注销）", "enterprise"),
        ("某某村农民专业合作社", "enterprise"),
        ("南山区小李便利店（个体工商户）", "enterprise"),
        ("张记面馆", "enterprise"),  # a shop's ending, from three characters
        ("宏达律师事务所", "enterprise"),
        ("ABC Trading Co., Ltd.", "enterprise"),
        ("王五", "person"),
        ("欧阳娜娜", "person"),
        ("李行", "person"),  # two characters: a given name, not a shop
        ("阿卜杜拉·艾买提", "person"),
        ("阿卜杜拉．艾买提", "person"),
        ("王 五", "person"),
        ("John Smith", "unknown"),
        ("某某某某某", "unknown"),  # five Han characters and no organization word
        ("NULL", "missing"),
        (None, "missing"),
    ],
)
def test_a_name_alone_says_enterprise_or_person(name, kind):
    assert kinds([name]) == [kind]


@pytest.mark.parametrize(
    ("name", "key", "kind"),
    [
        ("王五", USCC, "enterprise"),  # a valid key decides over the name
        ("深圳市甲科技有限公司", ID18, "person"),
        (None, ORG, "enterprise"),
        (None, OLD_TIN, "enterprise"),
        (None, ID15, "person"),
        (None, ID18, "person"),
        ("王五", ID18_MISTYPED, "person"),  # an invalid key proves nothing: the name decides
        ("深圳市甲科技有限公司", ID18_MISTYPED, "enterprise"),
        (None, ID18_MISTYPED, "unknown"),
        ("John Smith", "4403**********1234", "unknown"),  # a masked key proves nothing
        (None, None, "missing"),
        ("无", "NULL", "missing"),
    ],
)
def test_a_valid_key_decides_first_then_the_name(name, key, kind):
    assert idf.is_valid_resident_id(ID18) and not idf.is_valid_resident_id(ID18_MISTYPED)
    assert kinds([name], [key]) == [kind]


def test_every_value_is_of_the_vocabulary():
    out = kinds(["甲有限公司", "王五", "x", None], [None, None, None, None])
    assert set(out) <= set(PARTY_KINDS) and out == ["enterprise", "person", "unknown", "missing"]


def test_party_kind_splits_a_party_column_without_a_type_column():
    s = StagingSpec.model_validate(
        {
            "source": "courts/defaulters",
            "grain": "test",
            "columns": {
                "party_kind": {"from": "MC", "as": "party_kind", "key_column": "ZJHM"},
                "party_name": {
                    "from": "MC",
                    "as": "enterprise_name",
                    "only_if": {"party_kind": ["enterprise"]},
                },
                "party_uscc": {"from": "ZJHM", "as": "uscc", "only_if": {"party_kind": ["enterprise"]}},
                "person_name": {"from": "MC", "as": "person_name", "only_if": {"party_kind": ["person"]}},
                "person_id_number": {
                    "from": "ZJHM",
                    "as": "resident_id",
                    "only_if": {"party_kind": ["person"]},
                },
            },
            "enterprises": [{"role": "party", "prefix": "party_", "when": {"party_kind": ["enterprise"]}}],
            "persons": [{"role": "party", "prefix": "person_", "when": {"party_kind": ["person"]}}],
        }
    )
    frame = pl.DataFrame(
        {
            "ID": [1, 2, 3, 4],
            "MC": ["深圳市甲科技有限公司", "王五", "赵六", "张记面馆"],
            "ZJHM": [USCC, ID18, None, None],
        }
    )
    rows = stage(frame, s, SourceInfo("courts", "defaulters", "SXBZXR", ("ID",))).rows.sort("source_pk")
    assert rows["party_kind"].to_list() == ["enterprise", "person", "person", "enterprise"]
    assert rows["party_uscc"].to_list() == [USCC, None, None, None]
    assert rows["person_id_number_status"].to_list() == ["missing", "valid", "missing", "missing"]
    ent = canonical.enterprise_records(rows, s)
    per = canonical.person_records(rows, s)
    assert ent["source_pk"].to_list() == ["1", "4"] and sorted(per["source_pk"].to_list()) == ["2", "3"]


def test_key_column_goes_with_party_kind_only():
    with pytest.raises(ValueError, match="'key_column' goes with 'as: party_kind' only"):
        StagingSpec.model_validate(
            {"source": "a/b", "grain": "g", "columns": {"x": {"from": "X", "key_column": "Y"}}}
        )


def test_a_key_valid_as_both_kinds_is_decided_by_the_name():
    """924403071712012296 passes the USCC check and the resident-ID check: the name says which party it is; with
    a name that says nothing the key's reading (a person, as in key_kind) stands."""
    from models.standardize.identifiers import resident_id, uscc

    key = "924403071712012296"
    frame = pl.DataFrame({"n": ["深圳市凯嘉贸易有限公司", "曹思远", "ABC"], "k": [key] * 3})
    statuses = frame.select(
        u=uscc(pl.col("k")).struct.field("status"), r=resident_id(pl.col("k")).struct.field("status")
    )
    assert statuses.row(0) == ("valid", "valid")
    kinds = frame.select(party_kind(pl.col("n"), pl.col("k")))["n"].to_list()
    assert kinds == ["enterprise", "person", "person"]


def test_a_repair_shop_is_an_enterprise():
    kinds = pl.DataFrame({"n": ["深圳市华强手机维修部", "李部"]}).select(party_kind(pl.col("n")))["n"]
    assert kinds.to_list() == ["enterprise", "person"]  # the ending counts from three characters
