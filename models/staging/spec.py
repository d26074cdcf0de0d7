"""The staging spec: how one bronze table becomes one staging model ``stg_<department>__<asset>``.

A spec is data (a YAML file in the deployment's ``specs/`` folder, one per source table), kept apart from the engine
that applies it (:mod:`models.staging.stage`) — so onboarding a table to silver is writing a spec, not code.
Errors name the file, line and key (the same reporting as ``sources.yaml``).

.. code-block:: yaml

    source: samr/registrations          # the bronze table: <department>/<asset>
    grain: one row per registration record (ZTID)
    columns:                            # canonical column <- bronze column, standardized as <kind>
      local_id: {from: ZTID}                           # kind 'text' (default): null markers -> null, trimmed
      name: {from: QYMC, as: enterprise_name}
      uscc: {from: TYSHXYDM, as: uscc}
      status: {from: DJZT, as: code, crosswalk: status}
      division_code: {from: ZS, as: division, code_column: XZQHDM}
      legal_rep_id_number: {from: FDDBRZJHM, as: resident_id}
    enterprises: [{role: subject}]      # mentions: which columns describe an enterprise (see below)
    persons: [{role: legal_rep, prefix: legal_rep_, related: subject}]
    events: [{type: registration, event_category: business_registration, subject: subject, date: founded_on,
              status: status}]
    quarantine:
      - {reason: no_name_no_identifier, all_missing: [name, uscc, regno]}
    mandatory: [name, uscc, founded_on]  # what the department must fill (the scorecard's completeness)
    expectations:                       # this table's own rules, beside those of every kind
      - {rule: not_null, column: uscc, severity: hard, why: every registration since 2015 has a USCC}
    authority:                          # golden attribute group -> rank (1 = most authoritative)
      enterprise: {name: 1, uscc: 1, status: 1, legal_rep: 1, phone: 2}
      person: {name: 1, id_number: 1}
    keys: {local: local_id}             # ZTID: the registry's own number, a link key within samr (Keys below)
    relations: []                       # employment / roster between the row's mentions (Relations below)
    service_cases: {case_id: ..., item_code: ..., applied_at: ...}  # rows are service cases (spec_cases)

Kinds (``as``) and the staging columns each produces for a canonical name ``X`` (the main value in ``X``):

================  ============================================================================================
``text``          ``X`` (null markers -> null, whitespace stripped)
``enterprise_name`` ``X`` (normalized), ``X_original``, ``X_comparison``, ``X_legal_form``, ``X_region``,
                  ``X_is_branch``, ``X_parent_comparison``, ``X_status_suffix``
``person_name``   ``X`` (normalized), ``X_comparison``
``uscc`` ``org_code`` ``regno``  ``X``, ``X_status`` (valid | invalid | masked | missing)
``tin``           ``X``, ``X_kind``, ``X_status``, ``X_org_code``, ``X_resident_id``
``resident_id``   ``X``, ``X_status``, ``X_was_15``, ``X_birth_date``, ``X_sex``, ``X_masked``
``key_kind``      ``X``: what a mixed 证件号 column holds (uscc | org_code | old_tin | resident_id | unknown |
                  missing), for ``only_if`` and mention ``when`` conditions
``party_kind``    ``X``: whether a party column (``from``: its name) that mixes enterprises and persons holds an
                  enterprise | person | unknown | missing, by the optional ``key_column`` (a bronze 证件号: a valid
                  USCC, organization code or old TIN -> enterprise, a valid resident ID -> person), else by the
                  name (a legal form or organization word -> enterprise, 2-4 Han characters or a name with a
                  middle dot -> person), else unknown (:mod:`models.standardize.parties`)
``phone``         ``X``, ``X_kind``
``date`` ``datetime`` ``period``  ``X``, ``X_status`` (ok | sentinel | invalid | missing); ``period`` is a
                  month (``YYYYMM``) as its first day
``year``          ``X``: a bare year (``2025``, ``'2025年'``, ``'2025年度'``) as its January 1, ``X_status`` (ok |
                  invalid | missing): a tax rating's 评价年度 dates its event (``date: rating_year``)
``timestamp``     ``X``: a bronze timestamp kept as it is (UTC)
``amount``        ``X``: decimal(18,2) yuan, ``X_status`` (ok | invalid | missing)
``capital_wan``   ``X``: decimal(18,4) in 万元 from text like '500万元人民币', ``X_status``
``integer``       ``X``: Int64, ``X_status``
``code``          ``X``: the first target of the ``crosswalk`` (the deployment's ``crosswalks/<name>.csv``), ``X_<other
                  target>``, ``X_source`` (the department's code), ``X_unmapped`` (a code the crosswalk lacks)
``division``      ``X``: 6-digit division code from the address text ``from`` and the optional code column
                  ``code_column``; ``X_source`` (code | text), ``X_retired``
================  ============================================================================================

``only_if: CONDITION`` applies the kind only where the condition holds on earlier staging columns (elsewhere the
result is missing) — e.g. a 证件号 column read as a USCC only where ``key_kind`` says so. A condition
(:mod:`models.staging.spec_conditions`) is a mapping whose keys are staging columns or the operators ``not``,
``any``, ``all``, every entry holding (AND): ``COLUMN: [values]`` — the value is one of them (a null is in no
list); ``COLUMN: null`` — the column is null; ``not: CONDITION``; ``any: [CONDITION, ...]`` (OR); ``all:
[CONDITION, ...]`` (AND). E.g. ``{not: {party_type: [自然人]}}``, ``{party_uscc: null}``, ``{any: [{key_kind:
[uscc, org_code]}, {party_kind: [enterprise]}]}``, ``{not: {id_number: null}}``. The columns a condition names must
be defined above (``only_if``) or by the spec (``when``); ``not``, ``any`` and ``all`` are no column names.
``future: true`` marks a date column that may lie in the future (a deadline such as 公示期限): its
plausibility check allows dates up to the parser's range instead of tomorrow.

Mentions (``enterprises``, ``persons``) map staging columns to the canonical intermediate tables by name: a
mention with ``prefix: legal_rep_`` reads ``legal_rep_name``, ``legal_rep_id_number`` ... (the fields of
:mod:`models.canonical`); absent columns are null. ``role`` is the mention's role in the record (subject,
legal_rep, party, employer, applicant); ``when: CONDITION`` (as ``only_if``) restricts it to some rows; ``related``
names the role of the enterprise mention of the same row (a legal representative's enterprise). Every declared
mention is accounted for: on each staged row where its ``when`` holds it is emitted, or — with no name and no
identifier there — quarantined (``HOME/lake/quarantine/mentions/<table>``, reason
``mention_without_name_or_identifier``, naming the spec, role and row key); the blocking check
``mentions_reconcile`` counts both (:func:`quality.quarantine.reconcile_mentions`). An enterprise mention may
declare ``former_names: [COLUMN, ...]`` (staging columns of kind ``enterprise_name``: a change log's old name,
曾用名): each non-null one adds a record of role ``former_name`` of the same row — the name, no identifier —
linked to the mention's record as the same entity (``link_same_entity``, the deterministic rule
``former_name``), so other departments' records under the old name resolve to it; the golden name is never a
former name (the golden enterprise lists them in ``former_names``). ``former_name`` is no role to declare.

Events (``events``) put a row on the canonical timeline: ``type`` (the deployment's own name, free),
``event_category`` (required: what the event means to the marts, one of the closed vocabulary of
:mod:`models.events` — ``business_registration``, ``tax_registration``, ``abnormal_listing``,
``market_penalty``, ``environmental_penalty``, ``other_penalty``, ``court_case``, ``judgment_default``,
``tax_rating``, ``tax_arrears``, ``tax_filing``, ``social_contribution``, ``insurance_enrollment``,
``service_case``, ``other``; the marts and risk rules count categories, never types), the ``subject`` role,
and the staging columns for ``date`` (required), ``end_date``, ``amount``, ``category`` (the event's detail:
a reason, a litigation role, a rating ...), ``reference``, ``status``.

Expectations (``expectations``): ``rule`` one of ``not_null``, ``unique``, ``in_set`` (with ``values``),
``between`` (with ``min`` and/or ``max``); ``column``; ``severity`` ``hard`` (default: a failure blocks
downstream assets) or ``soft`` (a warning); ``mostly`` (the share of rows that must comply); ``why``.

Authority (``authority``): which golden attribute groups this source is authoritative for, per kind
(``enterprise``, ``person``; the groups are the survivorship rules' of :mod:`models.gold.survivorship`:
enterprise ``name uscc regno org_code tin status legal_rep address phone industry founded_on capital``, person
``name id_number phone address``). For each group the golden record takes the value of the best-ranked source
that has a valid one (rank 1 before 2; equal ranks: the most recently updated record); a source that declares
nothing for a group comes after every declaring source. A group no spec declares is decided by recency alone
and the gold build warns. This is where a deployment says which department keeps its city's legal record: no
later layer knows a department by name. An unknown kind or group is an error naming the known ones.

Keys (``keys``): which staging columns hold a department's own numbers, so that entity resolution may link on
them within that department and nowhere else (an employer account number means nothing to another bureau).
``local: COLUMN`` — this table's own key (a social-security employer number); ``references: [{column: COLUMN,
table: <department>/<asset>}]`` — a column holding the local key of another table of the same department (an
insured person's employer number, a change log's enterprise id); that table's spec must declare ``local``. Each
column must be the ``local_id`` an enterprise mention reads (``<prefix>local_id``): the canonical record then
carries the key as ``link_local_key`` (``<department>/<asset>:<value>`` of the table that owns it) and the
deterministic pass links records sharing it. A ``local_id`` no key declares is kept but links nothing.

Relations (``relations``): what the rows of this table say between the persons and enterprises they mention,
which the marts read without knowing the table: ``{kind: employment, person: ROLE, enterprise: ROLE}`` — the
person works at (is insured by) the enterprise of the same row (the marts' ``insured_at`` links, and the insured
headcount counted from them when no spec declares a reported ``insured_headcount``); ``{kind: roster, person:
ROLE}`` — the person is listed on a resident roster (a street office's grid list: ``on_street_roster``). A
person mention takes part in one relation at most, and not beside ``related``. A reported headcount is an
enterprise attribute: staging columns named ``insured_headcount`` (``as: integer``), ``contribution_month``
(``as: period``) and ``contribution_arrears`` (``as: amount``) on an enterprise mention's row are its monthly
insured headcount and arrears (:mod:`models.canonical`).

Quarantine rules: a row matching any rule leaves silver for the quarantine table with the rule's
``reason`` (all the reasons that apply). ``all_missing: [cols]`` — every listed column is null;
``invalid: col`` — the column's ``_status`` says its value could not be read (invalid); ``missing: col`` —
the column is null.
"""

from __future__ import annotations

import difflib
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from lake.deployment import current_deployment
from lake.yamlfile import ConfigError, ConfigIssue, load_yaml_model
from models.roles import DERIVED_ROLES
from models.staging.spec_cases import ServiceCasesSpec
from models.staging.spec_conditions import OPERATORS, Condition, condition_columns
from models.staging.spec_kinds import IDENTIFIER_KINDS, KIND_SUFFIXES, Kind
from models.staging.spec_sections import (
    SOURCE_PATTERN,
    SPEC_CONFIG,
    AuthoritySpec,
    EventSpec,
    ExpectationSpec,
    KeyReference,
    KeysSpec,
    QuarantineRule,
    RelationSpec,
    canonical_name,
)

__all__ = [
    "AuthoritySpec",
    "ColumnSpec",
    "EventSpec",
    "ExpectationSpec",
    "KeyReference",
    "KeysSpec",
    "MentionSpec",
    "QuarantineRule",
    "RelationSpec",
    "StagingSpec",
    "load_spec",
    "load_specs",
    "target_suffix",
]


class ColumnSpec(BaseModel):
    model_config = SPEC_CONFIG

    source: str = Field(alias="from", min_length=1, description="the bronze column")
    kind: Kind = Field("text", alias="as")
    crosswalk: str | None = None
    code_column: str | None = None
    key_column: str | None = None  # party_kind: the bronze 证件号 column read beside the name
    only_if: Condition = None
    future: bool = False  # a date that may lie in the future: a deadline (公示期限), not a recorded fact

    @model_validator(mode="after")
    def _options(self) -> ColumnSpec:
        if (self.kind == "code") != (self.crosswalk is not None):
            raise ValueError("'crosswalk' goes with 'as: code' and is required there")
        if self.code_column is not None and self.kind != "division":
            raise ValueError("'code_column' goes with 'as: division' only")
        if self.key_column is not None and self.kind != "party_kind":
            raise ValueError("'key_column' goes with 'as: party_kind' only")
        return self

    @property
    def second_source(self) -> str | None:
        """The second bronze column a kind reads beside ``from`` (a division's code, a party's key), if any."""
        return self.code_column or self.key_column

    def bronze_columns(self) -> list[str]:
        return [self.source] + ([self.second_source] if self.second_source else [])


class MentionSpec(BaseModel):
    model_config = SPEC_CONFIG

    role: str
    prefix: str = ""
    when: Condition = None
    related: str | None = None
    #: staging columns (kind enterprise_name) holding the enterprise's former names (曾用名): enterprises only
    former_names: list[str] = []

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        if v in DERIVED_ROLES:
            raise ValueError(f"{v!r} is a role the canonical build derives itself; choose another")
        return canonical_name(v)


class StagingSpec(BaseModel):
    model_config = SPEC_CONFIG

    source: str
    grain: str
    description: str | None = None
    columns: dict[str, ColumnSpec]
    enterprises: list[MentionSpec] = []
    persons: list[MentionSpec] = []
    events: list[EventSpec] = []
    quarantine: list[QuarantineRule] = []
    mandatory: list[str] = []
    expectations: list[ExpectationSpec] = []
    authority: AuthoritySpec = AuthoritySpec()
    keys: KeysSpec = KeysSpec()
    relations: list[RelationSpec] = []
    service_cases: ServiceCasesSpec | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if not SOURCE_PATTERN.match(v):
            raise ValueError(f"{v!r} must be '<department>/<asset>', both snake_case")
        return v

    @field_validator("columns")
    @classmethod
    def _names(cls, v: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        if not v:
            raise ValueError("must name at least one column")
        for name in v:
            canonical_name(name)
            if name in OPERATORS:
                raise ValueError(
                    f"{name!r} is an operator of conditions ({', '.join(OPERATORS)}), not a column name"
                )
        return v

    @model_validator(mode="after")
    def _references(self) -> StagingSpec:
        produced = self.output_columns()
        problems: list[str] = []

        def need(col: str | None, where: str) -> None:
            if col is not None and col not in produced:
                problems.append(f"{where}: {col!r} is not a staging column of this spec")

        located: list[tuple[tuple, str]] = []  # (path, message): reported at the key's own line

        def condition(cond: dict | None, at: tuple, known: list[str], what: str) -> None:
            for path, col in condition_columns(cond):
                if col not in known:
                    close = difflib.get_close_matches(col, known, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    located.append(((*at, *path), f"{col!r} is not a staging column {what}{hint}"))

        seen: list[str] = []
        for name, column in self.columns.items():
            condition(column.only_if, ("columns", name, "only_if"), seen, "defined above this one")
            seen += self._outputs_of(name, column)
        roles = {m.role for m in self.enterprises} | {m.role for m in self.persons}
        for group in ("enterprises", "persons"):
            for i, m in enumerate(getattr(self, group)):
                condition(m.when, (group, i, "when"), produced, "of this spec")
                if m.related is not None and m.related not in {e.role for e in self.enterprises}:
                    problems.append(f"{group}[{i}].related: no enterprise mention has role {m.related!r}")
                if not any(c.startswith(m.prefix) for c in produced):
                    problems.append(f"{group}[{i}].prefix: no staging column starts with {m.prefix!r}")
                for j, col in enumerate(m.former_names):
                    at = (group, i, "former_names", j)
                    if group == "persons":
                        located.append((at, "former names are an enterprise mention's (曾用名)"))
                    elif self.kind_of(col) != "enterprise_name":
                        located.append((at, f"{col!r} is not a staging column of kind enterprise_name"))
        for i, e in enumerate(self.events):
            if e.subject not in roles:
                problems.append(f"events[{i}].subject: no mention has role {e.subject!r}")
            for field, col in e.columns().items():
                need(col, f"events[{i}].{field}")
        for i, r in enumerate(self.quarantine):
            for col in r.columns():
                need(col, f"quarantine[{i}]")
            if r.invalid is not None and f"{r.invalid}_status" not in produced:
                problems.append(f"quarantine[{i}].invalid: {r.invalid!r} has no status (kind without one)")
        for col in self.mandatory:
            need(col, "mandatory")
        for i, x in enumerate(self.expectations):
            need(x.column, f"expectations[{i}].column")
        for kind, mentions in (("enterprise", self.enterprises), ("person", self.persons)):
            if self.authority.ranks()[kind] and not mentions:
                problems.append(f"authority.{kind}: the spec has no {kind} mentions ({kind}s:) to rank")
        problems += self._key_problems(produced) + self._relation_problems()
        located += [(("service_cases", f), m) for f, m in self._case_problems(produced)]
        if located and not problems:  # each at its key's line
            issues = [(path, m, None) for path, m in located]
            raise PydanticCustomError(
                "qst_rules", "{summary}", {"summary": "; ".join(m for _, m in located), "issues": issues}
            )
        problems += [f"{'.'.join(map(str, path))}: {m}" for path, m in located]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _case_problems(self, produced: list[str]) -> list[tuple[str, str]]:
        if self.service_cases is None:
            return []
        kinds = {n: c.kind for n, c in self.columns.items()}
        return self.service_cases.problems(produced, kinds, {m.role for m in self.enterprises})

    def _key_problems(self, produced: list[str]) -> list[str]:
        """A declared key must be a staging column an enterprise mention reads as its ``local_id``."""
        read = {f"{m.prefix}local_id" for m in self.enterprises}
        declared = [("keys.local", self.keys.local)] + [
            (f"keys.references[{i}].column", r.column) for i, r in enumerate(self.keys.references)
        ]
        problems = []
        for where, col in declared:
            if col is None:
                continue
            if col not in produced:
                problems.append(f"{where}: {col!r} is not a staging column of this spec")
            elif col not in read:
                problems.append(
                    f"{where}: {col!r} is not the local_id of an enterprise mention (one reads <prefix>local_id: "
                    f"{sorted(read)})"
                )
        for i, r in enumerate(self.keys.references):
            if r.table.split("/")[0] != self.department:
                problems.append(
                    f"keys.references[{i}].table: {r.table!r} is not of department {self.department!r} "
                    "(a local key is valid within its department only)"
                )
            if r.column == self.keys.local:
                problems.append(f"keys.references[{i}].column: {r.column!r} is this table's local key")
        return problems

    def _relation_problems(self) -> list[str]:
        persons = {m.role: m for m in self.persons}
        enterprises = {m.role for m in self.enterprises}
        problems = []
        seen: set[str] = set()
        for i, r in enumerate(self.relations):
            if r.person not in persons:
                problems.append(f"relations[{i}].person: no person mention has role {r.person!r}")
            elif persons[r.person].related is not None or r.person in seen:
                problems.append(f"relations[{i}].person: {r.person!r} already has a related enterprise")
            seen.add(r.person)
            if r.enterprise is not None and r.enterprise not in enterprises:
                problems.append(f"relations[{i}].enterprise: no enterprise mention has role {r.enterprise!r}")
        return problems

    # ---- derived -----------------------------------------------------------------------------------
    def key_space(self, mention: MentionSpec) -> str | None:
        """The table whose local key an enterprise mention's ``local_id`` holds (``<department>/<asset>``), or
        None when no key is declared for it (its ``local_id`` links nothing)."""
        column = f"{mention.prefix}local_id"
        if column == self.keys.local:
            return self.source
        return next((r.table for r in self.keys.references if r.column == column), None)

    def relation_of(self, role: str) -> RelationSpec | None:
        """The relation a person mention takes part in (at most one, :meth:`_relation_problems`)."""
        return next((r for r in self.relations if r.person == role), None)

    @property
    def department(self) -> str:
        return self.source.split("/")[0]

    @property
    def asset(self) -> str:
        return self.source.split("/")[1]

    @property
    def name(self) -> str:
        """``stg_<department>__<asset>`` (dbt's naming: the layer, the source, the table)."""
        return f"stg_{self.department}__{self.asset}"

    @staticmethod
    def _outputs_of(name: str, col: ColumnSpec) -> list[str]:
        from models.standardize.codes import TARGETS  # the crosswalk's target columns

        suffixes = list(KIND_SUFFIXES[col.kind])
        if col.kind == "code":
            targets = TARGETS.get(col.crosswalk or "", ())
            suffixes = [target_suffix(t) for t in targets[1:]] + suffixes
        return [name] + [f"{name}_{s}" for s in suffixes]

    def output_columns(self) -> list[str]:
        """Every staging column this spec produces, in order (lineage columns not included)."""
        out: list[str] = []
        for name, col in self.columns.items():
            out += self._outputs_of(name, col)
        return out

    def bronze_columns(self) -> list[str]:
        return list(dict.fromkeys(c for col in self.columns.values() for c in col.bronze_columns()))

    def kind_of(self, column: str) -> str | None:
        """The kind of a staging column's main value (None for a derived ``X_<suffix>`` column)."""
        col = self.columns.get(column)
        return col.kind if col else None

    @cached_property
    def identifier_columns(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.kind in IDENTIFIER_KINDS]


def target_suffix(target: str) -> str:
    """A crosswalk target column as a staging suffix: 'industry_section' -> 'section'."""
    return target.split("_", 1)[1] if "_" in target else target


def load_spec(path: str | Path) -> StagingSpec:
    """One spec file, validated (raises :class:`connectors.config.ConfigError` naming file:line:key)."""
    return load_yaml_model(path, StagingSpec)


def load_specs(folder: str | Path | None = None) -> dict[str, StagingSpec]:
    """Every ``*.yaml`` spec of ``folder`` (default: the deployment's ``specs/``, :mod:`lake.deployment`) by source
    (``samr/registrations``). All files are read and all problems reported together; the file name must be
    the model's name (``stg_samr__registrations.yaml``) so a newcomer finds it."""
    folder = Path(folder) if folder else current_deployment().specs
    if not folder.is_dir():
        raise ConfigError([ConfigIssue(str(folder), None, None, "", "no staging specs folder here")])
    specs: dict[str, StagingSpec] = {}
    paths: dict[str, Path] = {}
    issues = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            spec = load_spec(path)
        except ConfigError as exc:
            issues += exc.issues
            continue

        if path.stem != spec.name:
            issues.append(
                ConfigIssue(
                    str(path), 1, 1, "source", f"the file of {spec.source!r} must be named {spec.name}.yaml"
                )
            )
        elif spec.source in specs:
            issues.append(ConfigIssue(str(path), 1, 1, "source", f"{spec.source!r} has two specs"))
        else:
            specs[spec.source] = spec
            paths[spec.source] = path
    # a key reference names another spec's table: checked once all are read, reloading the referring file so
    # that the error stands at its line
    local_keys = {s.source for s in specs.values() if s.keys.local is not None}
    for source, spec in specs.items():
        if any(r.table not in local_keys for r in spec.keys.references):
            try:
                load_yaml_model(paths[source], StagingSpec, context={"local_keys": local_keys})
            except ConfigError as exc:
                issues += exc.issues
    if issues:
        raise ConfigError(issues)
    return specs
