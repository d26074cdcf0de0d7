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

Validation with GX (and the Data Docs) is :mod:`quality.validation`; building suites never imports GX.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from lake.city import city_zone
from models.canonical import (
    ENTERPRISE_FIELDS,
    INTERMEDIATE_TABLES,
    PERSON_FIELDS,
    SCHEMAS,
)
from models.roles import FORMER_NAME_ROLE
from models.staging.spec import ExpectationSpec, StagingSpec, load_specs
from models.staging.spec_kinds import IDENTIFIER_KINDS, STATUS_KINDS
from models.staging.stage import LINEAGE
from models.standardize import DATE_STATUSES, PHONE_KINDS, STATUSES, TIN_KINDS
from models.standardize.codes import CANONICAL
from models.standardize.dates import PLAUSIBLE_RANGE, YEAR_STATUSES
from models.standardize.identifiers import KEY_KINDS
from models.standardize.parties import PARTY_KINDS

Severity = Literal["hard", "soft"]

# ---- the vocabularies and thresholds (one place) ------------------------------------------------------
DATE_KINDS = frozenset({"date", "datetime", "period", "year"})
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
    "year": YEAR_STATUSES,
    **dict.fromkeys(NUMBER_KINDS, NUMBER_STATUSES),
}

COMPLETENESS_MOSTLY = 0.9  # a mandatory column filled on at least 90% of rows
VALIDITY_MOSTLY = 0.8  # at least 80% of the identifiers written in full are valid
MAPPED_MOSTLY = 0.99  # at most 1% of codes the crosswalk does not know
PLAUSIBLE_MOSTLY = 0.99  # at most 1% of dates outside the plausible range
EARLIEST_DATE = dt.datetime(1949, 10, 1)  # the founding of the PRC: no record of this estate predates it


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
        tomorrow = dt.datetime.now(city_zone()).date() + dt.timedelta(days=1)
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
    if kind == "party_kind":
        out[column] = PARTY_KINDS
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
        elif table == "int_service_cases":
            pairs = _case_pairs(spec)
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


def _case_pairs(spec: StagingSpec) -> list[tuple[str, str]]:
    """(``int_service_cases`` field, staging column) of a spec declaring ``service_cases``."""
    cases = spec.service_cases
    if cases is None:
        return []
    pairs = list(cases.columns().items())
    prefixes = [m.prefix for m in spec.enterprises if m.role == cases.applicant]
    return pairs + [("applicant_uscc", f"{p}uscc") for p in prefixes]


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
    key = {"int_events": "event_id", "int_service_cases": "service_case_id"}.get(table_name, "record_id")
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
            _not_null("event_category", "hard", "every event declares what it means to the marts"),
            _in_set(
                "event_category",
                sorted({e.category_key for s in specs.values() for e in s.events}),
                "the event categories the staging specs declare (models/events.py: what the marts count)",
            ),
            _in_set("subject_kind", SUBJECT_KINDS, "an event is about an enterprise or a person"),
            _not_null("subject_record_id", "hard", "an event points at the record of its subject"),
        ]
        soft.append(_not_null("event_date", "soft", "an event is dated", COMPLETENESS_MOSTLY))
    elif table_name == "int_service_cases":
        statuses = sorted(CANONICAL["service_status"]["canonical_status"])
        hard += [
            _not_null("case_id", "hard", "a case is counted and linked by its number"),
            _not_null("item_code", "hard", "the marts group cases by service item"),
            _in_set(
                "case_status", statuses, "the statuses the service marts read (crosswalk service_status)"
            ),
        ]
        soft.append(
            _not_null("applied_at", "soft", "a case is dated by its application", COMPLETENESS_MOSTLY)
        )
    else:
        group = "enterprises" if table_name == "int_enterprise_records" else "persons"
        roles = {m.role for s in specs.values() for m in getattr(s, group)}
        if any(m.former_names for s in specs.values() for m in getattr(s, group)):
            roles.add(FORMER_NAME_ROLE)  # the records of declared former names (曾用名)
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
