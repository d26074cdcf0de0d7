"""Running the silver expectation suites (:mod:`quality.expectations`) with Great Expectations 1.x, their
reports, and GX Data Docs of a run.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from quality.expectations import Rule, Severity, Suite

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite
    from great_expectations.data_context import EphemeralDataContext

# GX reads this when it is imported; set it before any import of great_expectations (never overriding a
# deliberate choice of the environment).
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


#: How many of a failed rule's unexpected values a message shows.
SAMPLE_VALUES = 5


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    success: bool
    observed: dict[str, Any]  # unexpected_count, unexpected_percent, partial_unexpected_list ... or exception

    @property
    def samples(self) -> list[str]:
        """Up to :data:`SAMPLE_VALUES` distinct values that broke the rule, in GX's order (GX lists each row's
        value, so one undeclared event type would otherwise fill the sample alone)."""
        values = dict.fromkeys(str(v) for v in self.observed.get("partial_unexpected_list", []))
        return list(values)[:SAMPLE_VALUES]

    def describe(self) -> str:
        """One line naming the rule, its column, how many rows broke it and some of their values: what an
        operator needs to tell a broken source from a vocabulary the deployment has not declared."""
        column = self.rule.kwargs.get("column") or "(table)"
        line = f"{self.rule.name} on column {column}"
        if "exception" in self.observed:
            return f"{line}: could not run: {self.observed['exception']}"
        count = self.observed.get("unexpected_count")
        if count is not None:
            line += f": {count} unexpected value(s)"
            if (percent := self.observed.get("unexpected_percent")) is not None:
                line += f" ({percent:.2f}%)"
        elif (observed := self.observed.get("observed_value")) is not None:
            line += f": observed {observed}"
        if self.samples:
            line += f", e.g. {', '.join(repr(v) for v in self.samples)}"
        return line


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

    def failures(self, severity: Severity) -> list[RuleResult]:
        return [r for r in self.results if not r.success and r.rule.severity == severity]

    def describe(self, severity: Severity) -> str:
        """The rules of ``severity`` that failed, one :meth:`RuleResult.describe` each (the asset check's
        description, and the line `qst run` prints under a failed check); a pass says what was validated."""
        failed = self.failures(severity)
        if not failed:
            return f"{self.suite.name}: every {severity} rule passed on {self.validated_rows} row(s)"
        sample = f" (a sample of {self.validated_rows} of {self.rows} rows)" if self.sampled else ""
        return f"{self.suite.name}{sample}: " + "; ".join(r.describe() for r in failed)

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
            "failures": [
                {
                    "rule": r.rule.name,
                    "column": r.rule.column,
                    "severity": r.rule.severity,
                    "samples": r.samples,
                }
                for r in self.results
                if not r.success
            ],
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
