"""The canonical intermediate tables: every department's records in one language.

- ``int_enterprise_records`` — one row per (source record, enterprise it mentions): the input of enterprise
  entity resolution;
- ``int_person_records`` — one row per (source record, person it mentions);
- ``int_events`` — one row per event on the city's timeline (a registration, an abnormal-operations listing,
  a penalty, a court case, a tax filing ...), pointing at the record of its subject; ``event_type`` is the
  deployment's name for it, ``event_category`` what it means to the marts (the closed vocabulary of
  :mod:`models.events`, declared per event in the spec);
- ``int_service_cases`` — one row per service case (办件) of a table whose spec declares ``service_cases``
  (:mod:`models.staging.spec_cases`): what the service marts and the KPI's overdue cases read, so they never
  name a department's table.
- ``int_departments`` — one row per department of the deployment's ``sources.yaml``: its key, ``title`` and
  short name (:func:`departments`), so that the marts and the dashboard name a department without knowing any.

They are built from the staging models by the mentions and events of each staging spec
(:mod:`models.staging.spec`): a mention with ``prefix: legal_rep_`` reads the staging columns
``legal_rep_name``, ``legal_rep_id_number`` ... — the field names below with the prefix — and a field a
staging model does not have is null. The schemas here are the contract that entity resolution, the marts and
the quality suites rely on; one place, so that a column means the same everywhere.

``record_id`` is ``<department>.<asset>:<source_pk>:<role>``: unique, stable across nights (it changes only
when the source's primary key does), and traceable to the source row. A record's ``role`` and
``source_*`` columns match the simulator's truth (``department``, ``table``, ``pk``, ``role``).
"""

from __future__ import annotations

import polars as pl

from connectors.config_schema import SourcesConfig
from lake.city import city_timezone
from models.roles import FORMER_NAME_ROLE
from models.staging.spec import MentionSpec, StagingSpec
from models.staging.spec_conditions import condition_expr
from models.standardize.identifiers import org_code_from_tin, org_code_from_uscc

LINEAGE = pl.Schema(
    {
        "record_id": pl.Utf8(),
        "source_department": pl.Utf8(),
        "source_table": pl.Utf8(),
        "source_asset": pl.Utf8(),
        "source_pk": pl.Utf8(),
        "role": pl.Utf8(),
    }
)
UTC = pl.Datetime("us", "UTC")

#: Fields a staging model may provide for an enterprise mention (with the mention's prefix).
ENTERPRISE_FIELDS = pl.Schema(
    {
        "name": pl.Utf8(),
        "name_original": pl.Utf8(),
        "name_comparison": pl.Utf8(),
        "name_legal_form": pl.Utf8(),
        "name_region": pl.Utf8(),
        "name_is_branch": pl.Boolean(),
        "name_parent_comparison": pl.Utf8(),
        "name_status_suffix": pl.Utf8(),
        "uscc": pl.Utf8(),
        "uscc_status": pl.Utf8(),
        "org_code": pl.Utf8(),
        "org_code_status": pl.Utf8(),
        "regno": pl.Utf8(),
        "regno_status": pl.Utf8(),
        "tin": pl.Utf8(),
        "tin_kind": pl.Utf8(),
        "tin_status": pl.Utf8(),
        "local_id": pl.Utf8(),
        "address": pl.Utf8(),
        "division_code": pl.Utf8(),
        "phone": pl.Utf8(),
        "phone_kind": pl.Utf8(),
        "legal_rep_name": pl.Utf8(),
        "legal_rep_id_number": pl.Utf8(),
        "status": pl.Utf8(),
        "industry": pl.Utf8(),
        "industry_section": pl.Utf8(),
        "founded_on": pl.Date(),
        "registered_capital_wan": pl.Decimal(18, 4),
        # a reported monthly figure of an employer's row (the marts' insured headcount and social arrears)
        "insured_headcount": pl.Int64(),
        "contribution_month": pl.Date(),
        "contribution_arrears": pl.Decimal(18, 2),
        "updated_at": UTC,
    }
)
#: Derived when the mention is built (not read from staging): the organization code usable as a link key, and
#: the department's own key when the spec declares the mention's ``local_id`` one (``keys:``, the table owning
#: it and the value: ``social/employers:DW1``), so resolution links on it without knowing any department.
#: ``link_same_entity``: the record a former name (曾用名, role ``former_name``) was declared on, set on both
#: records, so the deterministic pass links them as one entity.
ENTERPRISE_DERIVED = pl.Schema(
    {
        "link_org_code": pl.Utf8(),
        "link_org_code_source": pl.Utf8(),
        "link_local_key": pl.Utf8(),
        "link_same_entity": pl.Utf8(),
    }
)

PERSON_FIELDS = pl.Schema(
    {
        "name": pl.Utf8(),
        "name_comparison": pl.Utf8(),
        "id_number": pl.Utf8(),
        "id_number_status": pl.Utf8(),
        "id_number_was_15": pl.Boolean(),
        "id_number_birth_date": pl.Date(),
        "id_number_sex": pl.Utf8(),
        "id_number_masked": pl.Utf8(),
        "phone": pl.Utf8(),
        "phone_kind": pl.Utf8(),
        "address": pl.Utf8(),
        "division_code": pl.Utf8(),
        "employer_local_id": pl.Utf8(),
        "employer_name": pl.Utf8(),
        "category": pl.Utf8(),
        "grid": pl.Utf8(),
        "updated_at": UTC,
    }
)
#: ``relation``: the declared relation of the mention (``relations:`` of its spec: ``employment`` — then
#: ``related_record_id`` is the employer's record on the same row — or ``roster``), or ``legal_rep`` for a mention
#: declared ``related`` (the enterprise it represents is ``related_record_id``), so the marts read employment
#: links, roster membership and legal representatives from any table that declares them, whatever its roles
#: are called.
PERSON_DERIVED = pl.Schema({"related_record_id": pl.Utf8(), "relation": pl.Utf8()})

EVENT_SCHEMA = pl.Schema(
    {
        "event_id": pl.Utf8(),
        "source_department": pl.Utf8(),
        "source_table": pl.Utf8(),
        "source_asset": pl.Utf8(),
        "source_pk": pl.Utf8(),
        "event_type": pl.Utf8(),
        "event_category": pl.Utf8(),
        "subject_record_id": pl.Utf8(),
        "subject_kind": pl.Utf8(),
        "event_date": pl.Date(),
        "end_date": pl.Date(),
        "amount": pl.Decimal(18, 2),
        "category": pl.Utf8(),
        "reference": pl.Utf8(),
        "status": pl.Utf8(),
    }
)
ENTERPRISE_SCHEMA = pl.Schema({**LINEAGE, **ENTERPRISE_FIELDS, **ENTERPRISE_DERIVED})
PERSON_SCHEMA = pl.Schema({**LINEAGE, **PERSON_FIELDS, **PERSON_DERIVED})

#: The fields that identify a mention: one of them must be present for the mention to be emitted.
ENTERPRISE_IDENTIFYING = ("name", "uscc", "org_code", "regno", "tin", "local_id")
PERSON_IDENTIFYING = ("name", "id_number")

#: One service case: the fields of a spec's ``service_cases`` (null where not declared); the applicant's USCC
#: and comparison name from its enterprise mention (``applicant``), which the start-up chain matches on.
SERVICE_CASE_FIELDS = pl.Schema(
    {
        "case_id": pl.Utf8(),
        "item_code": pl.Utf8(),
        "item_name": pl.Utf8(),
        "channel": pl.Utf8(),
        "applicant_type": pl.Utf8(),
        "applicant_uscc": pl.Utf8(),
        "applicant_uscc_status": pl.Utf8(),
        "applicant_name_comparison": pl.Utf8(),
        "applied_at": UTC,
        "accepted_at": UTC,
        "completed_at": UTC,
        "statutory_days": pl.Int64(),
        "promised_days": pl.Int64(),
        "case_status": pl.Utf8(),
        "satisfaction": pl.Int64(),
    }
)
SERVICE_CASE_SCHEMA = pl.Schema(
    {
        "service_case_id": pl.Utf8(),
        "source_department": pl.Utf8(),
        "source_table": pl.Utf8(),
        "source_asset": pl.Utf8(),
        "source_pk": pl.Utf8(),
        **SERVICE_CASE_FIELDS,
    }
)

#: The canonical tables of records, the input of entity resolution (events and cases point at records).
RECORD_TABLES = ("int_enterprise_records", "int_person_records")
INTERMEDIATE_TABLES = ("int_enterprise_records", "int_person_records", "int_events", "int_service_cases")

#: The deployment's departments: declared in ``sources.yaml``, not read from any staging model.
DEPARTMENT_SCHEMA = pl.Schema({"department": pl.Utf8(), "title": pl.Utf8(), "short_title": pl.Utf8()})
DEPARTMENTS_TABLE = "int_departments"


def departments(config: SourcesConfig) -> pl.DataFrame:
    """The departments of ``config`` in :data:`DEPARTMENT_SCHEMA`, by key: ``short_title`` is the title's part
    before its first space (:attr:`connectors.config_schema.DepartmentConfig.short_title`), null without one."""
    rows = [(key, dept.title, dept.short_title) for key, dept in sorted(config.departments.items())]
    return pl.DataFrame(rows, schema=DEPARTMENT_SCHEMA, orient="row")


def record_id(role: str | pl.Expr) -> pl.Expr:
    role_expr = pl.lit(role) if isinstance(role, str) else role
    return pl.concat_str(
        pl.col("source_department"),
        pl.lit("."),
        pl.col("source_asset"),
        pl.lit(":"),
        pl.col("source_pk"),
        pl.lit(":"),
        role_expr,
    )


def _field(staged: pl.DataFrame, prefix: str, field: str, dtype: pl.DataType) -> pl.Expr:
    name = f"{prefix}{field}"
    if name in staged.columns:
        return pl.col(name).cast(dtype).alias(field)
    return pl.lit(None, dtype).alias(field)


def _date_field(staged: pl.DataFrame, name: str) -> pl.Expr:
    """A staging column as a date: dates as they are, timestamps on their calendar day in the city's time zone."""
    dtype = staged.schema[name]
    if isinstance(dtype, pl.Datetime):
        col = pl.col(name)
        if dtype.time_zone is not None:
            col = col.dt.convert_time_zone(city_timezone())
        return col.dt.date()
    return pl.col(name).cast(pl.Date)


def mention_applies(m: MentionSpec) -> pl.Expr:
    """Where the mention is declared to exist: its ``when`` holds (every row without one). Each such row gives
    the mention or a quarantine row (:func:`models.staging.quarantine.mention_quarantine`)."""
    when = condition_expr(m.when)
    return pl.lit(True) if when is None else when


def mention_identified(columns: list[str], m: MentionSpec, identifying: tuple[str, ...]) -> pl.Expr:
    """Where the mention has something to be known by: a name or an identifier (of ``identifying``) among the
    staging ``columns``."""
    present = [pl.col(f"{m.prefix}{f}").is_not_null() for f in identifying if f"{m.prefix}{f}" in columns]
    return pl.any_horizontal(present) if present else pl.lit(False)


def _mention_filter(staged: pl.DataFrame, m: MentionSpec, identifying: tuple[str, ...]) -> pl.Expr:
    return mention_identified(staged.columns, m, identifying) & mention_applies(m)


def enterprise_records(staged: pl.DataFrame, spec: StagingSpec) -> pl.DataFrame:
    """The enterprise mentions of one staging frame, in :data:`ENTERPRISE_SCHEMA`.

    ``link_org_code`` is the organization code that can join this record to pre-2015 ones: a valid one as
    written, else the one embedded in a valid USCC, else in an old 15-character TIN (docs/domain/identifiers.md).
    A mention's declared former names (``former_names``) add one record each (:func:`_former_names`).
    """
    parts = []
    for m in spec.enterprises:
        rows = staged.filter(_mention_filter(staged, m, ENTERPRISE_IDENTIFYING))
        formers = [c for c in m.former_names if c in rows.columns]
        has_former = (
            pl.any_horizontal([pl.col(c).is_not_null() for c in formers]) if formers else pl.lit(False)
        )
        out = rows.select(
            record_id(m.role).alias("record_id"),
            "source_department",
            "source_table",
            "source_asset",
            "source_pk",
            pl.lit(m.role).alias("role"),
            *[_field(rows, m.prefix, f, t) for f, t in ENTERPRISE_FIELDS.items()],
        )
        from_written = pl.when(pl.col("org_code_status") == "valid").then(pl.col("org_code"))
        from_uscc = org_code_from_uscc(pl.when(pl.col("uscc_status") == "valid").then(pl.col("uscc")))
        from_tin = org_code_from_tin(pl.when(pl.col("tin_status") == "valid").then(pl.col("tin")))
        from_tin_uscc = org_code_from_uscc(
            pl.when((pl.col("tin_status") == "valid") & (pl.col("tin_kind") == "uscc")).then(pl.col("tin"))
        )
        out = out.with_columns(
            link_org_code=pl.coalesce(from_written, from_uscc, from_tin, from_tin_uscc),
            link_org_code_source=pl.when(from_written.is_not_null())
            .then(pl.lit("org_code"))
            .when(from_uscc.is_not_null())
            .then(pl.lit("uscc"))
            .when(from_tin.is_not_null() | from_tin_uscc.is_not_null())
            .then(pl.lit("tin")),
            link_local_key=_local_key(spec.key_space(m)),
            link_same_entity=pl.when(rows.select(has_former).to_series()).then(pl.col("record_id")),
        )
        parts.append(out)
        parts += [_former_names(rows, m, column) for column in formers]
    return _concat(parts, ENTERPRISE_SCHEMA)


def _former_names(rows: pl.DataFrame, m: MentionSpec, column: str) -> pl.DataFrame:
    """The former name in staging ``column`` (kind enterprise_name) of the rows of mention ``m`` as records of
    role ``former_name``: the name and its derived forms, no identifier, linked to the mention's record
    (``link_same_entity``). Their id is ``<department>.<asset>:<pk>:former_name__<role>__<column>``, unique per
    mention and column."""
    named = rows.filter(pl.col(column).is_not_null())
    name_fields = {f for f in ENTERPRISE_FIELDS if f == "name" or f.startswith("name_")}
    fields = [
        (pl.col(column + f.removeprefix("name")) if f in name_fields else _field(named, m.prefix, f, t))
        .cast(t)
        .alias(f)
        for f, t in ENTERPRISE_FIELDS.items()
        if f in name_fields or f == "updated_at"
    ]
    out = named.select(
        record_id(f"{FORMER_NAME_ROLE}__{m.role}__{column}").alias("record_id"),
        "source_department",
        "source_table",
        "source_asset",
        "source_pk",
        pl.lit(FORMER_NAME_ROLE).alias("role"),
        *fields,
        record_id(m.role).alias("link_same_entity"),
    )
    return out.with_columns(
        pl.lit(None, t).alias(c) for c, t in ENTERPRISE_SCHEMA.items() if c not in out.columns
    )


def _local_key(space: str | None) -> pl.Expr:
    """The mention's ``local_id`` as a link key of the table that owns it (null where no key is declared)."""
    if space is None:
        return pl.lit(None, pl.Utf8)
    return pl.when(pl.col("local_id").is_not_null()).then(pl.lit(space + ":") + pl.col("local_id"))


def person_records(staged: pl.DataFrame, spec: StagingSpec) -> pl.DataFrame:
    """The person mentions of one staging frame, in :data:`PERSON_SCHEMA`."""
    parts = []
    for m in spec.persons:
        rows = staged.filter(_mention_filter(staged, m, PERSON_IDENTIFYING))
        related = pl.lit(None, pl.Utf8)
        declared = spec.relation_of(m.role)
        # ``related`` declares the person the legal representative of that enterprise (never the role's name)
        relation = declared.kind if declared else ("legal_rep" if m.related is not None else None)
        enterprise = m.related if m.related is not None else (declared.enterprise if declared else None)
        if enterprise is not None:
            parent = next(e for e in spec.enterprises if e.role == enterprise)
            related = pl.when(_mention_filter(rows, parent, ENTERPRISE_IDENTIFYING)).then(
                record_id(enterprise)
            )
        parts.append(
            rows.select(
                record_id(m.role).alias("record_id"),
                "source_department",
                "source_table",
                "source_asset",
                "source_pk",
                pl.lit(m.role).alias("role"),
                *[_field(rows, m.prefix, f, t) for f, t in PERSON_FIELDS.items()],
                related.alias("related_record_id"),
                pl.lit(relation, pl.Utf8).alias("relation"),
            )
        )
    return _concat(parts, PERSON_SCHEMA)


def events(staged: pl.DataFrame, spec: StagingSpec) -> pl.DataFrame:
    """The events of one staging frame, in :data:`EVENT_SCHEMA`; an event without a date is kept (its date
    null) so that nothing a department sent disappears from the timeline's counts."""
    parts = []
    for e in spec.events:
        ent = [m for m in spec.enterprises if m.role == e.subject]
        kind = pl.lit("person")
        if ent:
            kind = pl.when(_mention_filter(staged, ent[0], ENTERPRISE_IDENTIFYING)).then(pl.lit("enterprise"))
            if any(p.role == e.subject for p in spec.persons):
                kind = kind.otherwise(pl.lit("person"))
        cols = e.columns()

        def col(
            field: str, dtype: pl.DataType, cols: dict[str, str] = cols, staged: pl.DataFrame = staged
        ) -> pl.Expr:
            return _event_field(staged, cols.get(field), field, dtype)

        parts.append(
            staged.select(
                pl.concat_str(
                    pl.col("source_department"),
                    pl.lit("."),
                    pl.col("source_asset"),
                    pl.lit(":"),
                    pl.col("source_pk"),
                    pl.lit(":"),
                    pl.lit(e.type),
                ).alias("event_id"),
                "source_department",
                "source_table",
                "source_asset",
                "source_pk",
                pl.lit(e.type).alias("event_type"),
                pl.lit(e.category_key).alias("event_category"),
                record_id(e.subject).alias("subject_record_id"),
                kind.alias("subject_kind"),
                col("date", pl.Date()).alias("event_date"),
                col("end_date", pl.Date()),
                col("amount", pl.Decimal(18, 2)),
                col("category", pl.Utf8()),
                col("reference", pl.Utf8()),
                col("status", pl.Utf8()),
            )
        )
    return _concat(parts, EVENT_SCHEMA)


def _event_field(staged: pl.DataFrame, name: str | None, field: str, dtype: pl.DataType) -> pl.Expr:
    if name is None:
        return pl.lit(None, dtype).alias(field)
    if dtype == pl.Date:
        return _date_field(staged, name).alias(field)
    return pl.col(name).cast(dtype).alias(field)


def service_cases(staged: pl.DataFrame, spec: StagingSpec) -> pl.DataFrame:
    """The service cases of one staging frame, in :data:`SERVICE_CASE_SCHEMA` (none unless the spec declares
    ``service_cases``). Every staged row is a case: the spec's quarantine decides which rows are unusable."""
    declared = spec.service_cases
    if declared is None:
        return pl.DataFrame(schema=SERVICE_CASE_SCHEMA)
    columns = declared.columns()
    # the applicant's identity only where its enterprise mention holds (its ``when``, a name or an identifier):
    # a person applying is no enterprise, whatever the department calls its applicant types
    applicant_holds: pl.Expr = pl.lit(False)
    if declared.applicant is not None:
        mention = next(m for m in spec.enterprises if m.role == declared.applicant)
        applicant_holds = _mention_filter(staged, mention, ENTERPRISE_IDENTIFYING)
        columns |= {
            f"applicant_{f}": f"{mention.prefix}{f}"
            for f in ("uscc", "uscc_status", "name_comparison")
            if f"{mention.prefix}{f}" in staged.columns
        }

    def field(name: str, dtype: pl.DataType) -> pl.Expr:
        column = columns.get(name)
        if column is None:
            return pl.lit(None, dtype).alias(name)
        if dtype == UTC:
            return _utc_field(staged, column).alias(name)
        value = pl.col(column).cast(dtype)
        if name.startswith("applicant_") and name != "applicant_type":
            value = pl.when(applicant_holds).then(value)
        return value.alias(name)

    out = staged.select(
        pl.concat_str(
            pl.col("source_department"), pl.lit("."), pl.col("source_asset"), pl.lit(":"), pl.col("source_pk")
        ).alias("service_case_id"),
        "source_department",
        "source_table",
        "source_asset",
        "source_pk",
        *[field(f, t) for f, t in SERVICE_CASE_FIELDS.items()],
    )
    return _concat([out], SERVICE_CASE_SCHEMA)


def _utc_field(staged: pl.DataFrame, name: str) -> pl.Expr:
    """A staging time as a UTC timestamp: timestamps as they are, a date as its midnight in the city."""
    dtype = staged.schema[name]
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            col = col.dt.replace_time_zone(city_timezone(), ambiguous="earliest", non_existent="null")
        return col.dt.convert_time_zone("UTC").cast(UTC)
    return col.cast(pl.Datetime("us")).dt.replace_time_zone(city_timezone()).dt.convert_time_zone("UTC")


def feeds(table: str, spec: StagingSpec) -> bool:
    """Whether a staging model can contribute rows to a canonical table (only a spec declaring
    ``service_cases`` feeds ``int_service_cases``): the build reads, and the asset depends on, those only."""
    if table == "int_service_cases":
        return spec.service_cases is not None
    return True


def _concat(parts: list[pl.DataFrame], schema: pl.Schema) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat([p.select(list(schema)).cast(schema) for p in parts], how="vertical")


BUILDERS = {
    "int_enterprise_records": enterprise_records,
    "int_person_records": person_records,
    "int_events": events,
    "int_service_cases": service_cases,
}
SCHEMAS = {
    "int_enterprise_records": ENTERPRISE_SCHEMA,
    "int_person_records": PERSON_SCHEMA,
    "int_events": EVENT_SCHEMA,
    "int_service_cases": SERVICE_CASE_SCHEMA,
}
