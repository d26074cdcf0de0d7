"""The Dagster code location: its asset graph, its errors, and that it never exposes a secret.

The asset graph of the fixture configuration is compared with ``tests/snapshots/asset_graph.json``.
After an intended change, rewrite the snapshot with::

    QST_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_definitions.py -q -s
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from connectors.config import load_sources
from lake.deployment import EXAMPLE_DEPLOYMENT
from pipelines.assemble import build_definitions, load_definitions
from pipelines.home import REPO_ROOT, quanshitong_home, sources_path
from pipelines.sources import SourcesLoadError

TESTS = Path(__file__).resolve().parent
FIXTURE = TESTS / "fixtures" / "sources_small.yaml"
SNAPSHOT = TESTS / "snapshots" / "asset_graph.json"
URL_ENV = "QST_TEST_TAX_URL"  # the url_env of department 'tax' in the fixture


# --------------------------------------------------------------------------------------------------
# snapshot helpers (reusable for the real sources.yaml)


def _key(key: dg.AssetKey) -> str:
    return key.to_user_string()


def asset_graph_snapshot(defs: dg.Definitions) -> dict[str, Any]:
    """A deterministic, JSON-ready description of the asset graph's structure.

    Assets (sorted by key) with their group, kinds, upstream keys and execution type (materializable,
    observable or external); asset checks (sorted) with their target, blocking flag and extra deps.
    No metadata, descriptions or paths: nothing that depends on the machine.
    """
    graph = defs.resolve_asset_graph()
    assets = []
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.path):
        node = graph.get(spec.key)
        assets.append(
            {
                "key": _key(spec.key),
                "group": spec.group_name,
                "kinds": sorted(spec.kinds),
                "deps": sorted(_key(dep.asset_key) for dep in spec.deps),
                "execution": node.execution_type.value.lower(),
            }
        )
    checks = []
    for check_key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.path, k.name)):
        check_spec = graph.get_check_spec(check_key)
        checks.append(
            {
                "asset": _key(check_key.asset_key),
                "name": check_key.name,
                "blocking": bool(check_spec.blocking),
                "additional_deps": sorted(_key(d.asset_key) for d in check_spec.additional_deps),
            }
        )
    return {"assets": assets, "asset_checks": checks}


def _dump(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def assert_matches_snapshot(snapshot: dict[str, Any], path: Path) -> None:
    """Compare with the stored snapshot, or rewrite it when ``QST_UPDATE_SNAPSHOTS=1``."""
    __tracebackhide__ = True
    text = _dump(snapshot)
    if os.environ.get("QST_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"\nQST_UPDATE_SNAPSHOTS=1: rewrote {path}")
        return
    if not path.is_file():
        pytest.fail(f"snapshot {path} does not exist; create it with QST_UPDATE_SNAPSHOTS=1")
    stored = path.read_text(encoding="utf-8")
    if stored != text:
        diff = "".join(
            difflib.unified_diff(
                stored.splitlines(keepends=True), text.splitlines(keepends=True), str(path), "current"
            )
        )
        pytest.fail(
            f"the asset graph differs from {path}; if the change is intended, rerun with "
            f"QST_UPDATE_SNAPSHOTS=1\n{diff}"
        )


# --------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def fixture_defs(monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    monkeypatch.delenv(URL_ENV, raising=False)  # the URL is not needed to build the graph
    return build_definitions(load_sources(FIXTURE))


# --------------------------------------------------------------------------------------------------
# tests


def test_definitions_are_loadable(fixture_defs: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(fixture_defs)


def test_asset_graph_matches_snapshot(fixture_defs: dg.Definitions) -> None:
    assert_matches_snapshot(asset_graph_snapshot(fixture_defs), SNAPSHOT)


def test_one_external_asset_per_source_table_and_file_drop(fixture_defs: dg.Definitions) -> None:
    config = load_sources(FIXTURE)
    expected = {("legacy", d.key, t.asset) for d, t in config.iter_tables()}
    expected |= {("legacy", d.key, f.name) for d, f in config.iter_files()}
    specs = {tuple(s.key.path): s for s in fixture_defs.resolve_all_asset_specs()}
    legacy = {k for k in specs if k[0] == "legacy"}
    assert legacy == expected
    graph = fixture_defs.resolve_asset_graph()
    for key in legacy:
        assert graph.get(dg.AssetKey(list(key))).is_external
    # each legacy table and file drop feeds exactly one bronze asset, which is materializable
    bronze = {k for k in specs if k[0] == "bronze"}
    assert {("legacy", *k[1:]) for k in bronze} == expected
    for key in bronze:
        node = graph.get(dg.AssetKey(list(key)))
        assert node.is_materializable
        assert {p.path[0] for p in node.parent_keys} == {"legacy"}


def test_table_metadata_and_description(fixture_defs: dg.Definitions) -> None:
    specs = {s.key: s for s in fixture_defs.resolve_all_asset_specs()}
    taxpayers = specs[dg.AssetKey(["legacy", "tax", "taxpayers"])]
    assert taxpayers.group_name == "legacy_tax"
    assert taxpayers.kinds == {"sql"}
    md = taxpayers.metadata
    assert md["source_table"] == "纳税人登记"
    assert md["source_schema"] == "zg"
    assert md["primary_key"].value == ["纳税人识别号", "登记序号"]
    assert md["mode"] == "incremental"
    assert md["cursor"] == "更新时间"
    assert "税务局" in taxpayers.description and "纳税人登记" in taxpayers.description

    abnormal = specs[dg.AssetKey(["legacy", "samr", "abnormal_operations"])]
    assert abnormal.kinds == {"sqlite"}
    assert abnormal.metadata["primary_key"].value == ["TYSHXYDM", "LRRQ"]
    assert abnormal.metadata["mode"] == "snapshot"
    assert "cursor" not in abnormal.metadata

    drop = specs[dg.AssetKey(["legacy", "tax", "arrears_rosters"])]
    assert drop.kinds == {"file", "csv"}
    assert drop.metadata["format"] == "csv"


def test_invalid_sources_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_sources.yaml"
    with pytest.raises(SourcesLoadError) as info:
        load_definitions(missing)
    assert str(missing) in str(info.value)
    assert info.value.path == missing

    broken = tmp_path / "broken_sources.yaml"
    broken.write_text("version: 1\ndepartments: {}\n", encoding="utf-8")
    with pytest.raises(SourcesLoadError) as info:
        load_definitions(broken)
    assert str(broken) in str(info.value)


def _python(code: str, *, sources: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter from the repository root with ``QST_SOURCES=sources``."""
    env = {**os.environ, "QST_SOURCES": str(sources)}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_module_import_fails_loudly_on_missing_sources(tmp_path: Path) -> None:
    """What `dagster definitions validate` sees: importing the module raises, naming the file."""
    missing = tmp_path / "absent" / "sources.yaml"
    proc = _python("import pipelines.definitions", sources=missing)
    assert proc.returncode != 0
    assert "SourcesLoadError" in proc.stderr
    assert str(missing) in proc.stderr


def test_module_defs_follow_qst_sources() -> None:
    code = (
        "import json; from pipelines.definitions import defs; "
        "print(json.dumps(sorted(k.to_user_string() for k in defs.resolve_all_asset_keys())))"
    )
    proc = _python(code, sources=FIXTURE)
    assert proc.returncode == 0, proc.stderr
    keys = json.loads(proc.stdout.strip().splitlines()[-1])
    assert keys == [a["key"] for a in json.loads(SNAPSHOT.read_text(encoding="utf-8"))["assets"]]


def _everything_visible(defs: dg.Definitions) -> str:
    parts = []
    for spec in defs.resolve_all_asset_specs():
        parts.append(spec.description or "")
        parts.append(json.dumps(dict(spec.tags), ensure_ascii=False))
        for name, value in spec.metadata.items():
            parts.append(name)
            parts.append(repr(value))
            parts.append(str(getattr(value, "value", value)))
    return "\n".join(parts)


def test_no_url_or_secret_in_asset_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "S3cr3t-Pa55w0rd"
    monkeypatch.setenv(URL_ENV, f"postgresql+psycopg://tax_reader:{secret}@db.tax.example:5432/taxdb")
    config = load_sources(FIXTURE)
    assert config.department("tax").resolve_url().endswith("/taxdb")  # the variable is really set
    visible = _everything_visible(build_definitions(config))
    for forbidden in ("://", secret, "tax_reader", "db.tax.example", "postgresql", "sqlite:///"):
        assert forbidden not in visible, f"asset metadata/description exposes {forbidden!r}"


def test_home_and_sources_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QST_HOME", raising=False)
    monkeypatch.delenv("QST_SOURCES", raising=False)
    assert quanshitong_home() == (tmp_path / "data").resolve()
    assert sources_path() == EXAMPLE_DEPLOYMENT / "sources.yaml"  # no estate yet: the repository's example

    estate = tmp_path / "home" / "estate"
    estate.mkdir(parents=True)
    (estate / "sources.yaml").write_text("version: 1\n", encoding="utf-8")
    monkeypatch.setenv("QST_HOME", "home")
    assert quanshitong_home() == (tmp_path / "home").resolve()
    assert sources_path() == (estate / "sources.yaml").resolve()

    monkeypatch.setenv("QST_SOURCES", "elsewhere.yaml")
    assert sources_path() == (tmp_path / "elsewhere.yaml").resolve()


REPO_SNAPSHOT = TESTS / "snapshots" / "asset_graph_repo_sources.json"


def test_repo_sources_asset_graph_matches_snapshot() -> None:
    """The graph that `dagster dev -w workspace.yaml` shows for the committed sources.yaml."""
    defs = load_definitions(EXAMPLE_DEPLOYMENT / "sources.yaml")
    dg.Definitions.validate_loadable(defs)
    assert_matches_snapshot(asset_graph_snapshot(defs), REPO_SNAPSHOT)
