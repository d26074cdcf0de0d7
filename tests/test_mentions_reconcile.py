"""Every declared mention accounted for (issue 15): each staged row gives each mention whose ``when`` holds, or a
quarantine row naming the spec, the role and the row key; the reconciliation counts both on the committed
tables and fails when one went missing."""

from __future__ import annotations

import polars as pl

from lake.delta import overwrite, read_dataset, to_arrow
from lake.layout import quarantine_mentions_path, silver_path
from models import canonical, silver
from models.staging.quarantine import MENTION_QUARANTINE_SCHEMA, NO_NAME_NO_IDENTIFIER, mention_quarantine
from models.staging.spec import StagingSpec
from models.staging.stage import SourceInfo, stage
from quality.quarantine import reconcile_mentions

SPEC = StagingSpec.model_validate(
    {
        "source": "courts/case_parties",
        "grain": "test",
        "columns": {
            "party_type": {"from": "LX"},
            "party_name": {"from": "MC", "as": "enterprise_name", "only_if": {"party_type": ["法人"]}},
            "person_name": {"from": "MC", "as": "person_name", "only_if": {"party_type": ["自然人"]}},
            "person_id_number": {"from": "ZJHM", "as": "resident_id", "only_if": {"party_type": ["自然人"]}},
        },
        "enterprises": [{"role": "party", "prefix": "party_", "when": {"party_type": ["法人"]}}],
        "persons": [{"role": "party", "prefix": "person_", "when": {"not": {"party_type": ["法人"]}}}],
    }
)
INFO = SourceInfo("courts", "case_parties", "AJ_DSR", ("ID",))


def staged() -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "ID": [1, 2, 3, 4, 5],
            "LX": ["法人", "法人", "自然人", "自然人", None],
            "MC": ["甲有限公司", None, "王五", None, None],
            "ZJHM": [None, None, None, "11010519491231002X", None],
        }
    )
    return stage(frame, SPEC, INFO).rows


def test_a_mention_without_name_or_identifier_is_quarantined_not_dropped():
    rows = staged()
    ent = canonical.enterprise_records(rows, SPEC)
    per = canonical.person_records(rows, SPEC)
    q_ent = mention_quarantine(rows, SPEC, "int_enterprise_records")
    q_per = mention_quarantine(rows, SPEC, "int_person_records")
    assert ent["source_pk"].to_list() == ["1"] and q_ent["source_pk"].to_list() == ["2"]
    # the person mention applies to rows 3, 4, 5 (not 法人; a null type too): 5 has nothing to be known by
    assert sorted(per["source_pk"].to_list()) == ["3", "4"] and q_per["source_pk"].to_list() == ["5"]
    row = q_per.row(0, named=True)
    assert row["staging_model"] == "stg_courts__case_parties" and row["role"] == "party"
    assert row["mention_kind"] == "person" and row["reason"] == NO_NAME_NO_IDENTIFIER
    assert q_per.schema == MENTION_QUARANTINE_SCHEMA


def test_the_mention_reconciliation_counts_the_committed_tables_and_fails_on_a_loss(tmp_path):
    home = tmp_path
    overwrite(silver_path(home, SPEC.name), to_arrow(staged()))
    for table in canonical.RECORD_TABLES:
        report = silver.build_intermediate(home, table, [SPEC])
        rec = reconcile_mentions(home, table, [SPEC])
        assert rec.ok, rec.describe()
        assert report.quarantined_mentions == {"courts/case_parties": 1}
    rec = reconcile_mentions(home, "int_person_records", [SPEC])
    assert [(c.expected, c.emitted, c.quarantined) for c in rec.counts] == [(3, 2, 1)]
    assert "declared mentions 3 = emitted 2 + quarantined 1: ok" in rec.describe()
    assert read_dataset(quarantine_mentions_path(home, "int_person_records")).count_rows() == 1

    # a quarantine lost on the way (or a mention silently dropped) is a mismatch naming source and role
    overwrite(
        quarantine_mentions_path(home, "int_person_records"),
        to_arrow(pl.DataFrame(schema=MENTION_QUARANTINE_SCHEMA)),
    )
    rec = reconcile_mentions(home, "int_person_records", [SPEC])
    assert not rec.ok
    assert (
        "courts/case_parties role party: expected 3, emitted 2, quarantined 0 (MISMATCH by +1)"
        in rec.describe()
    )


def test_records_of_a_role_no_spec_declares_fail_the_reconciliation(tmp_path):
    home = tmp_path
    overwrite(silver_path(home, SPEC.name), to_arrow(staged()))
    silver.build_intermediate(home, "int_enterprise_records", [SPEC])
    renamed = SPEC.model_copy(update={"enterprises": [SPEC.enterprises[0].model_copy(update={"role": "x"})]})
    rec = reconcile_mentions(home, "int_enterprise_records", [renamed])
    assert (
        not rec.ok
        and "courts/case_parties role party: records of a mention no spec declares" in rec.describe()
    )


def test_a_mistyped_resident_id_with_the_uscc_shape_stays_a_persons_mention():
    """Issue 15: 28 person rows whose 18-digit ID was mistyped (its check digit failing, and the USCC check
    failing too) were filed as USCCs by shape and gave no mention at all. key_kind goes by the check that passes,
    then by an ID's structure (province, birth date), so the row gives its person mention."""
    from models import identifiers as idf

    mistyped = "11010519491231003X"  # 11010519491231002X with its sequence digit mistyped
    assert not idf.is_valid_resident_id(mistyped) and not idf.is_valid_uscc(mistyped)
    spec = StagingSpec.model_validate(
        {
            "source": "courts/case_parties",
            "grain": "test",
            "columns": {
                "key_kind": {"from": "ZJHM", "as": "key_kind"},
                "party_uscc": {"from": "ZJHM", "as": "uscc", "only_if": {"key_kind": ["uscc"]}},
                "person_id_number": {
                    "from": "ZJHM",
                    "as": "resident_id",
                    "only_if": {"key_kind": ["resident_id"]},
                },
            },
            "enterprises": [{"role": "party", "prefix": "party_", "when": {"key_kind": ["uscc"]}}],
            "persons": [{"role": "party", "prefix": "person_", "when": {"key_kind": ["resident_id"]}}],
        }
    )
    rows = stage(pl.DataFrame({"ID": [1], "ZJHM": [mistyped]}), spec, INFO).rows
    assert rows["key_kind"].to_list() == ["resident_id"]
    per = canonical.person_records(rows, spec)
    assert per["id_number"].to_list() == [mistyped] and per["id_number_status"].to_list() == ["invalid"]
    assert canonical.enterprise_records(rows, spec).height == 0
