"""Hostile values and forged packages (issue 18, items 3 and 5): what a fault-and-abuse probe got through, each
shown stopped -- formula cells and control characters in the bureaus' CSVs, a manifest re-computed after an
edit, a value longer than verification accepts, the marts taking a 3-byte key, a misspelled
``--as-of-version`` table, a drop folder outside the deployment.  Tiny frames and marts files: no night runs."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
import os
import subprocess
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import EXPORT_SIGNING_KEY, SIGNING_KEY_ENV
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.config import sources_from_yaml
from lake.deployment import EXAMPLE_DEPLOYMENT
from lake.yamlfile import ConfigError
from models.exports import ExportError, export_bureau, list_packages, load_entitlements, verify_package
from models.exports.protect import resolve_key
from models.exports.signing import SIGNATURE, load_public_key
from models.keyed_hash import KEY_ENV, WeakKeyError, env_key
from models.marts.build import resolve_versions
from models.marts.person import build_person
from models.staging.spec import StagingSpec
from models.staging.stage import SourceInfo, stage
from models.standardize.safe_text import MAX_FIELD_CHARS
from pipelines.export_cli import verify_export as verify_cmd
from pipelines.marts_cli import marts as marts_cmd
from quality.check_findings import CheckReport
from quality.deployment_check import check_deployment
from quality.exports_check import check_exports

DAY = dt.date(2026, 11, 22)
ENV = {SIGNING_KEY_ENV: EXPORT_SIGNING_KEY}
CITY_KEY = Ed25519PrivateKey.from_private_bytes(base64.b64decode(EXPORT_SIGNING_KEY))
CONFIG = """\
version: 1
bureaus:
  tax:
    title: 税务局 tax
    tables:
      - table: dim_enterprise
        sharing: 无条件
        rows: all
        columns: {entity_id: keep, name: keep, phone: mask_mobile, amount: keep}
"""
HOSTILE = [
    "=1+1",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "深圳市\x00大码\x1b科技\u202e有限公司",
    "普通名称",
]


def make_marts(path: Path, names: list[str]) -> Path:
    con = duckdb.connect(str(path))
    try:
        rows = pl.DataFrame(
            {
                "entity_id": [f"E{i:03d}" for i in range(len(names))],
                "name": names,
                "phone": ["=0712341234"] + ["13800001234"] * (len(names) - 1),  # masked: =07****1234
                "amount": [-5 + i for i in range(len(names))],  # a number: never quoted
            }
        )
        con.register("rows", rows)
        con.execute("CREATE TABLE dim_enterprise AS SELECT * FROM rows")
    finally:
        con.close()
    return path


def config(tmp_path: Path, text: str = CONFIG):
    path = tmp_path / "exports.yaml"
    path.write_text(text, encoding="utf-8")
    return load_entitlements(path)


def export(tmp_path: Path, names: list[str], env: dict[str, str] = ENV):
    marts = make_marts(tmp_path / f"marts{len(list(tmp_path.glob('marts*')))}.duckdb", names)
    return export_bureau(
        config(tmp_path), "tax", marts=marts, exports_root=tmp_path / "exports", date=DAY, environ=env
    )


def city_pem(tmp_path: Path) -> Path:
    path = tmp_path / "city.pem"
    path.write_bytes(
        CITY_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


# ---------------------------------------------------------------------------------------------------------
# (3) cells a spreadsheet would run, control characters


def test_csv_cells_a_spreadsheet_would_run_are_quoted_and_controls_removed(tmp_path: Path):
    result = export(tmp_path, HOSTILE)
    text = (result.path / "dim_enterprise.csv").read_bytes().decode("utf-8-sig")
    header, *lines = csv.reader(io.StringIO(text, newline=""))
    assert header == ["entity_id", "name", "phone", "amount"]
    rows = {r[0]: r for r in lines}
    names = {r[0]: r[1] for r in rows.values()}
    assert [names[f"E{i:03d}"] for i in range(6)] == [
        "'=1+1",
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "'@SUM(A1:A9)",
        "'\t=1+1",
        "'\r=1+1",
    ]
    assert names["E006"] == "深圳市大码科技有限公司" and names["E007"] == "普通名称"  # NUL, ESC, RLO removed
    assert rows["E000"][2] == "'=07****1234"  # a masked phone is text like any other
    assert [rows[f"E{i:03d}"][3] for i in range(3)] == ["-5", "-4", "-3"]  # numbers stay numbers
    for row in rows.values():
        assert not any(c in cell for cell in row for c in "\x00\x1b\u202e")
    # the Parquet file is data, not a sheet: the values as they are, but clean
    parquet = pq.read_table(result.path / "dim_enterprise.parquet").column("name").to_pylist()
    assert parquet[:2] == ["=1+1", "+cmd|' /C calc'!A0"] and parquet[6] == "深圳市大码科技有限公司"
    manifest = json.loads((result.path / "manifest.json").read_text(encoding="utf-8"))
    [csv_entry] = [f for f in manifest["files"] if f["path"] == "dim_enterprise.csv"]
    assert csv_entry["formula_cells_quoted"] == 7
    readme = (result.path / "README.md").read_text(encoding="utf-8")
    assert "CSV 公式防护" in readme and "= + - @ TAB CR" in readme and "single quote `'`" in readme
    assert "openssl pkeyutl -verify" in readme and "BEGIN PUBLIC KEY" in readme
    assert verify_package(result.path, load_public_key(city_pem(tmp_path).read_bytes())).ok


def test_silver_removes_control_characters_and_quarantines_overlong_values():
    spec = StagingSpec.model_validate(
        {
            "source": "d/t",
            "grain": "test",
            "columns": {
                "local_id": {"from": "ID"},
                "name": {"from": "MC", "as": "enterprise_name"},
                "note": {"from": "BZ"},
                "rep": {"from": "FR", "as": "person_name"},
                "founded": {"from": "founded", "as": "date"},  # a staging column named as its bronze column
            },
            "enterprises": [{"role": "subject"}],
            "quarantine": [{"reason": "no_name", "missing": "name"}],
            "mandatory": ["name"],
        }
    )
    bronze = pl.DataFrame(
        {
            "ID": ["a", "b", "c"],
            "MC": ["深圳市\x00大码科技有限公司\x00\x00", "x" * 200_000, "深圳市乙贸易有限公司"],
            "BZ": ["第一行\r\n第二行\x07", "备注", "\u202e\u2066反向\u2069"],
            "FR": ["张\x1b伟", "李四", "王五"],
            "founded": ["2020-01-01", "x" * 40_000, "2020-01-03"],
            "_qst_row_hash": [1, 2, 3],
        }
    )
    out = stage(bronze, spec, SourceInfo("d", "t", "T", ("ID",)))
    rows = {r["source_pk"]: r for r in out.rows.to_dicts()}
    assert rows["a"]["name"] == "深圳市大码科技有限公司" and rows["a"]["rep"] == "张伟"
    assert rows["a"]["note"] == "第一行\r\n第二行"  # line breaks inside a value stay
    assert rows["c"]["note"] == "反向"
    [q] = out.quarantined.to_dicts()
    assert q["source_pk"] == "b" and q["reasons"] == ["value_too_long:MC", "value_too_long:founded"]
    assert rows["a"]["founded"] == dt.date(2020, 1, 1)


# ---------------------------------------------------------------------------------------------------------
# (4) a signed manifest; field lengths agreed between silver, exports and verification


def _forge(pkg: Path, key: Ed25519PrivateKey | None = None) -> None:
    """Edit the CSV and recompute its sha256 and size in the manifest; re-sign with ``key`` if given (and
    name that key in the manifest, as a forger would)."""
    csv_file = Path(os.path.realpath(pkg)) / "dim_enterprise.csv"
    csv_file.write_bytes(csv_file.read_bytes().replace("普通名称".encode(), "伪造名称".encode()))
    manifest_file = Path(os.path.realpath(pkg)) / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        if entry["path"] == csv_file.name:
            entry["sha256"] = hashlib.sha256(csv_file.read_bytes()).hexdigest()
            entry["bytes"] = csv_file.stat().st_size
    if key is not None:
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        manifest["signing"]["public_key"] = base64.b64encode(raw).decode()
    data = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode()
    manifest_file.write_bytes(data)
    if key is not None:
        (manifest_file.parent / SIGNATURE).write_bytes(key.sign(data))


def test_a_tampered_package_with_a_recomputed_manifest_fails_verification(tmp_path: Path):
    pem = city_pem(tmp_path)
    city = load_public_key(pem.read_bytes())
    pkg = export(tmp_path, HOSTILE).path
    good = CliRunner().invoke(verify_cmd, ["--public-key", str(pem), str(pkg)])
    assert good.exit_code == 0 and "signed by sha256:" in good.output and "note" not in good.output
    # openssl alone verifies it, as the README tells the bureau
    checked = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pem), "-rawin", "-in",
         str(pkg / "manifest.json"), "-sigfile", str(pkg / SIGNATURE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr

    _forge(pkg)  # the probe's forgery: file edited, digest and size recomputed
    for key in (city, None):
        report = verify_package(pkg, key)
        assert [(p.kind, p.file) for p in report.problems] == [("signature", "manifest.json")], str(report)
        assert "changed after it was signed" in str(report)
    bad = CliRunner().invoke(verify_cmd, ["--public-key", str(pem), str(pkg)])
    assert bad.exit_code == 1 and "signature" in bad.output

    # a forger who re-signs with a key of their own: only the city's key, pinned by the bureau, tells
    _forge(pkg, Ed25519PrivateKey.generate())
    unpinned = verify_package(pkg)
    assert unpinned.ok and "not who made it" in str(unpinned)
    pinned = verify_package(pkg, city)
    assert not pinned.ok and "the manifest names another key" in str(pinned)
    (Path(os.path.realpath(pkg)) / SIGNATURE).unlink()
    assert "not signed" in str(verify_package(pkg))


def test_no_signing_key_no_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ExportError, match=SIGNING_KEY_ENV) as info:
        export(tmp_path, HOSTILE, env={})
    assert "not set" in str(info.value)
    with pytest.raises(ExportError, match="does not hold an Ed25519 private key") as info:
        export(tmp_path, HOSTILE, env={SIGNING_KEY_ENV: "not-a-key-but-a-secret-value"})
    assert "not-a-key-but-a-secret-value" not in str(info.value)
    assert list_packages(tmp_path / "exports", "tax") == []
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert export(tmp_path, HOSTILE, env={SIGNING_KEY_ENV: pem.decode()}).rows == len(HOSTILE)  # PEM too
    # qst check says so before the night starts
    monkeypatch.delenv(SIGNING_KEY_ENV)
    report = CheckReport()
    check_exports(report, EXAMPLE_DEPLOYMENT / "exports.yaml")
    assert [f.severity for f in report.findings if SIGNING_KEY_ENV in str(f)] == ["warning"]


def test_a_value_over_the_length_limit_is_never_published(tmp_path: Path):
    first = export(tmp_path, HOSTILE)  # tonight's package
    # at the limit (and a formula, so one quote more in the CSV): published, and verification agrees
    edge = export(tmp_path, ["=" + "长" * (MAX_FIELD_CHARS - 1), "普通名称"])
    assert verify_package(edge.path).ok
    # the probe's 200,000-character name: the export fails naming the table and column, nothing published
    with pytest.raises(ExportError, match=r"table dim_enterprise, column name, data row 2") as info:
        export(tmp_path, ["普通名称", "名" * 200_000])
    assert f"{MAX_FIELD_CHARS:,}" in str(info.value)
    assert first.build != edge.build  # the edge case replaced tonight's package; the failed export did not
    assert os.path.realpath(edge.path) == os.path.realpath(edge.build)
    assert verify_package(edge.path).ok
    # verification applies the same limit to a package re-signed with a longer cell (no "OK" to a cell a
    # spreadsheet would cut)
    csv_file = Path(os.path.realpath(edge.path)) / "dim_enterprise.csv"
    csv_file.write_bytes(csv_file.read_bytes().replace("普通名称".encode(), ("名" * 40_000).encode()))
    manifest_file = csv_file.parent / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        if entry["path"] == csv_file.name:
            entry["sha256"] = hashlib.sha256(csv_file.read_bytes()).hexdigest()
            entry["bytes"] = csv_file.stat().st_size
    manifest_file.write_bytes(data := json.dumps(manifest, ensure_ascii=False).encode())
    (csv_file.parent / SIGNATURE).write_bytes(CITY_KEY.sign(data))
    report = verify_package(edge.path)
    assert [(p.kind, p.file) for p in report.problems] == [("field", "dim_enterprise.csv")], str(report)
    assert "line 3, column 2" in str(report)


# ---------------------------------------------------------------------------------------------------------
# (6) one key rule for the marts and the exports; --as-of-version; drop folders


def test_marts_and_exports_take_the_hash_key_by_one_rule(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(KEY_ENV, "abc")
    con = duckdb.connect()
    with pytest.raises(WeakKeyError, match=f"{KEY_ENV} is too short") as info:
        build_person(con, DAY)  # the marts' id_hash: refused before any SQL
    assert "abc" not in str(info.value)
    with pytest.raises(ExportError, match=f"{KEY_ENV} is too short"):
        resolve_key(KEY_ENV, {KEY_ENV: "abc"})
    padded = {KEY_ENV: "  a-secret-of-thirty-two-characters \n"}
    assert env_key(padded) == resolve_key(KEY_ENV, padded) == b"a-secret-of-thirty-two-characters"
    # trimmed before it is measured: 15 characters padded to 20 bytes are still too short
    with pytest.raises(WeakKeyError):
        env_key({KEY_ENV: "  " + "k" * 15 + "   "})


def test_an_unknown_as_of_version_table_is_an_error(tmp_path: Path):
    with pytest.raises(ValueError, match="'gold/dim_enterprize'") as info:
        resolve_versions(tmp_path, {"gold/dim_enterprize": 3, "gold/dim_enterprise": 2})
    assert "dim_enterprise (gold/dim_enterprise)" in str(info.value)
    result = CliRunner().invoke(
        marts_cmd, ["--home", str(tmp_path), "--as-of-version", "gold/dim_enterprize=3"]
    )
    assert (
        result.exit_code == 1
        and "names no lake table" in result.output
        and "gold/dim_enterprize" in result.output
    )


SOURCES = """\
version: 1
departments:
  streets:
    files:
      - {name: rosters, folder: FOLDER, pattern: "*", format: csv}
"""


def test_a_drop_folder_outside_the_allowed_roots_is_an_error(tmp_path: Path):
    deployment = tmp_path / "deployment"
    (deployment / "drops").mkdir(parents=True)
    (deployment / "escape").symlink_to("/etc")

    def load(folder: str, extra: str = ""):
        return sources_from_yaml(
            extra + SOURCES.replace("FOLDER", folder), base_dir=deployment, origin="s.yaml"
        )

    assert load("drops").file_drop("streets", "rosters").folder == deployment / "drops"
    for folder in ("../../../../../../etc", "/etc", "escape", "drops/../../elsewhere"):
        with pytest.raises(ConfigError, match="outside the folders file drops may be read from") as info:
            load(folder)
        assert "s.yaml:5" in str(info.value) and "departments.streets.files[0].folder" in str(info.value)
    # a root the deployment declares
    outside = tmp_path / "shared" / "drops"
    outside.mkdir(parents=True)
    assert (
        load(str(outside), f"file_roots: [{outside.parent}]\n").file_drop("streets", "rosters").folder
        == outside
    )
    with pytest.raises(ConfigError):
        load("drops", f"file_roots: [{outside.parent}]\n")  # declared roots replace the default
    # qst check says so too
    sources = deployment / "sources.yaml"
    sources.write_text(SOURCES.replace("FOLDER", "../../../../../../etc"), encoding="utf-8")
    report = check_deployment(sources, EXAMPLE_DEPLOYMENT / "specs", EXAMPLE_DEPLOYMENT / "exports.yaml")
    assert not report.ok
    assert any("outside the folders file drops may be read from" in str(f) for f in report.findings)
