"""The findings of `qst check` (:mod:`quality.deployment_check`) and where they point in a YAML file.

Why a module of its own: the checks of the sources and specs and those of exports.yaml
(:mod:`quality.exports_check`) report the same way, each finding naming the file and line and what to do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from lake.yamlfile import ConfigError, ConfigIssue, Indexer, Pos, StrictSafeLoader

__all__ = ["CheckReport", "Finding", "Severity", "add_issues", "iter_lines", "located", "yaml_positions"]

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Finding:
    """One problem (or piece of information): where it is, what is wrong and what to do."""

    severity: Severity
    where: str  # "file" or "file:line"
    message: str

    def __str__(self) -> str:
        return f"{self.severity.upper():<7} {self.where}: {self.message}"


@dataclass
class CheckReport:
    """Every finding of one check of a deployment, in the order the checks ran."""

    findings: list[Finding] = field(default_factory=list)

    def add(self, severity: Severity, where: str, message: str) -> None:
        self.findings.append(Finding(severity, where, message))

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def ok(self) -> bool:
        return self.count("error") == 0

    def summary(self) -> str:
        e, w, n = self.count("error"), self.count("warning"), self.count("note")
        return f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}, {n} note{'s' * (n != 1)}"


# --------------------------------------------------------------------------------------------------
# where things are in a YAML file


def yaml_positions(path: Path) -> dict[tuple, Pos]:
    """Key path -> line of a YAML file already validated by its loader (so it parses); {} if it does not."""
    try:
        loader = StrictSafeLoader(path.read_text(encoding="utf-8-sig"))
        try:
            node = loader.get_single_node()
            indexer = Indexer(loader, str(path))
            if node is not None:
                indexer.walk(node, (), frozenset())
        finally:
            loader.dispose()
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ConfigError):
        return {}
    return indexer.positions


def located(path: Path, positions: Mapping[tuple, Pos], *keys: Any) -> str:
    """``file:line`` of the deepest of ``keys`` the file has (``file`` alone when none)."""
    for n in range(len(keys), 0, -1):
        pos = positions.get(tuple(keys[:n]))
        if pos is not None:
            return f"{path}:{pos.line}"
    return str(path)


def add_issues(report: CheckReport, issues: list[ConfigIssue]) -> None:
    """A loader's ConfigError issues (file:line:col: key: message) as errors of the report."""
    for issue in issues:
        report.add("error", issue.where, f"{issue.path}: {issue.message}" if issue.path else issue.message)


def iter_lines(report: CheckReport) -> Iterator[str]:
    """The report as printed: errors first, then warnings, then notes, then the summary line."""
    for severity in ("error", "warning", "note"):
        for f in report.findings:
            if f.severity == severity:
                yield str(f)
    yield report.summary()
