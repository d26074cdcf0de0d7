"""Expectation suites for the silver tables, and their validation with Great Expectations 1.x.

Why suites are data (:class:`Suite`, a list of :class:`Rule`) derived from the staging specs and the canonical
schemas, not hand-written per table: a table onboarded by writing a spec gets its quality rules for free, and
every rule is written once, here — which columns a kind produces and which values they may hold, how complete
a mandatory column must be, which dates are plausible. The suites can be read, listed and tested without GX.

Two severities, because the two kinds of failure call for different responses:

- **hard** rules guard the contract downstream code relies on (lineage present, keys unique, status columns
  within their vocabulary, roles and event types that entity resolution and the marts know). A failure means a
  bug or a broken source: block downstream.
- **soft** rules measure the department's data (completeness of what it must fill, share of valid identifiers,
  codes the crosswalks know, plausible dates). A failure is a warning for the scorecard, never a stop.

Validation runs GX directly (``dagster-ge`` is pinned to GX < 1.0) on pandas (GX does not take Polars), in one
ephemeral context per process, with the SUMMARY result format, analytics and progress bars off. GX is imported
lazily: importing it costs about 7 s, which a process that only builds suites (Dagster loading its
definitions) should not pay.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
import pyarrow as pa

from lake.city import city_zone
from models.canonical import (
    ENTERPRISE_FIELDS,
    INTERMEDIATE_TABLES,
    PERSON_FIELDS,
    SCHEMAS,
)
from models.staging.spec import IDENTIFIER_KINDS, STATUS_KINDS, ExpectationSpec, StagingSpec, load_specs
from models.staging.stage import LINEAGE
from models.standardize import DATE_STATUSES, PHONE_KINDS, STATUSES, TIN_KINDS
from models.standardize.dates import PLAUSIBLE_RANGE
from models.standardize.identifiers import KEY_KINDS

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite
    from great_expectations.data_context import EphemeralDataContext

# GX reads this when it is imported; set it before any import of great_expectations (never overriding a
# deliberate choice of the environment).
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

Severity = Literal["hard", "soft"]

# ---- the vocabularies and thresholds (one place) ------------------------------------------------------
DATE_KINDS = frozenset({"date", "datetime", "period"})
#: Kinds whose value is a point in time, checked for plausibility (a bronze timestamp too: a legacy
#: system with a wrong clock writes update times in the future).
DATED_KINDS = DATE_KINDS | {"timestamp"}
NUMBER_KINDS = frozenset({"amount", "capital_wan", "integer"})
#: ``X_status`` of the number kinds, as :mod:`models.staging.stage` writes it (ok | invalid | missing).
NUMBER_STATUSES = ("ok", "invalid", "missing")
#: What an event's subject is (:func:`models.canonical.events`).
SUBJECT_KINDS = ("enterprise", "person")
#: The status vocabulary of each kind that has an ``X_status`` (every kind of ``STATUS_KINDS`` must be here).
STATUS_VOCABULARIES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(IDENTIFIER_KINDS, STATUSES),
    **dict.fromkeys(DATE_KINDS, DATE_STATUSES),
    **dict.fromkeys(NUMBER_KINDS, NUMBER_STATUSES),
}

COMPLETENESS_MOSTLY = 0.9  # a mandatory column filled on at least 90% of rows
VALIDITY_MOSTLY = 0.8  # at least 80% of the identifiers written in full are valid
MAPPED_MOSTLY = 0.99  # at most 1% of codes the crosswalk does not know
PLAUSIBLE_MOSTLY = 0.99  # at most 1% of dates outside the plausible range
EARLIEST_DATE = dt.datetime(1949, 10, 1)  # the founding of the PRC: no record of this estate predates it
TIMEZONE = city_zone()


@dataclass(frozen=True)
class Rule:
    """One expectation: ``expectation`` is a GX 1.x expectation class name (``ExpectColumnValuesToBeUnique``),
    ``kwargs`` its arguments (plain data, so a suite can be listed and compared without GX)."""

    name: str
    severity: Severity
    expectation: str
    kwargs: dict[str, Any]
    description: str

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")


@dataclass(frozen=True)
class Suite:
    """The rules of one table; ``name`` is the table's (``stg_samr__registrations``, ``int_events``)."""

    name: str
    rules: list[Rule]

    def __post_init__(self) -> None:
        names = [r.name for r in self.rules]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.name}: rule names must be unique, got {sorted(names)}")

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(f"{self.name} has no rule {name!r}")

    @property
    def columns(self) -> list[str]:
        """The columns the rules read (the only ones handed to GX)."""
        return list(dict.fromkeys(r.column for r in self.rules if r.column))


# ---- rule constructors ----------------------------------------------------------------------------------
def _not_null(column: str, severity: Severity, why: str, mostly: float | None = None) -> Rule:
    kwargs: dict[str, Any] = {"column": column} | ({"mostly": mostly} if mostly is not None else {})
    suffix = "complete" if severity == "soft" else "not_null"
    return Rule(f"{column}_{suffix}", severity, "ExpectColumnValuesToNotBeNull", kwargs, why)


def _unique(column: str) -> Rule:
    return Rule(
        f"{column}_unique",
        "hard",
        "ExpectColumnValuesToBeUnique",
        {"column": column},
        f"{column} identifies a row: the key downstream tables join and merge on",
    )


def _in_set(column: str, values: tuple[str, ...] | list[str], why: str) -> Rule:
    return Rule(
        f"{column}_in_vocabulary",
        "hard",
        "ExpectColumnValuesToBeInSet",
        {"column": column, "value_set": sorted(values)},
        why,
    )


def _valid_rate(column: str) -> Rule:
    """Valid identifiers among those written out in full. A missing identifier is a completeness matter (the
    mandatory columns), and a masked one (court publications mask ID numbers by law) a deliberate practice;
    counting either would make the rule fail every night on correct data (``regno`` is empty after 2015)."""
    status = f"{column}_status"
    return Rule(
        f"{column}_valid_rate",
        "soft",
        "ExpectColumnValuesToBeInSet",
        {
            "column": status,
            "value_set": ["valid"],
            "mostly": VALIDITY_MOSTLY,
            "row_condition": {
                "type": "comparison",
                "column": {"name": status},
                "operator": "NOT_IN",
                "parameter": ["missing", "masked"],
            },
        },
        f"at least {VALIDITY_MOSTLY:.0%} of the {column} values written in full pass the pattern and "
        "check digit",
    )


_DECLARED = {
    "not_null": "ExpectColumnValuesToNotBeNull",
    "unique": "ExpectColumnValuesToBeUnique",
    "in_set": "ExpectColumnValuesToBeInSet",
    "between": "ExpectColumnValuesToBeBetween",
}


def _declared(x: ExpectationSpec) -> Rule:
    """A rule a spec declares for its own table (``expectations:`` of the spec)."""
    kwargs: dict[str, Any] = {"column": x.column}
    if x.mostly is not None:
        kwargs["mostly"] = x.mostly
    if x.values is not None:
        kwargs["value_set"] = list(x.values)
    for bound, value in (("min_value", x.min), ("max_value", x.max)):
        if value is not None:
            kwargs[bound] = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return Rule(
        f"{x.column}_{x.rule}_declared",
        x.severity,
        _DECLARED[x.rule],
        kwargs,
        x.why or f"declared by the staging spec: {x.rule} on {x.column}",
    )


def _mapped(column: str) -> Rule:
    return Rule(
        f"{column}_mapped",
        "soft",
        "ExpectColumnValuesToBeInSet",
        {"column": f"{column}_unmapped", "value_set": [False], "mostly": MAPPED_MOSTLY},
        f"at most {1 - MAPPED_MOSTLY:.0%} of {column} codes are missing from the crosswalk",
    )


def _plausible(column: str, future: bool = False) -> Rule:
    """A recorded fact is not dated in the future (tomorrow allows for time zones); a deadline may be, up to
    the date parser's own plausible range."""
    if future:
        latest, until = dt.datetime.combine(PLAUSIBLE_RANGE[1], dt.time()), str(PLAUSIBLE_RANGE[1])
    else:
        tomorrow = dt.datetime.now(TIMEZONE).date() + dt.timedelta(days=1)
        latest, until = dt.datetime.combine(tomorrow, dt.time()), "tomorrow"
    return Rule(
        f"{column}_plausible",
        "soft",
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": EARLIEST_DATE, "max_value": latest, "mostly": PLAUSIBLE_MOSTLY},
        f"{column} between {EARLIEST_DATE.date()} and {until} on {PLAUSIBLE_MOSTLY:.0%} of rows",
    )


def vocabularies(column: str, kind: str) -> dict[str, tuple[str, ...]]:
    """The columns a canonical column ``column`` of ``kind`` produces that hold a closed vocabulary, with it."""
    out: dict[str, tuple[str, ...]] = {}
    if kind in STATUS_KINDS:
        out[f"{column}_status"] = STATUS_VOCABULARIES[kind]
    if kind == "tin":
        out[f"{column}_kind"] = TIN_KINDS
    if kind == "phone":
        out[f"{column}_kind"] = PHONE_KINDS
    if kind == "key_kind":
        out[column] = KEY_KINDS
    return out


# ---- suites -----------------------------------------------------------------------------------------
def suite_for_staging(spec: StagingSpec) -> Suite:
    """The rules of the staging model ``spec`` produces, in the order hard, then soft."""
    hard = [
        _not_null(c, "hard", "lineage: every silver row names the source row it came from") for c in LINEAGE
    ]
    hard.append(_unique("source_pk"))
    soft = [
        _not_null(
            c,
            "soft",
            f"{c} is mandatory for {spec.department}: filled on at least {COMPLETENESS_MOSTLY:.0%} of rows",
            COMPLETENESS_MOSTLY,
        )
        for c in spec.mandatory
    ]
    for name, col in spec.columns.items():
        for column, values in vocabularies(name, col.kind).items():
            why = f"the standardizer of kind {col.kind!r} writes one of {', '.join(values)}"
            hard += [_in_set(column, values, why), _not_null(column, "hard", why + " on every row")]
        if col.kind in IDENTIFIER_KINDS:
            soft.append(_valid_rate(name))
        if col.kind == "code":
            soft.append(_mapped(name))
        if col.kind in DATED_KINDS:
            soft.append(_plausible(name, future=col.future))
    for declared in spec.expectations:
        (hard if declared.severity == "hard" else soft).append(_declared(declared))
    return Suite(spec.name, hard + soft)


def _field_kinds(table: str, specs: Mapping[str, StagingSpec]) -> dict[str, set[str]]:
    """The kinds of the staging columns each field of an intermediate table is read from, over all specs."""
    kinds: dict[str, set[str]] = defaultdict(set)
    for spec in specs.values():
        if table == "int_events":
            pairs = [
                ("event_date" if f == "date" else f, c) for e in spec.events for f, c in e.columns().items()
            ]
        else:
            mentions, fields = (
                (spec.enterprises, ENTERPRISE_FIELDS)
                if table == "int_enterprise_records"
                else (spec.persons, PERSON_FIELDS)
            )
            pairs = [(f, m.prefix + f) for m in mentions for f in fields]
        for f, column in pairs:
            if (kind := spec.kind_of(column)) is not None:
                kinds[f].add(kind)
    return kinds


def _from_sources(specs: list[StagingSpec]) -> dict[str, Any]:
    """A GX row condition: the rows that came from one of these staging models. Some sources carry no name
    by design (a tax filing names its taxpayer by TIN only); their records must not count as incomplete."""
    assets: dict[str, list[str]] = defaultdict(list)
    for spec in specs:
        assets[spec.department].append(spec.asset)

    def comparison(column: str, operator: str, value: Any) -> dict[str, Any]:
        return {"type": "comparison", "column": {"name": column}, "operator": operator, "parameter": value}

    return {
        "type": "or",
        "conditions": [
            {
                "type": "and",
                "conditions": [
                    comparison("source_department", "==", d),
                    comparison("source_asset", "IN", sorted(a)),
                ],
            }
            for d, a in sorted(assets.items())
        ],
    }


def suite_for_intermediate(table_name: str, specs: Mapping[str, StagingSpec] | None = None) -> Suite:
    """The rules of one canonical intermediate table (:data:`models.canonical.INTERMEDIATE_TABLES`). The roles,
    event types and the kinds behind each field come from the staging specs (default: the shipped ones), so a
    new spec extends the vocabularies without a code change. Fields a staging model lacks are null, so the
    vocabulary rules ignore nulls here."""
    if table_name not in INTERMEDIATE_TABLES:
        raise ValueError(f"{table_name!r} is not an intermediate table ({', '.join(INTERMEDIATE_TABLES)})")
    specs = load_specs() if specs is None else specs
    schema = SCHEMAS[table_name]
    key = "event_id" if table_name == "int_events" else "record_id"
    hard = [
        _not_null(c, "hard", "lineage: every record names the source row it came from")
        for c in (key, *LINEAGE)
    ]
    hard.append(_unique(key))
    soft: list[Rule] = []
    if table_name == "int_events":
        types = {e.type for s in specs.values() for e in s.events}
        hard += [
            _in_set("event_type", sorted(types), "the event types the staging specs declare"),
            _in_set("subject_kind", SUBJECT_KINDS, "an event is about an enterprise or a person"),
            _not_null("subject_record_id", "hard", "an event points at the record of its subject"),
        ]
        soft.append(_not_null("event_date", "soft", "an event is dated", COMPLETENESS_MOSTLY))
    else:
        group = "enterprises" if table_name == "int_enterprise_records" else "persons"
        roles = {m.role for s in specs.values() for m in getattr(s, group)}
        hard += [
            _not_null("role", "hard", "every mention has a role"),
            _in_set("role", sorted(roles), f"the roles of the {group} mentions the staging specs declare"),
        ]
        named = [
            s
            for s in specs.values()
            if any(f"{m.prefix}name" in s.output_columns() for m in getattr(s, group))
        ]
        name_rule = _not_null(
            "name",
            "soft",
            "entity resolution compares names: a source that maps a name "
            f"fills it on at least {COMPLETENESS_MOSTLY:.0%} of records",
            COMPLETENESS_MOSTLY,
        )
        soft.append(replace(name_rule, kwargs=name_rule.kwargs | {"row_condition": _from_sources(named)}))
    for f, kinds in sorted(_field_kinds(table_name, specs).items()):
        allowed: dict[str, set[str]] = defaultdict(set)
        for kind in kinds:
            for column, values in vocabularies(f, kind).items():
                allowed[column].update(values)
        hard += [
            _in_set(
                c,
                sorted(v),
                f"the standardizers of kind {', '.join(sorted(kinds))} write one of {', '.join(sorted(v))}",
            )
            for c, v in allowed.items()
            if c in schema
        ]
        if kinds <= IDENTIFIER_KINDS and f"{f}_status" in schema:
            soft.append(_valid_rate(f))
        if kinds <= DATED_KINDS and f in schema:
            soft.append(_plausible(f))
    return Suite(table_name, hard + soft)


# ---- validation -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    success: bool
    observed: dict[str, Any]  # unexpected_count, unexpected_percent, partial_unexpected_list ... or exception


@dataclass
class SuiteReport:
    """What one validation found. ``rows`` is the frame's size; when ``sampled``, the rules saw a random
    ``validated_rows`` of them (a uniqueness rule then finds only duplicates both of whose rows were drawn)."""

    suite: Suite
    rows: int
    sampled: bool
    validated_rows: int
    results: list[RuleResult]
    validated_at: dt.datetime
    gx_result: Any = field(default=None, repr=False, compare=False)  # GX's own result, for Data Docs

    @property
    def failed_hard(self) -> list[str]:
        return [r.rule.name for r in self.results if not r.success and r.rule.severity == "hard"]

    @property
    def failed_soft(self) -> list[str]:
        return [r.rule.name for r in self.results if not r.success and r.rule.severity == "soft"]

    @property
    def passed_hard(self) -> bool:
        return not self.failed_hard

    def to_metadata(self) -> dict[str, Any]:
        """A JSON-serializable summary (for Dagster asset-check metadata)."""
        return {
            "suite": self.suite.name,
            "rows": self.rows,
            "sampled": self.sampled,
            "validated_rows": self.validated_rows,
            "validated_at": self.validated_at.isoformat(),
            "passed_hard": self.passed_hard,
            "failed_hard": self.failed_hard,
            "failed_soft": self.failed_soft,
            "rules": {
                r.rule.name: {"severity": r.rule.severity, "success": r.success, **r.observed}
                for r in self.results
            },
        }


_LOCK = threading.Lock()  # a GX context is not documented as thread-safe; validations are short


def _new_context() -> EphemeralDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@cache
def _context() -> EphemeralDataContext:
    """The process's GX context, with one pandas datasource: created once (not per validation)."""
    context = _new_context()
    context.data_sources.add_pandas("quanshitong")
    return context


@cache
def _batch_definition(table: str) -> Any:
    """One dataframe asset per table (so GX's results and docs name the table), whole-dataframe batches."""
    from great_expectations.datasource.fluent import PandasDatasource

    source = _context().data_sources.get("quanshitong")
    assert isinstance(source, PandasDatasource)  # _context added it with add_pandas
    return source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("whole")


def _gx_suite(suite: Suite) -> ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    def expectation(rule: Rule) -> Any:  # the rule's name in meta: GX returns results in its own order
        return getattr(gxe, rule.expectation)(
            **rule.kwargs,
            meta={"rule": rule.name, "description": rule.description},
            severity="critical" if rule.severity == "hard" else "warning",
        )

    return gx.ExpectationSuite(name=suite.name, expectations=[expectation(r) for r in suite.rules])


def to_pandas(frame: pl.DataFrame, columns: list[str]) -> Any:
    """The suite's columns of ``frame`` as pandas in dtypes GX compares correctly: decimals as floats, dates
    and tz-aware timestamps as naive datetime64 (UTC wall time; GX cannot compare a tz-aware column with
    the rules' bounds). Columns no rule reads (lists, structs, ...) are not converted at all; a column the
    suite names but the frame lacks is left out, so its rules fail naming it."""
    frame = frame.select([c for c in columns if c in frame.columns])
    casts = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Decimal):
            casts.append(pl.col(name).cast(pl.Float64))
        elif dtype == pl.Date:
            casts.append(pl.col(name).cast(pl.Datetime("us")))
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            casts.append(pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    return frame.with_columns(casts).to_pandas()


def _plain(value: Any) -> Any:
    """GX's result values as JSON types (numpy scalars, timestamps and NaN otherwise leak into metadata)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) or hasattr(value, "item"):
        number = value.item() if hasattr(value, "item") else value
        return None if isinstance(number, float) and math.isnan(number) else number
    return str(value)


def _observed(result: Any) -> dict[str, Any]:
    info = result.exception_info or {}
    errors = [
        i.get("exception_message")
        for i in ([info] if "raised_exception" in info else info.values())
        if isinstance(i, dict) and i.get("raised_exception")
    ]
    if errors:
        return {"exception": "; ".join(str(e) for e in errors)}
    r = result.result or {}
    out = {
        k: _plain(r[k])
        for k in (
            "element_count",
            "unexpected_count",
            "unexpected_percent",
            "missing_count",
            "observed_value",
        )
        if k in r
    }
    if "partial_unexpected_list" in r:
        out["partial_unexpected_list"] = [
            "null" if _plain(v) is None else str(v) for v in r["partial_unexpected_list"][:5]
        ]
    return out


def validate(
    frame: pl.DataFrame | pa.Table,
    suite: Suite,
    *,
    sample_rows: int = 200_000,
    seed: int = 0,
    total_rows: int | None = None,
) -> SuiteReport:
    """Run ``suite`` on ``frame`` with GX. A frame larger than ``sample_rows`` is validated on a random
    sample of that size (``seed`` makes it reproducible): GX on pandas holds the whole frame in memory.
    ``total_rows`` is the size of the table ``frame`` was already sampled from, for a caller that samples
    in storage (:func:`models.silver.sample_silver`), so the report still says it saw a sample."""
    df = frame if isinstance(frame, pl.DataFrame) else pl.from_arrow(frame)
    if not isinstance(df, pl.DataFrame):
        raise TypeError(f"validate() takes a Polars DataFrame or a pyarrow Table, not {type(frame).__name__}")
    rows = max(df.height, total_rows or 0)
    if df.height > sample_rows:
        df = df.sample(n=sample_rows, seed=seed)
    sampled = df.height < rows
    data = to_pandas(df, suite.columns)
    with _LOCK:
        batch = _batch_definition(suite.name).get_batch(batch_parameters={"dataframe": data})
        try:
            gx_result = batch.validate(_gx_suite(suite), result_format="SUMMARY")
        finally:  # GX keeps the last frame of every asset loaded; a long-lived process must not hold them all
            manager = batch.data.execution_engine.batch_manager
            manager.reset_batch_cache()
            manager.batch_data_cache.clear()
    by_rule = {r.expectation_config.meta["rule"]: r for r in gx_result.results}  # GX reorders its results
    results = [
        RuleResult(rule, bool(by_rule[rule.name].success), _observed(by_rule[rule.name]))
        for rule in suite.rules
    ]
    return SuiteReport(suite, rows, sampled, df.height, results, dt.datetime.now(dt.UTC), gx_result)


# ---- Data Docs ----------------------------------------------------------------------------------------
def build_data_docs(reports: list[SuiteReport], folder: Path, *, run_name: str = "quanshitong") -> Path:
    """GX Data Docs for the last report of each suite in ``reports``, written to ``folder``; returns its
    ``index.html``. A fresh ephemeral context holds just these results (the validation context keeps none,
    so a long-running process does not accumulate them) and its site writes to the folder — no file-backed
    GX project is needed. The site then shows exactly these results: GX's site builder removes the
    validation pages of an earlier build from the folder."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    last = {r.suite.name: r for r in reports}
    missing = [name for name, r in last.items() if r.gx_result is None]
    if missing:
        raise ValueError(f"reports without a GX result (not made by validate()): {', '.join(missing)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    context = _new_context()
    context.add_data_docs_site(
        "local",
        {
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(folder)},
        },
    )
    for name, report in last.items():
        context.suites.add(_gx_suite(report.suite))
        run_id = RunIdentifier(run_name=run_name, run_time=report.validated_at)
        report.gx_result.meta.update(run_id=run_id, validation_time=report.validated_at)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=name),
            run_id=run_id,
            batch_identifier=report.gx_result.batch_id or name,
        )
        context.validation_results_store.set(key, report.gx_result)
    context.build_data_docs(site_names=["local"])
    return folder / "index.html"


# ---- keeping the last result of each suite (for the Data Docs of a run) --------------------------------
def save_report(report: SuiteReport, folder: Path) -> Path:
    """Keep ``report`` as ``<folder>/<suite>.json`` (its summary and GX's own result): each asset validates
    its table once, in its own check, and the run's Data Docs are built from these files afterwards, so
    nothing is validated twice."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report.suite.name}.json"
    data = {"summary": report.to_metadata(), "gx_result": report.gx_result.to_json_dict()}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


def load_reports(folder: Path, suites: Mapping[str, Suite]) -> list[SuiteReport]:
    """The reports :func:`save_report` kept for ``suites`` (by name); a suite never validated is skipped."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema

    reports = []
    for name, suite in suites.items():
        path = Path(folder) / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        summary = data["summary"]
        results = [
            RuleResult(
                rule,
                bool(summary["rules"].get(rule.name, {}).get("success", False)),
                {
                    k: v
                    for k, v in summary["rules"].get(rule.name, {}).items()
                    if k not in ("severity", "success")
                },
            )
            for rule in suite.rules
        ]
        reports.append(
            SuiteReport(
                suite,
                summary["rows"],
                summary["sampled"],
                summary["validated_rows"],
                results,
                dt.datetime.fromisoformat(summary["validated_at"]),
                ExpectationSuiteValidationResultSchema().load(data["gx_result"]),
            )
        )
    return reports
