"""The staging engine: a bronze frame and its :class:`~models.staging.spec.StagingSpec` -> staging rows and
quarantined rows. Pure Polars; one ``with_columns`` per dependency level of the spec, never Python per row.

Why a generic engine and not one function per table: every table needs the same few dozen rules
(identifiers, names, dates, codes), and a rule written once is a rule fixed once. The spec says which
bronze column plays which canonical part; the standardizers of :mod:`models.standardize` do the work.

Every staging row keeps where it came from: ``source_department``, ``source_table`` (the table's or the file
drop's name), ``source_asset``, ``source_pk`` (the primary key as text, a composite key joined with ``|`` in
key order; a file-drop row ``FILE#LINE``, as the simulator's truth writes them), and bronze's
``_qst_batch_id``, ``_qst_extracted_at``, ``_qst_row_hash`` and ``_qst_flags``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from connectors.types import BAD_DATE, BAD_VALUE
from lake.city import DEFAULT_TIMEZONE
from models.staging.quarantine import quarantine_rows, reasons
from models.staging.spec import ColumnSpec, StagingSpec, target_suffix
from models.staging.spec_conditions import condition_columns, condition_expr
from models.staging.spec_kinds import KIND_SUFFIXES
from models.standardize import (
    nullify,
    org_code,
    parse_date,
    parse_datetime,
    parse_year,
    parse_yyyymm,
    phone,
    regno,
    resident_id,
    tin,
    uscc,
)
from models.standardize.addresses import division
from models.standardize.codes import TARGETS, map_code
from models.standardize.identifiers import FULLWIDTH_TO_ASCII, key_kind
from models.standardize.names import enterprise_name, person_name
from models.standardize.nulls import Stages, clean_text
from models.standardize.parties import party_kind
from models.standardize.safe_text import TOO_LONG, too_long

LINEAGE = ["source_department", "source_table", "source_asset", "source_pk"]
BRONZE_LINEAGE = ["_qst_batch_id", "_qst_extracted_at", "_qst_row_hash", "_qst_flags"]
F = pl.field
AMOUNT = pl.Decimal(18, 2)
CAPITAL = pl.Decimal(18, 4)


class StagingError(ValueError):
    """A spec that does not fit its bronze table (a missing column): a configuration error that stops this
    table, never silently staged."""


@dataclass(frozen=True)
class SourceInfo:
    """What the engine needs to know about the bronze table beyond its rows."""

    department: str
    asset: str
    table: str  # the source table's or the file drop's name
    primary_key: tuple[str, ...]
    is_file_drop: bool = False
    timezone: str = DEFAULT_TIMEZONE


# --------------------------------------------------------------------------------------------------
# Kinds
# --------------------------------------------------------------------------------------------------
_STRUCT_FIELDS: dict[str, dict[str, str]] = {  # kind -> {struct field: staging suffix ('' = main column)}
    "enterprise_name": {
        "normalized": "",
        "original": "original",
        "comparison": "comparison",
        "legal_form": "legal_form",
        "region": "region",
        "is_branch": "is_branch",
        "parent_comparison": "parent_comparison",
        "status_suffix": "status_suffix",
    },
    "person_name": {"normalized": "", "comparison": "comparison"},
    "uscc": {"value": "", "status": "status"},
    "org_code": {"value": "", "status": "status"},
    "regno": {"value": "", "status": "status"},
    "tin": {
        "value": "",
        "kind": "kind",
        "status": "status",
        "org_code": "org_code",
        "resident_id": "resident_id",
    },
    "resident_id": {
        "value": "",
        "status": "status",
        "was_15": "was_15",
        "birth_date": "birth_date",
        "sex": "sex",
        "masked": "masked",
    },
    "phone": {"value": "", "kind": "kind"},
    "date": {"value": "", "status": "status"},
    "datetime": {"value": "", "status": "status"},
    "period": {"value": "", "status": "status"},
    "year": {"value": "", "status": "status"},
    "amount": {"value": "", "status": "status"},
    "capital_wan": {"value": "", "status": "status"},
    "integer": {"value": "", "status": "status"},
    "division": {"code": "", "source": "source", "retired": "retired"},
}


def _number_text(raw: pl.Expr) -> pl.Expr:
    """Text of a number as typed: full-width folded, thousands separators and blanks removed."""
    return nullify(raw).str.replace_many(FULLWIDTH_TO_ASCII).str.replace_all(r"[,\s，]", "")


# Each builder computes its intermediates once, as fields of a struct (Stages): Polars copies a subtree that
# is used twice, and the copies would be evaluated twice.
def _with_status(s: Stages, raw: pl.Expr) -> pl.Expr:
    """``{value, status}`` from stages holding ``value`` and ``present`` (the source had something)."""
    status = (
        pl.when(F("present").not_())
        .then(pl.lit("missing"))
        .when(F("value").is_null())
        .then(pl.lit("invalid"))
        .otherwise(pl.lit("ok"))
    )
    return s.result(raw, pl.struct(value=F("value"), status=status))


def _amount(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Yuan as decimal(18,2): typed numbers cast, text like '1,234.50元' read; anything else invalid."""
    if dtype.is_numeric():
        value = raw.cast(pl.Float64).round(2).cast(AMOUNT) if dtype.is_float() else raw.cast(AMOUNT)
        return _with_status(Stages(value=value, present=raw.is_not_null()), raw)
    s = Stages(text=_number_text(raw))
    s.add(
        value=F("text")
        .str.extract(r"^([+-]?[0-9]+(?:\.[0-9]+)?)(?:元|人民币元)?$", 1)
        .cast(pl.Float64, strict=False)
        .round(2)
        .cast(AMOUNT),
        present=F("text").is_not_null(),
    )
    return _with_status(s, raw)


def _capital_wan(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Registered capital in 万元 from '500万元人民币', '500万', '0.2亿元', '5000000元' or a bare number
    (SAMR's unit is 万元). The currency word is dropped: a foreign-currency capital is not converted."""
    if dtype.is_numeric():
        return _with_status(Stages(value=raw.cast(pl.Float64).cast(CAPITAL), present=raw.is_not_null()), raw)
    s = Stages(text=_number_text(raw))
    s.add(
        parts=F("text").str.extract_groups(
            r"^(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<u>亿|万|元)?(?:元)?(?:人民币|美元|港元|港币|欧元)?(?:元)?$"
        ),
        present=F("text").is_not_null(),
    )
    s.add(n=F("parts").struct.field("n").cast(pl.Float64, strict=False), unit=F("parts").struct.field("u"))
    wan = (
        pl.when(F("unit") == "亿")
        .then(F("n") * 10_000)
        .when(F("unit") == "元")
        .then(F("n") / 10_000)
        .otherwise(F("n"))
    )
    s.add(value=wan.round(4).cast(CAPITAL))
    return _with_status(s, raw)


def _integer(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_numeric():
        return _with_status(Stages(value=raw.cast(pl.Int64, strict=False), present=raw.is_not_null()), raw)
    s = Stages(text=_number_text(raw))
    s.add(value=F("text").cast(pl.Int64, strict=False), present=F("text").is_not_null())
    return _with_status(s, raw)


def _kind_expr(
    col: ColumnSpec, raw: pl.Expr, dtype: pl.DataType, info: SourceInfo, code: pl.Expr | None
) -> pl.Expr:
    """The standardizer of a kind applied to the raw column: a struct (or a plain value for text-like kinds)."""
    tz = info.timezone
    match col.kind:
        case "text":
            return clean_text(raw)
        case "timestamp":
            if isinstance(dtype, pl.Datetime):
                return (
                    raw.cast(pl.Datetime("us", "UTC"))
                    if dtype.time_zone
                    else raw.dt.replace_time_zone(
                        tz, ambiguous="earliest", non_existent="null"
                    ).dt.convert_time_zone("UTC")
                )
            # a stamp the source kept as text (a loosely typed SQLite column): read like a datetime
            return _kind_expr(
                col.model_copy(update={"kind": "datetime"}), raw, dtype, info, code
            ).struct.field("value")
        case "key_kind":
            return key_kind(raw)
        case "party_kind":
            return party_kind(raw, code)
        case "enterprise_name":  # the name standardizers keep what they are given: markers go first
            return enterprise_name(clean_text(raw))
        case "person_name":
            return person_name(clean_text(raw))
        case "uscc":
            return uscc(raw)
        case "org_code":
            return org_code(raw)
        case "regno":
            return regno(raw)
        case "tin":
            return tin(raw)
        case "resident_id":
            return resident_id(raw)
        case "phone":
            return phone(raw)
        case "date":
            return parse_date(raw, tz=tz)
        case "datetime":
            s = Stages(parsed=parse_datetime(raw, tz=tz))
            utc = (
                F("parsed")
                .struct.field("value")
                .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
                .dt.convert_time_zone("UTC")
            )
            return s.result(raw, pl.struct(value=utc, status=F("parsed").struct.field("status")))
        case "period":
            return parse_yyyymm(raw, tz=tz)
        case "year":
            return parse_year(raw)
        case "amount":
            return _amount(raw, dtype)
        case "capital_wan":
            return _capital_wan(raw, dtype)
        case "integer":
            return _integer(raw, dtype)
        case "code":
            assert col.crosswalk is not None  # ColumnSpec requires a crosswalk with 'as: code'
            return map_code(raw, col.crosswalk, info.department, col.source, table=info.table)
        case "division":
            return division(raw, code)
    raise AssertionError(col.kind)


def _unpack(name: str, col: ColumnSpec, tmp: str) -> list[pl.Expr]:
    """The staging columns of one canonical column from its temporary struct column ``tmp``."""
    f = pl.col(tmp)
    if col.kind in ("text", "timestamp", "key_kind", "party_kind"):
        return [f.alias(name)]
    if col.kind == "code":
        assert col.crosswalk is not None  # ColumnSpec requires a crosswalk with 'as: code'
        targets = TARGETS[col.crosswalk]
        out = [f.struct.field(targets[0]).alias(name)]
        out += [f.struct.field(t).alias(f"{name}_{target_suffix(t)}") for t in targets[1:]]
        return [
            *out,
            pl.col(f"{tmp}_source").alias(f"{name}_source"),
            f.struct.field("unmapped").alias(f"{name}_unmapped"),
        ]
    fields = _STRUCT_FIELDS[col.kind]
    assert set(fields.values()) - {""} == set(KIND_SUFFIXES[col.kind]), col.kind
    return [
        f.struct.field(field).alias(f"{name}_{suffix}" if suffix else name)
        for field, suffix in fields.items()
    ]


# --------------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------------
def source_pk(info: SourceInfo) -> pl.Expr:
    """The primary key as text (the truth's and the quarantine's way to name a source row)."""
    if info.is_file_drop:
        return pl.concat_str(pl.col("_qst_file"), pl.lit("#"), pl.col("_qst_line").cast(pl.Utf8))
    parts = [pl.col(c).cast(pl.Utf8) for c in info.primary_key]
    return parts[0] if len(parts) == 1 else pl.concat_str(parts, separator="|")


def check_columns(spec: StagingSpec, info: SourceInfo, columns: list[str]) -> None:
    missing = [c for c in spec.bronze_columns() if c not in columns]
    key = ["_qst_file", "_qst_line"] if info.is_file_drop else list(info.primary_key)
    missing += [c for c in key if c not in columns and c not in missing]
    if missing:
        raise StagingError(
            f"{spec.name}: bronze table {info.department}/{info.asset} ({info.table}) has no "
            f"column {', '.join(map(repr, missing))} named by the spec; it has: "
            f"{', '.join(c for c in columns if not c.startswith('_qst_'))}"
        )


def _levels(spec: StagingSpec) -> list[list[str]]:
    """Canonical columns grouped so that a column's ``only_if`` refers only to earlier groups."""
    levels: list[list[str]] = []
    placed: dict[str, int] = {}  # staging output column -> level
    for name, col in spec.columns.items():
        level = max((placed[c] + 1 for _, c in condition_columns(col.only_if)), default=0)
        while len(levels) <= level:
            levels.append([])
        levels[level].append(name)
        for out in spec._outputs_of(name, col):
            placed[out] = level
    return levels


def _unreadable_at_source(frame: pl.DataFrame, spec: StagingSpec, names: list[str]) -> pl.DataFrame:
    """A value bronze's reader had to null (``bad_date:<column>`` or ``bad_value:<column>`` in ``_qst_flags``:
    a SQLite date column holding '2020-13-45', text in a decimal column) was there but unreadable: its status is 'invalid', not
    'missing', so quarantine rules and the scorecard see it for what it was."""
    if "_qst_flags" not in frame.columns:
        return frame
    fixes = []
    for name in names:
        col = spec.columns[name]
        if "status" not in KIND_SUFFIXES[col.kind]:
            continue
        token = rf"(?:^|;)(?:{BAD_VALUE}|{BAD_DATE}):{re.escape(col.source)}(?:;|$)"
        fixes.append(
            pl.when(pl.col("_qst_flags").cast(pl.Utf8).str.contains(token).fill_null(False))
            .then(pl.lit("invalid"))
            .otherwise(pl.col(f"{name}_status"))
            .alias(f"{name}_status")
        )
    return frame.with_columns(fixes) if fixes else frame


#: Kinds too cheap to be worth de-duplicating.
_CHEAP = frozenset({"text", "timestamp"})
#: Below this many rows a batch is standardized as it is (a join costs more than it saves).
_DEDUPE_MIN_ROWS = 2_000


def _distinct_counts(frame: pl.DataFrame, inputs: list[list[str]]) -> dict[str, int]:
    """Distinct input values per canonical column (its raw column, and its code column if any)."""
    if frame.height < _DEDUPE_MIN_ROWS or not inputs:
        return {}
    exprs = [
        pl.struct(keys).n_unique().alias(keys[0].removeprefix("__raw_"))
        if len(keys) > 1
        else pl.col(keys[0]).n_unique().alias(keys[0].removeprefix("__raw_"))
        for keys in inputs
    ]
    return frame.select(exprs).row(0, named=True)


def _too_long(spec: StagingSpec, info: SourceInfo, schema: pl.Schema) -> pl.Expr:
    """``value_too_long:<column>`` for each bronze text column the row is staged from (the spec's columns and
    the key) holding more than ``MAX_FIELD_CHARS`` characters: the length rule silver, the exports and ``qst
    verify-export`` share (:mod:`models.standardize.safe_text`).  Evaluated on the bronze columns, before a
    staging column of the same name replaces one."""
    used = dict.fromkeys([*spec.bronze_columns(), *info.primary_key])
    checks = [
        pl.when(too_long(pl.col(c))).then(pl.lit(f"{TOO_LONG}:{c}"))
        for c in used
        if c in schema and schema[c] == pl.String
    ]
    if not checks:
        return pl.lit([], dtype=pl.List(pl.Utf8))
    return pl.concat_list(checks).list.drop_nulls()


@dataclass
class Staged:
    rows: pl.DataFrame  # the staging model's rows (lineage + canonical columns)
    quarantined: pl.DataFrame  # QUARANTINE_SCHEMA


def stage(bronze: pl.DataFrame, spec: StagingSpec, info: SourceInfo) -> Staged:
    """Stage one batch of bronze's live rows. Rows matching a quarantine rule are returned apart, with
    every reason that applies and their full original content as JSON text."""
    check_columns(spec, info, bronze.columns)
    schema = bronze.schema
    frame = bronze.with_columns(
        source_department=pl.lit(info.department),
        source_table=pl.lit(info.table),
        source_asset=pl.lit(info.asset),
        source_pk=source_pk(info),
        __too_long=_too_long(spec, info, schema),
    )
    for level in _levels(spec):
        # the raw inputs of this level first (conditioned by only_if), so that repeats can be found
        inputs: dict[str, list[str]] = {}
        raws: list[pl.Expr] = []
        for name in level:
            col = spec.columns[name]
            raw = pl.col(col.source)
            cond = condition_expr(col.only_if)
            if cond is not None:
                raw = pl.when(cond).then(raw)
            second = col.second_source
            inputs[name] = [f"__raw_{name}"] + ([f"__rawcode_{name}"] if second else [])
            raws.append(raw.alias(f"__raw_{name}"))
            if second:  # conditioned as the main column: where only_if fails, the result is missing
                code_raw = pl.col(second) if cond is None else pl.when(cond).then(pl.col(second))
                raws.append(code_raw.alias(f"__rawcode_{name}"))
        frame = frame.with_columns(raws)
        distinct = _distinct_counts(
            frame, [inputs[name] for name in level if spec.columns[name].kind not in _CHEAP]
        )
        temps: list[pl.Expr] = []
        unpack: list[pl.Expr] = []
        for name in level:
            col = spec.columns[name]
            tmp = f"__stg_{name}"
            keys = inputs[name]
            code = pl.col(keys[1]) if col.second_source else None
            expr = _kind_expr(col, pl.col(keys[0]), schema[col.source], info, code).alias(tmp)
            extra = [clean_text(pl.col(keys[0])).alias(f"{tmp}_source")] if col.kind == "code" else []
            if distinct.get(name, frame.height) * 2 <= frame.height and frame.height >= _DEDUPE_MIN_ROWS:
                # a column that repeats (a month, a date, a code, an employer's USCC on each monthly row):
                # standardized once per distinct value and joined back
                values = frame.select(keys).unique().with_columns(expr, *extra)
                frame = frame.join(values, on=keys, how="left", nulls_equal=True, maintain_order="left")
            else:
                temps += [expr, *extra]
            unpack += _unpack(name, col, tmp)
        frame = frame.with_columns(temps).with_columns(unpack)
        # the raw copies and the kinds' structs are unpacked now: drop them, memory is the batch's budget
        frame = frame.drop(
            [
                c
                for name in level
                for c in (*inputs[name], f"__stg_{name}", f"__stg_{name}_source")
                if c in frame.columns
            ]
        )
        frame = _unreadable_at_source(frame, spec, level)
    frame = frame.with_columns(__reasons=pl.concat_list([reasons(spec), pl.col("__too_long")]))
    unusable = frame.get_column("__reasons").list.len() > 0
    if unusable.any():
        bad, rows = frame.filter(unusable), frame.filter(~unusable)
    else:  # the usual batch: no copy of the whole frame through a filter
        bad, rows = frame.clear(), frame
    lineage = [c for c in BRONZE_LINEAGE if c in frame.columns]
    staged = rows.select(*LINEAGE, *spec.output_columns(), *lineage)
    return Staged(staged, quarantine_rows(bad, bronze.columns))
