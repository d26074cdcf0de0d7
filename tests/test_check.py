"""`qst check` finds each defect a new city brought, before any data moves, and names the file and the fix.

Each test plants one defect in a copy of the example deployment wired to a small simulated estate (the estate
is shared and only read; the deployment is copied per test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lake.deployment import DEPLOYMENT_ENV, EXAMPLE_DEPLOYMENT
from pipelines.cli import main


@pytest.fixture(scope="module")
def estate(simulated_estate) -> Path:
    return simulated_estate(enterprises=200, seed=15)


@pytest.fixture
def city(tmp_path, monkeypatch, estate) -> Path:
    """The example deployment minus its sources.yaml, with a copy of the estate's sources.yaml (its paths are
    relative to the estate, so it points at the estate's SQLite files wherever it lies)."""
    folder = tmp_path / "city"
    shutil.copytree(EXAMPLE_DEPLOYMENT, folder, ignore=shutil.ignore_patterns("sources.yaml"))
    text = (estate / "sources.yaml").read_text(encoding="utf-8")
    text = text.replace("sqlite: ", f"sqlite: {estate}/").replace("folder: ", f"folder: {estate}/")
    text += f"file_roots: [{estate}]\n"  # the drops lie outside the deployment folder
    (folder / "sources.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv(DEPLOYMENT_ENV, str(folder))  # --deployment sets it: restored after the test
    monkeypatch.delenv("QST_SOURCES", raising=False)
    monkeypatch.delenv("QST_STAGING_SPECS", raising=False)
    monkeypatch.delenv("QST_EXPORTS", raising=False)
    return folder


def _check(city: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--deployment", str(city), "check"])
    return result.exit_code, result.output


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_clean_deployment_passes(city):
    code, out = _check(city)
    assert code == 0, out
    assert "0 errors, 0 warnings" in out
    assert "event types (the vocabulary int_events is checked against): abnormal_listing" in out


def test_a_code_without_a_crosswalk_row_prints_the_row_to_add(city):
    path = city / "crosswalks" / "status.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    removed = next(line for line in lines if line.startswith("samr,T_SCZT_DJXX,DJZT,2,"))
    path.write_text("".join(line for line in lines if line != removed), encoding="utf-8")
    code, out = _check(city)
    assert code == 1, out
    assert f"ERROR   {path}: 1 value(s) of samr.T_SCZT_DJXX.DJZT" in out
    assert f"add to {path}" in out
    assert "      samr,T_SCZT_DJXX,DJZT,2,?,\n" in out
    assert "1 error," in out


def test_a_spec_column_the_source_lacks_names_file_line_and_the_fix(city):
    path = city / "specs" / "stg_samr__registrations.yaml"
    _edit(path, "name: {from: QYMC,", "name: {from: QYMCX,")
    line = next(i for i, t in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "QYMCX" in t)
    code, out = _check(city)
    assert code == 1, out
    assert (
        f"ERROR   {path}:{line}: columns.name.from: column 'QYMCX' is not in the source table 'T_SCZT_DJXX' "
        "of samr/registrations (did you mean 'QYMC'?)"
    ) in out


def test_a_text_cursor_without_a_declared_type_says_what_to_declare(city):
    # QS_XX.QSRQ is VARCHAR(10) in the simulated SQLite file (a date as text); GXSJ is DATETIME
    _edit(
        city / "sources.yaml",
        "cursor: GXSJ\n      cursor_kind: timestamp\n      columns:\n        QSJE:",
        ("cursor: QSRQ\n      cursor_kind: timestamp\n      columns:\n        QSJE:"),
    )
    code, out = _check(city)
    assert code == 1, out
    # the reader's own rule (connectors.readers.cursor_problem), said before any data moves
    assert "table 'QS_XX', column 'QSRQ': the timestamp cursor is VARCHAR(10) in the source" in out
    assert "columns: {QSRQ: {type: timestamp}}" in out
    assert f"ERROR   {city / 'sources.yaml'}:" in out


def test_a_declared_cursor_type_passes(city):
    _edit(
        city / "sources.yaml",
        "cursor: GXSJ\n      cursor_kind: timestamp\n      columns:\n        QSJE:",
        (
            "cursor: QSRQ\n      cursor_kind: timestamp\n      columns:\n        QSRQ: {type: timestamp}\n        QSJE:"
        ),
    )
    code, out = _check(city)
    assert code == 0, out


def test_an_exported_column_outside_the_contract_is_an_error(city):
    path = city / "exports.yaml"
    _edit(path, "          month: keep\n", "          months: keep\n")
    code, out = _check(city)
    assert code == 1, out
    assert (
        "columns.months: column 'months' is not a column of mart_abnormal_distribution in the marts' contract "
        "(did you mean 'month'?)"
    ) in out
    assert f"ERROR   {path}:" in out


def test_qst_run_stops_before_any_data_moves(city, tmp_path):
    _edit(city / "specs" / "stg_samr__registrations.yaml", "name: {from: QYMC,", "name: {from: QYMCX,")
    home = tmp_path / "home"
    result = CliRunner().invoke(
        main, ["--deployment", str(city), "run", "--home", str(home), "--until", "bronze"]
    )
    assert result.exit_code == 2, result.output
    assert "the deployment has errors (above): nothing was run" in result.output
    assert not (home / "lake").exists()


def test_qst_run_with_a_missing_config_is_a_usage_error(tmp_path):
    """A sources.yaml that is not there: the file named on one line, exit 2, nothing written."""
    home = tmp_path / "home"
    missing = tmp_path / "nowhere" / "sources.yaml"
    result = CliRunner().invoke(main, ["run", "--home", str(home), "--config", str(missing)])
    assert result.exit_code == 2, result.output
    assert f"{missing}: cannot read the file" in result.output and "Traceback" not in result.output
    assert not (home / "lake").exists()
