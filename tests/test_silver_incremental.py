"""Incremental silver (models/staging_changes.py, models/canonical_changes.py): night after night, restaging only
what bronze changed gives the staging models, canonical tables and quarantines a full rebuild gives -- with deletions,
renames and late rows -- and a change of the staging rules, or a night stopped half-way, makes the next build full."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

import simulator.estate as est
from connectors.config import load_sources
from connectors.extract import load_file_drop, load_table
from lake.delta import read_frame
from lake.layout import quarantine_mentions_path, quarantine_rows_path, silver_path
from models import canonical, silver
from models.staging.spec import load_specs
from quality.quarantine import reconcile_staging

pytestmark = pytest.mark.xdist_group("silver_incremental")


def load_bronze(sources: Path, home: Path, batch: str) -> None:
    """A night's bronze load, as a run does it: every table and drop under the night's own batch id."""
    config = load_sources(sources)
    for dept, table in config.iter_tables():
        assert load_table(config, dept, table, home, batch_id=batch).reconciled
    for dept, drop in config.iter_files():
        load_file_drop(dept, drop, home, batch_id=batch)


def _chosen(sources: Path):
    config = load_sources(sources)
    specs, infos = load_specs(), silver.source_infos(config)
    return [(specs[s], infos[s]) for s in infos if s in specs]


def _tables(home: Path, sources: Path) -> dict[str, pl.DataFrame]:
    """Every staging model and quarantine, rows in key order (a MERGE keeps rows in another order)."""
    out: dict[str, pl.DataFrame] = {}
    for spec, _info in _chosen(sources):
        for name, path in (
            (spec.name, silver_path(home, spec.name)),
            (f"quarantine {spec.source}", quarantine_rows_path(home, spec.department, spec.asset)),
        ):
            frame = read_frame(path)
            assert frame is not None, name
            out[name] = frame.sort("source_pk")
    return out


def _build(home: Path, sources: Path, *, full: bool = False) -> dict[str, silver.StagingReport]:
    return {
        spec.source: silver.build_staging(home, spec, info, batch_rows=700, full=full)
        for spec, info in _chosen(sources)
    }


def _build_canonical(
    home: Path, sources: Path, *, full: bool = False
) -> dict[str, silver.IntermediateReport]:
    chosen = _chosen(sources)
    specs, infos = [spec for spec, _ in chosen], {spec.source: info for spec, info in chosen}
    return {
        table: silver.build_intermediate(home, table, specs, batch_rows=700, infos=infos, full=full)
        for table in canonical.INTERMEDIATE_TABLES
    }


def _canonical_tables(home: Path) -> dict[str, pl.DataFrame]:
    """Every canonical table and mention quarantine, rows in one order (key, then the row's hash)."""
    out: dict[str, pl.DataFrame] = {}
    for table in canonical.INTERMEDIATE_TABLES:
        paths = [(table, silver_path(home, table))]
        if table in canonical.RECORD_TABLES:
            paths.append((f"mention quarantine {table}", quarantine_mentions_path(home, table)))
        for name, path in paths:
            frame = read_frame(path)
            assert frame is not None, name
            out[name] = frame.with_columns(_h=frame.hash_rows(seed=0)).sort(
                ["source_department", "source_asset", "source_pk", "_h"]
            )
    return out


@pytest.fixture
def city(simulated_estate, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(estate, home built incrementally, home built in full from the same bronze)."""
    source = simulated_estate(enterprises=400, seed=7)
    out = tmp_path / "estate"
    shutil.copytree(source, out)
    sources = out / "sources.yaml"
    sources.write_text(sources.read_text().replace(str(source), str(out)))
    inc, full = tmp_path / "inc", tmp_path / "full"
    (full / "lake").mkdir(parents=True)
    (full / "lake" / "bronze").symlink_to(inc / "lake" / "bronze")
    return out, inc, full


@pytest.mark.slow
def test_five_nights_of_incremental_staging_equal_full_rebuilds(city) -> None:
    out, inc, full = city
    sources = out / "sources.yaml"
    modes: list[set[str]] = []
    canonical_modes: list[set[str]] = []
    changed = 0
    for night in range(5):
        if night:
            est.advance(out, 1)
        load_bronze(sources, inc, f"night-{night + 1}")
        reports = _build(inc, sources)
        modes.append({r.mode for r in reports.values()})
        changed += sum(r.changed_bronze_rows for r in reports.values())
        canonical_modes.append({r.mode for r in _build_canonical(inc, sources).values()})
        fulls = _build(full, sources, full=True)
        if night == 4:  # canonical tables kept incrementally four nights: a wrong row would still be there
            assert {r.mode for r in _build_canonical(full, sources, full=True).values()} == {"full"}
            got_c, want_c = _canonical_tables(inc), _canonical_tables(full)
            for name in want_c:
                assert got_c[name].equals(want_c[name]), (
                    f"after five nights: {name} differs from a full rebuild"
                )
        assert {r.mode for r in fulls.values()} == {"full"}
        if night:  # the full home's earlier build allowed an incremental one first: it found no drift
            assert {r.drift_rows for r in fulls.values()} == {0}
        got, want = _tables(inc, sources), _tables(full, sources)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name].equals(want[name]), f"night {night + 1}: {name} differs from a full rebuild"
        for spec, _info in _chosen(sources):
            assert reconcile_staging(inc, spec).ok, f"night {night + 1}: {spec.source} does not reconcile"
    assert modes[0] == {"full"}  # nothing to build on the first night
    assert all("incremental" in m for m in modes[1:]), modes
    assert canonical_modes[0] == {"full"}
    assert all(m == {"incremental"} for m in canonical_modes[1:]), canonical_modes
    assert changed > 0
    deleted = pl.read_parquet(out / "truth" / "deleted" / "*.parquet")
    assert deleted.height > 0  # the nights deleted rows, and silver followed


def test_a_rule_change_or_a_half_finished_night_makes_the_next_build_full(city, monkeypatch) -> None:
    out, inc, _full = city
    sources = out / "sources.yaml"
    load_bronze(sources, inc, "night-1")
    _build(inc, sources)
    est.advance(out, 1)
    load_bronze(sources, inc, "night-2")
    spec, info = _chosen(sources)[0]
    # the staging rules changed: every row is restaged
    from models import staging_changes

    monkeypatch.setattr(staging_changes, "_code_digest", lambda: "another version of the standardizers")
    report = silver.build_staging(inc, spec, info)
    assert report.mode == "full" and "rules changed" in report.why_full
    monkeypatch.undo()
    # a night stopped between the quarantine's commit and the staging model's: the next build is full
    report = silver.build_staging(inc, spec, info)
    assert report.mode == "full"  # the fingerprint changed back
    from lake.delta import append

    quarantine = quarantine_rows_path(inc, spec.department, spec.asset)
    empty = read_frame(quarantine)
    assert empty is not None
    append(quarantine, empty.head(0))  # a commit without the state: as if the night stopped after it
    report = silver.build_staging(inc, spec, info)
    assert report.mode == "full" and report.why_full, report
    # and with nothing changed since, the next build is incremental and changes nothing
    before = read_frame(silver_path(inc, spec.name))
    report = silver.build_staging(inc, spec, info)
    assert report.mode == "incremental" and report.changed_bronze_rows == 0
    after = read_frame(silver_path(inc, spec.name))
    assert (
        before is not None and after is not None and before.sort("source_pk").equals(after.sort("source_pk"))
    )


def test_a_full_rebuild_reports_the_rows_the_incremental_path_got_wrong(city) -> None:
    from deltalake import CommitProperties, DeltaTable

    out, inc, _full = city
    sources = out / "sources.yaml"
    load_bronze(sources, inc, "night-1")
    spec, info = _chosen(sources)[0]
    silver.build_staging(inc, spec, info)
    # drift the incremental path could leave: one staged row changed behind its back
    table = DeltaTable(str(silver_path(inc, spec.name)))
    pk = table.to_pyarrow_table(columns=["source_pk"]).column(0)[0].as_py()
    state = {k: v for k, v in table.history(1)[0].items() if k.startswith("qst.")}
    table.update(
        updates={"source_table": "'tampered'"},
        predicate=f"source_pk = '{pk}'",
        commit_properties=CommitProperties(custom_metadata=state),  # as if the build had written it
    )
    report = silver.build_staging(inc, spec, info, full=True)
    assert report.mode == "full" and report.drift_rows == 1
    staged = read_frame(silver_path(inc, spec.name))
    assert staged is not None and "tampered" not in staged["source_table"].to_list()


@pytest.mark.slow
def test_an_incremental_night_on_s3_equals_its_full_rebuild(
    simulated_estate, tmp_path, s3_bucket, monkeypatch
):
    """The lake on object storage (moto): the bronze changes, the MERGE and the drift check work on s3:// tables."""
    from lake.deployment import DEPLOYMENT_ENV, EXAMPLE_DEPLOYMENT

    deployment = tmp_path / "deployment"
    shutil.copytree(EXAMPLE_DEPLOYMENT, deployment)
    (deployment / "platform.yaml").write_text(f"lake:\n  root: s3://{s3_bucket}/city\n", encoding="utf-8")
    monkeypatch.setenv(DEPLOYMENT_ENV, str(deployment))
    source = simulated_estate(enterprises=150, seed=3)
    out = tmp_path / "estate"
    shutil.copytree(source, out)
    sources = out / "sources.yaml"
    sources.write_text(sources.read_text().replace(str(source), str(out)))
    home = tmp_path / "home"
    load_bronze(sources, home, "night-1")
    _build(home, sources)
    est.advance(out, 1)
    load_bronze(sources, home, "night-2")
    reports = _build(home, sources)
    assert {r.mode for r in reports.values()} == {"incremental"}
    assert sum(r.changed_bronze_rows for r in reports.values()) > 0
    incremental = _tables(home, sources)
    fulls = _build(home, sources, full=True)
    assert {r.drift_rows for r in fulls.values()} == {0}
    rebuilt = _tables(home, sources)
    for name, frame in rebuilt.items():
        assert incremental[name].equals(frame), name
    assert not (home / "lake").exists()  # every table went to the bucket
