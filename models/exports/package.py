"""Build, publish and prune one bureau's nightly export package.

A package is what a bureau (委办局) receives for one date: for each table it is entitled to, a Parquet file
and a CSV file (for spreadsheet users, in the bureau's encoding: UTF-8 with BOM or GB18030), a
``manifest.json`` (row count, sha256 and schema of every file, the lake versions the marts were built
from, when, under which entitlement version) and a ``README.md`` in Chinese and English that says what each
column means.  Entitlements come from ``exports.yaml`` (:mod:`models.exports.entitlements`).

How the data is selected
    One read-only DuckDB connection to the marts file.  Per table a single query: the entitled columns only
    (every identifier validated and quoted), the structured row filters as SQL with bound parameters, the
    protections (:mod:`models.exports.protect`) as vectorized functions on the connection, and ``ORDER BY
    ALL`` on the *exported* values -- so the files are deterministic, and the row order says nothing about
    the clear values behind masks and hashes.  Rows stream to the writers in batches (bounded memory).

Determinism (a re-run for a date gives byte-identical data files and README)
    Rows are re-cut into Parquet row groups of a fixed size, whatever sizes DuckDB hands out; CSV text does
    not depend on batching; the README has no clock.  Only ``built_at`` in the manifest changes.

Publishing: never half a package, at any instant
    A package is built in ``<bureau>/.builds/<date>.<id>/`` (a hidden sibling), every file and the folder
    fsynced, then published by pointing the symlink ``<bureau>/<date>`` at it: a new link is created
    under a temporary name and ``rename``d over the old one.  POSIX ``rename`` replaces a symlink
    atomically, so at every instant ``<date>`` is either the old complete package or the new complete
    one.  A folder cannot be swapped that way (``rename`` onto a non-empty folder fails; ``renameat2
    (RENAME_EXCHANGE)`` is Linux-only, unsupported by some filesystems, and not in Python), and "rename
    the old aside, rename the new in" leaves an instant with no package at all.
    A reader should resolve the link once (``realpath``) and read everything from there, as
    :func:`models.exports.verify.verify_package` does: a replaced or pruned build is unpublished at once
    (the link moves or goes) but deleted only at the bureau's *next* export run, so a reader who resolved
    the link keeps a consistent package until then.  A crash at any point leaves the previous link and
    its package untouched; the orphaned build is removed by the next run.
    Runs for the same bureau are serialized by an ``flock`` on ``<bureau>/.lock``.

Retention
    After publishing, only the ``retention`` most recent dates stay published per bureau (by date, so a
    backfill of a date older than the window is unpublished at once).

Audit
    ``EXPORTS_ROOT/audit.jsonl`` gets one JSON line per event, appended under an ``flock`` and fsynced:
    ``published`` (bureau, date, tables with rows and file digests, the manifest's sha256, entitlement
    version, when, what was pruned) and ``failed`` (bureau, date, the error).  It never holds a secret.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.identifiers_sql import validate_identifier
from models.exports.entitlements import (
    SHARING_EN,
    ColumnRule,
    ExportError,
    ExportsConfig,
    RowCondition,
    TableEntitlement,
    entitlement_version,
)
from models.exports.protect import KeyedHasher, protect_arrow, resolve_key

__all__ = [
    "AUDIT_LOG",
    "MANIFEST",
    "PACKAGE_FORMAT",
    "README",
    "BureauOutcome",
    "PackageResult",
    "TableResult",
    "export_all",
    "export_bureau",
    "list_packages",
    "package_path",
    "prune_packages",
    "read_audit",
]

PACKAGE_FORMAT = "quanshitong-export/1"
MANIFEST = "manifest.json"
README = "README.md"
AUDIT_LOG = "audit.jsonl"
BUILDS = ".builds"
LOCK = ".lock"
#: Rows per Parquet row group (fixed, so the files do not depend on DuckDB's batch sizes).
ROW_GROUP_ROWS = 131_072
#: Rows per batch read from DuckDB.
FETCH_ROWS = 65_536
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_SRC = "__qst_src"
_XW = "__qst_xw"


# ---------------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class TableResult:
    name: str                 # the files' stem in the package
    source_table: str
    sharing: str
    rows: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class PackageResult:
    bureau: str
    date: dt.date
    path: Path                # EXPORTS_ROOT/<bureau>/<date> (the published link)
    build: Path               # the folder it points at
    tables: tuple[TableResult, ...]
    withheld: tuple[dict[str, Any], ...]
    entitlement_version: str
    manifest_sha256: str
    replaced: bool            # a package for this date existed and was replaced
    pruned: tuple[str, ...]   # dates unpublished by retention
    seconds: float

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def files(self) -> int:
        return sum(len(t.files) for t in self.tables) + 2  # + manifest and README


@dataclass(frozen=True)
class BureauOutcome:
    bureau: str
    result: PackageResult | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


# ---------------------------------------------------------------------------------------------------------
# small helpers


def _q(name: str, what: str = "identifier") -> str:
    """A validated, double-quoted DuckDB identifier."""
    validate_identifier(name, what)
    return '"' + name.replace('"', '""') + '"'


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_and_sync(path: Path) -> tuple[str, int]:
    """The file's sha256 and size; fsyncs it on the way (whoever wrote it)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
        os.fsync(f.fileno())
    return h.hexdigest(), size


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def package_path(exports_root: str | Path, bureau: str, date: dt.date | str) -> Path:
    """``EXPORTS_ROOT/<bureau>/<YYYY-MM-DD>``: where a bureau finds its package for a date."""
    day = date if isinstance(date, str) else date.isoformat()
    return Path(exports_root) / bureau / day


def list_packages(exports_root: str | Path, bureau: str) -> list[str]:
    """The dates published for a bureau, oldest first."""
    folder = Path(exports_root) / bureau
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if _DATE_RE.match(p.name) and p.is_symlink())


# ---------------------------------------------------------------------------------------------------------
# the marts catalog and the plan


@dataclass
class _Catalog:
    tables: dict[str, str]                        # lower name -> name
    comments: dict[str, str | None]               # name -> table comment
    columns: dict[str, dict[str, tuple[str, str | None]]]  # table -> lower column -> (column, comment)

    def table(self, name: str) -> str | None:
        return self.tables.get(name.lower())

    def column(self, table: str, name: str) -> tuple[str, str | None] | None:
        return self.columns.get(table, {}).get(name.lower())


def _catalog(con: duckdb.DuckDBPyConnection) -> _Catalog:
    """The marts file's tables and views, and the gold tables registered from the lake (temporary views, which
    carry no comments: theirs come from :mod:`models.gold.docs`)."""
    from models.gold.docs import column_comment, table_comment

    rels = con.execute(
        "SELECT table_name, comment, false FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' UNION ALL SELECT view_name, comment, database_name = 'temp' FROM duckdb_views() "
        "WHERE database_name IN (current_database(), 'temp') AND schema_name = 'main' AND NOT internal").fetchall()
    lake = {t for t, _, from_lake in rels if from_lake}
    cols = con.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns() "
        "WHERE database_name IN (current_database(), 'temp') AND schema_name = 'main' "
        "ORDER BY table_name, column_index").fetchall()
    columns: dict[str, dict[str, tuple[str, str | None]]] = {}
    for table, column, comment in cols:
        if table in lake:
            comment = comment or column_comment(table, column)
        columns.setdefault(table, {})[column.lower()] = (column, comment or None)
    return _Catalog({t.lower(): t for t, _, _ in rels},
                    {t: c or (table_comment(t) if t in lake else None) for t, c, _ in rels}, columns)


@dataclass
class _Column:
    output: str
    source: str               # as the catalog spells it
    rule: ColumnRule
    comment: str | None


@dataclass
class _Plan:
    ent: TableEntitlement
    table: str                # as the catalog spells it
    comment: str | None
    columns: list[_Column]
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)


def _condition_sql(cond: RowCondition, catalog: _Catalog, table: str, crosswalk: str | None, department: str,
                   problems: list[str], where: str) -> tuple[str, list[Any]]:
    if cond.kind == "all":
        return "TRUE", []
    col_name = cond.column if cond.kind != "related" else cond.related
    assert col_name is not None
    found = catalog.column(table, col_name)
    if found is None:
        problems.append(f"{where}: the row filter's column {col_name!r} is not in {table}")
        return "FALSE", []
    col = f"{_SRC}.{_q(found[0], 'column name')}"
    if cond.kind == "in":
        values = list(cond.in_ or [])
        return f"CAST({col} AS VARCHAR) IN ({', '.join('?' for _ in values)})", values
    if cond.kind == "prefix":
        values = list(cond.prefix or [])
        return "(" + " OR ".join(f"starts_with(CAST({col} AS VARCHAR), ?)" for _ in values) + ")", values
    # related: a semi-join on the crosswalk rows of the bureau's department
    if crosswalk is None:
        problems.append(f"{where}: the relationship filter needs the crosswalk table, which is not in the "
                        "marts file")
        return "FALSE", []
    xw_entity = catalog.column(crosswalk, "entity_id")
    xw_dept = catalog.column(crosswalk, "source_department")
    if xw_entity is None or xw_dept is None:
        problems.append(f"{where}: the crosswalk table {crosswalk} lacks entity_id or source_department")
        return "FALSE", []
    sub = (f"SELECT {_XW}.{_q(xw_entity[0])} FROM {_q(crosswalk)} AS {_XW} "
           f"WHERE {_XW}.{_q(xw_dept[0])} = ?")
    return f"{col} IN ({sub})", [department]


def _plan(con: duckdb.DuckDBPyConnection, config: ExportsConfig, bureau: str,
          date: dt.date) -> tuple[list[_Plan], list[dict[str, Any]], _Catalog]:
    """What to export, checked against the marts file: every problem of the bureau at once."""
    catalog = _catalog(con)
    department = config.department_of(bureau)
    crosswalk = catalog.table(config.crosswalk_table)
    plans: list[_Plan] = []
    withheld: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, ent in enumerate(config.bureau(bureau).tables):
        where = f"tables[{i}] ({ent.table})"
        if not ent.shared:
            withheld.append({"table": ent.table, "sharing": ent.sharing, "reason": ent.reason or "不予共享"})
            continue
        if ent.expired(date):
            withheld.append({"table": ent.table, "name": ent.output_name, "sharing": ent.sharing,
                             "agreement": ent.agreement, "reason": f"agreement expired on "
                                                                   f"{ent.valid_until.isoformat()}"})
            continue
        table = catalog.table(ent.table)
        if table is None:
            problems.append(f"{where}: table {ent.table!r} is neither in the marts file nor a gold table of the lake")
            continue
        columns = []
        for out, rule in ent.exported_columns():
            src = ent.source_of(out)
            found = catalog.column(table, src)
            if found is None:
                problems.append(f"{where}: column {src!r} is not in {table}")
                continue
            columns.append(_Column(out, found[0], rule, found[1]))
        plan = _Plan(ent, table, catalog.comments.get(table), columns)
        for cond in ent.rows or []:
            sql, params = _condition_sql(cond, catalog, table, crosswalk, department, problems, where)
            plan.where.append(sql)
            plan.params.extend(params)
        plans.append(plan)
    if problems:
        raise ExportError(f"bureau {bureau}: " + "; ".join(problems))
    return plans, withheld, catalog


def _lake_versions(con: duckdb.DuckDBPyConnection, catalog: _Catalog) -> list[dict[str, Any]]:
    """``meta_build`` as the marts build wrote it, every column (``lake_table``, ``delta_version``,
    ``built_at`` ...), one entry per lake table read; no such table -> empty."""
    table = catalog.table("meta_build")
    if table is None:
        return []
    cur = con.execute(f"SELECT * FROM {_q(table)} ORDER BY ALL")
    names = [d[0] for d in cur.description]
    return [{k: _jsonable(v) for k, v in zip(names, row, strict=True)} for row in cur.fetchall()]


# ---------------------------------------------------------------------------------------------------------
# writers


class _ParquetSink:
    """Parquet with row groups of exactly ROW_GROUP_ROWS rows (the last one shorter)."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.schema = schema
        self.writer = pq.ParquetWriter(path, schema, compression="zstd", compression_level=3)
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        while self.pending_rows >= ROW_GROUP_ROWS:
            table = pa.Table.from_batches(self.pending, self.schema)
            self.writer.write_table(table.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
            rest = table.slice(ROW_GROUP_ROWS)
            self.pending = rest.to_batches()
            self.pending_rows = rest.num_rows

    def close(self) -> None:
        if self.pending_rows:
            table = pa.Table.from_batches(self.pending, self.schema)
            self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.writer.close()


class _CsvSink:
    """RFC 4180 CSV (CRLF, header row) in ``utf-8-sig`` (UTF-8 with a BOM, which Excel needs to read UTF-8)
    or ``gb18030`` (what older Chinese Excel and WPS installations expect)."""

    def __init__(self, path: Path, schema: pa.Schema, encoding: str):
        self.codec = "utf-8" if encoding == "utf-8-sig" else encoding
        self.file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        if encoding == "utf-8-sig":
            self.file.write("\ufeff".encode())
        self._write(schema.empty_table(), header=True)

    def write(self, batch: pa.RecordBatch) -> None:
        self._write(batch, header=False)

    def _write(self, data: pa.RecordBatch | pa.Table, header: bool) -> None:
        frame = pl.from_arrow(data)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.with_columns(_csv_text(name, dtype) for name, dtype in frame.schema.items()
                                   if dtype.is_nested() or dtype == pl.Binary)
        # one column: a null would be a blank line, which spreadsheet and pandas readers skip; write "" instead
        null = '""' if frame.width == 1 else ""
        text = frame.write_csv(include_header=header, line_terminator="\r\n", null_value=null)
        self.file.write(text.encode(self.codec))

    def close(self) -> None:
        self.file.close()


def _csv_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A value CSV cannot hold as it is: lists and structs (``VARCHAR[]`` such as ``departments``) as JSON text
    (``["samr","tax"]``), binary as hex; null stays empty."""
    col = pl.col(name)
    if dtype == pl.Binary:
        return col.bin.encode("hex")
    text = pl.struct(col.alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")
    return pl.when(col.is_null()).then(pl.lit(None, pl.String)).otherwise(text).alias(name)


_PROTECTION_TEXT = {
    "keep": ("原样", "as is"),
    "mask_id": ("脱敏：保留前6位和后4位", "masked: first 6 and last 4 characters kept"),
    "mask_mobile": ("脱敏：保留前3位和后4位", "masked: first 3 and last 4 digits kept"),
    "mask_bank_card": ("脱敏：保留前6位和后4位", "masked: first 6 and last 4 digits kept"),
    "mask_name": ("脱敏：保留首字", "masked: first character kept"),
    "hmac": ("密钥哈希（HMAC-SHA256，可关联，不可还原）", "keyed hash (HMAC-SHA256): joinable, not reversible"),
}


def _protection_text(rule: ColumnRule) -> tuple[str, str]:
    if rule.protect == "mask":
        first, last = rule.keeps()
        return f"脱敏：保留前{first}位和后{last}位", f"masked: first {first} and last {last} characters kept"
    return _PROTECTION_TEXT[rule.protect]


def _field_meta(col: _Column) -> dict[bytes, bytes]:
    zh, en = _protection_text(col.rule)
    meta = {b"protection": col.rule.describe().encode(), b"protection_text": f"{zh} / {en}".encode()}
    if col.comment:
        meta[b"description"] = col.comment.encode()
    return meta


def _udf(rule: ColumnRule, hasher: KeyedHasher | None) -> Callable[[pa.Array], pa.Array]:
    """A vectorized DuckDB function applying one column rule (one Arrow chunk at a time)."""
    def protect(values: pa.Array) -> pa.Array:
        return protect_arrow(values, rule, hasher)

    return protect


def _write_table(con: duckdb.DuckDBPyConnection, plan: _Plan, build: Path, formats: Sequence[str],
                 encoding: str, hasher: KeyedHasher | None, serial: int) -> tuple[int, list[dict[str, Any]]]:
    """Run the plan's query and stream it to the files; (rows, file entries without digests)."""
    udfs: list[str] = []
    items: list[str] = []
    try:
        for j, col in enumerate(plan.columns):
            src = f"{_SRC}.{_q(col.source)}"
            if col.rule.protect == "keep":
                items.append(f"{src} AS {_q(col.output)}")
                continue
            fn = f"__qst_protect_{serial}_{j}"
            con.create_function(fn, _udf(col.rule, hasher), ["VARCHAR"], "VARCHAR", type="arrow",
                                null_handling="special")
            udfs.append(fn)
            items.append(f"{fn}(CAST({src} AS VARCHAR)) AS {_q(col.output)}")
        where = " AND ".join(plan.where) or "TRUE"
        sql = f"SELECT {', '.join(items)} FROM {_q(plan.table)} AS {_SRC} WHERE {where} ORDER BY ALL"
        reader = con.sql(sql, params=plan.params or None).to_arrow_reader(FETCH_ROWS)
        schema = pa.schema([f.with_metadata(_field_meta(c)) for f, c in zip(reader.schema, plan.columns,
                                                                              strict=True)])
        stem = plan.ent.output_name
        sinks: list[tuple[str, _ParquetSink | _CsvSink]] = []
        try:
            if "parquet" in formats:
                sinks.append((f"{stem}.parquet", _ParquetSink(build / f"{stem}.parquet", schema)))
            if "csv" in formats:
                sinks.append((f"{stem}.csv", _CsvSink(build / f"{stem}.csv", schema, encoding)))
            rows = 0
            for batch in reader:
                batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                rows += batch.num_rows
                for _, sink in sinks:
                    sink.write(batch)
        finally:
            for _, sink in sinks:
                sink.close()
    finally:
        for fn in udfs:
            with contextlib.suppress(Exception):
                con.remove_function(fn)
    written = pq.read_schema(build / f"{stem}.parquet") if "parquet" in formats else schema
    described = [{"name": f.name, "type": str(f.type)} for f in written]
    entries = []
    for name, _ in sinks:
        entry: dict[str, Any] = {"path": name, "table": stem, "format": name.rsplit(".", 1)[1], "rows": rows,
                                 "schema": described}
        if name.endswith(".csv"):
            entry["encoding"] = encoding
        entries.append(entry)
    return rows, entries


# ---------------------------------------------------------------------------------------------------------
# README


def _cell(text: str | None) -> str:
    return (text or "").replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _rows_text(ent: TableEntitlement, department: str) -> str:
    parts = []
    for cond in ent.rows or []:
        if cond.kind == "all":
            parts.append("全部行 all rows")
        elif cond.kind == "in":
            parts.append(f"`{cond.column}` 取值为 is one of: {', '.join(cond.in_ or [])}")
        elif cond.kind == "prefix":
            parts.append(f"`{cond.column}` 以下列开头 starts with: {', '.join(cond.prefix or [])}")
        else:
            parts.append(f"`{cond.related}` 为本部门（{department}）有记录的主体 is an entity of which "
                         f"{department} holds at least one record")
    return "；并且 and ".join(parts)


def _readme(config: ExportsConfig, bureau: str, date: dt.date, version: str, plans: list[_Plan],
            results: list[TableResult], withheld: list[dict[str, Any]], encoding: str) -> str:
    b = config.bureau(bureau)
    department = config.department_of(bureau)
    enc = "UTF-8（带 BOM with BOM）" if encoding == "utf-8-sig" else "GB18030"
    lines = [
        "# 全视通数据共享包 · Quanshitong data package",
        "",
        f"- 接收单位 Bureau: {b.title} (`{bureau}`)",
        f"- 数据日期 Data date: {date.isoformat()}",
        f"- 授权版本 Entitlement version: `{version}`",
        (f"- CSV 编码 CSV encoding: {enc}（列表、结构类型的列为 JSON 文本，二进制为十六进制 list and struct columns are "
        "JSON text, binary is hex）"),
        "",
        "本包仅包含贵单位依据共享授权（exports.yaml）可获得的表、列和行；未列出的列不导出。个人信息已按授权脱敏或做密钥哈希。",
        ("This package holds only the tables, columns and rows your bureau is entitled to (exports.yaml); a "
        "column not listed is not exported. Personal data is masked or keyed-hashed as the entitlement says."),
        "",
        "## 文件 Files",
        "",
        "| 文件 File | 表 Table | 行数 Rows |",
        "|---|---|---|",
    ]
    for res in results:
        for name in res.files:
            lines.append(f"| `{name}` | {res.source_table} | {res.rows} |")
    lines += [("| `manifest.json` | 清单：每个文件的行数、sha256、结构 manifest: rows, sha256, schema of "
              "every file | |"), ""]
    for plan, res in zip(plans, results, strict=True):
        ent = plan.ent
        lines += [f"## {res.name}（来源 from `{plan.table}`）", ""]
        if plan.comment:
            lines += [_cell(plan.comment), ""]
        if ent.description:
            lines += [_cell(ent.description), ""]
        lines.append(f"- 共享类型 Sharing type: {ent.sharing}（{SHARING_EN[ent.sharing]}）")
        if ent.purpose:
            lines.append(f"- 用途 Purpose: {_cell(ent.purpose)}")
        if ent.agreement:
            lines.append(f"- 共享协议 Agreement: {_cell(ent.agreement)}")
        if ent.valid_until:
            lines.append(f"- 有效期至 Valid until: {ent.valid_until.isoformat()}")
        lines += [f"- 行范围 Rows: {_rows_text(ent, department)}", f"- 行数 Row count: {res.rows}", "",
                  "| 列 Column | 含义 Meaning | 处理 Protection |", "|---|---|---|"]
        for col in plan.columns:
            meaning = col.comment or col.source
            if col.source != col.output:
                meaning = f"{meaning}（来源列 from column `{col.source}`）"
            zh, en = _protection_text(col.rule)
            lines.append(f"| `{col.output}` | {_cell(meaning)} | {zh} {en} |")
        lines.append("")
    if withheld:
        lines += ["## 未共享的表 Tables not shared", "", "| 表 Table | 共享类型 Sharing | 原因 Reason |",
                  "|---|---|---|"]
        for w in withheld:
            lines.append(f"| {w['table']} | {w['sharing']}（{SHARING_EN[w['sharing']]}） | {_cell(w['reason'])} |")
        lines.append("")
    if any(c.rule.protect == "hmac" for plan in plans for c in plan.columns):
        lines += _HMAC_SECTION
    lines += _VERIFY_SECTION
    return "\n".join(lines)


#: The README's section on hashed columns (only when the package has one).
_HMAC_SECTION = [
    "## 密钥哈希列 Keyed-hash columns",
    "",
    ("哈希列为对规范化取值（NFKC、去首尾空格、转大写）计算的 HMAC-SHA256（小写十六进制）。同一取值在各单位、各日期的"
    "数据包中哈希相同，可用于关联；没有密钥无法由哈希反推原值，贵单位亦无法自行计算。"),
    ("A hashed column is the HMAC-SHA256 (lowercase hex) of the normalized value (NFKC, trimmed, upper "
    "case). Equal values hash equally in every bureau's package and on every date, so they can be joined; "
    "without the key nobody can recover or recompute the value."),
    "",
]
_VERIFY_SECTION = [
    "## 校验 Verification",
    "",
    ("`manifest.json` 记录每个文件的 sha256、行数与结构；请在使用前核对（`qst verify-export <文件夹>` 或 "
    "`sha256sum`）。数据包按日期整体发布，不会出现写了一半的数据包。"),
    ("`manifest.json` lists the sha256, row count and schema of every file; check them before use "
    "(`qst verify-export <folder>` or `sha256sum`). A package is published whole: never half written."),
    "",
]


# ---------------------------------------------------------------------------------------------------------
# publish, garbage, retention, audit


def _collect_garbage(bureau_dir: Path) -> None:
    """Remove builds no published link points at (crashed, replaced or pruned by an earlier run) and stray
    temporary links.  Called with the bureau's lock held."""
    for p in bureau_dir.glob(".*.link"):
        if p.is_symlink():
            p.unlink()
    builds = bureau_dir / BUILDS
    if not builds.is_dir():
        return
    live = {os.path.realpath(p) for p in bureau_dir.iterdir() if p.is_symlink() and _DATE_RE.match(p.name)}
    for d in builds.iterdir():
        if os.path.realpath(d) not in live:
            shutil.rmtree(d, ignore_errors=True)


def _publish(bureau_dir: Path, build: Path, date: dt.date) -> bool:
    """Point ``<bureau>/<date>`` at ``build`` atomically; True when it replaced a package."""
    link = bureau_dir / date.isoformat()
    replaced = link.is_symlink()
    if link.exists() and not replaced:
        raise ExportError(f"{link} exists and is not a package link; move it away (packages are published "
                          "as links to .builds/)")
    tmp = bureau_dir / f".{date.isoformat()}.{uuid.uuid4().hex[:12]}.link"
    os.symlink(os.path.relpath(build, bureau_dir), tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(bureau_dir)
    return replaced


def prune_packages(exports_root: str | Path, bureau: str, keep: int) -> list[str]:
    """Unpublish all but the ``keep`` most recent dates of a bureau; the dates unpublished.  Their folders
    are deleted by the bureau's next export run (a reader who resolved the link is not cut off)."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    dates = list_packages(exports_root, bureau)
    pruned = dates[:-keep] if len(dates) > keep else []
    folder = Path(exports_root) / bureau
    for day in pruned:
        (folder / day).unlink()
    if pruned:
        _fsync_dir(folder)
    return pruned


def _audit(exports_root: Path, record: Mapping[str, Any]) -> None:
    exports_root.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, sort_keys=True, default=_jsonable) + "\n"
    with open(exports_root / AUDIT_LOG, "a", encoding="utf-8") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_audit(exports_root: str | Path) -> list[dict[str, Any]]:
    """Every audit record, oldest first."""
    path = Path(exports_root) / AUDIT_LOG
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------------------------------------------------
# the entry points


#: Gold tables a bureau may be entitled to that the marts file does not carry (the analysts' file holds no
#: full identifiers): read from the lake at the Delta version the marts were built from (``meta_build``).
GOLD_TABLES = ("dim_enterprise", "dim_person", "entity_crosswalk")


def _open_marts(marts: Path, lake: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the marts file, with the gold tables it lacks registered from ``lake``
    (default: the ``lake`` folder beside the marts file) at the versions in its ``meta_build``, so that a
    package is built from one consistent state of the lake."""
    if not marts.is_file():
        raise ExportError(f"the marts file {marts} does not exist (build the marts first)")
    try:
        con = duckdb.connect(str(marts), read_only=True)
    except duckdb.Error as exc:
        raise ExportError(f"cannot open the marts file {marts} read-only: {exc}") from None
    con.execute("SET enable_progress_bar = false")  # the commands print their own progress
    lake = lake if lake is not None else marts.parent / "lake"
    present = {r[0].lower() for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal").fetchall()}
    versions: dict[str, int] = {}
    if "meta_build" in present:
        versions = {str(t): int(v) for t, v in con.execute(
            "SELECT lake_table, delta_version FROM meta_build WHERE delta_version IS NOT NULL").fetchall()}
    for name in GOLD_TABLES:
        path = lake / "gold" / name
        if name in present or not (path / "_delta_log").is_dir():
            continue
        from deltalake import DeltaTable

        try:
            table = DeltaTable(str(path), version=versions.get(f"gold/{name}"))
        except Exception as exc:  # noqa: BLE001 - a vacuumed version, a damaged log: name the table
            con.close()
            raise ExportError(f"cannot read the gold table {path} at version "
                              f"{versions.get(f'gold/{name}', 'latest')}: {exc}") from None
        con.register(name, table.to_pyarrow_dataset())
    return con


def export_bureau(config: ExportsConfig, bureau: str, *, marts: str | Path, exports_root: str | Path,
                  date: dt.date, environ: Mapping[str, str] | None = None,
                  now: Callable[[], dt.datetime] = _utcnow) -> PackageResult:
    """Build and publish one bureau's package for ``date`` (replacing one published for that date), prune by
    retention, and audit.  Raises :class:`ExportError` (missing table, column or secret ...) or an OS error.
    A failure before the swap publishes nothing: the package published for the date, if any, stays as it
    was.  A failure after it (fsyncing the folder, pruning, the audit line) leaves the new package published
    and whole, and is still raised.  Every failure is audited as ``failed``."""
    started = time.perf_counter()
    root = Path(exports_root)
    try:
        return _export_bureau(config, bureau, Path(marts), root, date, environ, now, started)
    except Exception as exc:
        _audit(root, {"event": "failed", "at": now().isoformat(), "bureau": bureau, "date": date.isoformat(),
                      "error": f"{type(exc).__name__}: {exc}"})
        raise


def _export_bureau(config: ExportsConfig, bureau: str, marts: Path, root: Path, date: dt.date,
                   environ: Mapping[str, str] | None, now: Callable[[], dt.datetime],
                   started: float) -> PackageResult:
    config.bureau(bureau)
    hasher = KeyedHasher(resolve_key(config.hmac_key_env, environ)) if config.needs_hmac(bureau) else None
    version = entitlement_version(config, bureau)
    formats = config.formats_of(bureau)
    encoding = config.csv_encoding_of(bureau)
    bureau_dir = root / bureau
    con = _open_marts(marts)
    try:
        plans, withheld, catalog = _plan(con, config, bureau, date)
        lake = _lake_versions(con, catalog)
        bureau_dir.mkdir(parents=True, exist_ok=True)
        with _flock(bureau_dir / LOCK):
            _collect_garbage(bureau_dir)
            build = bureau_dir / BUILDS / f"{date.isoformat()}.{uuid.uuid4().hex[:12]}"
            build.mkdir(parents=True)
            try:
                results: list[TableResult] = []
                entries: list[dict[str, Any]] = []
                for serial, plan in enumerate(plans):
                    try:
                        rows, files = _write_table(con, plan, build, formats, encoding, hasher, serial)
                    except (duckdb.Error, pa.ArrowException, pl.exceptions.PolarsError) as exc:
                        raise ExportError(f"bureau {bureau}: table {plan.table}: {exc}") from exc
                    results.append(TableResult(plan.ent.output_name, plan.table, plan.ent.sharing, rows,
                                               tuple(f["path"] for f in files)))
                    entries += files
                (build / README).write_text(
                    _readme(config, bureau, date, version, plans, results, withheld, encoding), encoding="utf-8")
                entries.append({"path": README, "format": "readme"})
                for entry in entries:
                    entry["sha256"], entry["bytes"] = _sha256_and_sync(build / entry["path"])
                manifest = _manifest(config, bureau, date, version, now(), lake, plans, results, withheld,
                                     entries, marts)
                manifest_bytes = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
                with open(build / MANIFEST, "wb") as f:
                    f.write(manifest_bytes)
                    f.flush()
                    os.fsync(f.fileno())
                _fsync_dir(build)
                _fsync_dir(build.parent)
                replaced = _publish(bureau_dir, build, date)
            finally:
                # whatever failed, a build the date's link does not point at is removed (a failure after the
                # swap, e.g. fsyncing the folder, leaves the new package published and whole)
                if os.path.realpath(bureau_dir / date.isoformat()) != os.path.realpath(build):
                    shutil.rmtree(build, ignore_errors=True)
            pruned = prune_packages(root, bureau, config.retention_of(bureau))
    finally:
        con.close()
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    result = PackageResult(bureau, date, package_path(root, bureau, date), build, tuple(results), tuple(withheld),
                           version, manifest_sha, replaced, tuple(pruned), time.perf_counter() - started)
    _audit(root, {
        "event": "published", "at": manifest["built_at"], "bureau": bureau, "date": date.isoformat(),
        "entitlement_version": version, "package": f"{bureau}/{date.isoformat()}",
        "build": os.path.relpath(build, root), "manifest_sha256": manifest_sha, "replaced": replaced,
        "pruned": list(pruned),
        "tables": [{"name": r.name, "source_table": r.source_table, "sharing": r.sharing, "rows": r.rows,
                    "files": {e["path"]: e["sha256"] for e in entries if e.get("table") == r.name}}
                   for r in results],
        "withheld": [w["table"] for w in withheld],
    })
    return result


def _manifest(config: ExportsConfig, bureau: str, date: dt.date, version: str, built_at: dt.datetime,
              lake: list[dict[str, Any]], plans: list[_Plan], results: list[TableResult],
              withheld: list[dict[str, Any]], entries: list[dict[str, Any]], marts: Path) -> dict[str, Any]:
    tables = []
    for plan, res in zip(plans, results, strict=True):
        ent = plan.ent
        tables.append({
            "name": res.name, "source_table": plan.table, "sharing": ent.sharing,
            "sharing_en": SHARING_EN[ent.sharing], "purpose": ent.purpose, "agreement": ent.agreement,
            "valid_until": ent.valid_until.isoformat() if ent.valid_until else None,
            "rows_filter": [c.describe() for c in ent.rows or []], "rows": res.rows,
            "columns": [{"name": c.output, "from": c.source, "protection": c.rule.describe()} for c in plan.columns],
            "withheld_columns": [name for name, rule in (ent.columns or {}).items() if rule.protect == "drop"],
            "files": list(res.files),
        })
    return {
        "format": PACKAGE_FORMAT,
        "bureau": bureau,
        "bureau_title": config.bureau(bureau).title,
        "department": config.department_of(bureau),
        "date": date.isoformat(),
        "built_at": built_at.isoformat(),
        "entitlement_version": version,
        "source": {"marts": marts.name},
        "lake_versions": lake,
        "tables": tables,
        "withheld": withheld,
        "files": sorted(entries, key=lambda e: e["path"]),
    }


def export_all(config: ExportsConfig, *, marts: str | Path, exports_root: str | Path, date: dt.date,
               bureaus: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
               on_outcome: Callable[[BureauOutcome], None] | None = None) -> list[BureauOutcome]:
    """Export every bureau (or those named), each isolated: a failing bureau is reported and the others still
    export."""
    outcomes = []
    for key in bureaus if bureaus is not None else list(config.bureaus):
        started = time.perf_counter()
        try:
            result = export_bureau(config, key, marts=marts, exports_root=exports_root, date=date,
                                   environ=environ)
            outcome = BureauOutcome(key, result=result, seconds=time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - isolation: one bureau's failure must not stop the others
            message = str(exc) if isinstance(exc, ExportError) else f"{type(exc).__name__}: {exc}"
            outcome = BureauOutcome(key, error=message, seconds=time.perf_counter() - started)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes
