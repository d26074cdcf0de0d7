"""Entity resolution, the deterministic pass and the evaluation (issue 5, first part): validated keys only,
precision 1 on a simulated estate, and scores computed exactly."""

from __future__ import annotations

import polars as pl
import pytest

from models.resolution.deterministic import ENTERPRISE_KEYS, PERSON_KEYS, link
from models.resolution.evaluate import (
    evidence_ceiling,
    evidence_columns,
    name_only,
    read_truth_file,
    scores,
    truth_for_records,
    truth_missing,
)
from models.silver import read_silver
from simulator import estate as est

pytestmark = pytest.mark.xdist_group("silver_estate")


def test_pairwise_and_bcubed_scores_by_hand():
    predicted = pl.DataFrame({"record_id": ["a", "b", "c", "d"], "cluster": [1, 1, 2, 3]})
    truth = pl.DataFrame({"record_id": ["a", "b", "c", "d"], "entity_id": ["X", "X", "X", "Y"]})
    s = scores(predicted, truth)
    # predicted pairs: (a,b); true pairs: (a,b) (a,c) (b,c)
    assert s["precision"] == 1.0 and s["recall"] == pytest.approx(1 / 3) and s["f1"] == pytest.approx(0.5)
    # B-cubed recall: a 2/3, b 2/3, c 1/3, d 1 -> 2/3; precision 1 everywhere
    assert s["bcubed_precision"] == 1.0 and s["bcubed_recall"] == pytest.approx(2 / 3)
    assert (s["records"], s["entities"], s["clusters"]) == (4, 2, 3)
    wrong = scores(pl.DataFrame({"record_id": ["a", "b", "c", "d"], "cluster": [1, 1, 1, 1]}), truth)
    assert wrong["recall"] == 1.0 and wrong["precision"] == pytest.approx(3 / 6)


def test_evidence_ceiling_leaves_shared_name_only_records_alone():
    """A has three records, one known by name only; B two, both name-only, with A's name (张伟); C one keyed
    record and one name-only record with a name nobody else bears (欧阳震华): linkable. Reachable: A's keyed pair
    and C's pair, of A's 3 + B's 1 + C's 1 true pairs."""
    records = pl.DataFrame(
        {
            "record_id": ["a1", "a2", "a3", "b1", "b2", "c1", "c2"],
            "name_comparison": ["张伟"] * 5 + ["欧阳震华"] * 2,
            "id_number": ["110101199001011237"] * 2 + [None] * 3 + ["110101198001011233", None],
            "id_number_status": ["valid", "valid", "missing", "missing", "missing", "valid", "missing"],
            "phone": [None] * 7,
        }
    )
    alone = records.filter(name_only(records, evidence_columns("person"))).select("record_id")
    assert alone["record_id"].to_list() == ["a3", "b1", "b2", "c2"]
    truth = records.select("record_id", entity_id=pl.col("record_id").str.slice(0, 1).str.to_uppercase())
    c = evidence_ceiling(truth, records, alone)
    assert c["recall"] == pytest.approx(2 / 5)
    assert c["f1"] == pytest.approx(2 * 0.4 / 1.4)
    assert (c["name_only_records"], c["shared_name_only_records"]) == (4, 3)
    assert "name_comparison" not in evidence_columns("enterprise")
    assert "uscc" in evidence_columns("enterprise") and "uscc_status" not in evidence_columns("enterprise")


def test_truth_records_that_reached_no_record_count_against_recall(tmp_path):
    """A truth row with no canonical record (a quarantined mention) is a link not made: recall falls, precision
    stays; the report counts it."""
    truth = pl.DataFrame(
        {
            "department": ["d"] * 4,
            "table": ["t"] * 4,
            "pk": ["1", "2", "3", "4"],
            "role": ["subject"] * 4,
            "entity_type": ["enterprise"] * 4,
            "entity_id": ["X", "X", "X", "Y"],
        }
    )
    recs = pl.DataFrame(
        {
            "record_id": ["r1", "r2", "r4"],
            "source_department": ["d"] * 3,
            "source_table": ["t"] * 3,
            "source_pk": ["1", "2", "4"],
            "role": ["subject"] * 3,
        }
    )
    lost = truth_missing(truth, recs)
    assert lost["pk"].to_list() == ["3"]
    predicted = pl.DataFrame({"record_id": ["r1", "r2", "r4"], "cluster": [1, 1, 2]})
    full = scores(predicted, truth_for_records(truth, recs))
    assert full["recall"] == 1.0 and full["truth_missing"] == 0
    s = scores(predicted, truth_for_records(truth, recs), lost)
    # true pairs among X's three records: 3, of which (1,2) found
    assert s["precision"] == 1.0 and s["recall"] == pytest.approx(1 / 3)
    assert (s["truth_missing"], s["records"], s["clusters"]) == (1, 3, 2)
    # the same truth as a plain file; a file without a column is refused by name
    truth.write_parquet(tmp_path / "truth.parquet")
    assert read_truth_file(tmp_path / "truth.parquet").equals(truth)
    truth.drop("role").write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="lacks column\\(s\\) role"):
        read_truth_file(tmp_path / "bad.parquet")


def records(**columns) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"record_id": [f"r{i}" for i in range(n)], "source_department": ["samr"] * n}
    for c in (
        "uscc",
        "uscc_status",
        "tin",
        "tin_kind",
        "tin_status",
        "link_org_code",
        "regno",
        "regno_status",
        "link_local_key",
        "link_same_entity",
    ):
        base[c] = [None] * n
    return pl.DataFrame({**base, **columns}, schema_overrides={c: pl.Utf8 for c in base if c != "record_id"})


def test_only_validated_keys_link():
    frame = records(
        uscc=["U1", "U1", "U1", "U1", "U2", None],
        uscc_status=["valid", "valid", "invalid", "masked", "valid", "missing"],
        tin=[None, None, None, None, None, "U2"],
        tin_kind=[None] * 5 + ["uscc"],
        tin_status=[None] * 5 + ["valid"],
    )
    out = link(frame, ENTERPRISE_KEYS).sort("record_id")
    c = dict(zip(out["record_id"], out["cluster"], strict=True))
    assert c["r0"] == c["r1"]  # the same valid USCC
    assert len({c["r0"], c["r2"], c["r3"]}) == 3  # an invalid or masked copy proves nothing
    assert c["r4"] == c["r5"]  # a TIN that is a valid USCC is the same key
    assert out.filter(pl.col("record_id") == "r2")["rule"][0] is None


def test_org_code_and_department_keys():
    # link_local_key is the declared key with the table that owns it (models.canonical, the specs' keys:)
    frame = records(
        link_org_code=["O1", "O1", None, None, None],
        link_local_key=[None, None, "social/employers:DW1", "social/employers:DW1", "tax/taxpayers:DW1"],
        source_department=["tax", "samr", "social", "social", "tax"],
    )
    out = dict(
        zip(*link(frame, ENTERPRISE_KEYS).select("record_id", "cluster").to_dict().values(), strict=True)
    )
    assert out["r0"] == out["r1"] and out["r2"] == out["r3"]
    assert out["r4"] != out["r2"]  # a department's own number links inside that department only


@pytest.fixture
def silver_home(silver_estate):
    return silver_estate(enterprises=400, seed=31)


@pytest.mark.parametrize(
    ("table", "rules", "recall_floor"),
    [
        ("int_enterprise_records", ENTERPRISE_KEYS, 0.65),
        ("int_person_records", PERSON_KEYS, 0.75),
    ],
)
def test_deterministic_pass_never_links_two_entities(silver_home, table, rules, recall_floor):
    out, home = silver_home
    recs = read_silver(home, table)
    s = scores(link(recs, rules), truth_for_records(est.load_truth(out).collect(), recs))
    assert s["records_without_truth"] == 0
    assert s["precision"] >= 0.999, s  # validated keys: no false links
    assert s["recall"] >= recall_floor, (
        s
    )  # a floor under today's figure; the probabilistic pass adds the rest
