"""`qst check`'s checks of the vocabularies and of exports.yaml against the marts' contract.

Why apart from :mod:`quality.deployment_check`: these read no source, only the deployment's files and the
contracts the marts are built to (models/marts/contract, models/gold/docs.py).
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Mapping
from pathlib import Path

from lake.yamlfile import ConfigError
from models.staging.spec import StagingSpec
from quality.check_findings import CheckReport, add_issues, located, yaml_positions

__all__ = ["check_exports", "check_vocabulary"]


# --------------------------------------------------------------------------------------------------
# vocabularies and entitlements


def check_vocabulary(report: CheckReport, specs: Mapping[str, StagingSpec], folder: Path) -> None:
    """The event types of the specs are the vocabulary of int_events' checks; their categories (models/events.py)
    are what the marts count. Notes the categories no mart counts and the daily indicators no spec feeds."""
    from models.events import CATEGORY_BY_KEY
    from models.marts.kpi import INDICATORS

    by_type: dict[str, list[str]] = {}
    by_category: dict[str, list[str]] = {}
    for spec in specs.values():
        for e in spec.events:
            by_type.setdefault(e.type, []).append(spec.name)
            by_category.setdefault(e.category_key, []).append(spec.name)
    if not by_type:
        return
    report.add(
        "note",
        str(folder),
        f"event types (the vocabulary int_events is checked against): {', '.join(sorted(by_type))}; "
        f"their categories (what the marts count): {', '.join(sorted(by_category))}",
    )
    for category in sorted(set(by_category) & {"other"}):
        report.add(
            "note",
            str(folder / f"{by_category[category][0]}.yaml"),
            f"event category {category!r} ({CATEGORY_BY_KEY[category].name_zh}): its events reach int_events and "
            "the enterprise timeline, but no mart counts them",
        )
    for ind in INDICATORS:
        if ind.categories and not set(ind.categories) & set(by_category):
            report.add(
                "note",
                str(folder),
                f"daily indicator {ind.key!r} ({ind.name_zh}) counts {' / '.join(ind.categories)}, which no spec "
                "declares: the KPI mart leaves it out",
            )


def check_exports(report: CheckReport, path: Path) -> None:
    """exports.yaml through its own loader, then every table and column it names against the marts' contract."""
    from models.exports.entitlements import load_entitlements
    from models.gold.docs import GOLD_DOCS
    from models.marts.contract import EXTERNAL_TABLES, TABLES

    if not path.is_file():
        report.add("note", str(path), "no exports.yaml: no bureau receives an export")
        return
    try:
        config = load_entitlements(path)
    except ConfigError as exc:
        add_issues(report, exc.issues)
        return
    positions = yaml_positions(path)
    if not os.environ.get(config.signing_key_env, "").strip():  # said now, not hours into the night
        report.add(
            "warning",
            str(path),
            f"the environment variable {config.signing_key_env} (signing_key_env) is not set: no bureau is "
            "exported without the key that signs the manifests (models/exports/signing.py)",
        )

    def columns_of(table: str) -> set[str] | None:
        if table in TABLES:
            return set(TABLES[table].column_names)
        if table in EXTERNAL_TABLES:
            return set(importlib.import_module(EXTERNAL_TABLES[table]).COMMENTS[table]["columns"])
        if table in GOLD_DOCS:
            cols = set(GOLD_DOCS[table][1])
            return cols | {f"{c}_from" for c in cols}
        return None

    known_tables = sorted([*TABLES, *EXTERNAL_TABLES, *GOLD_DOCS])
    for key, bureau in config.bureaus.items():
        for i, t in enumerate(bureau.tables):
            cols = columns_of(t.table)
            at = ("bureaus", key, "tables", i)
            if cols is None:
                hint = difflib.get_close_matches(t.table, known_tables, n=1)
                report.add(
                    "error",
                    located(path, positions, *at, "table"),
                    f"bureaus.{key}.tables[{i}].table: {t.table!r} is not a table of the marts' contract "
                    f"(models/marts/contract){f' (did you mean {hint[0]!r}?)' if hint else ''}",
                )
                continue
            if not t.shared:
                continue
            named: list[tuple[tuple[str, str | int], str]] = [
                (("columns", out), t.source_of(out)) for out, _ in t.exported_columns()
            ]
            named += [
                (("rows", j), c) for j, r in enumerate(t.rows or []) for c in (r.column, r.related) if c
            ]
            for sub, column in named:
                if column in cols:
                    continue
                hint = difflib.get_close_matches(column, sorted(cols), n=1)
                report.add(
                    "error",
                    located(path, positions, *at, *sub),
                    f"bureaus.{key}.tables[{i}].{'.'.join(map(str, sub))}: column {column!r} is not a column of "
                    f"{t.table} in the marts' contract{f' (did you mean {hint[0]!r}?)' if hint else ''}",
                )
