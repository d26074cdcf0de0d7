"""The sources.yaml format: loading, validation rules, error positions, secrets."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from connectors.config import load_sources, schema_json, sources_from_dict, sources_from_yaml
from connectors.config_schema import SourcesConfig, redact_url
from connectors.config_values import ColumnType, parse_column_type, parse_lookback
from lake.yamlfile import ConfigError

VALID = """\
version: 1
defaults:
  source_timezone: Asia/Shanghai
  lookback: 3d
  batch_rows: 50000
  max_concurrent_reads: 2
departments:
  samr:
    title: 市场监管局 market regulation (SAMR)
    connection:
      sqlite: estate/samr.sqlite
    max_concurrent_reads: 1
    tables:
      - name: T_SCZT_DJXX
        schema: null
        asset: registrations
        primary_key: [ZTID]
        mode: incremental
        cursor: GXSJ
        cursor_kind: timestamp
        key_snapshot_every_days: 7
        columns:
          ZCZB: {rename: registered_capital_text, type: "decimal(18,4)"}
          DWMC: {repair: gbk_in_latin1}
          统一社会信用代码: {rename: uscc}
      - name: T_JYYC_ML
        primary_key: [TYSHXYDM, LRRQ]
        mode: snapshot
    files:
      - name: street_rosters
        folder: drops/streets
        pattern: "*.csv"
        format: csv
        encoding: auto
        header_rows: 2
        sheet: null
  tax:
    title: 税务局
    connection:
      url_env: QST_TAX_URL
    source_timezone: UTC
    tables:
      - name: DJ_NSRXX
        schema: TAX
        primary_key: [NSRSBH]
        mode: incremental
        cursor: XH
        cursor_kind: id
        batch_rows: 1000
      - name: SB_ZSXX
        asset: filings
        primary_key: [NSRSBH, SSQ, ZSXM]
        mode: incremental
        cursor: GXSJ
        lookback: 12h
"""


def write(tmp_path: Path, text: str, name: str = "sources.yaml") -> Path:
    folder = tmp_path / "conf"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def position(text: str, needle: str, occurrence: int = 1) -> str:
    """'line:col' (1-based) where the occurrence-th ``needle`` starts in ``text``."""
    start = -1
    for _ in range(occurrence):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    return f"{line}:{col}"


def replaced(old: str, new: str, text: str = VALID) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def config_error(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_sources(path)
    return path, str(info.value)


# ---------------------------------------------------------------------------------------------
# a valid file


def test_valid_example_loads_with_resolved_paths_and_defaults(tmp_path):
    path = write(tmp_path, VALID)
    cfg = load_sources(path)
    assert isinstance(cfg, SourcesConfig)
    conf_dir = (tmp_path / "conf").resolve()

    samr = cfg.department("samr")
    assert samr.key == "samr"
    assert samr.connection.kind == "sqlite"
    assert samr.connection.sqlite == conf_dir / "estate" / "samr.sqlite"
    assert samr.connection.sqlite.is_absolute()
    assert samr.resolve_url() == f"sqlite:///{conf_dir / 'estate' / 'samr.sqlite'}"
    assert samr.files[0].folder == conf_dir / "drops" / "streets"
    assert samr.effective_max_concurrent_reads(cfg.defaults) == 1
    assert str(samr.effective_timezone(cfg.defaults)) == "Asia/Shanghai"

    reg = cfg.table("samr", "registrations")
    assert reg.name == "T_SCZT_DJXX" and reg.source_schema is None
    assert reg.primary_key == ["ZTID"]
    assert reg.key_snapshot_every_days == 7
    assert reg.columns["ZCZB"].parsed_type == ColumnType("decimal", 18, 4)
    assert reg.columns["DWMC"].repair == "gbk_in_latin1"
    assert reg.output_name("统一社会信用代码") == "uscc"
    assert reg.output_name("QYMC") == "QYMC"
    assert reg.effective_lookback(cfg.defaults) == timedelta(days=3)
    assert reg.effective_batch_rows(cfg.defaults) == 50000

    # asset defaults to the lowercased table name; snapshot tables have no cursor or lookback
    abnormal = cfg.table("samr", "t_jyyc_ml")
    assert abnormal.mode == "snapshot" and abnormal.cursor is None and abnormal.cursor_kind is None
    assert abnormal.effective_lookback(cfg.defaults) is None
    assert abnormal.key_snapshot_every_days is None

    tax = cfg.department("tax")
    assert tax.connection.kind == "url_env" and tax.connection.url_env == "QST_TAX_URL"
    assert str(tax.effective_timezone(cfg.defaults)) == "UTC"
    assert tax.effective_max_concurrent_reads(cfg.defaults) == 2
    taxpayers = cfg.table("tax", "dj_nsrxx")
    assert taxpayers.cursor_kind == "id"
    assert taxpayers.effective_lookback(cfg.defaults) is None
    assert taxpayers.effective_batch_rows(cfg.defaults) == 1000
    assert taxpayers.key_snapshot_every_days == 1  # default for incremental tables
    assert taxpayers.qualified_source("postgresql") == '"TAX"."DJ_NSRXX"'
    assert taxpayers.qualified_source("mysql") == "`TAX`.`DJ_NSRXX`"
    filings = cfg.table("tax", "filings")
    assert filings.cursor_kind == "timestamp"  # default
    assert filings.effective_lookback(cfg.defaults) == timedelta(hours=12)

    assert [(d.key, t.asset) for d, t in cfg.iter_tables()] == [
        ("samr", "registrations"),
        ("samr", "t_jyyc_ml"),
        ("tax", "dj_nsrxx"),
        ("tax", "filings"),
    ]
    assert [(d.key, f.name) for d, f in cfg.iter_files()] == [("samr", "street_rosters")]


def test_paths_are_relative_to_the_yaml_folder_not_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path, VALID)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_sources(Path("..") / "conf" / "sources.yaml")
    expected = (tmp_path / "conf" / "estate" / "samr.sqlite").resolve()
    assert cfg.department("samr").connection.sqlite == expected


def test_absolute_sqlite_path_is_kept(tmp_path):
    db = (tmp_path / "abs.sqlite").resolve()
    cfg = load_sources(write(tmp_path, replaced("sqlite: estate/samr.sqlite", f"sqlite: {db}")))
    assert cfg.department("samr").resolve_url() == f"sqlite:///{db}"


def test_round_trip_through_dict_and_yaml(tmp_path):
    cfg = load_sources(write(tmp_path, VALID))
    data = cfg.to_dict()
    json.dumps(data)  # JSON-compatible
    again = sources_from_dict(data, base_dir=tmp_path / "somewhere" / "else")
    assert again.to_dict() == data

    other = tmp_path / "other"
    other.mkdir()
    dumped = other / "sources.yaml"
    dumped.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    reloaded = load_sources(dumped)
    assert reloaded.to_dict() == data
    # absolute paths stay where they were
    assert reloaded.department("samr").connection.sqlite == cfg.department("samr").connection.sqlite


def test_lookup_of_unknown_table_or_department_raises_key_error(tmp_path):
    cfg = load_sources(write(tmp_path, VALID))
    with pytest.raises(KeyError, match="registrations"):
        cfg.table("samr", "nope")
    with pytest.raises(KeyError, match="samr"):
        cfg.table("courts", "cases")


def test_null_sections_mean_empty(tmp_path):
    text = """\
version: 1
defaults:
departments:
  samr:
    connection: {sqlite: a.sqlite}
    files:
    tables:
      - {name: T_A, primary_key: [ID], mode: snapshot, columns: }
"""
    cfg = load_sources(write(tmp_path, text))
    assert cfg.defaults.lookback == "3d" and cfg.defaults.batch_rows == 100000
    assert cfg.department("samr").files == []
    assert cfg.table("samr", "t_a").columns == {}


def test_yaml_anchors_and_merge_keys_work(tmp_path):
    text = """\
version: 1
departments:
  samr:
    connection: {sqlite: a.sqlite}
    tables:
      - &base
        name: T_A
        primary_key: [ID]
        mode: incremental
        cursor: GXSJ
      - <<: *base
        name: T_B
        cursor: UPDATED
"""
    cfg = load_sources(write(tmp_path, text))
    assert cfg.table("samr", "t_b").cursor == "UPDATED"
    assert cfg.table("samr", "t_b").primary_key == ["ID"]


def test_schema_json_describes_the_format():
    schema = json.loads(schema_json())
    assert set(schema["required"]) == {"version", "departments"}
    table = schema["$defs"]["TableConfig"]
    assert "schema" in table["properties"]  # the YAML key, not the Python attribute
    assert set(table["properties"]["mode"]["enum"]) == {"incremental", "snapshot"}
    assert schema["$defs"]["ConnectionConfig"]["additionalProperties"] is False


def test_parse_helpers():
    assert parse_lookback("3d") == timedelta(days=3)
    assert parse_lookback("36h") == timedelta(hours=36)
    assert parse_column_type("DECIMAL( 10 , 2 )") == ColumnType("decimal", 10, 2)
    assert str(parse_column_type("decimal(38,0)")) == "decimal(38,0)"
    for bad in ["3", "3 d", "d3", "-1d", "3w", ""]:
        with pytest.raises(ValueError):
            parse_lookback(bad)
    for bad in ["decimal(0,0)", "decimal(39,1)", "decimal(5,6)", "varchar", "int", "decimal(5)"]:
        with pytest.raises(ValueError):
            parse_column_type(bad)


# ---------------------------------------------------------------------------------------------
# every rule, reported with file:line:col and the key path


RULES = [
    pytest.param(
        "        cursor: GXSJ\n        cursor_kind: timestamp\n",
        "",
        "mode: incremental\n        key_snapshot",
        "departments.samr.tables[0].cursor",
        "required when mode is 'incremental'",
        id="incremental-needs-cursor",
    ),
    pytest.param(
        "        primary_key: [TYSHXYDM, LRRQ]\n        mode: snapshot\n",
        "        primary_key: [TYSHXYDM, LRRQ]\n        mode: snapshot\n        cursor: GXSJ\n",
        "cursor: GXSJ\n    files",
        "departments.samr.tables[1].cursor",
        "not allowed when mode is 'snapshot'",
        id="snapshot-forbids-cursor",
    ),
    pytest.param(
        "        mode: snapshot\n",
        "        mode: snapshot\n        key_snapshot_every_days: 3\n",
        "key_snapshot_every_days: 3",
        "departments.samr.tables[1].key_snapshot_every_days",
        "not allowed when mode is 'snapshot'",
        id="snapshot-forbids-key-snapshots",
    ),
    pytest.param(
        "mode: snapshot",
        "mode: full",
        "mode: full",
        "departments.samr.tables[1].mode",
        "'incremental' or 'snapshot'",
        id="mode-value",
    ),
    pytest.param(
        "        cursor: XH\n        cursor_kind: id\n",
        "        cursor: XH\n        cursor_kind: id\n        lookback: 2d\n",
        "lookback: 2d",
        "departments.tax.tables[0].lookback",
        "only applies to timestamp cursors",
        id="lookback-with-id-cursor",
    ),
    pytest.param(
        "cursor_kind: id",
        "cursor_kind: rowid",
        "cursor_kind: rowid",
        "departments.tax.tables[0].cursor_kind",
        "'timestamp' or 'id'",
        id="cursor-kind-value",
    ),
    pytest.param(
        '"decimal(18,4)"',
        '"decimal(39,2)"',
        'type: "decimal(39,2)"',
        "departments.samr.tables[0].columns.ZCZB.type",
        "precision must be between 1 and 38",
        id="decimal-precision",
    ),
    pytest.param(
        '"decimal(18,4)"',
        '"decimal(4,5)"',
        'type: "decimal(4,5)"',
        "departments.samr.tables[0].columns.ZCZB.type",
        "scale must be between 0 and the precision",
        id="decimal-scale",
    ),
    pytest.param(
        '"decimal(18,4)"',
        "varchar2",
        "type: varchar2",
        "departments.samr.tables[0].columns.ZCZB.type",
        "'varchar2' is not one of",
        id="unknown-type",
    ),
    pytest.param(
        "repair: gbk_in_latin1",
        "repair: utf8",
        "repair: utf8",
        "departments.samr.tables[0].columns.DWMC.repair",
        "'gbk_in_latin1'",
        id="repair-value",
    ),
    pytest.param(
        "DWMC: {repair: gbk_in_latin1}",
        "DWMC: {}",
        "DWMC: {}",
        "departments.samr.tables[0].columns.DWMC",
        "at least one of 'rename', 'type' or 'repair'",
        id="empty-column-settings",
    ),
    pytest.param(
        "rename: uscc",
        "rename: uscc-code",
        "rename: uscc-code",
        "departments.samr.tables[0].columns.统一社会信用代码.rename",
        "rename target 'uscc-code' is not a valid SQL identifier",
        id="rename-target",
    ),
    pytest.param(
        "rename: uscc",
        "rename: ztid",
        "rename: ztid",
        "departments.samr.tables[0].columns.统一社会信用代码.rename",
        "output column 'ztid' would be produced by both 'ZTID' and '统一社会信用代码'",
        id="rename-collision-case-insensitive",
    ),
    pytest.param(
        "asset: filings",
        "asset: dj_nsrxx",
        "asset: dj_nsrxx",
        "departments.tax.tables[1].asset",
        "asset name 'dj_nsrxx' is already used by tables[0]",
        id="duplicate-asset",
    ),
    pytest.param(
        "asset: registrations",
        "asset: street_rosters",
        "name: street_rosters",
        "departments.samr.files[0].name",
        "asset name 'street_rosters' is already used by tables[0]",
        id="file-drop-name-clashes-with-table-asset",
    ),
    pytest.param(
        "asset: registrations",
        "asset: Registrations",
        "asset: Registrations",
        "departments.samr.tables[0].asset",
        "must be snake_case",
        id="asset-not-snake-case",
    ),
    pytest.param(
        "  tax:\n",
        "  Tax-Bureau:\n",
        "Tax-Bureau:",
        'departments["Tax-Bureau"]',
        "department key 'Tax-Bureau' must be snake_case",
        id="department-key",
    ),
    pytest.param(
        "primary_key: [ZTID]",
        "primary_key: []",
        "primary_key: []",
        "departments.samr.tables[0].primary_key",
        "must not be empty",
        id="empty-primary-key",
    ),
    pytest.param(
        "primary_key: [ZTID]",
        "primary_key: [ZTID, ZTID]",
        "ZTID]",  # the second one
        "departments.samr.tables[0].primary_key[1]",
        "column 'ZTID' is listed twice",
        id="repeated-primary-key-column",
    ),
    pytest.param(
        "primary_key: [ZTID]",
        "primary_key: ZTID",
        "primary_key: ZTID",
        "departments.samr.tables[0].primary_key",
        "must be a list",
        id="primary-key-not-a-list",
    ),
    pytest.param(
        "        primary_key: [ZTID]\n",
        "",
        "name: T_SCZT_DJXX",
        "departments.samr.tables[0].primary_key",
        "required key is missing",
        id="missing-primary-key",
    ),
    pytest.param(
        "primary_key: [ZTID]",
        "primary_key: [NO]",
        "NO]",
        "departments.samr.tables[0].primary_key[0]",
        'YAML read NO as a boolean; put it in quotes: "NO"',
        id="yaml-boolean-name",
    ),
    pytest.param(
        "primary_key: [NSRSBH]",
        "primary_kye: [NSRSBH]",
        "primary_kye:",
        "departments.tax.tables[0].primary_kye",
        "unknown key 'primary_kye' (did you mean 'primary_key'?)",
        id="typo-key",
    ),
    pytest.param(
        "source_timezone: UTC",
        "source_timezone: Mars/Olympus",
        "source_timezone: Mars",
        "departments.tax.source_timezone",
        "unknown time zone 'Mars/Olympus'",
        id="department-timezone",
    ),
    pytest.param(
        "source_timezone: Asia/Shanghai",
        "source_timezone: Beijing",
        "source_timezone: Beijing",
        "defaults.source_timezone",
        "unknown time zone 'Beijing'",
        id="default-timezone",
    ),
    pytest.param(
        "lookback: 3d",
        "lookback: 3 days",
        "lookback: 3 days",
        "defaults.lookback",
        "'<int>d' (days) or '<int>h' (hours)",
        id="lookback-format",
    ),
    pytest.param(
        "batch_rows: 50000",
        "batch_rows: 0",
        "batch_rows: 0",
        "defaults.batch_rows",
        "greater than or equal to 1",
        id="batch-rows-positive",
    ),
    pytest.param(
        "max_concurrent_reads: 1",
        "max_concurrent_reads: 0",
        "max_concurrent_reads: 0",
        "departments.samr.max_concurrent_reads",
        "greater than or equal to 1",
        id="department-concurrency",
    ),
    pytest.param(
        "key_snapshot_every_days: 7",
        "key_snapshot_every_days: 0",
        "key_snapshot_every_days: 0",
        "departments.samr.tables[0].key_snapshot_every_days",
        "greater than or equal to 1",
        id="key-snapshot-days",
    ),
    pytest.param(
        "batch_rows: 1000",
        'batch_rows: "1000"',
        'batch_rows: "1000"',
        "departments.tax.tables[0].batch_rows",
        "must be a whole number",
        id="quoted-number",
    ),
    pytest.param(
        "version: 1",
        "version: 2",
        "version: 2",
        "version",
        "unsupported version",
        id="version",
    ),
    pytest.param(
        "      sqlite: estate/samr.sqlite\n",
        "      sqlite: estate/samr.sqlite\n      url_env: QST_SAMR_URL\n",
        "connection:\n      sqlite",
        "departments.samr.connection",
        "exactly one of 'sqlite'",
        id="both-connections",
    ),
    pytest.param(
        "    connection:\n      url_env: QST_TAX_URL\n",
        "    connection: {}\n",
        "connection: {}",
        "departments.tax.connection",
        "exactly one of 'sqlite'",
        id="no-connection",
    ),
    pytest.param(
        "name: street_rosters",
        "name: Street-Rosters",
        "name: Street-Rosters",
        "departments.samr.files[0].name",
        "file drop name 'Street-Rosters' must be snake_case",
        id="file-drop-name",
    ),
    pytest.param(
        "format: csv",
        "format: xls",
        "format: xls",
        "departments.samr.files[0].format",
        "'csv' or 'excel'",
        id="file-format",
    ),
    pytest.param(
        "encoding: auto",
        "encoding: big5",
        "encoding: big5",
        "departments.samr.files[0].encoding",
        "'auto', 'gbk', 'gb18030' or 'utf-8'",
        id="file-encoding",
    ),
    pytest.param(
        "header_rows: 2",
        "header_rows: -1",
        "header_rows: -1",
        "departments.samr.files[0].header_rows",
        "greater than or equal to 0",
        id="header-rows",
    ),
    pytest.param(
        "sheet: null",
        "sheet: 花名册",
        "sheet: 花名册",
        "departments.samr.files[0].sheet",
        "applies to excel files only",
        id="sheet-with-csv",
    ),
    pytest.param(
        'pattern: "*.csv"',
        'pattern: "../secret/*.csv"',
        "pattern:",
        "departments.samr.files[0].pattern",
        "must stay inside the folder",
        id="pattern-escapes-folder",
    ),
]


@pytest.mark.parametrize(("old", "new", "at", "key_path", "message"), RULES)
def test_rule_violation_reports_file_line_and_key_path(tmp_path, old, new, at, key_path, message):
    text = replaced(old, new)
    path = write(tmp_path, text)
    try:
        load_sources(path)
    except ConfigError as exc:
        error = str(exc)
    else:
        raise AssertionError("no ConfigError")
    expected = f"{path}:{position(text, at)}: {key_path}: "
    assert expected in error, error
    assert message in error, error
    assert len(error.splitlines()) == 1, error  # exactly one problem


def test_optional_keys_can_be_omitted(tmp_path):
    text = """\
version: 1
departments:
  courts:
    connection: {url_env: QST_COURTS_URL}
    tables:
      - {name: AJ_DSR, primary_key: [AH, DSRMC], mode: snapshot}
"""
    cfg = load_sources(write(tmp_path, text))
    courts = cfg.department("courts")
    assert courts.title is None and courts.files == [] and courts.source_timezone is None
    assert cfg.defaults.source_timezone == "Asia/Shanghai" and cfg.defaults.max_concurrent_reads == 2
    assert cfg.table("courts", "aj_dsr").columns == {}


def test_unquoted_decimal_in_a_flow_mapping_gets_a_hint(tmp_path):
    text = replaced('"decimal(18,4)"', "decimal(18,4)")
    path, error = config_error(tmp_path, text)
    at = position(text, "type: decimal(18,4)")
    assert f"{path}:{at}: departments.samr.tables[0].columns.ZCZB.type: " in error
    assert 'quote it: type: "decimal(18,4)"' in error


def test_hostile_identifiers_are_errors_naming_the_key(tmp_path):
    text = replaced("name: SB_ZSXX", 'name: "x; DROP TABLE y"')
    text = replaced("schema: TAX", 'schema: "TAX\\"; --"', text)
    text = replaced("DWMC: {repair", '"DWMC`; DROP": {repair', text)
    text = replaced("cursor: XH", "cursor: X H", text)
    path, error = config_error(tmp_path, text)
    at_name = position(text, 'name: "x; DROP')
    at_schema = position(text, 'schema: "TAX')
    at_column = position(text, '"DWMC`')
    at_cursor = position(text, "cursor: X H")
    assert f"{path}:{at_name}: departments.tax.tables[1].name: " in error
    assert "table name 'x; DROP TABLE y' is not a valid SQL identifier" in error
    assert f"{path}:{at_schema}: departments.tax.tables[0].schema: " in error
    assert "schema name 'TAX\"; --'" in error
    assert f'{path}:{at_column}: departments.samr.tables[0].columns["DWMC`; DROP"]: column name' in error
    assert f"{path}:{at_cursor}: departments.tax.tables[0].cursor: column name 'X H'" in error
    assert error.startswith(f"4 problems in {path}:")


def test_all_problems_are_reported_in_file_order(tmp_path):
    text = replaced("mode: snapshot", "mode: sometimes")
    text = replaced("lookback: 12h", "lookback: 12x", text)
    text = replaced("max_concurrent_reads: 2", "max_concurrent_reads: many", text)
    path, error = config_error(tmp_path, text)
    lines = error.splitlines()
    assert lines[0] == f"3 problems in {path}:"
    assert f"{path}:{position(text, 'max_concurrent_reads: many')}: defaults.max_concurrent_reads" in lines[1]
    assert f"{path}:{position(text, 'mode: sometimes')}: departments.samr.tables[1].mode" in lines[2]
    assert f"{path}:{position(text, 'lookback: 12x')}: departments.tax.tables[1].lookback" in lines[3]


def test_config_error_exposes_structured_issues(tmp_path):
    text = replaced("mode: snapshot", "mode: sometimes")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_sources(path)
    [issue] = info.value.issues
    assert issue.origin == str(path)
    assert f"{issue.line}:{issue.column}" == position(text, "mode: sometimes")
    assert issue.path == "departments.samr.tables[1].mode"


def test_chinese_table_name_needs_an_explicit_asset(tmp_path):
    text = replaced("name: SB_ZSXX\n        asset: filings", "name: 申报信息")
    path, error = config_error(tmp_path, text)
    assert f"{path}:{position(text, 'name: 申报信息')}: departments.tax.tables[1].asset: " in error
    assert "set 'asset' explicitly" in error
    ok = replaced("name: SB_ZSXX", "name: 申报信息")
    assert load_sources(write(tmp_path, ok)).table("tax", "filings").name == "申报信息"


def test_a_department_needs_a_table_or_a_file(tmp_path):
    text = """\
version: 1
departments:
  courts:
    connection: {url_env: QST_COURTS_URL}
    tables: []
"""
    path, error = config_error(tmp_path, text)
    assert f"{path}:3:3: departments.courts: has no tables and no files" in error


def test_no_departments_is_an_error(tmp_path):
    path, error = config_error(tmp_path, "version: 1\ndepartments: {}\n")
    assert f"{path}:2:1: departments: must not be empty" in error


# ---------------------------------------------------------------------------------------------
# YAML-level problems


def test_duplicate_department_keys_are_rejected(tmp_path):
    text = VALID + "  samr:\n    connection: {sqlite: other.sqlite}\n    tables: []\n"
    path, error = config_error(tmp_path, text)
    second = position(text, "samr:\n    connection: {sqlite: other")
    first_line = position(text, "samr:\n    title").split(":")[0]
    assert second.endswith(":3")
    assert (
        f"{path}:{second}: departments.samr: duplicate key 'samr' (first defined on line {first_line})"
        in error
    )


def test_duplicate_keys_inside_a_table_are_rejected(tmp_path):
    text = replaced(
        "        cursor: GXSJ\n        lookback: 12h",
        "        cursor: GXSJ\n        cursor: XH\n        lookback: 12h",
    )
    path, error = config_error(tmp_path, text)
    assert (
        f"{path}:{position(text, 'cursor: XH', 2)}: departments.tax.tables[1].cursor: duplicate key" in error
    )


def test_strict_loader_rejects_duplicates_on_its_own():
    from lake.yamlfile import StrictSafeLoader

    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'a'"):
        yaml.load("a: 1\nb: 2\na: 3\n", Loader=StrictSafeLoader)
    assert yaml.load("a: 1\nb: 2\n", Loader=StrictSafeLoader) == {"a": 1, "b": 2}


def test_yaml_syntax_error_has_a_position(tmp_path):
    text = "version: 1\ndepartments:\n  samr: [unclosed\n"
    path, error = config_error(tmp_path, text)
    assert error.startswith(f"{path}:")
    assert "invalid YAML" in error


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "the file is empty"), ("- a\n- b\n", "must be a mapping"), ("just text\n", "must be a mapping")],
)
def test_empty_or_non_mapping_file(tmp_path, text, message):
    path, error = config_error(tmp_path, text)
    assert str(path) in error and message in error


def test_non_utf8_file_is_a_clear_error(tmp_path):
    path = tmp_path / "gbk.yaml"
    path.write_bytes("version: 1\ndepartments:\n  samr:\n    title: 市场监管局\n".encode("gbk"))
    with pytest.raises(ConfigError, match="not valid UTF-8") as info:
        load_sources(path)
    assert f"{path}:4" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_sources(tmp_path / "nope.yaml")


def test_errors_from_a_dict_name_the_origin_and_path():
    data = {
        "version": 1,
        "departments": {
            "samr": {"connection": {"sqlite": "a.sqlite"}, "tables": [{"name": "T", "mode": "x"}]}
        },
    }
    with pytest.raises(ConfigError) as info:
        sources_from_dict(data, base_dir=Path("/base"), origin="inline")
    error = str(info.value)
    assert "inline: departments.samr.tables[0].primary_key: required key is missing" in error
    assert "inline: departments.samr.tables[0].mode: must be 'incremental' or 'snapshot' (got 'x')" in error


def test_sources_from_yaml_uses_base_dir(tmp_path):
    cfg = sources_from_yaml(VALID, base_dir=tmp_path, origin="mem")
    assert cfg.department("samr").connection.sqlite == (tmp_path / "estate" / "samr.sqlite").resolve()
    assert cfg.origin == "mem"


# ---------------------------------------------------------------------------------------------
# secrets

SECRET = "s3cr3t-Pa55"
SECRET_URL = f"postgresql+psycopg://qst:{SECRET}@db.tax.gov:5432/tax"


def test_url_env_is_read_from_the_environment(tmp_path, monkeypatch):
    cfg = load_sources(write(tmp_path, VALID))
    tax = cfg.department("tax")
    assert tax.resolve_url({"QST_TAX_URL": SECRET_URL}) == SECRET_URL
    monkeypatch.setenv("QST_TAX_URL", SECRET_URL)
    assert tax.resolve_url() == SECRET_URL
    assert SECRET not in tax.describe_connection()


def test_missing_env_var_names_department_and_variable_without_secrets(tmp_path, monkeypatch):
    text = VALID
    path = write(tmp_path, text)
    cfg = load_sources(path)
    monkeypatch.delenv("QST_TAX_URL", raising=False)
    monkeypatch.setenv("QST_SAMR_URL", SECRET_URL)  # a secret elsewhere in the environment
    with pytest.raises(ConfigError) as info:
        cfg.department("tax").resolve_url()
    error = str(info.value)
    assert "'QST_TAX_URL' is not set" in error
    assert "department 'tax'" in error
    assert f"{path}:{position(text, 'url_env: QST_TAX_URL')}: departments.tax.connection.url_env" in error
    assert SECRET not in error and "postgresql" not in error

    with pytest.raises(ConfigError, match="is empty"):
        cfg.department("tax").resolve_url({"QST_TAX_URL": "  "})


def test_unparseable_url_in_env_is_not_echoed(tmp_path):
    cfg = load_sources(write(tmp_path, VALID))
    with pytest.raises(ConfigError) as info:
        cfg.department("tax").resolve_url({"QST_TAX_URL": f"not a url {SECRET}"})
    assert "does not hold a valid SQLAlchemy URL" in str(info.value)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_url_written_in_the_file_is_rejected_without_echoing_it(tmp_path):
    text = replaced("url_env: QST_TAX_URL", f"url_env: {SECRET_URL}")
    text = replaced(
        "      sqlite: estate/samr.sqlite", f"      url: {SECRET_URL}\n      sqlite: {SECRET_URL}", text
    )
    path, error = config_error(tmp_path, text)
    assert SECRET not in error
    assert (
        f"{path}:{position(text, 'url: postgresql')}: departments.samr.connection.url: unknown key 'url'"
        in error
    )
    assert "departments.samr.connection.sqlite: sqlite must be a file path, not a URL" in error
    assert f"{path}:{position(text, 'url_env: postgresql')}: departments.tax.connection.url_env: " in error
    assert "NAME of an environment variable" in error


def test_sqlite_must_exist_when_asked(tmp_path):
    cfg = load_sources(write(tmp_path, VALID))
    samr = cfg.department("samr")
    with pytest.raises(ConfigError, match="does not exist"):
        samr.resolve_url(must_exist=True)
    db = tmp_path / "conf" / "estate" / "samr.sqlite"
    db.parent.mkdir()
    db.touch()
    assert samr.resolve_url(must_exist=True).endswith("/conf/estate/samr.sqlite")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SECRET_URL, "postgresql+psycopg://qst:***@db.tax.gov:5432/tax"),
        ("mysql+pymysql://u:p%40ss@h/db?charset=utf8mb4", "mysql+pymysql://u:***@h/db?charset=utf8mb4"),
        (
            "oracle+oracledb://u@h/?service_name=X&password=zzz",
            "oracle+oracledb://u@h/?password=***&service_name=X",
        ),
        ("sqlite:////data/samr.sqlite", "sqlite:////data/samr.sqlite"),
    ],
)
def test_redact_url_hides_passwords(url, shown):
    redacted = redact_url(url)
    assert redacted == shown
    assert SECRET not in redacted and "p%40ss" not in redacted and "zzz" not in redacted


def test_redact_url_never_echoes_an_unparseable_url():
    assert SECRET not in redact_url(f"garbage {SECRET}")


def test_a_departments_short_title_is_its_title_before_the_first_space(tmp_path):
    """The dashboard's department names come from here (silver's int_departments), never from code."""
    cfg = load_sources(write(tmp_path, VALID))
    assert cfg.department("samr").short_title == "市场监管局"
    assert cfg.department("tax").short_title == "税务局"  # a title without a space is all short
    without = load_sources(write(tmp_path, VALID.replace("    title: 税务局\n", "")))
    assert without.department("tax").title is None and without.department("tax").short_title is None
