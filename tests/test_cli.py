"""The `qst` command line: help, errors that say what is wrong, and the demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pipelines.cli import main


def test_help_lists_commands_and_every_simulate_option_is_explained():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0 and "simulate" in top.output and "demo" in top.output
    sim = runner.invoke(main, ["simulate", "--help"])
    assert sim.exit_code == 0
    for option in ("--out", "--enterprises", "--seed", "--target", "--advance-days", "--rate", "--as-of"):
        assert option in sim.output


def test_simulate_requires_enterprises(tmp_path):
    result = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--enterprises is required" in result.output


def test_bad_rate_and_bad_target_are_usage_errors(tmp_path):
    runner = CliRunner()
    bad_rate = runner.invoke(
        main, ["simulate", "--out", str(tmp_path), "--enterprises", "10", "--rate", "nope=0.1"]
    )
    assert bad_rate.exit_code == 2 and "unknown mess rate" in bad_rate.output
    bad_target = runner.invoke(
        main,
        ["simulate", "--out", str(tmp_path), "--enterprises", "10", "--target", "nosuchdept=sqlite:///x.db"],
    )
    assert bad_target.exit_code == 2 and "unknown department 'nosuchdept'" in bad_target.output


def test_list_rates():
    result = CliRunner().invoke(main, ["simulate", "--out", "x", "--list-rates"])
    assert result.exit_code == 0 and "key_typo" in result.output and "daily_rate" in result.output


def test_target_password_is_not_printed(tmp_path, pg_url):
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(password="Sup3rSecret").render_as_string(hide_password=False)
    # trust auth ignores the password; the point is what the CLI prints and writes
    result = CliRunner().invoke(
        main, ["simulate", "--out", str(tmp_path), "--enterprises", "50", "--target", f"env={url}"]
    )
    assert result.exit_code == 0, result.output
    assert "Sup3rSecret" not in result.output
    assert "Sup3rSecret" not in (tmp_path / "sources.yaml").read_text()
    assert "Sup3rSecret" not in (tmp_path / "estate.json").read_text()


def test_simulate_then_advance_through_the_cli(tmp_path):
    runner = CliRunner()
    first = runner.invoke(main, ["simulate", "--out", str(tmp_path), "--enterprises", "200", "--seed", "3"])
    assert first.exit_code == 0, first.output
    assert "source records" in first.output and (tmp_path / "truth").is_dir()
    second = runner.invoke(main, ["simulate", "--out", str(tmp_path), "--advance-days", "2"])
    assert second.exit_code == 0, second.output
    assert "now as of 2026-11-02" in second.output


def test_demo_runs_end_to_end_from_a_shell(tmp_path):
    """The README's first command ends in `qst demo`; run it as a user would."""
    qst = Path(sys.executable).with_name("qst")
    result = subprocess.run(
        [str(qst), "demo", "--home", str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )  # a hang guard, not a speed check
    assert result.returncode == 0, result.stderr
    assert "demo finished" in result.stdout
    assert (tmp_path / "home" / "estate" / "sources.yaml").exists()


def test_the_demo_example_bureau_is_the_deployments_first(tmp_path, monkeypatch):
    """The demo's `verify-export` example names a bureau of the deployment's exports.yaml, never one in code."""
    from pipelines.cli import example_bureau

    exports = tmp_path / "exports.yaml"
    exports.write_text(
        "version: 1\nhmac_key_env: QST_EXPORT_HMAC_KEY\nbureaus:\n  water:\n    title: 水务局\n    tables:\n"
        "      - {table: dim_enterprise, as: enterprises, sharing: 无条件, rows: all, columns: {entity_id: keep}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("QST_EXPORTS", str(exports))
    assert example_bureau() == "water"
    monkeypatch.setenv("QST_EXPORTS", str(tmp_path / "missing.yaml"))
    assert example_bureau() is None


def test_a_night_that_does_not_exist_is_one_line_and_exit_2(tmp_path):
    """A bad --date is a usage error naming the date and what a night is, never a Dagster traceback; checked
    before anything runs (nothing is written to the home)."""
    from pipelines.bronze import daily_partitions

    first = daily_partitions.get_first_partition_key()
    last = daily_partitions.get_last_partition_key()
    assert first is not None and last is not None
    import datetime as dt

    after_last = (dt.date.fromisoformat(last) + dt.timedelta(days=1)).isoformat()
    before_first = (dt.date.fromisoformat(first) - dt.timedelta(days=1)).isoformat()
    home = tmp_path / "home"
    for value, said in (
        ("2026-13-01", "is not a date"),
        ("yesterday", "is not a date"),
        ("2026-1-5", "is not a date"),
        (before_first, f"before the first night, {first}"),
        (after_last, f"the last complete night is {last}"),
    ):
        result = CliRunner().invoke(main, ["run", "--home", str(home), "--skip-check", "--date", value])
        assert result.exit_code == 2, (value, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and said in errors[0] and "Traceback" not in result.output, result.output
    assert not home.exists()
