"""The second simulated city (``qst simulate --city rivercity``) onboarded by configuration alone
(``deployments/rivercity``) and run end to end, scored against its truth (issue 15, "Done when").

Rivercity differs from the first city in shape, not only in names (simulator/shapes.py): a registry with a change
log of former names, an urban-management bureau whose party column mixes enterprises and persons without a type
column, a housing provident fund whose members reference their employer's account number; camelCase, lower
snake and lower pinyin names; dates as integers, Chinese text, epoch seconds and bare years; text, epoch and id
cursors; no environment bureau, courts, social security, service centre nor street rosters. Its deployment has no
trained linkage models (a new city's first night trains on its own data, with a warning).

One night of a 1,000-enterprise city is shared by the tests (about 1.5 minutes on two shared cores, most of it
the night: Dagster, entity resolution, marts, exports).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from connectors.config import load_sources
from lake.deployment import DEPLOYMENT_ENV
from models.exports import load_entitlements
from pipelines.cli import main as qst
from pipelines.runner import run_pipeline
from simulator import estate as est
from simulator.scoring import score_night
from simulator.shapes import RIVERCITY, SIMCITY, city_tables

REPO = Path(__file__).resolve().parents[1]
DEPLOYMENT = REPO / "deployments" / "rivercity"
PARTITION = "2026-11-01"
EXPORT_KEY = "a-test-secret-of-thirty-two-chars!"
ENTERPRISES = 1_000

pytestmark = pytest.mark.xdist_group("city2")


@pytest.fixture(scope="module")
def estate(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("city2") / "estate"
    est.simulate(out, enterprises=ENTERPRISES, seed=11, city="rivercity")
    return out


@pytest.fixture(scope="module")
def night(estate):
    """`qst check` on the deployment, then the whole night to the exports, then the figures against the truth."""
    home = estate.parent / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DEPLOYMENT_ENV, str(DEPLOYMENT))
        mp.setenv("QST_EXPORT_HMAC_KEY", EXPORT_KEY)
        report = CliRunner().invoke(
            qst, ["--deployment", str(DEPLOYMENT), "check", "--config", str(estate / "sources.yaml")]
        )
        outcome = run_pipeline(
            load_sources(estate / "sources.yaml"), home, partition=PARTITION, until="exports"
        )
        figures = score_night(estate, home, DEPLOYMENT / "exports.yaml", PARTITION)
    return report, outcome, figures


# ------------------------------------------------------------------------------------------------
# the city: another shape, truth for every record
# ------------------------------------------------------------------------------------------------
def test_rivercity_differs_from_the_first_city_in_shape(estate):
    first = {spec.department for spec, _ in city_tables(SIMCITY)[0].values()}
    doc = yaml.safe_load((estate / "sources.yaml").read_text())
    departments = set(doc["departments"])
    assert departments - first == {"market", "taxation", "chengguan", "gjj"} - first
    assert not {"env", "streets", "social", "courts", "service"} & departments
    assert not list(estate.glob("drops/**/*.csv")), "no street-office roster drops"
    tables = {t["name"]: t for d in doc["departments"].values() for t in d.get("tables", [])}
    # cursors: a text timestamp declared with its parse, epoch seconds and an id as integers, a snapshot
    assert tables["t_corp_registry"]["columns"]["updated_at"] == {"type": "timestamp"}
    assert (tables["CG_XZCF"]["cursor"], tables["CG_XZCF"]["cursor_kind"]) == ("GXSJ", "id")
    assert tables["t_change_log"]["cursor"] == "change_id" and tables["TaxRatings"]["mode"] == "snapshot"
    assert tables["Taxpayers"]["primary_key"] == ["taxpayerNo"], "camelCase columns"
    # date encodings, as the databases store them
    with sqlite3.connect(estate / "market.sqlite") as con:
        (founded,) = con.execute("SELECT founded_on FROM t_corp_registry LIMIT 1").fetchone()
        (changed,) = con.execute("SELECT changed_on FROM t_change_log LIMIT 1").fetchone()
    with sqlite3.connect(estate / "chengguan.sqlite") as con:
        (decided,) = con.execute("SELECT CFRQ FROM CG_XZCF LIMIT 1").fetchone()
    with sqlite3.connect(estate / "taxation.sqlite") as con:
        (year,) = con.execute('SELECT "ratingYear" FROM "TaxRatings" LIMIT 1').fetchone()
    assert isinstance(founded, int) and 19_950_101 <= founded <= 20_261_031
    assert "年" in changed and changed.endswith("日")
    assert isinstance(decided, int) and decided > 700_000_000
    assert year in (2023, 2024, 2025)


def test_rivercity_writes_truth_for_every_record(estate):
    state = est.EstateState.load(estate)
    truth = est.load_truth(estate).collect()
    builders, _ = city_tables(RIVERCITY)
    for key, (spec, _) in builders.items():
        with sqlite3.connect(estate / f"{spec.department}.sqlite") as con:
            pk = " || '|' || ".join(f'CAST("{c}" AS TEXT)' for c in spec.primary_key)
            pks = {r[0] for r in con.execute(f'SELECT {pk} FROM "{spec.name}"')}
        told = set(truth.filter(pl.col("table") == spec.name)["pk"])
        assert len(pks) == state.rows[key] and pks == told, key
    penalties = truth.filter(pl.col("table") == "CG_XZCF")
    assert set(penalties["entity_type"]) == {"enterprise", "person"}, "one party column, two kinds"
    members = truth.filter(pl.col("table") == "gjj_grxx")
    assert set(members["role"]) == {"subject", "employer"}


def test_deployment_sources_yaml_is_the_simulators():
    """deployments/rivercity/sources.yaml is what the simulator writes for data/rivercity
    (scripts/regenerate_sources_example.py)."""
    example = est.EstateState.example("rivercity")
    generated = est.sources_yaml_text(example, REPO / "data" / "rivercity", DEPLOYMENT)
    assert (DEPLOYMENT / "sources.yaml").read_text() == generated


def test_advance_days_refuses_another_shape(estate):
    with pytest.raises(ValueError, match="first simulated city only"):
        est.advance(estate, 1)


# ------------------------------------------------------------------------------------------------
# the night, scored
# ------------------------------------------------------------------------------------------------
def test_qst_check_finds_no_error(night):
    report, _, _ = night
    assert report.exit_code == 0, report.output
    assert "\n0 errors, 0 warnings" in report.output, report.output
    assert "has no staging spec" not in report.output, "every table of the city has its spec"


def test_the_whole_night_runs_to_every_bureaus_verified_export(night):
    _, outcome, figures = night
    assert outcome.ok, (outcome.failed_checks, [a.error for a in outcome.assets if a.error])
    statuses = {a.key: a.status for a in outcome.assets}
    assert set(statuses.values()) == {"materialized"}
    layers = {k.split("/")[0] for k in statuses}
    assert {"bronze", "silver", "quality", "gold", "marts", "exports"} <= layers
    bureaus = load_entitlements(DEPLOYMENT / "exports.yaml").bureaus
    assert set(figures["exports"]) == set(bureaus) == {"market", "taxation", "chengguan", "gjj"}
    assert all(figures["exports"].values()), figures["exports"]


def test_no_record_is_lost(night):
    _, _, figures = night
    rows = pl.DataFrame(figures["rows"])
    assert rows.height == 7 and rows["source"].min() > 0
    assert figures["records_lost"] == 0, rows.filter(pl.col("lost") > 0).to_dicts()
    # every mention of the truth has its canonical record, or its row is in the quarantine with a reason
    assert figures["mentions_missing"] == 0, [m for m in figures["mentions"] if m["missing"]]
    penalties = [m for m in figures["mentions"] if m["table"] == "CG_XZCF"]
    staged = {m["entity_type"]: m["staged"] / m["truth"] for m in penalties}
    assert staged["enterprise"] > 0.95 and staged["person"] > 0.95, "party_kind tells the parties apart"


def test_golden_name_and_status_are_the_registrys(night):
    _, _, figures = night
    g = figures["golden"]
    assert g["enterprises"] == ENTERPRISES and g["with_golden"] == ENTERPRISES
    assert g["share"] >= 0.995, g


def test_headcount_comes_from_the_declared_employment_relation(night, estate):
    _, _, figures = night
    m = figures["marts"]
    members = est.EstateState.load(estate).rows["gjj.gjj_grxx"]
    assert m["with_headcount"] > 0
    assert m["headcount"] == members, "every fund member counted once, at their employer"
    assert m["with_headcount"] <= m["true_employers"]


def test_the_citys_own_event_categories_reach_the_360_card(night, estate):
    """A tax rating dated only by its year (``as: year``) and an urban-management penalty (``other_penalty``)
    count on the enterprise's card, though no department or event type of the first city is involved."""
    _, _, figures = night
    truth = est.load_truth(estate).collect()
    rated = truth.filter(pl.col("table") == "TaxRatings")["entity_id"].n_unique()
    fined = truth.filter((pl.col("table") == "CG_XZCF") & (pl.col("entity_type") == "enterprise"))
    m = figures["marts"]
    assert m["with_tax_rating"] >= 0.95 * rated > 0
    assert 0 < m["with_penalty"] <= fined["entity_id"].n_unique()


def test_mart_enterprise_360_has_one_row_per_true_enterprise(night):
    """No mart enterprise is a fragment of another: the keyless and locally keyed departments' enterprises
    (housing-fund employers, urban-management parties) reach their registry record by the name pass."""
    _, _, figures = night
    assert abs(figures["marts"]["mart_excess_share"]) <= 0.005, figures["marts"]


def test_a_shape_is_parameters_not_code():
    """Any CityShape realizes the generic department kinds in its own names, date encodings and cursor types."""
    import datetime as dt

    from simulator.entities import generate_unit
    from simulator.kinds import realize
    from simulator.mess import MessProfile
    from simulator.shapes import CityShape, Department, KeyFormat
    from simulator.tables import BuildContext

    shape = CityShape(
        name="testcity",
        departments=(
            Department("reg", "登记 registry", "registry", "camel", "pascal", "tb_", cursor="epoch"),
        ),
        dates={"founded_on": "epoch"},
        default_date="cn",
        corp_id=KeyFormat(prefix="QY", width=8),
    )
    (registry, build), (log, build_log) = realize(shape, shape.departments[0])
    assert (registry.name, registry.primary_key, registry.cursor, registry.cursor_kind) == (
        "tb_corpRegistry",
        ("CorpId",),
        "UpdatedAt",
        "id",
    )
    assert {c.name: c.type for c in registry.columns}["FoundedOn"] == "bigint"
    ctx = BuildContext(
        generate_unit(5, 0, 0, 50, dt.date(2026, 10, 31)), 5, dt.date(2026, 10, 31), MessProfile()
    )
    rows, truth = build(ctx, registry)
    assert rows["CorpId"].str.starts_with("QY").all() and rows["CorpId"].str.len_chars().min() == 10
    founded = rows["FoundedOn"].cast(pl.Int64) + 8 * 3600  # local midnight in epoch seconds
    assert (founded % 86_400 == 0).all()
    assert truth.height == 2 * 50 and set(truth["table"]) == {"tb_corpRegistry"}
    changes, _ = build_log(ctx, log)
    assert changes["ChangedOn"].str.contains("年").all(), "the shape's default encoding"
    with pytest.raises(ValueError, match="date encoding"):
        CityShape(name="bad", dates={"founded_on": "roman"})
