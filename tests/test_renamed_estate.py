"""Issue 15, item 3: no name of the simulated city in any code path past the connectors -- proven on a whole night.

A small simulated estate is copied with every department, table, column, asset, file and event type renamed
(``simulator.rename``: deterministic names from a seed, some Chinese), its deployment renamed to match. The
whole night (bronze to the bureaus' exports) runs on both; the renamed night, read back through the name mapping
(:class:`Translator`), must give the same golden records, the same marts and the same exports. Ids are not
compared as such (a record id embeds its department and asset, and entity ids are numbered from sorted records):
the two nights' entity ids are paired through their crosswalks, which must cluster the same records the same way.

Lists of names (a record's departments) are compared as sets: their order is alphabetical, so it follows the
names by design. Anything else that differs is a layer that depends on a name.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from connectors.config import load_sources
from connectors.filedrops import list_drop_files, read_drop_file
from lake.deployment import DEPLOYMENT_ENV, EXAMPLE_DEPLOYMENT
from lake.layout import marts_path
from models.exports import load_entitlements
from models.gold.build import read_gold
from models.gold.evaluation import evaluate_gold
from pipelines.runner import RunOutcome, run_pipeline
from simulator.rename import NameMapping, rename_estate

pytestmark = pytest.mark.xdist_group("renamed_estate")

ENTERPRISES, SEED, RENAME_SEED = 400, 29, 2026
PARTITION = "2026-11-01"
EXPORT_KEY = "a-test-secret-of-thirty-two-chars!"
#: Columns that say when something was built, not what: they differ between any two nights.
VOLATILE = {"built_at", "committed_at", "loaded_at", "_qst_loaded_at", "recorded_at", "run_id"}
_WORD = re.compile(r"[A-Za-z0-9_]+")


# ------------------------------------------------------------------------------------------------ the nights
@dataclass
class Night:
    estate: Path
    deployment: Path
    home: Path
    outcome: RunOutcome


def _deployment_for(estate: Path, folder: Path) -> Path:
    """The example deployment wired to ``estate`` (its sources.yaml with absolute paths)."""
    shutil.copytree(EXAMPLE_DEPLOYMENT, folder, ignore=shutil.ignore_patterns("sources.yaml"))
    text = (estate / "sources.yaml").read_text(encoding="utf-8")
    text = text.replace("sqlite: ", f"sqlite: {estate}/").replace("folder: ", f"folder: {estate}/")
    text += f"file_roots: [{estate}]\n"  # the drops lie outside the deployment folder
    (folder / "sources.yaml").write_text(text, encoding="utf-8")
    return folder


def _night(estate: Path, deployment: Path, home: Path) -> Night:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DEPLOYMENT_ENV, str(deployment))
        for var in ("QST_SOURCES", "QST_STAGING_SPECS", "QST_EXPORTS"):
            mp.delenv(var, raising=False)
        mp.setenv("QST_EXPORT_HMAC_KEY", EXPORT_KEY)
        outcome = run_pipeline(
            load_sources(deployment / "sources.yaml"), home, partition=PARTITION, until="exports"
        )
    return Night(estate, deployment, home, outcome)


@pytest.fixture(scope="module")
def renamed(tmp_path_factory, simulated_estate) -> tuple[Path, Path, Path, Path, NameMapping]:
    """``(estate, deployment, renamed estate, renamed deployment, mapping)``."""
    estate = simulated_estate(enterprises=ENTERPRISES, seed=SEED)
    root = tmp_path_factory.mktemp("renamed_estate")
    original = _deployment_for(estate, root / "deployment")
    mapping = rename_estate(
        estate, original, root / "renamed_estate", root / "renamed_deployment", seed=RENAME_SEED
    )
    return estate, original, root / "renamed_estate", root / "renamed_deployment", mapping


@pytest.fixture(scope="module")
def nights(renamed, tmp_path_factory) -> tuple[Night, Night, Translator]:
    """The original night, the renamed night, and the translator from the renamed one's names and ids."""
    estate, original, estate2, renamed_deployment, mapping = renamed
    root = tmp_path_factory.mktemp("renamed_nights")
    a = _night(estate, original, root / "home")
    b = _night(estate2, renamed_deployment, root / "home_renamed")
    return a, b, Translator.between(mapping, a.home, b.home)


# ------------------------------------------------------------------------------------------------ reading back
class Translator:
    """Reads the renamed night's output in the original's names, and its entity ids as the original's: one pass
    over every text (full titles, then Chinese names, then ASCII words -- each new name is unique and none is a
    part of another, so a word found stands for one name)."""

    def __init__(self, mapping: NameMapping, ids: dict[str, str] | None = None) -> None:
        words = mapping.new_to_old()
        self.titles = {n: o for n, o in words.items() if " " in n}
        self.cjk = {n: o for n, o in words.items() if not n.isascii() and " " not in n}
        self.ascii = {n: o for n, o in words.items() if n.isascii() and " " not in n}
        for new, old in list(self.ascii.items()):  # a renamed file: its stem is one word
            stem, dot, ext = new.rpartition(".")
            if dot and old.endswith(f".{ext}"):
                self.ascii[stem] = old[: -len(ext) - 1]
        for old in mapping.assets:  # a staging model is named by both: stg_<department>__<asset>
            self.ascii[f"stg_{mapping.source(old).replace('/', '__')}"] = f"stg_{old.replace('/', '__')}"
        self.ascii |= ids or {}
        self._cjk = re.compile("|".join(sorted(map(re.escape, self.cjk), key=len, reverse=True)))

    @classmethod
    def between(cls, mapping: NameMapping, home: Path, renamed_home: Path) -> Translator:
        """With the entity ids paired: the renamed night's id of each record -> the original night's id of it.
        An id paired with two is left unpaired (the clusters differ; the golden-record test says so)."""
        names = cls(mapping)
        a = read_gold(home, "entity_crosswalk", ["record_id", "entity_id"])
        b = names.frame(read_gold(renamed_home, "entity_crosswalk", ["record_id", "entity_id"]), ids=False)
        pairs = b.join(a, on="record_id", suffix="_a").select("entity_id", "entity_id_a").unique()
        one = pairs.filter(pl.len().over("entity_id") == 1, pl.len().over("entity_id_a") == 1)
        return cls(mapping, dict(one.iter_rows()))

    def text(self, value: str) -> str:
        for new, old in self.titles.items():
            value = value.replace(new, old)
        if self.cjk:
            value = self._cjk.sub(lambda m: self.cjk[m.group()], value)
        return _WORD.sub(lambda m: self.ascii.get(m.group(), m.group()), value)

    def frame(self, df: pl.DataFrame, *, ids: bool = True) -> pl.DataFrame:
        """Every text cell (also inside lists) translated; ``ids=False`` leaves entity ids alone."""
        saved = self.ascii
        if not ids:
            self.ascii = {k: v for k, v in saved.items() if not re.fullmatch(r"[EP]\d+", k)}
        try:
            out = []
            for name, dtype in df.schema.items():
                col = pl.col(name)
                if dtype == pl.Utf8:
                    values = df[name].drop_nulls().unique().to_list()
                    out.append(col.replace({v: self.text(v) for v in values}))
                elif dtype == pl.List(pl.Utf8):
                    values = df[name].explode().drop_nulls().unique().to_list()
                    out.append(col.list.eval(pl.element().replace({v: self.text(v) for v in values})))
                else:
                    out.append(col)
            return df.select(out)
        finally:
            self.ascii = saved


def _comparable(df: pl.DataFrame, drop: frozenset[str] = frozenset()) -> pl.DataFrame:
    """Rows in an order of their own: volatile columns dropped, lists of names as sorted text (their order is
    alphabetical, so by name), floats rounded (sums in another order differ in the last bits)."""
    cols = []
    for name, dtype in df.schema.items():
        if name in VOLATILE or name in drop:
            continue
        col = pl.col(name)
        if isinstance(dtype, pl.List):
            col = col.list.eval(pl.element().cast(pl.Utf8)).list.sort().list.join("|")
        elif isinstance(dtype, pl.Struct):
            col = col.struct.json_encode()
        elif dtype.is_float():
            col = col.round(6)
        cols.append(col)
    out = df.select(cols)
    return out.sort(out.columns, nulls_last=True)


def assert_same_rows(a: pl.DataFrame, b: pl.DataFrame, what: str, drop: frozenset[str] = frozenset()) -> None:
    """The same rows (as multisets); the message names each column whose values differ, with samples."""
    assert a.height == b.height, f"{what}: {a.height} rows, renamed {b.height}"
    ca, cb = _comparable(a, drop), _comparable(b, drop)
    assert ca.columns == cb.columns, f"{what}: columns {ca.columns} != {cb.columns}"
    if ca.equals(cb):
        return
    diffs = []
    for col in ca.columns:
        va, vb = ca[col].sort(nulls_last=True), cb[col].sort(nulls_last=True)
        if not va.equals(vb):
            only_a = set(va.to_list()) - set(vb.to_list())
            only_b = set(vb.to_list()) - set(va.to_list())
            diffs.append(
                f"{col}: original only {sorted(map(str, only_a))[:3]}, renamed only {sorted(map(str, only_b))[:3]}"
            )
    diffs = diffs or ["every column has the same values, combined differently in rows"]
    pytest.fail(f"{what} differs after renaming:\n  " + "\n  ".join(diffs))


def _marts(home: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(marts_path(home)), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return {n: con.sql(f'SELECT * FROM "{n}"').pl() for n in names}


# ------------------------------------------------------------------------------------------------ the tests
def test_the_copy_names_nothing_of_the_original(renamed):
    """Every name the pipeline reads is new: the SQLite tables and columns, the drop files and headers, the
    sources and specs (read by the loaders themselves)."""
    import sqlite3

    from models.staging.spec import load_specs

    estate, original, estate2, deployment2, mapping = renamed
    config = load_sources(deployment2 / "sources.yaml")
    old_depts = set(mapping.departments)
    old_tables = {k.split("/", 1)[1] for k in mapping.tables}
    old_columns = {c for cols in mapping.source_columns.values() for c in cols}
    assert not set(config.departments) & old_depts
    for dept, table in config.iter_tables():
        con = sqlite3.connect(dept.connection.sqlite)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {r[1] for r in con.execute(f'PRAGMA table_info("{table.name}")')}
        con.close()
        assert table.name in tables and not tables & old_tables, (dept.key, tables)
        assert columns and not columns & old_columns, (dept.key, table.name, columns)
    specs = load_specs(deployment2 / "specs")
    assert len(specs) == len(load_specs(original / "specs"))
    for spec in specs.values():
        read = {c.source for c in spec.columns.values()}
        assert not read & old_columns, (spec.source, read & old_columns)
    drops = [f for files in mapping.files.values() for f in files.values()]
    assert drops and all(f.startswith("f_") for f in drops)
    # the drop files read as before (same rows, same blank lines, same encoding), under new headers
    old_headers = {c for key, cols in mapping.columns.items() if key in mapping.files for c in cols}
    before = {
        f"{d.key}/{drop.name}": drop for d, drop in load_sources(original / "sources.yaml").iter_files()
    }
    for key, files in mapping.files.items():
        drop = next(x for d, x in config.iter_files() if f"{d.key}/{x.name}" == mapping.source(key))
        old_files = {f.name: f for f in list_drop_files(before[key])}
        for file in list_drop_files(drop):
            old_file = next(old for old, new in files.items() if new == file.name)
            new, old = read_drop_file(drop, file), read_drop_file(before[key], old_files[old_file])
            assert new.ok and old.ok, (new.error, old.error)
            assert not set(new.table.column_names) & old_headers, file.name
            assert (new.table.num_rows, new.blank_lines, new.encoding) == (
                old.table.num_rows,
                old.blank_lines,
                old.encoding,
            ), file.name
    # the same rows everywhere: the truth has as many records as before
    truth = pl.read_parquet(estate / "truth" / "records" / "*.parquet")
    truth2 = pl.read_parquet(estate2 / "truth" / "records" / "*.parquet")
    assert truth.height == truth2.height and not set(truth2["department"]) & old_depts


def test_the_renaming_is_deterministic(renamed, tmp_path):
    """The same seed gives the same names (a failure names the same tables on every machine)."""
    estate, original, *_, mapping = renamed
    again = rename_estate(estate, original, tmp_path / "estate", tmp_path / "deployment", seed=RENAME_SEED)
    assert again.to_json() == mapping.to_json()
    other = rename_estate(estate, original, tmp_path / "e2", tmp_path / "d2", seed=RENAME_SEED + 1)
    assert not set(other.departments.values()) & set(mapping.departments.values())


def test_qst_check_passes_the_renamed_deployment(renamed, monkeypatch):
    """The deployment lint knows no name either: the renamed deployment is as clean as the original."""
    from click.testing import CliRunner

    from pipelines.cli import main

    for var in ("QST_SOURCES", "QST_STAGING_SPECS", "QST_EXPORTS"):
        monkeypatch.delenv(var, raising=False)
    for deployment in (renamed[1], renamed[3]):
        monkeypatch.setenv(DEPLOYMENT_ENV, str(deployment))
        result = CliRunner().invoke(main, ["--deployment", str(deployment), "check"])
        assert result.exit_code == 0, result.output


def test_both_nights_pass_every_check(nights):
    a, b, tr = nights
    for night in (a, b):
        assert night.outcome.ok, (
            night.outcome.failed_checks,
            [x.error for x in night.outcome.assets if x.error],
        )
    keys = lambda n: sorted(x.key for x in n.outcome.assets)  # noqa: E731
    assert sorted(tr.text(k) for k in keys(b)) == keys(a)
    checks = lambda n: {tr.text(x.key): x.checks for x in n.outcome.assets}  # noqa: E731
    assert checks(b) == checks(a)


#: Which record of a deterministic cluster carries the probability of the Splink link that joined it: not the
#: same two nights running (reported to the lead: two profiles of one cluster tie and are told apart by numbers
#: from the canonical table's row order, which varies), so compared per entity, not per record.
PROBABILITY = frozenset({"match_probability", "match_weight"})


def assert_same_links(a: pl.DataFrame, b: pl.DataFrame, what: str) -> None:
    """The same rows but for the link probabilities, and per entity the same probabilities."""
    assert_same_rows(a, b, what, drop=PROBABILITY)
    if "entity_id" in a.columns:
        per_entity = lambda df: df.group_by("entity_id").agg(  # noqa: E731
            [pl.col(c).drop_nulls().round(6).unique().sort() for c in sorted(PROBABILITY & set(df.columns))]
        )
        assert_same_rows(per_entity(a), per_entity(b), f"{what} (link probabilities per entity)")


@pytest.mark.parametrize("table", ["entity_crosswalk", "review_queue", "entity_id_history"])
def test_the_same_entities_are_found(nights, table):
    """The crosswalk clusters the same records into the same entities (the ids pair one to one), the same pairs
    wait for review, the same id changes are recorded."""
    a, b, tr = nights
    check = assert_same_links if table == "entity_crosswalk" else assert_same_rows
    check(read_gold(a.home, table), tr.frame(read_gold(b.home, table)), table)


@pytest.mark.parametrize("table", ["dim_enterprise", "dim_person"])
def test_the_same_golden_records(nights, table):
    """Every golden attribute of every entity (the ``<group>_from`` lineage, the record each value came from, is
    the next test's)."""
    a, b, tr = nights
    ga, gb = read_gold(a.home, table), tr.frame(read_gold(b.home, table))
    lineage = frozenset(c for c in ga.columns if c.endswith("_from"))
    assert lineage, f"{table} has no <group>_from columns any more: update this test"
    assert_same_rows(ga, gb, table, drop=lineage)


#: A known name-dependence (issue 15: the lead decides how ties should break), kept visible: strict, so the test
#: fails as soon as it is fixed and this mark must go.
@pytest.mark.parametrize("table", ["dim_enterprise", "dim_person"])
def test_the_golden_values_come_from_the_same_records(nights, table):
    a, b, tr = nights
    ga, gb = read_gold(a.home, table), tr.frame(read_gold(b.home, table))
    assert_same_rows(ga, gb, table)


def test_the_same_resolution_scores_against_the_truth(nights):
    a, b, _ = nights
    assert evaluate_gold(b.home, b.estate) == evaluate_gold(a.home, a.estate)


def test_the_same_marts(nights):
    """Every table of the marts file: its rows, and (said first, as the figures a reader compares) its row count
    and the sum of each numeric column."""
    a, b, tr = nights
    ma, mb = _marts(a.home), _marts(b.home)
    assert sorted(ma) == sorted(mb)
    for name in sorted(ma):
        da, db = ma[name], tr.frame(mb[name])
        assert da.height == db.height, f"{name}: {da.height} rows, renamed {db.height}"
        for col, dtype in da.schema.items():
            if dtype.is_numeric() and col not in VOLATILE:
                sa, sb = da[col].cast(pl.Float64).sum(), db[col].cast(pl.Float64).sum()
                assert sb == pytest.approx(sa, rel=1e-9), f"{name}.{col}: sum {sa}, renamed {sb}"
    for name in sorted(ma):
        drop = frozenset({"delta_version"} if name == "meta_build" else ())
        assert_same_rows(ma[name], tr.frame(mb[name]), f"marts {name}", drop)


def test_the_same_exports(nights):
    """Each bureau's package: the same files, the same rows in each (parquet and csv), the same values once
    names and ids are read back; the manifest lists the same tables with the same row counts."""
    a, b, tr = nights
    bureaus = load_entitlements(a.deployment / "exports.yaml").bureaus
    renamed_bureaus = load_entitlements(b.deployment / "exports.yaml").bureaus
    assert sorted(tr.text(k) for k in renamed_bureaus) == sorted(bureaus)
    for bureau2 in renamed_bureaus:
        bureau = tr.text(bureau2)
        pa_, pb = a.home / "exports" / bureau / PARTITION, b.home / "exports" / bureau2 / PARTITION
        files = sorted(p.name for p in pa_.iterdir())
        assert sorted(p.name for p in pb.iterdir()) == files, bureau
        for name in files:
            if name.endswith(".parquet"):
                assert_same_links(
                    pl.read_parquet(pa_ / name), tr.frame(pl.read_parquet(pb / name)), f"{bureau}/{name}"
                )
            elif name.endswith(".csv"):
                lines = lambda p: p.read_bytes().count(b"\n")  # noqa: E731
                assert lines(pb / name) == lines(pa_ / name), f"{bureau}/{name}"
        manifest = lambda p: [  # noqa: E731
            (t["name"], t.get("rows"), t["sharing"])
            for t in json.loads((p / "manifest.json").read_text())["tables"]
        ]
        assert manifest(pb) == manifest(pa_), bureau
