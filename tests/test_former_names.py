"""Former names (曾用名): a registry change log declares them on its enterprise mention; each becomes a record of
role ``former_name`` linked deterministically to the subject's record, so another department's record filed
under the old name can be resolved to the enterprise, while the golden name stays the current one."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from models import canonical
from models import identifiers as idf
from models.gold.survivorship import golden_records
from models.resolution.deterministic import ENTERPRISE_KEYS, link
from models.roles import FORMER_NAME_ROLE
from models.staging.spec import StagingSpec
from models.staging.stage import SourceInfo, stage
from quality.expectations import suite_for_intermediate


def _uscc(org_body8: str) -> str:
    body17 = "91440300" + org_body8 + idf.org_check_char(org_body8)
    return body17 + idf.uscc_check_char(body17)


USCC = _uscc("MA5FXT4K")
CHANGES = StagingSpec.model_validate(
    {
        "source": "samr/name_changes",
        "grain": "one row per change of name",
        "columns": {
            "name": {"from": "XMC", "as": "enterprise_name"},
            "uscc": {"from": "TYSHXYDM", "as": "uscc"},
            "old_name": {"from": "JMC", "as": "enterprise_name"},
        },
        "enterprises": [{"role": "subject", "former_names": ["old_name"]}],
        "authority": {"enterprise": {"name": 1}},
    }
)
INFO = SourceInfo("samr", "name_changes", "BGJL", ("ID",))


def staged() -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "ID": [1, 2],
            "XMC": ["深圳市新名科技有限公司", "深圳市丙贸易有限公司"],
            "TYSHXYDM": [USCC, None],
            "JMC": ["深圳市旧名科技有限公司", None],
        }
    )
    return stage(frame, CHANGES, INFO).rows


def test_each_former_name_is_a_record_linked_to_its_subject():
    records = canonical.enterprise_records(staged(), CHANGES)
    assert records.schema == canonical.ENTERPRISE_SCHEMA
    former = records.filter(pl.col("role") == FORMER_NAME_ROLE).row(0, named=True)
    subject = records.filter((pl.col("role") == "subject") & (pl.col("source_pk") == "1")).row(0, named=True)
    assert records.height == 3  # two subjects, one former name (row 2 has none)
    assert former["record_id"] == "samr.name_changes:1:former_name__subject__old_name"
    assert former["name"] == "深圳市旧名科技有限公司" and former["name_comparison"] == "旧名科技"
    assert former["uscc"] is None and former["source_pk"] == "1"
    assert former["link_same_entity"] == subject["record_id"] == subject["link_same_entity"]
    other = records.filter(pl.col("source_pk") == "2").row(0, named=True)
    assert other["link_same_entity"] is None  # no former name: nothing to link


def test_the_deterministic_pass_links_a_former_name_and_survivorship_keeps_the_current_name():
    records = canonical.enterprise_records(staged(), CHANGES)
    linked = link(records, ENTERPRISE_KEYS)
    by_id = dict(zip(linked["record_id"], linked["cluster"], strict=True))
    assert by_id["samr.name_changes:1:former_name__subject__old_name"] == by_id["samr.name_changes:1:subject"]
    assert linked.filter(pl.col("record_id").str.contains("former_name"))["rule"].to_list() == ["former_name"]
    # the former name's record is the most recent: it still never becomes the golden name
    records = records.with_columns(
        updated_at=pl.when(pl.col("role") == FORMER_NAME_ROLE)
        .then(pl.lit(dt.datetime(2030, 1, 1), canonical.UTC))
        .otherwise(pl.lit(dt.datetime(2020, 1, 1), canonical.UTC))
    )
    ids = linked.select("record_id", entity_id=pl.col("cluster").cast(pl.Utf8))
    golden = golden_records(records, ids, "enterprise", {"samr/name_changes": {"enterprise": {"name": 1}}})
    renamed = golden.filter(pl.col("uscc") == USCC).row(0, named=True)
    assert renamed["name"] == "深圳市新名科技有限公司"
    assert renamed["former_names"] == ["深圳市旧名科技有限公司"]
    assert golden.filter(pl.col("uscc").is_null())["former_names"].to_list() == [[]]


def test_former_names_are_enterprise_name_columns_of_enterprise_mentions():
    columns = {"name": {"from": "A", "as": "enterprise_name"}, "old": {"from": "B"}, "p": {"from": "C"}}
    with pytest.raises(ValueError, match="'old' is not a staging column of kind enterprise_name"):
        StagingSpec.model_validate(
            {
                "source": "a/b",
                "grain": "g",
                "columns": columns,
                "enterprises": [{"role": "s", "former_names": ["old"]}],
            }
        )
    with pytest.raises(ValueError, match="former names are an enterprise mention's"):
        StagingSpec.model_validate(
            {
                "source": "a/b",
                "grain": "g",
                "columns": columns,
                "persons": [{"role": "s", "former_names": ["name"]}],
            }
        )
    with pytest.raises(ValueError, match="a role the canonical build derives itself"):
        StagingSpec.model_validate(
            {"source": "a/b", "grain": "g", "columns": columns, "enterprises": [{"role": FORMER_NAME_ROLE}]}
        )


def test_the_canonical_suite_knows_the_former_name_role():
    suite = suite_for_intermediate("int_enterprise_records", {CHANGES.source: CHANGES})
    assert FORMER_NAME_ROLE in suite.rule("role_in_vocabulary").kwargs["value_set"]
