"""``sources.yaml``: the configuration that onboards legacy department databases.

This docstring is the reference for the format.  A data engineer onboards a department (委办局) by
writing a few lines of YAML -- no code change.  Everything in the file is validated when it is loaded;
every problem is reported at once, each with the file, line and column of the offending key and its
dotted path, for example::

    sources.yaml:14:9: departments.samr.tables[0].cursor: required when mode is 'incremental'

Example
=======

.. code-block:: yaml

    version: 1
    timezone: Asia/Shanghai            # optional: the city's time zone (the default)
    defaults:                          # optional, every key optional
      source_timezone: Asia/Shanghai   # zone of naive timestamps in the sources (default: timezone)
      lookback: 3d                     # re-read window for late rows on timestamp cursors
      batch_rows: 100000               # rows per Arrow record batch
      max_concurrent_reads: 2          # parallel reads against one source database
    departments:
      samr:
        title: 市场监管局 market regulation (SAMR)
        connection:
          sqlite: estate/samr.sqlite   # or: url_env: QST_SAMR_URL
        max_concurrent_reads: 1
        tables:
          - name: T_SCZT_DJXX
            asset: registrations
            primary_key: [ZTID]
            mode: incremental
            cursor: GXSJ
            cursor_kind: timestamp
            key_snapshot_every_days: 7
            columns:
              ZCZB: {rename: registered_capital_text, type: "decimal(18,4)"}
              DWMC: {repair: gbk_in_latin1}
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

Top level
=========
``version`` (required)
    Always ``1``.  A later, incompatible format will use another number.
``timezone`` (optional, default :data:`lake.city.DEFAULT_TIMEZONE`)
    The city's time zone (IANA name): its calendar days are the nightly partitions and the days of the
    reports. It is also the default of ``defaults.source_timezone``.
``defaults`` (optional mapping)
    Values used wherever a department or table does not set its own.
``file_roots`` (optional list of folders, relative to the YAML file's folder; default: that folder)
    The folders file drops may be read from: each drop's ``folder`` must be one of them or inside one,
    compared with ``..`` and symbolic links resolved, or loading fails (and ``qst check`` reports it at the
    drop's line), so that a ``folder: ../../../etc`` can never read ``/etc/passwd`` into bronze.  Declaring
    the list replaces the default (list ``.`` to keep the YAML's folder).
``departments`` (required mapping, at least one entry)
    Department key -> department.  The key is a slug ``[a-z][a-z0-9_]*`` (at most 63 characters);
    it names the department's assets and its Dagster pool, so it must never change once data has
    been loaded.

``defaults``
============
``source_timezone`` (default: the top-level ``timezone``, i.e. the city's time zone)
    IANA zone name (checked with :mod:`zoneinfo`) in which the sources write *naive* timestamps.
    Bronze stores timestamps in UTC; this says how to interpret the naive ones.
``lookback`` (default ``3d``)
    ``<int>d`` (days) or ``<int>h`` (hours), e.g. ``3d``, ``12h``, ``0d``.  On an incremental table with
    a *timestamp* cursor, each run re-reads rows whose cursor is at most this much older than the
    committed watermark, so late-arriving rows are not missed (re-read rows are merged on the primary
    key, so nothing is doubled).
``batch_rows`` (default ``100000``, 1..10,000,000)
    Rows per Arrow record batch while extracting; bounds the memory of a read.
``max_concurrent_reads`` (default ``2``, 1..64)
    How many tables of one department may be read at the same time.

Department
==========
``title`` (optional)
    Human-readable name shown in the UI; Chinese welcome. The part before the first space is the short name
    the dashboard's charts and tables show (``市场监管局 market regulation`` -> ``市场监管局``); without a
    title they show the department key. Silver writes it to the canonical ``int_departments``.
``connection`` (required when the department has tables; a department of file drops only has none)
-- exactly one of
    ``sqlite: <path>``
        An embedded SQLite file.  A relative path is relative to the folder of the YAML file and is
        resolved to an absolute path when the file is loaded.
    ``url_env: <NAME>``
        The name of an environment variable holding a SQLAlchemy URL, e.g.
        ``postgresql+psycopg://user:password@host:5432/db``.  The URL (with its password) never sits in
        the file: a ``url`` or ``password`` key is rejected.  The variable is read only when the
        connection is needed (:meth:`DepartmentConfig.resolve_url`), not at load time.
``source_timezone``, ``max_concurrent_reads`` (optional)
    Override the defaults for this department.
``tables`` (list), ``files`` (list)
    At least one table or one file drop in total.

Table (an item of ``tables``)
=============================
``name`` (required)
    Source table name, spelled exactly as the source catalog stores it (quoted names are
    case-sensitive in PostgreSQL and Oracle).
``schema`` (optional)
    Source schema (owner in Oracle).  Omit or ``null`` for the connection's default.
``asset`` (optional)
    Short snake_case name (``[a-z][a-z0-9_]*``) of the bronze table/asset.  Defaults to ``name``
    lowercased; it must be set explicitly when that does not give a snake_case name (e.g. a Chinese
    table name).  Asset names are unique within a department, across tables *and* file drops.
``primary_key`` (required)
    Non-empty list of source column names that identify a row; no repeats.
``mode`` (required)
    ``incremental``: read only rows whose ``cursor`` moved past the watermark committed in bronze.
    ``snapshot``: read the whole table every run.
``cursor`` (required when incremental, not allowed with snapshot)
    Source column that increases whenever a row is inserted or updated.
``cursor_kind`` (incremental only, default ``timestamp``)
    ``timestamp`` (a date/time column, naive ones interpreted in ``source_timezone``) or ``id``
    (an increasing integer; no lookback applies).
``lookback`` (optional; incremental tables with a timestamp cursor only)
    Overrides ``defaults.lookback`` for this table.
``batch_rows`` (optional)
    Overrides ``defaults.batch_rows`` for this table (e.g. smaller for wide text tables).
``key_snapshot_every_days`` (incremental only, default ``1``, 1..366; ``None`` on snapshot tables)
    Every this many days the primary keys of the whole source table are read to detect rows deleted
    at the source (an incremental cursor cannot see deletions).
``columns`` (optional mapping)
    Source column name -> settings; columns not listed are loaded as they are.  Each entry has at
    least one of:

    ``rename``
        Target column name in bronze (a valid identifier).  Output names must stay unique
        (case-insensitively, as Delta Lake compares them) among the table's configured columns,
        its primary key and its cursor.
    ``type``
        Declared type, overriding what the source reports: ``string``, ``int64``, ``float64``,
        ``bool``, ``date``, ``timestamp`` or ``decimal(p,s)`` with 1 <= p <= 38 and 0 <= s <= p.
        Quote decimals inside ``{...}``: ``{type: "decimal(18,4)"}`` (the comma splits a flow mapping).
    ``repair``
        ``gbk_in_latin1``: the column holds GBK bytes stored in a latin1 column (mojibake); decode it.

``primary_key``, ``cursor`` and the keys of ``columns`` always use *source* column names.

Cursors
=======
The watermark of an incremental table is derived from what bronze committed: ``max(cursor)`` minus the
``lookback``. So bronze must *store* the cursor as a date or timestamp (``cursor_kind: timestamp``) or an
integer (``cursor_kind: id``). Every read checks this before fetching a row, because otherwise the
failure would come a night later.

* **Text timestamps** (SQLite tables often have ``GXSJ TEXT`` holding ``'2026-11-01 08:00:00'``): declare
  the parse, ``columns: {GXSJ: {type: timestamp}}`` (naive text ``YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]]``
  read in ``source_timezone``) or ``{type: date}`` for ``YYYY-MM-DD``. Undeclared, the table is refused
  before reading: ``department 'x', table 'T', column 'GXSJ': refused before reading: the timestamp cursor
  is TEXT in the source ... Declare how to parse it in sources.yaml: columns: {GXSJ: {type: timestamp}}``.
  A value that does not parse is loaded as null and flagged ``bad_date:GXSJ``; the row is kept.
  The source still compares the text (``WHERE GXSJ >= '2026-10-29 09:30:00'``), so the text must sort
  as time does: zero-padded ISO order, as above.
* **An id cursor** must be an integer column in the source (text compares as text: ``'10' < '9'``).
* **Bronze already holds the cursor as text** (loaded before the type was declared): a load refuses it
  as schema drift, nothing written, naming the column, the stored and the declared type::

      bronze table newcity/x: schema drift refused, nothing written: column 'GXSJ': string ->
      timestamp[us, tz=UTC] (declared) (... qst recast-cursor newcity x)

  The way out, once the ``type`` is declared: ``qst recast-cursor DEPARTMENT
  ASSET`` (``--home``, ``--sources`` as for ``qst``). It converts the stored text in place with the
  reader's own parse (:func:`connectors.bronze.recast_text_column`): every row stays, rows deleted at the
  source and lineage included, row hashes are recomputed so the next night's re-read compares unchanged,
  one atomic commit (the text stays in the Delta history until vacuum). Then run the night again. Never
  delete the bronze table to get out: bronze is the system of record, and a fresh read cannot restore
  the rows the source deleted nor when each row first landed (the scorecard's timeliness).

File drop (an item of ``files``)
================================
``name`` (required)
    snake_case asset name, unique within the department.
``folder`` (required)
    Folder where the files arrive; relative to the YAML file's folder, resolved to an absolute path, and
    inside one of the top-level ``file_roots``.  The folder does not need to exist when the configuration is
    loaded.
``pattern`` (required)
    Glob matched inside ``folder``, e.g. ``"*.csv"`` or ``"**/*.xlsx"`` (quote it: ``*`` starts a YAML
    alias).  Absolute patterns and ``..`` are rejected.
``format`` (required)
    ``csv`` or ``excel``.
``encoding`` (csv only, default ``auto``)
    ``auto`` (detect UTF-8 / GB18030), ``gbk``, ``gb18030`` or ``utf-8``.
``header_rows`` (default ``0``, 0..1000)
    Rows to skip before the real header row (titles, merged header rows).
``sheet`` (excel only, optional)
    Sheet name, or 0-based sheet index; default the first sheet.

Identifiers
===========
Table, schema and column names (and ``rename`` targets) are validated by
:func:`connectors.identifiers_sql.validate_identifier`: 1..63 characters, letters of any script
(``统一社会信用代码`` is fine), digits and ``_``, not starting with a digit.  Quotes, spaces, dots,
dashes, semicolons and control characters are rejected, so a name such as ``"x; DROP TABLE y"`` is an
error at load time.  Readers quote every name with :func:`connectors.identifiers_sql.quote_identifier`.

YAML notes
==========
* Duplicate keys are errors (plain YAML silently keeps the last one).
* YAML 1.1 reads unquoted ``NO``, ``ON``, ``Y``, ``off``... as booleans and ``2019`` as a number;
  quote such names: ``primary_key: ["NO"]``.  The error message says so when it happens.
* The file must be UTF-8.  Anchors, aliases and ``<<`` merge keys work as usual.

Python API
==========
* :func:`load_sources` (path), :func:`sources_from_yaml` (text), :func:`sources_from_dict` (parsed data)
  return a :class:`SourcesConfig`; any problem raises :class:`ConfigError`, whose ``.issues`` lists
  :class:`ConfigIssue` entries (origin, line, column, path, message).
* :meth:`SourcesConfig.table`, :meth:`SourcesConfig.department`, :meth:`SourcesConfig.iter_tables`,
  :meth:`SourcesConfig.iter_files`.
* :meth:`DepartmentConfig.resolve_url` (reads the environment, never puts the URL in an error),
  :meth:`DepartmentConfig.effective_timezone`, :meth:`DepartmentConfig.effective_max_concurrent_reads`.
* :meth:`TableConfig.effective_lookback`, :meth:`TableConfig.effective_batch_rows`,
  :meth:`TableConfig.output_name`, :meth:`TableConfig.qualified_source`.
* :func:`redact_url` for logging a URL; :func:`schema_json` for the JSON schema of the format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lake.yamlfile import (
    ConfigError,
    ConfigIssue,
    Indexer,
    Pos,
    StrictSafeLoader,
    Translator,
    misspelled_required,
    model_at,
    yaml_issue,
    yaml_kind,
)

from .config_schema import ConnectionConfig, SourcesConfig

__all__ = [
    "SUPPORTED_VERSION",
    "json_schema",
    "load_sources",
    "schema_json",
    "sources_from_dict",
    "sources_from_yaml",
]

SUPPORTED_VERSION = 1


# --------------------------------------------------------------------------------------------------
# JSON schema


def json_schema() -> dict[str, Any]:
    """The JSON schema of the format (as a dict)."""
    return SourcesConfig.model_json_schema(by_alias=True, mode="validation")


def schema_json(indent: int = 2) -> str:
    """The JSON schema of the format, as JSON text (for editors: yaml-language-server etc.)."""
    return json.dumps(json_schema(), indent=indent, ensure_ascii=False)


# --------------------------------------------------------------------------------------------------
# loading


class _SourcesTranslator(Translator):
    """The generic messages of :class:`lake.yamlfile.Translator`, plus the two only ``sources.yaml`` has."""

    def message(self, err: Mapping[str, Any], loc: tuple, is_key: bool) -> str:
        etype = err["type"]
        if etype == "extra_forbidden" and model_at(loc[:-1], self.root) is ConnectionConfig:
            key = loc[-1] if loc else "?"
            return (
                f"unknown key {key!r}: a connection is either 'sqlite: <file>' or 'url_env: <NAME of an "
                "environment variable>'; URLs and passwords never go in this file"
            )
        if etype == "literal_error" and loc == ("version",):
            return f"unsupported version; this Quanshitong reads version {SUPPORTED_VERSION}"
        return super().message(err, loc, is_key)


def _validate(data: Any, *, base_dir: Path, origin: str, positions: Mapping[tuple, Pos]) -> SourcesConfig:
    tr = _SourcesTranslator(origin, positions, SourcesConfig)
    if not isinstance(data, dict):
        raise ConfigError(
            tr.issue(
                (), f"the file must be a mapping with 'version' and 'departments', not {yaml_kind(data)}"
            )
        )
    try:
        config = SourcesConfig.model_validate(data, context={"base_dir": Path(base_dir)})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        misspelled = misspelled_required(errors, SourcesConfig)
        issues = [
            i
            for err in errors
            if not (err["type"] == "missing" and tuple(err["loc"]) in misspelled)
            for i in tr.translate(err)
        ]
        issues.sort(key=lambda i: (i.line if i.line is not None else 0, i.column or 0))
        raise ConfigError(issues) from None
    config._origin = origin
    for key, dept in config.departments.items():
        dept._origin = origin
        dept._url_env_at = tr.locate(("departments", key, "connection", "url_env"))
    return config


def sources_from_yaml(text: str, *, base_dir: Path | str, origin: str = "<string>") -> SourcesConfig:
    """Parse and validate YAML text; relative paths are relative to ``base_dir``."""
    loader = StrictSafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise ConfigError(yaml_issue(origin, exc)) from None
        if node is None:
            raise ConfigError(
                ConfigIssue(
                    origin,
                    None,
                    None,
                    "",
                    "the file is empty; it needs at least 'version: 1' and 'departments'",
                )
            )
        indexer = Indexer(loader, origin)
        indexer.walk(node, (), frozenset())
        if indexer.issues:
            raise ConfigError(sorted(indexer.issues, key=lambda i: (i.line or 0, i.column or 0)))
        try:
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise ConfigError(yaml_issue(origin, exc)) from None
    finally:
        loader.dispose()
    return _validate(data, base_dir=Path(base_dir), origin=origin, positions=indexer.positions)


def load_sources(path: str | Path) -> SourcesConfig:
    """Load and validate a ``sources.yaml`` file.  Raises :class:`ConfigError` listing every problem."""
    path = Path(path)
    origin = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            ConfigIssue(origin, None, None, "", f"cannot read the file: {exc.strerror or type(exc).__name__}")
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            ConfigIssue(origin, line, None, "", "the file is not valid UTF-8 (GBK?); save it as UTF-8")
        ) from None
    return sources_from_yaml(text, base_dir=path.absolute().parent, origin=origin)


def sources_from_dict(data: dict, *, base_dir: Path, origin: str = "<dict>") -> SourcesConfig:
    """Validate an already-parsed configuration (no line numbers in errors)."""
    return _validate(data, base_dir=Path(base_dir), origin=origin, positions={})
