"""`qst check`: lint a deployment folder against its own sources before any data moves.

Why: a new city's defects (a code value without a crosswalk row, a text timestamp used as a cursor, a spec
naming a column the source does not have) used to surface only at run time, minutes into a night, inside a
traceback. Every check here reads the deployment's files and the sources themselves (read-only: the tables'
columns, and ``SELECT DISTINCT`` of the code columns), and reports every problem at once, each naming the file
(and line where it can) and what to do. Plain functions, no Dagster: ``pipelines/check_cli.py`` prints them,
and ``qst run`` runs them first.

Severities: an **error** stops ``qst check`` (exit 1) and ``qst run``; a **warning** is worth a look but the night
can run; a **note** is information (a table loaded to bronze but not staged, the event-type vocabulary).
"""

from __future__ import annotations

import csv
import difflib
import io
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.config import load_sources
from connectors.config_schema import DepartmentConfig, FileDropConfig, SourcesConfig, TableConfig
from connectors.filedrops import LINEAGE_COLUMNS, list_drop_files, read_drop_file
from connectors.identifiers_sql import quote_identifier
from connectors.readers import cursor_problem
from connectors.reflection import (
    ReadContext,
    Reflected,
    SourceReadError,
    dept_key,
    natural_column,
    plan_columns,
    reflect,
    resolve_secret,
    validate_names,
)
from connectors.transports import Secret, engine_for
from lake.yamlfile import ConfigError
from models.staging.spec import StagingSpec, load_specs
from models.standardize.codes import KEYS, TARGETS, crosswalk, crosswalk_dir
from quality.check_findings import CheckReport, Finding, add_issues, iter_lines, located, yaml_positions
from quality.exports_check import check_exports, check_vocabulary

__all__ = [
    "MAX_DISTINCT_VALUES",
    "CheckReport",
    "Finding",
    "check_deployment",
    "iter_lines",
]

#: The most distinct values of one code column read from a source (a code list longer than this is not a
#: code list: the spec is probably wrong, and reading more would make the check slow).
MAX_DISTINCT_VALUES = 10_000


# --------------------------------------------------------------------------------------------------
# the sources


@dataclass
class _Source:
    """One table or file drop of sources.yaml as the checks see it: its bronze columns (None when they could
    not be read: that problem is already reported) and how to reach it."""

    department: DepartmentConfig
    where: str
    table: TableConfig | None = None
    drop: FileDropConfig | None = None
    bronze: dict[str, str] | None = None  # bronze (output) column -> source column
    secret: Secret | None = None
    reflected: Reflected | None = None


def _read_table(
    report: CheckReport,
    dept: DepartmentConfig,
    table: TableConfig,
    where: str,
    environ: Mapping[str, str] | None,
) -> _Source:
    src = _Source(dept, where, table=table)
    ctx = ReadContext(dept, table, dept_key(dept))
    try:
        validate_names(ctx, None)
        src.secret = resolve_secret(ctx, environ)
        src.reflected = reflect(ctx, src.secret)
        plan = plan_columns(ctx, src.reflected, None)  # also: primary key, cursor, configured columns exist
    except SourceReadError as exc:
        report.add("error", where, f"{exc}; fix the table entry in sources.yaml (or the source)")
        if src.reflected is not None:
            src.bronze = {table.output_name(c["name"]): c["name"] for c in src.reflected.columns}
        return src
    src.bronze = {c.output_name: c.name for c in plan}
    _check_cursor(report, table, plan, src.reflected, where)
    return src


def _check_cursor(
    report: CheckReport, table: TableConfig, plan: list, reflected: Reflected, where: str
) -> None:
    """The reader's own rule (:func:`connectors.readers.cursor_problem`), reported before any data moves."""
    if table.mode != "incremental" or not table.cursor:
        return
    problem = cursor_problem(table, plan, natural_column(reflected, table.cursor))
    if problem:
        report.add("error", where, f"table {table.name!r}, column {table.cursor!r}: {problem}")


def _read_drop_columns(
    report: CheckReport, dept: DepartmentConfig, drop: FileDropConfig, where: str
) -> _Source:
    """The columns of a file drop: the header of its newest file (a drop without files cannot be checked)."""
    src = _Source(dept, where, drop=drop)
    try:
        files = list_drop_files(drop)
    except (FileNotFoundError, OSError) as exc:
        report.add("warning", where, f"{exc}; fix 'folder' in sources.yaml if the files never arrive there")
        return src
    if not files:
        report.add(
            "note",
            where,
            f"file drop {drop.name!r}: no file in {drop.folder} yet; its columns are not checked",
        )
        return src
    newest = max(files, key=lambda f: f.mtime_ns)
    parsed = read_drop_file(drop, newest)
    if parsed.table is None:
        report.add(
            "warning", where, f"file drop {drop.name!r}: its newest file cannot be read: {parsed.error}"
        )
        return src
    src.bronze = {c: c for c in [*parsed.table.column_names, *LINEAGE_COLUMNS]}
    return src


def _sources(
    report: CheckReport, config: SourcesConfig, path: Path, environ: Mapping[str, str] | None
) -> dict[str, _Source]:
    """Every table and file drop of sources.yaml by ``department/asset``, with its columns read."""
    positions = yaml_positions(path)
    out: dict[str, _Source] = {}
    for key, dept in config.departments.items():
        for i, table in enumerate(dept.tables):
            where = located(path, positions, "departments", key, "tables", i)
            out[f"{key}/{table.asset}"] = _read_table(report, dept, table, where, environ)
        for i, drop in enumerate(dept.files):
            where = located(path, positions, "departments", key, "files", i)
            out[f"{key}/{drop.name}"] = _read_drop_columns(report, dept, drop, where)
    return out


# --------------------------------------------------------------------------------------------------
# specs against their sources


def _check_specs(
    report: CheckReport, specs: Mapping[str, StagingSpec], folder: Path, sources: Mapping[str, _Source]
) -> None:
    for source, spec in specs.items():
        path = folder / f"{spec.name}.yaml"
        positions = yaml_positions(path)
        src = sources.get(source)
        if src is None:
            report.add(
                "error",
                located(path, positions, "source"),
                f"source {source!r} is not a table or file drop of sources.yaml (it has: {', '.join(sorted(sources))}); "
                "fix 'source' or add the table to sources.yaml",
            )
            continue
        if src.bronze is None:
            continue
        present = list(src.bronze)
        for name, col in spec.columns.items():
            for key, bronze in (
                ("from", col.source),
                ("code_column", col.code_column),
                ("key_column", col.key_column),
            ):
                if bronze is None or bronze in src.bronze:
                    continue
                hint = difflib.get_close_matches(bronze, present, n=1)
                what = (
                    f"table {src.table.name!r}"
                    if src.table
                    else f"file drop {src.drop.name if src.drop else '?'!r}"
                )
                report.add(
                    "error",
                    located(path, positions, "columns", name, key),
                    f"columns.{name}.{key}: column {bronze!r} is not in the source {what} of {source}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                    + f"; it has: {', '.join(present)}",
                )
    for source, src in sources.items():
        if source not in specs:
            report.add(
                "note",
                src.where,
                f"{source} has no staging spec ({folder}/stg_{source.replace('/', '__')}.yaml): it is loaded to "
                "bronze, not staged to silver",
            )


# --------------------------------------------------------------------------------------------------
# crosswalk coverage


def _distinct(src: _Source, column: str, cap: int) -> list[object]:
    """Up to ``cap + 1`` distinct values of a source column (one small read-only query, identifiers quoted)."""
    assert src.table is not None and src.secret is not None
    backend = src.secret.url.get_backend_name()
    q = quote_identifier(column, backend, what="column name")
    sql = f"SELECT DISTINCT {q} FROM {src.table.qualified_source(backend)} WHERE {q} IS NOT NULL"
    engine = engine_for(src.secret)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text(sql)).fetchmany(cap + 1)]
    finally:
        engine.dispose()


def _code_text(value: object) -> str:
    """A source value as the crosswalk compares it (models.standardize.codes.map_code: NFKC, trimmed)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return unicodedata.normalize("NFKC", str(value)).strip()


def _csv_row(values: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue()


def _check_crosswalks(
    report: CheckReport,
    specs: Mapping[str, StagingSpec],
    folder: Path,
    sources: Mapping[str, _Source],
    cap: int,
) -> None:
    loaded: dict[str, Any] = {}
    for source, spec in specs.items():
        src = sources.get(source)
        for name, col in spec.columns.items():
            if col.kind != "code" or col.crosswalk is None or src is None or src.bronze is None:
                continue
            cw_path = crosswalk_dir() / f"{col.crosswalk}.csv"
            if col.crosswalk not in loaded:
                try:
                    loaded[col.crosswalk] = crosswalk(col.crosswalk)
                except (ValueError, FileNotFoundError) as exc:
                    loaded[col.crosswalk] = None
                    report.add("error", str(cw_path), f"{exc}")
            table = loaded[col.crosswalk]
            if table is None or col.source not in src.bronze:
                continue
            spec_at = located(
                folder / f"{spec.name}.yaml", yaml_positions(folder / f"{spec.name}.yaml"), "columns", name
            )
            if src.table is None:
                report.add(
                    "note",
                    spec_at,
                    f"columns.{name}: codes of a file drop are not checked against {cw_path.name}",
                )
                continue
            column = src.bronze[col.source]
            dept = dept_key(src.department)
            try:
                values = _distinct(src, column, cap)
            except (
                Exception
            ) as exc:  # the driver's text may hold connection details: scrub through the context
                ctx = ReadContext(src.department, src.table, dept, src.secret)
                report.add(
                    "error", src.where, f"cannot read the distinct values of {column!r}: {ctx.cause(exc)}"
                )
                continue
            if len(values) > cap:
                report.add(
                    "warning",
                    spec_at,
                    f"columns.{name}: {src.table.name}.{column} has more than {cap:,} distinct values; only the "
                    f"first {cap:,} were checked against {cw_path.name} (is it really a code?)",
                )
                values = values[:cap]
            rows = table.filter(
                (table["department"] == dept)
                & (table["source_table"] == src.table.name)
                & (table["source_column"] == col.source)
            )
            known = set(rows["source_value"].to_list())
            missing = sorted({t for t in map(_code_text, values) if t and t not in known})
            if not missing:
                continue
            targets = ["?"] * len(TARGETS[col.crosswalk])
            lines = "\n".join(
                f"      {_csv_row([dept, src.table.name, col.source, v, *targets, ''])}" for v in missing
            )
            report.add(
                "error",
                str(cw_path),
                f"{len(missing)} value(s) of {dept}.{src.table.name}.{col.source} (spec {spec.name}, column {name!r}) "
                f"have no row and would be staged as unmapped; add to {cw_path} (columns "
                f"{','.join([*KEYS, *TARGETS[col.crosswalk], 'note'])}), replacing each ? with the canonical "
                f"value:\n{lines}",
            )


# --------------------------------------------------------------------------------------------------
# the whole check


def check_deployment(
    sources_path: Path,
    specs_folder: Path,
    exports_path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    max_values: int = MAX_DISTINCT_VALUES,
) -> CheckReport:
    """Every check of a deployment (the crosswalks are the deployment's, :mod:`lake.deployment`). Reads the
    sources (reflection, ``SELECT DISTINCT`` of code columns) but never writes anything."""
    report = CheckReport()
    config: SourcesConfig | None = None
    try:
        config = load_sources(sources_path)
    except ConfigError as exc:
        add_issues(report, exc.issues)
    specs: dict[str, StagingSpec] = {}
    try:
        specs = load_specs(specs_folder)
    except ConfigError as exc:
        add_issues(report, exc.issues)
    if config is not None:
        sources = _sources(report, config, Path(sources_path), environ)
        _check_specs(report, specs, Path(specs_folder), sources)
        _check_crosswalks(report, specs, Path(specs_folder), sources, max_values)
    check_vocabulary(report, specs, Path(specs_folder))
    check_exports(report, Path(exports_path))
    return report
