"""Bureau exports (models/exports, pipelines/export_cli.py): entitlements and their errors, protections,
packages (files, manifest, README), atomic publishing and crashes, idempotence, retention, audit, verify,
and the two commands.  Every test builds its own small marts file."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import EXPORT_SIGNING_KEY, SIGNING_KEY_ENV

from lake.deployment import EXAMPLE_DEPLOYMENT
from lake.yamlfile import ConfigError
from models.exports import (
    ExportError,
    entitlement_version,
    export_all,
    export_bureau,
    list_packages,
    load_entitlements,
    read_audit,
    verify_package,
)
from models.exports import package as package_mod
from models.exports import write as write_mod
from models.exports.entitlements import ColumnRule, ExportsConfig
from models.exports.protect import KeyedHasher, hmac_hex, mask_id, mask_mobile, mask_name, protect_series
from pipelines.export_cli import export as export_cmd
from pipelines.export_cli import verify_export as verify_cmd

REPO = Path(__file__).resolve().parent.parent
KEY = "k3y-for-tests-only-0123456789abcdef"
ENV = {"QST_EXPORT_HMAC_KEY": KEY, SIGNING_KEY_ENV: EXPORT_SIGNING_KEY}
DAY = dt.date(2026, 11, 22)
DIVISIONS = ["440305", "440306", "440305001", "440304"]
SURNAMES = "张王李赵陈刘欧阳"


def _id_number(i: int) -> str:
    check = "X" if i % 5 == 0 else str(i % 10)
    return f"{DIVISIONS[i % 2]}19{70 + i % 30:02d}0{1 + i % 9}1{i % 10}{i:03d}{check}"


def make_marts(path: Path, *, rows: int = 40, meta_build: bool = True, extra_tables: bool = True) -> Path:
    """A small marts file with the contract's tables, column comments and meta_build."""
    ent = pa.table(
        {
            "entity_id": [f"E{i:03d}" for i in range(rows)],
            "uscc": [f"91440300MA5{i:06d}X" for i in range(rows)],
            "name": [f"深圳市{'华腾宏泰鑫源'[i % 6]}科技有限公司{i}" for i in range(rows)],
            "division_code": [DIVISIONS[i % 4] for i in range(rows)],
            "district": ["南山区" if DIVISIONS[i % 4].startswith("440305") else "其他" for i in range(rows)],
            "legal_rep_name": [SURNAMES[i % 6] + "伟明"[: 1 + i % 2] for i in range(rows)],
            "legal_rep_id_number": [_id_number(i) if i % 9 else None for i in range(rows)],
            "phone": [f"138{i:08d}" for i in range(rows)],
            "registered_capital_wan": pa.array([i * 10.5 for i in range(rows)], pa.float64()),
        }
    )
    person = pa.table(
        {
            "person_id": [f"P{i:03d}" for i in range(10)],
            "name": [SURNAMES[i % 6] + "芳" for i in range(10)],
            "id_number": [_id_number(i + 100) for i in range(10)],
            "phone": [f"139{i:08d}" for i in range(10)],
        }
    )
    xw_rows = (
        [(f"samr.registrations:{i}:subject", f"E{i:03d}", "enterprise", "samr") for i in range(rows)]
        + [(f"tax.taxpayers:{i}:subject", f"E{i:03d}", "enterprise", "tax") for i in range(0, rows, 3)]
        + [(f"courts.parties:{i}:party", f"P{i:03d}", "person", "courts") for i in range(0, 10, 2)]
    )
    xw = pa.table(
        {
            "record_id": [r[0] for r in xw_rows],
            "entity_id": [r[1] for r in xw_rows],
            "entity_type": [r[2] for r in xw_rows],
            "source_department": [r[3] for r in xw_rows],
            "source_asset": [r[0].split(":")[0].split(".")[1] for r in xw_rows],
            "source_pk": [r[0].split(":")[1] for r in xw_rows],
            "rule": ["uscc"] * len(xw_rows),
            "match_probability": pa.array([1.0] * len(xw_rows), pa.float64()),
        }
    )
    con = duckdb.connect(str(path))
    try:
        for name, table in (("dim_enterprise", ent), ("dim_person", person), ("entity_crosswalk", xw)):
            con.register("src", table)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM src")
            con.unregister("src")
        con.execute("COMMENT ON TABLE dim_enterprise IS '企业黄金记录 golden enterprise records'")
        for col, text in (
            ("uscc", "统一社会信用代码"),
            ("name", "企业名称"),
            ("legal_rep_id_number", "法定代表人身份证号"),
            ("phone", "联系电话"),
            ("division_code", "行政区划代码"),
        ):
            con.execute(f"COMMENT ON COLUMN dim_enterprise.{col} IS '{text}'")
        if extra_tables:
            con.execute(
                "CREATE TABLE mart_credit_risk AS SELECT entity_id, uscc, "
                "CAST(length(name) AS DOUBLE) AS risk_score FROM dim_enterprise"
            )
        if meta_build:
            con.execute(
                "CREATE TABLE meta_build (lake_table VARCHAR, delta_version BIGINT, built_at TIMESTAMPTZ)"
            )
            con.execute(
                "INSERT INTO meta_build VALUES ('gold/dim_enterprise', 7, TIMESTAMPTZ '2026-11-23 01:00:00+00'),"
                " ('silver/int_enterprise_records', 12, TIMESTAMPTZ '2026-11-23 00:30:00+00')"
            )
    finally:
        con.close()
    return path


CONFIG = """\
version: 1
hmac_key_env: QST_EXPORT_HMAC_KEY
defaults:
  retention: 3
bureaus:
  tax:
    title: 税务局 tax
    csv_encoding: gb18030
    tables:
      - table: dim_enterprise
        as: taxpayers
        sharing: 有条件
        purpose: 纳税人登记核对
        agreement: 深数共享〔2026〕17号
        rows: {related: entity_id}
        columns:
          entity_id: keep
          name: keep
          legal_rep_name: mask_name
          legal_rep_id_number: mask_id
          legal_rep_id_hmac: {from: legal_rep_id_number, protect: hmac}
          phone: mask_mobile
          address_is_not_here: drop
      - table: dim_person
        sharing: 不予共享
        reason: 无法定依据
  streets:
    title: 街道 streets
    tables:
      - table: dim_enterprise
        sharing: 无条件
        rows: {column: division_code, prefix: "440305"}
        columns:
          entity_id: keep
          division_code: keep
          uscc: {protect: mask, keep_first: 2, keep_last: 1}
      - table: mart_credit_risk
        sharing: 无条件
        rows: [{column: uscc, in: ["91440300MA5000003X", "91440300MA5000004X", "nope' OR 1=1 --"]}]
        columns: {entity_id: keep, risk_score: keep}
"""


def load(tmp_path: Path, text: str = CONFIG, name: str = "exports.yaml") -> ExportsConfig:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_entitlements(path)


@pytest.fixture
def marts(tmp_path: Path) -> Path:
    return make_marts(tmp_path / "marts.duckdb")


@pytest.fixture
def config(tmp_path: Path) -> ExportsConfig:
    return load(tmp_path)


def run(config: ExportsConfig, bureau: str, marts: Path, root: Path, day: dt.date = DAY, env=ENV):
    return export_bureau(config, bureau, marts=marts, exports_root=root, date=day, environ=env)


def read_csv(path: Path, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))


def files_digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir())}


def ref_hmac(value: str) -> str:
    return hmac.new(KEY.encode(), value.strip().upper().encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# entitlements


def test_repository_exports_yaml_is_valid():
    config = load_entitlements(EXAMPLE_DEPLOYMENT / "exports.yaml")
    assert {"samr", "tax", "courts", "social", "env", "service", "streets"} <= set(config.bureaus)
    for key in config.bureaus:
        assert entitlement_version(config, key).startswith("sha256:")


def test_exports_yaml_names_columns_of_the_marts_contract():
    contract = pytest.importorskip("models.marts.contract")
    config = load_entitlements(EXAMPLE_DEPLOYMENT / "exports.yaml")
    for key, bureau in config.bureaus.items():
        for ent in bureau.tables:
            table = contract.TABLES.get(ent.table)
            if table is None or not ent.shared:
                continue
            used = {ent.source_of(out) for out in ent.columns or {}} | {
                c.column or c.related for c in ent.rows or [] if not c.all
            }
            assert used <= set(table.column_names), (key, ent.table, used - set(table.column_names))


def _error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value


def test_conditional_without_purpose_names_file_line_and_key(tmp_path: Path):
    err = _error(
        tmp_path,
        """\
        version: 1
        bureaus:
          tax:
            title: 税务局
            tables:
              - table: dim_enterprise
                sharing: 有条件
                agreement: 深数共享〔2026〕17号
                rows: all
                columns: {entity_id: keep}
        """,
    )
    [issue] = err.issues
    assert issue.origin.endswith("exports.yaml") and issue.line == 7  # the 'sharing' line
    assert issue.path == "bureaus.tax.tables[0].purpose"
    assert "有条件" in issue.message
    assert f"{tmp_path / 'exports.yaml'}:7:" in str(err)


def test_every_problem_reported_at_once_with_positions(tmp_path: Path):
    err = _error(
        tmp_path,
        """\
        version: 1
        bureaus:
          tax:
            title: 税务局
            tables:
              - table: dim_person
                sharing: 不予共享
                columns: {name: keep}
              - table: dim_enterprise
                sharing: 无条件
                columns:
                  phone: scramble
                  "uscc; DROP TABLE x": keep
              - table: mart_x
                sharing: sometimes
                rows: {column: division_code, in: [440305]}
                columns: {a: keep}
              - table: dim_enterprise
                as: e2
                sharing: 无条件
                columns: {entity_id: keep}
        """,
    )
    by_path = {i.path: i for i in err.issues}
    assert by_path["bureaus.tax.tables[0].columns"].line == 8
    assert "不予共享" in by_path["bureaus.tax.tables[0].columns"].message
    assert by_path["bureaus.tax.tables[3].rows"].message.startswith("required")
    assert by_path["bureaus.tax.tables[3].rows"].line == 18  # points at the entry's 'table' line
    assert "keep" in by_path["bureaus.tax.tables[1].columns.phone.protect"].message
    assert by_path["bureaus.tax.tables[1].columns.phone.protect"].line == 12
    assert any("not a valid SQL identifier" in i.message and i.line == 13 for i in err.issues)
    assert by_path["bureaus.tax.tables[2].sharing"].line == 15
    quoted = by_path["bureaus.tax.tables[2].rows[0].in[0]"]
    assert quoted.line == 16 and '"440305"' in quoted.message  # YAML read a number: put it in quotes


HEAD = """\
version: 1
bureaus:
  tax:
    title: 税务局
    tables:
      - table: dim_enterprise
        sharing: 无条件
        rows: all
"""


@pytest.mark.parametrize(
    ("tail", "path", "message"),
    [
        (
            "        columns: {entity_id: keep, id_h: {from: legal_rep_id_number, protect: hmac}}\n",
            "bureaus.tax.tables[0].columns.id_h",
            "set 'hmac_key_env' at the top of the file",
        ),
        (
            "        columns: {entity_id: keep}\n      - {table: dim_enterprise, sharing: 无条件, rows: all, columns: {x: keep}}\n",
            "bureaus.tax.tables[1].as",
            "already made by tables[0]",
        ),
        (
            "        columns: {entity_id: {protect: mask, keep_last: 2}}\n",
            "bureaus.tax.tables[0].columns.entity_id.keep_first",
            "required with 'protect: mask'",
        ),
        (
            "        columns: {entity_id: {protect: mask_id, keep_last: 2}}\n",
            "bureaus.tax.tables[0].columns.entity_id.keep_last",
            "goes with 'protect: mask' only",
        ),
        ("        columns: {entity_id: drop}\n", "bureaus.tax.tables[0].columns", "every column is dropped"),
        (
            "        columns: {entity_id: keep}\n        reason: why\n",
            "bureaus.tax.tables[0].reason",
            "不予共享",
        ),
    ],
)
def test_entitlement_rules(tmp_path: Path, tail: str, path: str, message: str):
    err = _error(tmp_path, HEAD + tail)
    assert [(i.path, message in i.message) for i in err.issues] == [(path, True)]
    assert err.issues[0].line is not None


def test_secret_pasted_into_hmac_key_env_is_not_echoed(tmp_path: Path):
    err = _error(
        tmp_path,
        """\
        version: 1
        hmac_key_env: "s3cr3t value!"
        bureaus: {tax: {title: t, tables: [{table: x, sharing: 不予共享}]}}
        """,
    )
    assert "s3cr3t" not in str(err) and "hmac_key_env" in str(err)


def test_entitlement_version_is_per_bureau_and_ignores_formatting(tmp_path: Path):
    a = load(tmp_path, CONFIG, "a.yaml")
    reformatted = CONFIG.replace(
        "rows: {related: entity_id}", "rows:\n          - related: entity_id"
    ).replace("sharing: 有条件", "sharing: conditional")
    b = load(tmp_path, reformatted, "b.yaml")
    assert entitlement_version(a, "tax") == entitlement_version(b, "tax")
    c = load(tmp_path, CONFIG.replace("legal_rep_name: mask_name", "legal_rep_name: keep"), "c.yaml")
    assert entitlement_version(a, "tax") != entitlement_version(c, "tax")
    assert entitlement_version(a, "streets") == entitlement_version(c, "streets")


# ---------------------------------------------------------------------------------------------------------
# protections


def _apply(expr_fn, values):
    return pl.DataFrame({"v": values}).select(expr_fn(pl.col("v"))).to_series().to_list()


def test_masks_follow_the_identifiers_conventions():
    assert _apply(
        mask_id,
        [
            "11010519491231002X",
            "110105195001010039",
            " 11010519491231002x ",
            "１１０１０５１９４９１２３１００２Ｘ",
            "4403",
            "",
            None,
        ],
    ) == [
        "110105********002X",
        "110105********0039",
        "110105********002X",
        "110105********002X",
        "****",
        None,
        None,
    ]
    assert _apply(
        mask_mobile, ["13800138000", "+86 138-0013-8000", "8613800138000", "0755-86001234", "12"]
    ) == ["138****8000", "138****8000", "138****8000", "075*****1234", "**"]
    assert _apply(mask_name, ["张伟", "欧阳娜娜", "张", None]) == ["张*", "欧***", "*", None]


def test_keyed_hash_is_hmac_sha256_of_the_normalized_value():
    for key in (b"k" * 16, b"x" * 100):  # a key longer than the block is hashed first (RFC 2104)
        hasher = KeyedHasher(key)
        got = hmac_hex(pl.Series(["11010519491231002x ", "  ", None, "１２３"]), hasher).to_list()
        assert got[0] == hmac.new(key, b"11010519491231002X", hashlib.sha256).hexdigest()
        assert got[1] is None and got[2] is None
        assert got[3] == hmac.new(key, b"123", hashlib.sha256).hexdigest()
    assert "k" not in repr(KeyedHasher(b"k" * 16)).replace("KeyedHasher", "")


def test_generic_mask_never_returns_the_clear_value():
    rule = ColumnRule(protect="mask", keep_first=3, keep_last=3)
    values = pl.Series(["abcdef", "abcdefg", "ab", "中文名字测试一下"])
    assert protect_series(values, rule).to_list() == ["******", "abc*efg", "**", "中文名**试一下"]


# ---------------------------------------------------------------------------------------------------------
# packages


def test_package_holds_exactly_the_entitlement(tmp_path: Path, marts: Path, config: ExportsConfig):
    result = run(config, "tax", marts, tmp_path / "exports")
    pkg = result.path
    assert pkg == tmp_path / "exports" / "tax" / "2026-11-22" and pkg.is_symlink()
    assert sorted(p.name for p in pkg.iterdir()) == [
        "README.md",
        "manifest.json",
        "manifest.json.sig",
        "public_key.pem",
        "taxpayers.csv",
        "taxpayers.parquet",
    ]
    table = pq.read_table(pkg / "taxpayers.parquet")
    assert table.column_names == [
        "entity_id",
        "name",
        "legal_rep_name",
        "legal_rep_id_number",
        "legal_rep_id_hmac",
        "phone",
    ]
    # only enterprises tax has a record of: E000, E003, ...
    assert sorted(table.column("entity_id").to_pylist()) == [f"E{i:03d}" for i in range(0, 40, 3)]
    src = duckdb.connect(str(marts), read_only=True)
    clear = {
        r[0]: r[1:]
        for r in src.execute(
            "SELECT entity_id, legal_rep_name, legal_rep_id_number, phone FROM dim_enterprise"
        ).fetchall()
    }
    src.close()
    for row in table.to_pylist():
        name, idn, phone = clear[row["entity_id"]]
        assert row["legal_rep_name"] == name[0] + "*" * (len(name) - 1)
        assert row["phone"] == phone[:3] + "****" + phone[-4:]
        if idn is None:
            assert row["legal_rep_id_number"] is None and row["legal_rep_id_hmac"] is None
        else:
            assert row["legal_rep_id_number"] == idn[:6] + "*" * 8 + idn[-4:] != idn
            assert row["legal_rep_id_hmac"] == ref_hmac(idn)
    # the rows are ordered by the exported values, not by anything hidden
    assert table.to_pylist() == sorted(
        table.to_pylist(), key=lambda r: tuple((v is None, v or "") for v in r.values())
    )

    manifest = json.loads((pkg / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["bureau"] == "tax" and manifest["date"] == "2026-11-22"
    assert manifest["entitlement_version"] == entitlement_version(config, "tax")
    assert manifest["lake_versions"] == [  # meta_build, every column
        {"lake_table": "gold/dim_enterprise", "delta_version": 7, "built_at": "2026-11-23T01:00:00+00:00"},
        {
            "lake_table": "silver/int_enterprise_records",
            "delta_version": 12,
            "built_at": "2026-11-23T00:30:00+00:00",
        },
    ]
    [t] = manifest["tables"]
    assert (t["sharing"], t["purpose"], t["agreement"]) == (
        "有条件",
        "纳税人登记核对",
        "深数共享〔2026〕17号",
    )
    assert t["rows"] == table.num_rows == 14 and t["withheld_columns"] == ["address_is_not_here"]
    assert manifest["withheld"] == [{"table": "dim_person", "sharing": "不予共享", "reason": "无法定依据"}]
    assert KEY not in (pkg / "manifest.json").read_text(encoding="utf-8")
    assert "QST_EXPORT_HMAC_KEY" not in (pkg / "manifest.json").read_text(encoding="utf-8")
    readme = (pkg / "README.md").read_text(encoding="utf-8")
    assert "法定代表人身份证号" in readme and "企业黄金记录" in readme  # comments from duckdb_columns()
    assert "| `entity_id` | entity_id |" in readme  # no comment: the column name
    assert "不予共享" in readme and "HMAC-SHA256" in readme
    assert verify_package(pkg).ok


def test_row_filters_prefix_and_in_are_bound_parameters(tmp_path: Path, marts: Path, config: ExportsConfig):
    result = run(config, "streets", marts, tmp_path / "exports")
    ent = pq.read_table(result.path / "dim_enterprise.parquet").to_pylist()
    assert ent and all(r["division_code"].startswith("440305") for r in ent)
    assert len(ent) == 20  # 440305 and 440305001
    assert all(r["uscc"] == "91" + "*" * 15 + "X" for r in ent)
    risk = pq.read_table(result.path / "mart_credit_risk.parquet")
    assert risk.column_names == ["entity_id", "risk_score"]
    assert risk.column("entity_id").to_pylist() == ["E003", "E004"]  # the quote in a value matches nothing
    assert "HMAC" not in (result.path / "README.md").read_text(encoding="utf-8")  # no hashed column here


def test_nested_and_binary_columns_are_text_in_the_csv(tmp_path: Path):
    marts = tmp_path / "m.duckdb"
    con = duckdb.connect(str(marts))
    con.execute(
        "CREATE TABLE mart_x AS SELECT * FROM (VALUES (1, ['samr', '税务'], {'a': 1}, '\\xCA\\xFE'::BLOB),"
        " (2, NULL, NULL, NULL)) t(id, departments, s, b)"
    )
    con.close()
    config = load(
        tmp_path,
        """\
        version: 1
        bureaus:
          samr:
            title: 市场监管局
            tables:
              - {table: mart_x, sharing: 无条件, rows: all, columns: {id: keep, departments: keep, s: keep, b: keep}}
        """,
    )
    pkg = run(config, "samr", marts, tmp_path / "exports").path
    assert read_csv(pkg / "mart_x.csv", "utf-8-sig") == [
        ["id", "departments", "s", "b"],
        ["1", '["samr","税务"]', '{"a":1}', "cafe"],
        ["2", "", "", ""],
    ]
    assert pq.read_table(pkg / "mart_x.parquet").column("departments").to_pylist() == [["samr", "税务"], None]
    assert verify_package(pkg).ok


def test_missing_meta_build_gives_no_lake_versions(tmp_path: Path, config: ExportsConfig):
    marts = make_marts(tmp_path / "m.duckdb", meta_build=False)
    result = run(config, "streets", marts, tmp_path / "exports")
    assert json.loads((result.path / "manifest.json").read_text())["lake_versions"] == []


def test_missing_table_fails_only_that_bureau(tmp_path: Path, config: ExportsConfig):
    marts = make_marts(tmp_path / "m.duckdb", extra_tables=False)
    outcomes = export_all(config, marts=marts, exports_root=tmp_path / "exports", date=DAY, environ=ENV)
    by = {o.bureau: o for o in outcomes}
    assert by["tax"].ok
    assert not by["streets"].ok
    assert "streets" in by["streets"].error and "mart_credit_risk" in by["streets"].error
    assert list_packages(tmp_path / "exports", "streets") == []
    assert not (tmp_path / "exports" / "streets" / ".builds").exists()


def test_missing_column_is_a_clear_error(tmp_path: Path, marts: Path):
    config = load(
        tmp_path,
        CONFIG.replace(
            "entity_id: keep\n          division_code: keep", "entity_id: keep\n          town_code: keep"
        ),
    )
    with pytest.raises(
        ExportError, match=r"bureau streets: tables\[0\] \(dim_enterprise\): column 'town_code'"
    ):
        run(config, "streets", marts, tmp_path / "exports")


def test_missing_secret_names_the_variable(tmp_path: Path, marts: Path, config: ExportsConfig):
    with pytest.raises(ExportError, match="QST_EXPORT_HMAC_KEY") as info:
        run(config, "tax", marts, tmp_path / "exports", env={})
    assert "not set" in str(info.value)
    with pytest.raises(ExportError, match="too short") as info:
        run(config, "tax", marts, tmp_path / "exports", env={"QST_EXPORT_HMAC_KEY": "tiny-secret"})
    assert "tiny-secret" not in str(info.value)
    assert list_packages(tmp_path / "exports", "tax") == []
    audit = (tmp_path / "exports" / "audit.jsonl").read_text(encoding="utf-8")
    assert (
        "tiny-secret" not in audit
        and [r["event"] for r in read_audit(tmp_path / "exports")] == ["failed"] * 2
    )
    # a bureau without hmac columns does not need the secret (the signing key it does)
    assert (
        run(config, "streets", marts, tmp_path / "exports", env={SIGNING_KEY_ENV: EXPORT_SIGNING_KEY}).rows
        > 0
    )


def test_csv_encodings_round_trip_chinese_text(tmp_path: Path, marts: Path, config: ExportsConfig):
    gb = run(config, "tax", marts, tmp_path / "exports").path
    raw = (gb / "taxpayers.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # really GB18030, not UTF-8
    rows = read_csv(gb / "taxpayers.csv", "gb18030")
    table = pq.read_table(gb / "taxpayers.parquet")
    assert rows[0] == table.column_names
    assert rows[1:] == [["" if v is None else v for v in r.values()] for r in table.to_pylist()]
    assert any("深圳市" in r[1] for r in rows[1:])

    utf = load(tmp_path, CONFIG.replace("    csv_encoding: gb18030\n", ""), "utf.yaml")
    bom = run(utf, "tax", marts, tmp_path / "exports2").path
    raw = (bom / "taxpayers.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert read_csv(bom / "taxpayers.csv", "utf-8-sig") == rows
    assert raw.count(b"\r\n") == len(rows)


def test_rerun_is_idempotent_and_replaces_the_package(tmp_path: Path, marts: Path, config: ExportsConfig):
    root = tmp_path / "exports"
    first = run(config, "tax", marts, root)
    before = files_digest(first.path)
    second = run(config, "tax", marts, root)
    assert second.replaced and not first.replaced and second.build != first.build
    after = files_digest(second.path)
    when = ("manifest.json", "manifest.json.sig")  # when it was built, and its signature
    assert {k: v for k, v in after.items() if k not in when} == {
        k: v for k, v in before.items() if k not in when
    }
    m1 = json.loads((first.build / "manifest.json").read_text())
    m2 = json.loads((second.build / "manifest.json").read_text())
    m1.pop("built_at"), m2.pop("built_at")
    assert m1 == m2
    assert list_packages(root, "tax") == ["2026-11-22"]
    # the replaced build stays readable until the bureau's next run, which removes it
    assert first.build.is_dir()
    run(config, "tax", marts, root)
    assert not first.build.exists()
    assert len(list((root / "tax" / ".builds").iterdir())) == 2


def test_parquet_row_groups_do_not_depend_on_batches(tmp_path: Path, config: ExportsConfig, monkeypatch):
    marts = make_marts(tmp_path / "m.duckdb", rows=300)
    monkeypatch.setattr(write_mod, "ROW_GROUP_ROWS", 64)
    monkeypatch.setattr(write_mod, "FETCH_ROWS", 50)
    a = files_digest(run(config, "streets", marts, tmp_path / "a").path)
    monkeypatch.setattr(write_mod, "FETCH_ROWS", 7)
    b = files_digest(run(config, "streets", marts, tmp_path / "b").path)
    assert a.pop("dim_enterprise.parquet") == b.pop("dim_enterprise.parquet")
    meta = pq.ParquetFile(tmp_path / "b" / "streets" / "2026-11-22" / "dim_enterprise.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [64, 64, 22]


def test_retention_keeps_the_last_dates(tmp_path: Path, marts: Path, config: ExportsConfig):
    root = tmp_path / "exports"
    days = [DAY + dt.timedelta(days=i) for i in range(5)]
    results = [run(config, "streets", marts, root, day) for day in days]
    assert list_packages(root, "streets") == [d.isoformat() for d in days[-3:]]  # retention: 3
    assert results[-1].pruned == (days[1].isoformat(),)
    assert not (root / "streets" / days[0].isoformat()).exists()
    live = {p.name for p in (root / "streets" / ".builds").iterdir()}
    assert {r.build.name for r in results[-3:]} <= live and len(live) == 4  # the last pruned goes next run


def test_audit_log_records_every_package(tmp_path: Path, marts: Path, config: ExportsConfig):
    root = tmp_path / "exports"
    run(config, "tax", marts, root)
    run(config, "streets", marts, root)
    with pytest.raises(ExportError):
        run(config, "tax", marts, root, env={})
    run(config, "tax", marts, root)
    records = read_audit(root)
    assert [(r["event"], r["bureau"]) for r in records] == [
        ("published", "tax"),
        ("published", "streets"),
        ("failed", "tax"),
        ("published", "tax"),
    ]
    last = records[-1]
    manifest_bytes = (root / "tax" / "2026-11-22" / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    assert last["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert last["replaced"] is True and last["date"] == "2026-11-22"
    assert last["entitlement_version"] == manifest["entitlement_version"]
    [t] = last["tables"]
    assert t["rows"] == 14 and t["files"] == {
        f["path"]: f["sha256"] for f in manifest["files"] if f.get("table") == "taxpayers"
    }
    assert KEY not in (root / "audit.jsonl").read_text(encoding="utf-8")


def test_expired_agreement_withholds_the_table(tmp_path: Path, marts: Path):
    config = load(
        tmp_path,
        CONFIG.replace(
            "        rows: {related: entity_id}",
            "        valid_until: 2026-11-21\n        rows: {related: entity_id}",
        ),
    )
    result = run(config, "tax", marts, tmp_path / "exports")
    assert result.tables == ()
    assert {w["table"]: w["reason"] for w in result.withheld}[
        "dim_enterprise"
    ] == "agreement expired on 2026-11-21"
    assert verify_package(result.path).ok


def test_export_never_writes_the_marts_file(tmp_path: Path, marts: Path, config: ExportsConfig):
    before = hashlib.sha256(marts.read_bytes()).hexdigest()
    run(config, "tax", marts, tmp_path / "exports")
    assert hashlib.sha256(marts.read_bytes()).hexdigest() == before
    assert not (tmp_path / "marts.duckdb.wal").exists()


# ---------------------------------------------------------------------------------------------------------
# verification


def test_tampering_is_detected_file_by_file(tmp_path: Path, marts: Path, config: ExportsConfig):
    pkg = run(config, "tax", marts, tmp_path / "exports").path
    assert verify_package(pkg).ok
    csv_path = pkg / "taxpayers.csv"
    data = bytearray(csv_path.read_bytes())
    data[-3] ^= 0x01
    csv_path.write_bytes(bytes(data))
    (pkg / "notes.txt").write_text("extra")
    (pkg / "README.md").unlink()
    pq.write_table(pa.table({"entity_id": ["E000"]}), pkg / "taxpayers.parquet")
    report = verify_package(pkg)
    kinds = {(p.kind, p.file) for p in report.problems}
    assert ("sha256", "taxpayers.csv") in kinds
    assert ("extra", "notes.txt") in kinds
    assert ("missing", "README.md") in kinds
    assert {
        ("sha256", "taxpayers.parquet"),
        ("rows", "taxpayers.parquet"),
        ("schema", "taxpayers.parquet"),
    } <= kinds
    assert not report.ok and "taxpayers.parquet: rows: 1 rows, the manifest says 14" in str(report)


def test_csv_rows_and_header_are_checked(tmp_path: Path, marts: Path, config: ExportsConfig):
    pkg = run(config, "tax", marts, tmp_path / "exports").path
    path = pkg / "taxpayers.csv"
    lines = path.read_bytes().split(b"\r\n")
    path.write_bytes(b"\r\n".join([lines[0].replace(b"phone", b"mobile"), *lines[2:]]))
    kinds = {(p.kind, p.file) for p in verify_package(pkg).problems}
    assert {("rows", "taxpayers.csv"), ("schema", "taxpayers.csv"), ("sha256", "taxpayers.csv")} <= kinds


# ---------------------------------------------------------------------------------------------------------
# crashes while publishing


def _published(root: Path, bureau: str = "tax") -> tuple[Path, dict[str, str]]:
    pkg = root / bureau / DAY.isoformat()
    return pkg, files_digest(pkg)


def test_failed_swap_leaves_the_previous_package(
    tmp_path: Path, marts: Path, config: ExportsConfig, monkeypatch
):
    root = tmp_path / "exports"
    run(config, "tax", marts, root)
    pkg, before = _published(root)
    changed = load(tmp_path, CONFIG.replace("legal_rep_name: mask_name", "legal_rep_name: keep"), "c.yaml")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(package_mod.os, "replace", broken_replace)
    with pytest.raises(OSError):
        run(changed, "tax", marts, root)
    monkeypatch.undo()
    assert files_digest(pkg) == before and verify_package(pkg).ok
    assert len(list((root / "tax" / ".builds").iterdir())) == 1  # the failed build was removed
    assert not list((root / "tax").glob(".*.link"))
    assert read_audit(root)[-1]["event"] == "failed"


def test_failure_midway_through_the_files(tmp_path: Path, marts: Path, config: ExportsConfig, monkeypatch):
    root = tmp_path / "exports"
    run(config, "tax", marts, root)
    pkg, before = _published(root)
    real = write_mod._CsvSink.write

    def half(self, batch):
        real(self, batch.slice(0, batch.num_rows // 2))
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(write_mod._CsvSink, "write", half)
    with pytest.raises(OSError):
        run(config, "tax", marts, root)
    assert files_digest(pkg) == before and verify_package(pkg).ok


KILLER = """\
import datetime as dt, os, signal, sys
from models.exports import load_entitlements, export_bureau
from models.exports import package, write as writer
point = sys.argv[4]
if point == "swap":
    package.os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
else:
    real = writer._ParquetSink.write
    def write(self, batch):
        real(self, batch)
        os.kill(os.getpid(), signal.SIGKILL)
    writer._ParquetSink.write = write
export_bureau(load_entitlements(sys.argv[1]), "tax", marts=sys.argv[2], exports_root=sys.argv[3],
              date=dt.date(2026, 11, 22), environ={"QST_EXPORT_HMAC_KEY": "k3y-for-tests-only-0123456789abcdef",
                                                   "QST_EXPORT_SIGNING_KEY": sys.argv[5]})
"""


@pytest.mark.parametrize("point", ["writing", "swap"])
def test_killed_process_leaves_the_previous_package(
    tmp_path: Path, marts: Path, config: ExportsConfig, point: str
):
    root = tmp_path / "exports"
    run(config, "tax", marts, root)
    pkg, before = _published(root)
    changed = tmp_path / "changed.yaml"
    changed.write_text(CONFIG.replace("legal_rep_name: mask_name", "legal_rep_name: keep"), encoding="utf-8")
    script = tmp_path / "killer.py"
    script.write_text(KILLER, encoding="utf-8")
    previous = Path(os.path.realpath(pkg)).name
    proc = subprocess.run(
        [sys.executable, str(script), str(changed), str(marts), str(root), point, EXPORT_SIGNING_KEY],
        check=False,
        cwd=REPO,
        capture_output=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert files_digest(pkg) == before and verify_package(pkg).ok
    assert len(list((root / "tax" / ".builds").iterdir())) == 2  # the orphan, until the next run
    result = run(config, "tax", marts, root)
    assert verify_package(result.path).ok
    # the orphan is gone; the replaced build waits for the next run
    assert {p.name for p in (root / "tax" / ".builds").iterdir()} == {previous, result.build.name}
    assert not any(p.name.endswith(".link") for p in (root / "tax").iterdir())


def test_readers_see_a_whole_package_while_it_is_replaced(tmp_path: Path, marts: Path, config: ExportsConfig):
    root = tmp_path / "exports"
    run(config, "tax", marts, root)
    pkg = root / "tax" / DAY.isoformat()
    changed = load(tmp_path, CONFIG.replace("legal_rep_name: mask_name", "legal_rep_name: keep"), "c.yaml")
    reports: list[bool] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            reports.append(verify_package(pkg).ok)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        run(changed, "tax", marts, root)
    finally:
        stop.set()
        thread.join()
    assert reports and all(reports)
    assert pq.read_table(pkg / "taxpayers.parquet").column("legal_rep_name").to_pylist()[0][-1] != "*"


# ---------------------------------------------------------------------------------------------------------
# commands


def test_export_and_verify_commands(tmp_path: Path, config: ExportsConfig, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    make_marts(home / "marts.duckdb")
    monkeypatch.setenv("QST_EXPORT_HMAC_KEY", KEY)
    runner = CliRunner()
    result = runner.invoke(
        export_cmd, ["--home", str(home), "--date", "2026-11-22", "--config", str(tmp_path / "exports.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "tax" in result.output and "14 rows" in result.output and "files" in result.output
    assert "2 bureau(s) exported, 0 failed" in result.output
    assert KEY not in result.output
    pkg = home / "exports" / "tax" / "2026-11-22"
    ok = runner.invoke(verify_cmd, [str(pkg)])
    assert ok.exit_code == 0 and "OK" in ok.output
    (pkg / "taxpayers.csv").write_bytes(b"tampered")
    bad = runner.invoke(verify_cmd, [str(pkg)])
    assert (
        bad.exit_code == 1 and "taxpayers.csv: sha256" in bad.output and "taxpayers.csv: rows" in bad.output
    )
    # one bureau failing: exit 1, the other still exported
    monkeypatch.delenv("QST_EXPORT_HMAC_KEY")
    partial = runner.invoke(
        export_cmd,
        [
            "--home",
            str(home),
            "--date",
            "2026-11-23",
            "--bureau",
            "tax",
            "--bureau",
            "streets",
            "--config",
            str(tmp_path / "exports.yaml"),
        ],
    )
    assert partial.exit_code == 1
    assert "FAILED" in partial.output and "QST_EXPORT_HMAC_KEY" in partial.output
    assert list_packages(home / "exports", "streets") == ["2026-11-22", "2026-11-23"]
    unknown = runner.invoke(
        export_cmd, ["--home", str(home), "--bureau", "nobody", "--config", str(tmp_path / "exports.yaml")]
    )
    assert unknown.exit_code == 2 and "nobody" in unknown.output


def test_export_command_reports_config_errors(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nbureaus:\n  tax:\n    title: t\n    tables: []\n", encoding="utf-8")
    result = CliRunner().invoke(export_cmd, ["--home", str(tmp_path), "--config", str(bad)])
    assert result.exit_code == 2 and f"{bad}:5:" in result.output and "bureaus.tax.tables" in result.output
