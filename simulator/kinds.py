"""Generic department kinds: the tables a kind of department keeps, written in any city's shape.

A kind (``registry``, ``tax``, ``urban``, ``housing_fund``) lists logical tables (:class:`LogicalTable`): fields
with an English snake name and pinyin initials, which of them are dates, the primary key, and a builder that
derives one generation unit's rows from the true city (:mod:`simulator.kind_builders`) with *logical* values:
dates as dates, the update stamp as a datetime, keys already in the shape's formats. :func:`realize` turns them
into the :class:`~simulator.tables.TableSpec` and builder of one department of a :class:`CityShape`: names in the
department's vendor style, each date column encoded as the shape says, the cursor of the declared type. The
truth is written the same way as the first city's (``department``, ``table``, ``pk``, ``role``,
``entity_type``, ``entity_id``; a composite key joined with ``|``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from simulator import kind_builders as kb
from simulator.shapes import Builder, CityShape, Department, style_name
from simulator.tables import TRUTH_SCHEMA, BuildContext, Column, TableSpec

#: the logical name of the update stamp every logical table carries (dropped for an id cursor or a snapshot)
UPDATED = "updated_at"


@dataclass(frozen=True)
class Field:
    name: str  # English snake
    pinyin: str  # pinyin initials
    type: str  # simulator column type (str:N, int, bigint, dec:P:S, text); 'date', 'key:<format>' or 'stamp'


def _f(spec: str) -> Field:
    name, pinyin, typ = spec.split()
    return Field(name, pinyin, typ)


@dataclass(frozen=True)
class LogicalTable:
    name: str  # English snake; also the bronze asset
    pinyin: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...]
    build: Callable[[BuildContext, CityShape], kb.Built]
    per_enterprise: float = 0.0


def _fields(*specs: str) -> tuple[Field, ...]:
    return tuple(_f(s) for s in specs)


KINDS: dict[str, tuple[LogicalTable, ...]] = {
    # 市场监管: the registry of commercial entities and its change log (变更登记: 曾用名 -> new name)
    "registry": (
        LogicalTable(
            "corp_registry",
            "QYDJ",
            _fields(
                "corp_id QYID key:corp_id",
                "uscc TYSHXYDM str:40",
                "corp_name QYMC str:200",
                "legal_rep FDDBR str:50",
                "legal_rep_id FDDBRZJHM str:30",
                "capital_wan ZCZB dec:18:4",
                "founded_on CLRQ date",
                "status DJZT str:4",
                "address ZS str:200",
                "industry_code HYDM str:5",
                "phone LXDH str:20",
                "updated_at GXSJ stamp",
            ),
            ("corp_id",),
            kb.registry,
            per_enterprise=1.0,
        ),
        LogicalTable(
            "change_log",
            "BGDJ",
            _fields(
                "change_id BGID bigint",
                "corp_id QYID key:corp_id",
                "corp_name QYMC str:200",
                "change_item BGSX str:20",
                "before_value BGQNR str:200",
                "after_value BGHNR str:200",
                "changed_on BGRQ date",
                "updated_at GXSJ stamp",
            ),
            ("change_id",),
            kb.change_log,
            per_enterprise=0.25,
        ),
    ),
    # 税务: taxpayers, and annual credit ratings whose only date is the rating year
    "tax": (
        LogicalTable(
            "taxpayers",
            "NSRXX",
            _fields(
                "taxpayer_no DJXH bigint",
                "tin NSRSBH str:30",
                "taxpayer_name NSRMC str:200",
                "legal_rep FDDBRXM str:50",
                "legal_rep_id FDDBRSFZJHM str:30",
                "address SCJYDZ str:200",
                "tax_status NSRZT str:8",
                "registered_on DJRQ date",
                "updated_at GXSJ stamp",
            ),
            ("taxpayer_no",),
            kb.taxpayers,
            per_enterprise=0.95,
        ),
        LogicalTable(
            "tax_ratings",
            "NSPJ",
            _fields(
                "tin NSRSBH str:30", "rating_year PJND int", "rating PJJB str:1", "updated_at GXSJ stamp"
            ),
            ("tin", "rating_year"),
            kb.tax_ratings,
            per_enterprise=0.8,
        ),
    ),
    # 城管: administrative penalties on shops, companies and people alike, in one party column without a type
    "urban": (
        LogicalTable(
            "penalties",
            "XZCF",
            _fields(
                "case_no AJBH str:24",
                "party_name DSRMC str:200",
                "id_no ZJHM str:40",
                "violation WFXW str:60",
                "fine FKJE dec:14:2",
                "decided_on CFRQ date",
                "updated_at GXSJ stamp",
            ),
            ("case_no",),
            kb.urban_penalties,
            per_enterprise=0.3,
        ),
    ),
    # 住房公积金: employers (单位账户) and members (个人账户) referencing their employer's account number
    "housing_fund": (
        LogicalTable(
            "fund_employers",
            "DWXX",
            _fields(
                "employer_account DWZH key:employer_account",
                "employer_name DWMC str:200",
                "uscc TYSHXYDM str:40",
                "depositor_count JCRS int",
                "monthly_deposit YJCE dec:14:2",
                "opened_on KHRQ date",
                "updated_at GXSJ stamp",
            ),
            ("employer_account",),
            kb.fund_employers,
            per_enterprise=0.5,
        ),
        LogicalTable(
            "fund_members",
            "GRXX",
            _fields(
                "member_account GRZH key:member_account",
                "member_name XM str:50",
                "id_number ZJHM str:20",
                "employer_account DWZH key:employer_account",
                "account_status ZHZT str:2",
                "member_since CJRQ date",
                "updated_at GXSJ stamp",
            ),
            ("member_account",),
            kb.fund_members,
            per_enterprise=2.5,
        ),
    ),
}

_DATE_TYPES = {"iso": "str:10", "slash": "str:10", "int_ymd": "int", "cn": "str:16", "epoch": "bigint"}
_CURSOR_TYPES = {"timestamp": "datetime", "text_timestamp": "str:19", "epoch": "bigint"}
_SHANGHAI = dt.timedelta(hours=8)  # the city's offset: an epoch date is local midnight (no DST since 1991)


def _physical_type(shape: CityShape, f: Field, cursor: str) -> str:
    if f.type == "date":
        return _DATE_TYPES.get(shape.date_encoding(f.name), "date")
    if f.type.startswith("key:"):
        return getattr(shape, f.type.removeprefix("key:")).column_type()
    if f.type == "stamp":
        return _CURSOR_TYPES[cursor]
    return f.type


def encode_date(d: pl.Series, encoding: str) -> pl.Series:
    """Dates as a legacy column stores them (see :data:`simulator.shapes.DATE_ENCODINGS`)."""
    if encoding == "iso":
        return d.dt.strftime("%Y-%m-%d")
    if encoding == "slash":
        return d.dt.strftime("%Y/%-m/%-d")
    if encoding == "cn":
        return d.dt.strftime("%Y年%-m月%-d日")
    if encoding == "int_ymd":
        return d.dt.strftime("%Y%m%d").cast(pl.Int64)
    if encoding == "epoch":  # an instant: local midnight, in seconds since 1970-01-01 UTC
        midnight = d.cast(pl.Datetime("us")) - pl.lit(_SHANGHAI)
        return pl.select(midnight.dt.epoch("s")).to_series().alias(d.name)
    return d


def encode_stamp(ts: pl.Series, cursor: str) -> pl.Series:
    if cursor == "text_timestamp":
        return ts.dt.strftime("%Y-%m-%d %H:%M:%S")
    if cursor == "epoch":
        return pl.select((ts - pl.lit(_SHANGHAI)).dt.epoch("s")).to_series().alias(ts.name)
    return ts


def realize(shape: CityShape, dept: Department) -> list[tuple[TableSpec, Builder]]:
    """The department's tables in the shape: specs and builders (module docstring)."""
    out = []
    for table in KINDS[dept.kind]:
        cursor = dept.cursors.get(table.name, dept.cursor)
        fields = [f for f in table.fields if f.type != "stamp" or cursor not in ("id", "snapshot")]
        names = {f.name: style_name(f.name, f.pinyin, dept.column_style) for f in fields}
        spec = TableSpec(
            dept.key,
            dept.table_prefix + style_name(table.name, table.pinyin, dept.table_style),
            table.name,
            tuple(Column(names[f.name], _physical_type(shape, f, cursor)) for f in fields),
            tuple(names[k] for k in table.primary_key),
            None
            if cursor == "snapshot"
            else names[table.primary_key[0]]
            if cursor == "id"
            else names[UPDATED],
            "timestamp" if cursor in ("timestamp", "text_timestamp") else "id",
            per_enterprise=table.per_enterprise,
        )
        out.append((spec, _builder(shape, table, fields, names, cursor)))
    return out


def _nulls(f: Field, n: int) -> pl.Series:
    """A field a builder left out (a unit too small for any such record)."""
    dtype = {"date": pl.Date(), "stamp": pl.Datetime("us")}.get(f.type, pl.Utf8())
    return pl.Series(f.name, [None] * n, dtype=dtype)


def _builder(
    shape: CityShape, table: LogicalTable, fields: list[Field], names: dict[str, str], cursor: str
) -> Builder:
    def build(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
        built = table.build(ctx, shape)
        frame = built.rows
        cols = []
        for f in fields:
            s = frame[f.name] if f.name in frame.columns else _nulls(f, frame.height)
            if f.type == "date":
                s = encode_date(s, shape.date_encoding(f.name))
            elif f.type == "stamp":
                s = encode_stamp(s, cursor)
            cols.append(s.alias(names[f.name]))
        out = pl.DataFrame(cols)
        pk = pl.select(
            pl.concat_str([out[c].cast(pl.Utf8) for c in spec.primary_key], separator="|")
        ).to_series()
        truth = [
            pl.DataFrame(
                {
                    "department": spec.department,
                    "table": spec.name,
                    "pk": pk,
                    "role": role,
                    "entity_type": entity_type,
                    "entity_id": ids,
                },
                schema=TRUTH_SCHEMA,
            ).filter(pl.col("entity_id").is_not_null())
            for role, entity_type, ids in built.truth
        ]
        return out, (pl.concat(truth) if truth else pl.DataFrame(schema=TRUTH_SCHEMA))

    return build
