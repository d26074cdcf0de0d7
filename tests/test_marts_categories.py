"""Issue 15: the marts count event **categories**, not a deployment's event type names. The same estate built
with the shipped specs and with a copy whose penalty events are renamed (``admin_penalty`` -> ``xzcf``,
``env_penalty`` -> ``hbcf``, categories kept) gives the same penalty figures in every mart; and a daily indicator
whose category no spec declares is left out of the forecast with a note, never a failure."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from connectors.config import load_sources
from lake.deployment import EXAMPLE_DEPLOYMENT
from models import silver
from models.gold.build import build_gold
from models.gold.golden import build_golden
from models.marts import build as mb
from models.marts.kpi import INDICATORS, mart_kpi_daily
from models.marts.risk import FACTORS, NO_SOURCE
from models.silver import read_silver
from models.staging.spec import load_specs

pytestmark = pytest.mark.xdist_group("silver_estate")
RENAMES = {
    "stg_samr__penalties.yaml": ("type: admin_penalty,", "type: xzcf,"),
    "stg_env__penalties.yaml": ("type: env_penalty,", "type: hbcf,"),
}


def renamed_specs(folder: Path) -> Path:
    shutil.copytree(EXAMPLE_DEPLOYMENT / "specs", folder)
    for name, (old, new) in RENAMES.items():
        path = folder / name
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def builds(silver_estate, tmp_path_factory) -> dict[str, Path]:
    """Two homes from one silver estate: the shipped specs' int_events, and int_events rebuilt from the renamed
    specs (staging and gold are the same: a type name reaches only the events)."""
    estate, home = silver_estate(enterprises=400, seed=31)
    root = tmp_path_factory.mktemp("categories")
    specs = load_specs(renamed_specs(root / "specs"))
    shipped = root / "shipped"
    shutil.copytree(home, shipped)
    build_gold(shipped, "2026-10-31", "categories-test")
    for kind in ("enterprise", "person"):
        build_golden(shipped, kind, "2026-10-31")
    renamed = root / "renamed"
    shutil.copytree(shipped, renamed)
    infos = silver.source_infos(load_sources(estate / "sources.yaml"))
    silver.build_intermediate(
        renamed, "int_events", [specs[s] for s in infos if s in specs], batch_rows=1_000
    )
    for h in (shipped, renamed):
        mb.build_marts(h)
    return {"shipped": shipped, "renamed": renamed}


def read(home: Path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(mb.marts_path(home)), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def test_the_renamed_types_reached_the_marts(builds):
    types = {
        label: set(read(h, "SELECT DISTINCT event_type FROM mart_enterprise_events")["event_type"])
        for label, h in builds.items()
    }
    assert {"admin_penalty", "env_penalty"} <= types["shipped"]
    assert {"xzcf", "hbcf"} <= types["renamed"] and not {"admin_penalty", "env_penalty"} & types["renamed"]


def test_penalty_figures_do_not_depend_on_the_type_names(builds):
    card = (
        "SELECT entity_id, penalty_count, penalty_market_count, penalty_environmental_count, penalty_amount, penalty_latest_on, "
        "penalty_count_12m, risk_score, risk_level FROM mart_enterprise_360 ORDER BY entity_id"
    )
    shipped, renamed = (read(builds[k], card) for k in ("shipped", "renamed"))
    assert shipped["penalty_market_count"].sum() > 0 and shipped["penalty_environmental_count"].sum() > 0
    assert shipped.equals(renamed)
    for table in ("mart_credit_risk", "mart_credit_risk_factors", "mart_risk_warnings"):
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        assert read(builds["shipped"], sql).equals(read(builds["renamed"], sql)), table
    kpi = (
        "SELECT indicator, day, actual FROM mart_kpi_daily WHERE indicator LIKE '%penalties' AND NOT is_forecast "
        "ORDER BY ALL"
    )
    shipped_kpi = read(builds["shipped"], kpi)
    assert shipped_kpi["actual"].sum() > 0
    assert shipped_kpi.equals(read(builds["renamed"], kpi))


def test_an_indicator_no_spec_feeds_is_left_out_with_a_note():
    """A city without an environmental bureau: no ``environmental_penalty`` event, so no ``env_penalties``
    series — the other indicators are forecast as before."""
    days = [dt.date(2026, 10, d) for d in range(1, 31)]
    events = pl.DataFrame(
        {
            "event_category": ["market_penalty"] * len(days),
            "event_date": days,
            "end_date": [None] * len(days),
            "reference": [None] * len(days),
        },
        schema={"event_category": pl.Utf8, "event_date": pl.Date, "end_date": pl.Date, "reference": pl.Utf8},
    )
    out = mart_kpi_daily(events, as_of=dt.date(2026, 10, 31), categories={"market_penalty", "service_case"})
    assert set(out["indicator"]) == {
        "samr_penalties",
        "admin_penalties",
        "service_cases",
        "service_cases_finished",
    }
    everything = mart_kpi_daily(events, as_of=dt.date(2026, 10, 31))
    assert set(everything["indicator"]) == {i.key for i in INDICATORS if i.categories}


def test_risk_factor_sources_name_this_deployments_tables(builds):
    """``dim_risk_factor.source`` is read from the canonical tables: the tables whose events (or reported
    columns) feed each factor, under the department's short name from sources.yaml — never a table name
    written in code."""
    home = builds["shipped"]
    sources = dict(read(home, "SELECT factor, source FROM dim_risk_factor").iter_rows())
    events = read_silver(home, "int_events").select("event_category", "source_department", "source_table")
    short = dict(read_silver(home, "int_departments").select("department", "short_title").iter_rows())
    for factor in FACTORS:
        if not factor.categories:
            continue
        fed = (
            events.filter(pl.col("event_category").is_in(factor.categories))
            .group_by("source_department", "source_table")
            .len()
            .sort("len", descending=True, maintain_order=True)
        )
        expected = [f"{short[d]} {t}" for d, t, _ in fed.iter_rows()]
        assert expected, factor.key
        assert sorted(sources[factor.key].split("；")) == sorted(expected), factor.key
        shown = sources[factor.key].split("；")
        counts = dict(zip(expected, fed["len"], strict=True))
        assert [counts[x] for x in shown] == sorted(counts.values(), reverse=True), (
            factor.key
        )  # most rows first
    # the reported headcount's tables feed the falling-headcount factor
    assert sources["headcount_falling"] != NO_SOURCE
