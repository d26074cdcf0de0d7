"""A deployment is one folder, found from one setting: everything a city declares is read from there, nothing
from inside the packages."""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from lake.deployment import DEPLOYMENT_ENV, EXAMPLE_DEPLOYMENT, current_deployment
from models.resolution.splink_model import load_model, trained_dir
from models.staging.spec import load_specs
from models.standardize.codes import crosswalk, map_code
from pipelines.home import exports_path, sources_path, staging_specs_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def city(tmp_path, monkeypatch) -> Path:
    """A copy of the example deployment, declared as this process's deployment."""
    folder = tmp_path / "othercity"
    shutil.copytree(EXAMPLE_DEPLOYMENT, folder)
    for name in ("QST_SOURCES", "QST_STAGING_SPECS", "QST_EXPORTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(DEPLOYMENT_ENV, str(folder))
    monkeypatch.setenv("QST_HOME", str(tmp_path / "home"))
    return folder


def test_every_file_of_a_city_comes_from_its_deployment(city):
    assert current_deployment().root == city.resolve()
    assert sources_path() == city.resolve() / "sources.yaml"
    assert exports_path() == city.resolve() / "exports.yaml"
    assert staging_specs_folder() == city.resolve() / "specs"
    assert trained_dir() == city.resolve() / "trained"
    # a spec and a trained model of this city only
    (city / "specs" / "stg_env__penalties.yaml").unlink()
    assert "env/penalties" not in load_specs() and "samr/registrations" in load_specs()
    (city / "trained" / "person.json").unlink()
    assert load_model("person") is None and load_model("enterprise") is not None


def test_a_citys_own_code_list_is_used(city):
    """Onboarding a code is an edit of the deployment's crosswalk, never of the checkout."""
    frame = pl.DataFrame({"DJZT": ["XYZ"]})
    row = "samr,T_SCZT_DJXX,DJZT,XYZ,suspended,added for this city\n"
    before = frame.select(map_code("DJZT", "status", "samr", "DJZT", table="T_SCZT_DJXX").alias("s"))
    path = city / "crosswalks" / "status.csv"
    path.write_text(path.read_text(encoding="utf-8") + row, encoding="utf-8")
    after = frame.select(map_code("DJZT", "status", "samr", "DJZT", table="T_SCZT_DJXX").alias("s"))
    assert before["s"].struct.field("canonical_status").to_list() != ["suspended"]
    assert after["s"].struct.field("canonical_status").to_list() == ["suspended"]
    assert "XYZ" in crosswalk("status")["source_value"].to_list()


def test_a_missing_deployment_or_file_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv(DEPLOYMENT_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"QST_DEPLOYMENT=.*nowhere: no such folder"):
        current_deployment()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(DEPLOYMENT_ENV, str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"empty/crosswalks/status.csv"):
        crosswalk("status")
    with pytest.raises(Exception, match="no staging specs folder"):
        load_specs()


def test_without_the_setting_the_example_city_is_used(monkeypatch):
    monkeypatch.delenv(DEPLOYMENT_ENV, raising=False)
    assert current_deployment().root == EXAMPLE_DEPLOYMENT
    assert (EXAMPLE_DEPLOYMENT / "sources.yaml").is_file() and (EXAMPLE_DEPLOYMENT / "specs").is_dir()


def test_no_deployment_file_lives_inside_the_packages():
    """Specs, crosswalks, entitlements, sources and trained models are a city's: the packages hold code and the
    national reference data every city shares (models/data: divisions, GB/T 4754)."""
    found = [
        p.relative_to(ROOT).as_posix()
        for pkg in ("connectors", "lake", "models", "quality", "pipelines", "dashboard")
        for p in (ROOT / pkg).rglob("*")
        if p.suffix in {".yaml", ".yml", ".csv", ".json"} and "models/data" not in p.as_posix()
    ]
    assert not found, found


def test_the_citys_time_zone_is_declared_once_in_its_deployment(city):
    """Report days, deadlines and the day a timestamp falls on follow the zone the deployment declares."""
    import datetime as dt

    from lake.city import city_timezone
    from quality.scorecard import deadline

    night = dt.date(2026, 11, 1)
    assert city_timezone() == "Asia/Shanghai"  # the example declares none: the default
    # the load at 02:00 on D+1, plus 4 hours' grace: 18:00 + 4 h UTC in Shanghai (UTC+8)
    assert deadline(night) == dt.datetime(2026, 11, 1, 22, tzinfo=dt.UTC)
    path = city / "sources.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("version: 1\n", "version: 1\ntimezone: Asia/Urumqi\n")
    )
    assert city_timezone() == "Asia/Urumqi"
    assert deadline(night) == dt.datetime(2026, 11, 2, 0, tzinfo=dt.UTC)  # UTC+6
    path.write_text(path.read_text(encoding="utf-8").replace("Asia/Urumqi", "Mars/Olympus"))
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        city_timezone()


def _docstrings(tree: ast.AST) -> set[int]:
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def example_names() -> tuple[set[str], set[str]]:
    """The example deployment's department keys and source table names (whole strings), and the forms that
    name one of its tables inside a longer string: ``dept/asset``, ``dept.asset``, ``stg_dept__``."""
    config = yaml.safe_load((EXAMPLE_DEPLOYMENT / "sources.yaml").read_text(encoding="utf-8"))
    whole, parts = set(), set()
    for dept, body in config["departments"].items():
        whole.add(dept)
        parts.add(f"stg_{dept}__")
        for table in body.get("tables") or []:
            whole.add(table["name"])
            asset = table.get("asset") or table["name"].lower()
            parts |= {f"{dept}/{asset}", f"{dept}.{asset}"}
        for drop in body.get("files") or []:
            parts |= {f"{dept}/{drop['name']}", f"{dept}.{drop['name']}"}
    return whole, parts


def names_in_code(packages: tuple[str, ...] = ("models", "quality", "pipelines")) -> list[str]:
    """String literals of the code (docstrings aside: they may give an example) that name a department or
    table of the example deployment: a layer past the connectors that knows them works for that city only."""
    whole, parts = example_names()
    found = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            skip = _docstrings(tree)
            literals = [
                node
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            ]
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}"
                for node in literals
                if node.value in whole or any(p in node.value for p in parts)
            ]
    return found


def test_no_department_or_table_of_the_example_city_is_named_past_the_connectors():
    found = names_in_code()
    assert not found, "declare it in the deployment instead:\n" + "\n".join(found)


def test_the_name_scan_finds_a_planted_name(tmp_path, monkeypatch):
    whole, parts = example_names()
    assert "samr" in whole and "stg_samr__" in parts and "T_XZCF" in whole
    planted = tmp_path / "models"
    planted.mkdir()
    (planted / "m.py").write_text('"""A docstring may say samr."""\nTABLE = "stg_samr__penalties"\n')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert names_in_code(("models",)) == ["models/m.py:2: 'stg_samr__penalties'"]


def test_the_departments_table_reconciles_with_sources_yaml(tmp_path):
    """The blocking check of int_departments: each department of sources.yaml once, no other."""
    from lake.delta import overwrite
    from lake.layout import silver_path
    from quality.quarantine import departments_reconcile

    path = silver_path(tmp_path, "int_departments")
    overwrite(path, pl.DataFrame({"department": ["samr", "tax"]}).to_arrow())
    assert departments_reconcile(tmp_path, ["samr", "tax"])[0]
    ok, why = departments_reconcile(tmp_path, ["samr", "courts"])
    assert not ok and "missing ['courts']" in why and "not in sources.yaml ['tax']" in why
    overwrite(path, pl.DataFrame({"department": ["samr", "samr"]}).to_arrow())
    assert "more than once ['samr']" in departments_reconcile(tmp_path, ["samr"])[1]
    assert not departments_reconcile(tmp_path / "nowhere", ["samr"])[0]
