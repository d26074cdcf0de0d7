"""The departments' legacy tables: their dialect (names, types, keys) and how rows are derived from
the true city.

A :class:`TableSpec` is data — the same spec creates the table on SQLite, PostgreSQL or MariaDB and
writes the ``sources.yaml`` entry for it — while each builder turns one generation unit into the rows
a department would hold, plus the truth (which true entity each row refers to).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from simulator import mess, vocab
from simulator.entities import Unit
from simulator.mess import MessProfile

TRUTH_SCHEMA = {
    "department": pl.Utf8,
    "table": pl.Utf8,
    "pk": pl.Utf8,
    "role": pl.Utf8,
    "entity_type": pl.Utf8,
    "entity_id": pl.Utf8,
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # str:N | text | int | uint | bigint | ubigint | dec:P:S | date | datetime
    latin1: bool = False  # GBK bytes kept in a latin1 column (the social-security system)
    nullable: bool = True


@dataclass(frozen=True)
class TableSpec:
    department: str
    name: str
    asset: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    cursor: str | None  # None: full snapshot
    cursor_kind: str = "timestamp"
    per_enterprise: float = 0.0  # average rows per enterprise (for sizing and the README)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass
class BuildContext:
    unit: Unit
    seed: int
    as_of: dt.date
    profile: MessProfile
    window_start: dt.date | None = None  # day-by-day changes: events happen inside this window
    _cache: dict = field(default_factory=dict)

    def rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.unit.unit_no, 100 + salt])

    @property
    def ent(self) -> pl.DataFrame:
        return self.unit.enterprises

    @property
    def persons(self) -> pl.DataFrame:
        return self.unit.persons

    def pk_base(self) -> int:
        """Integer keys are unit_no * 10^7 + a local sequence: unique, and growing with time."""
        return self.unit.unit_no * 10_000_000

    def enterprises_with_rep(self) -> pl.DataFrame:
        if "rep" not in self._cache:
            reps = self.persons.select(
                rep_id="person_id", rep_name="name", rep_id_number="id_number", rep_birth="birth"
            )
            self._cache["rep"] = self.ent.join(reps, on="rep_id", how="left", maintain_order="left")
        return self._cache["rep"]


def _cols(*specs: str) -> tuple[Column, ...]:
    out = []
    for s in specs:
        name, _, typ = s.partition(" ")
        latin1 = typ.endswith(" latin1")
        out.append(Column(name, typ.removesuffix(" latin1"), latin1=latin1))
    return tuple(out)


def _us(d: dt.date, t: dt.time) -> int:
    return int((dt.datetime.combine(d, t) - dt.datetime(1970, 1, 1)).total_seconds() * 1_000_000)


def _ts(ctx: BuildContext, rng, start: pl.Series, n: int) -> pl.Series:
    """Random datetimes between ``start`` (per row, or the context's window) and the end of as-of day."""
    start_us = start.cast(pl.Datetime("us")).cast(pl.Int64).to_numpy()
    end_us = _us(ctx.as_of, dt.time(23, 59, 59))
    if ctx.window_start is not None:
        start_us = np.maximum(start_us, _us(ctx.window_start, dt.time(0, 0)))
    start_us = np.minimum(start_us, end_us)
    us = start_us + (rng.random(n) * (end_us - start_us)).astype(np.int64)
    us = us - us % 1_000_000
    return pl.Series(us).cast(pl.Datetime("us"))


def _dates(ctx: BuildContext, rng, start: pl.Series, n: int) -> pl.Series:
    return _ts(ctx, rng, start, n).dt.date()


def _truth(spec: TableSpec, pk: pl.Series, role: str, entity_type: str, entity_id: pl.Series) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "department": spec.department,
            "table": spec.name,
            "pk": pk.cast(pl.Utf8),
            "role": role,
            "entity_type": entity_type,
            "entity_id": entity_id,
        },
        schema=TRUTH_SCHEMA,
    ).filter(pl.col("entity_id").is_not_null())


def _empty(spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """No rows (a unit too small for this kind of record)."""
    return pl.DataFrame(schema=dict.fromkeys(spec.column_names, pl.Utf8)), pl.DataFrame(schema=TRUTH_SCHEMA)


def _sample(df: pl.DataFrame, rng, rate: float) -> pl.DataFrame:
    return df.filter(pl.Series(rng.random(df.height) < rate))


def _repeat(df: pl.DataFrame, counts: np.ndarray) -> pl.DataFrame:
    return df.select(pl.all().gather(np.repeat(np.arange(df.height), counts)))


def _money(rng, n: int, mu: float, sigma: float) -> pl.Series:
    return pl.Series(np.round(np.exp(rng.normal(mu, sigma, n)), 2)).cast(pl.Decimal(18, 2))


def _pick(rng, pool: list, n: int, p: list[float] | None = None) -> pl.Series:
    weights = None if p is None else np.asarray(p) / np.sum(p)
    return pl.Series(np.asarray(pool, dtype=object)[rng.choice(len(pool), n, p=weights)].tolist())


def _pk_str(prefix: str, base: int, n: int, width: int = 12) -> pl.Series:
    return prefix + pl.Series(base + np.arange(n, dtype=np.int64)).cast(pl.Utf8).str.zfill(width)


def _pk_int(base: int, n: int) -> pl.Series:
    return pl.Series(base + np.arange(n, dtype=np.int64))


# ================================================================================================
# 市场监管局 SAMR
# ================================================================================================
SAMR_REG = TableSpec(
    "samr",
    "T_SCZT_DJXX",
    "registrations",
    _cols(
        "ZTID str:20",
        "TYSHXYDM str:40",
        "ZCH str:20",
        "QYMC str:200",
        "QYLX str:4",
        "FDDBR str:50",
        "FDDBRZJHM str:30",
        "ZCZB str:40",
        "CLRQ date",
        "HZRQ date",
        "DJZT str:2",
        "JYFW text",
        "ZS str:200",
        "XZQHDM str:6",
        "HYDM str:5",
        "LXDH str:20",
        "GXSJ datetime",
    ),
    ("ZTID",),
    "GXSJ",
    per_enterprise=1.02,
)


def build_samr_registrations(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(1)
    p = ctx.profile
    e = ctx.enterprises_with_rep()
    dup = _sample(e.filter(pl.col("kind") != "branch"), rng, p.duplicate_registration)
    rows = pl.concat([e.with_columns(dup=pl.lit(False)), dup.with_columns(dup=pl.lit(True))])
    n = rows.height
    ztid = pl.select(
        pl.when(rows["dup"]).then(pl.lit("ZTM")).otherwise(pl.lit("ZT"))
        + rows["idx"].cast(pl.Utf8).str.zfill(12)
    ).to_series()
    uscc = mess.enterprise_key(rows["uscc"], rng, p, scale=0.5)
    # old entities that never re-registered, and migrated duplicates, carry only the 15-digit number
    only_regno = (rows["regno"].is_not_null() & mess.mask(rng, n, 0.15)) | rows["dup"]
    uscc = mess.where(only_regno & rows["regno"].is_not_null(), pl.Series([None] * n, dtype=pl.Utf8), uscc)
    name = mess.where(rows["dup"], mess.legal_form_variant(rows["name"], rng, 0.5), rows["name"])
    capital = rows["capital"]
    cap_text = pl.select(
        pl.when(mess.mask(rng, n, 0.3))
        .then(capital.round(0).cast(pl.Int64).cast(pl.Utf8) + "万元人民币")
        .otherwise(capital.cast(pl.Utf8))
    ).to_series()
    approved = _dates(ctx, rng, rows["founded"], n).cast(pl.Utf8)
    sentinel = pl.Series(np.array(["0000-00-00", "1900-01-01"])[rng.integers(0, 2, n)])
    approved = mess.where(mess.mask(rng, n, p.date_sentinel), sentinel, approved)
    out = pl.DataFrame(
        {
            "ZTID": ztid,
            "TYSHXYDM": uscc,
            "ZCH": rows["regno"],
            "QYMC": mess.trailing_space(name, rng, 0.01),
            "QYLX": rows["legal_form"].replace_strict(vocab.SAMR_ENTITY_TYPE, default="1100"),
            "FDDBR": rows["rep_name"],
            "FDDBRZJHM": mess.resident_id(
                rows["rep_id_number"], rows["rep_birth"], rng, p, old_form_rate=0.02
            ),
            "ZCZB": cap_text,
            "CLRQ": rows["founded"].cast(pl.Utf8),
            "HZRQ": approved,
            "DJZT": rows["status"].replace_strict(vocab.SAMR_STATUS),
            "JYFW": rows["hymc"] + "；国内贸易；货物及技术进出口",
            "ZS": rows["address"],
            "XZQHDM": rows["authority"],
            "HYDM": rows["hydm"],
            "LXDH": rows["phone"],
            "GXSJ": _ts(ctx, rng, rows["founded"], n),
        }
    )
    truth = pl.concat(
        [
            _truth(spec, ztid, "subject", "enterprise", rows["entity_id"]),
            _truth(spec, ztid, "legal_rep", "person", rows["rep_id"]),
        ]
    )
    return out, truth


SAMR_ABNORMAL = TableSpec(
    "samr",
    "T_JYYC_ML",
    "abnormal_operations",
    _cols(
        "ID bigint",
        "TYSHXYDM str:40",
        "QYMC str:200",
        "LRRQ date",
        "LRYY str:100",
        "YCRQ date",
        "LRJG str:60",
        "GXSJ datetime",
    ),
    ("ID",),
    "GXSJ",
    per_enterprise=0.1,
)


def build_samr_abnormal(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(2)
    e = _sample(ctx.ent.filter(pl.col("kind") != "individual"), rng, 0.11)
    n = e.height
    pk = _pk_int(ctx.pk_base(), n)
    listed = _dates(ctx, rng, e["founded"], n)
    removed = mess.where(
        mess.mask(rng, n, 0.5), _dates(ctx, rng, listed, n), pl.Series([None] * n, dtype=pl.Date)
    )
    out = pl.DataFrame(
        {
            "ID": pk,
            "TYSHXYDM": mess.enterprise_key(e["uscc"], rng, ctx.profile, 0.5),
            "QYMC": e["name"],
            "LRRQ": listed.cast(pl.Utf8),
            "LRYY": _pick(rng, vocab.ABNORMAL_REASONS, n, [0.7, 0.15, 0.05, 0.1]),
            "YCRQ": removed.cast(pl.Utf8),
            "LRJG": "深圳市市场监督管理局" + e["district"].str.slice(0, 2) + "监管局",
            "GXSJ": _ts(ctx, rng, listed, n),
        }
    )
    return out, _truth(spec, pk, "subject", "enterprise", e["entity_id"])


SAMR_PENALTIES = TableSpec(
    "samr",
    "T_XZCF",
    "penalties",
    _cols(
        "CFID str:24",
        "XDRMC str:200",
        "TYSHXYDM str:40",
        "FDDBR str:50",
        "JDSWH str:80",
        "WFSS text",
        "CFLB str:60",
        "CFNR text",
        "FKJE dec:14:2",
        "JDRQ date",
        "GSQX date",
        "GXSJ datetime",
    ),
    ("CFID",),
    "GXSJ",
    per_enterprise=0.08,
)


def build_samr_penalties(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(3)
    e = _sample(ctx.enterprises_with_rep(), rng, 0.08)
    n = e.height
    pk = _pk_str("XZCF", ctx.pk_base(), n)
    decided = _dates(ctx, rng, e["founded"], n)
    kind = _pick(rng, vocab.PENALTY_KINDS, n, [0.6, 0.25, 0.1, 0.05])
    out = pl.DataFrame(
        {
            "CFID": pk,
            "XDRMC": mess.enterprise_name(e["name"], e["former_name"], rng, ctx.profile),
            "TYSHXYDM": mess.enterprise_key(e["uscc"], rng, ctx.profile),
            "FDDBR": e["rep_name"],
            "JDSWH": "深市监"
            + e["district"].str.slice(0, 2)
            + "罚〔"
            + decided.dt.year().cast(pl.Utf8)
            + "〕"
            + pl.Series(rng.integers(1, 5000, n)).cast(pl.Utf8)
            + "号",
            "WFSS": _pick(rng, vocab.PENALTY_FACTS, n),
            "CFLB": kind,
            "CFNR": kind + "（依法从轻处罚）",
            "FKJE": _money(rng, n, 8.5, 1.3),
            "JDRQ": decided.cast(pl.Utf8),
            "GSQX": decided.dt.offset_by("3y").cast(pl.Utf8),
            "GXSJ": _ts(ctx, rng, decided, n),
        }
    )
    return out, pl.concat(
        [
            _truth(spec, pk, "subject", "enterprise", e["entity_id"]),
            _truth(spec, pk, "legal_rep", "person", e["rep_id"]),
        ]
    )


# ================================================================================================
# 税务局 tax
# ================================================================================================
TAX_PAYERS = TableSpec(
    "tax",
    "DJ_NSRXX",
    "taxpayers",
    _cols(
        "DJXH ubigint",
        "NSRSBH str:30",
        "NSRMC str:200",
        "FDDBRXM str:50",
        "FDDBRSFZJHM str:30",
        "SCJYDZ str:200",
        "NSRZTDM str:2",
        "DJRQ str:8",
        "HYMC str:60",
        "GXSJ datetime",
    ),
    ("DJXH",),
    "GXSJ",
    per_enterprise=0.95,
)


def _taxpayers(ctx: BuildContext) -> pl.DataFrame:
    """Which enterprises the tax bureau knows, and under which TIN (USCC, or the old 15-char TIN)."""
    if "taxpayers" not in ctx._cache:
        rng = ctx.rng(10)
        e = _sample(ctx.enterprises_with_rep(), rng, 0.95)
        keeps_old = e["old_tin"].is_not_null() & mess.mask(rng, e.height, 0.6)
        ctx._cache["taxpayers"] = e.with_columns(
            tin=mess.where(keeps_old, e["old_tin"], e["uscc"]),
            djxh=pl.lit(1_014_403_000_000_000_000) + e["idx"],
        )
    return ctx._cache["taxpayers"]


def build_tax_payers(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(11)
    e = _taxpayers(ctx)
    n = e.height
    status = e["status"].replace_strict(
        {"active": "03", "revoked": "09", "deregistered": "07", "moved_out": "05"}
    )
    out = pl.DataFrame(
        {
            "DJXH": e["djxh"],
            "NSRSBH": mess.enterprise_key(e["tin"], rng, ctx.profile, 0.3),
            "NSRMC": mess.enterprise_name(e["name"], e["former_name"], rng, ctx.profile),
            "FDDBRXM": mess.person_name(e["rep_name"], rng, ctx.profile),
            "FDDBRSFZJHM": mess.resident_id(e["rep_id_number"], e["rep_birth"], rng, ctx.profile),
            "SCJYDZ": mess.null_markers(e["address"], rng, ctx.profile.null_marker),
            "NSRZTDM": status,
            "DJRQ": e["founded"].dt.offset_by("15d").dt.strftime("%Y%m%d"),
            "HYMC": e["hymc"],
            "GXSJ": _ts(ctx, rng, e["founded"], n),
        }
    )
    return out, pl.concat(
        [
            _truth(spec, e["djxh"], "subject", "enterprise", e["entity_id"]),
            _truth(spec, e["djxh"], "legal_rep", "person", e["rep_id"]),
        ]
    )


TAX_FILINGS = TableSpec(
    "tax",
    "SB_ZSXX",
    "filings",
    _cols(
        "ID bigint",
        "NSRSBH str:30",
        "SSQ str:6",
        "ZSXM str:20",
        "YNSE dec:18:2",
        "YJSE dec:18:2",
        "RKRQ date",
    ),
    ("ID",),
    "ID",
    cursor_kind="id",
    per_enterprise=3.0,
)


def build_tax_filings(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(12)
    e = _taxpayers(ctx).filter(pl.col("status") == "active")
    counts = rng.poisson(3.6, e.height)
    f = _repeat(e, counts)
    n = f.height
    month_back = rng.integers(1, 13, n)
    period = pl.Series([ctx.as_of.replace(day=1)] * n, dtype=pl.Date).dt.offset_by(
        pl.Series(-month_back).cast(pl.Utf8) + "mo"
    )
    due = _money(rng, n, 8.0, 1.6)
    paid_share = np.where(rng.random(n) < 0.93, 1.0, rng.random(n))
    pk = _pk_int(ctx.pk_base(), n)
    out = pl.DataFrame(
        {
            "ID": pk,
            "NSRSBH": f["tin"],
            "SSQ": period.dt.strftime("%Y%m"),
            "ZSXM": _pick(rng, vocab.TAX_ITEMS, n, [0.45, 0.2, 0.2, 0.1, 0.05]),
            "YNSE": due,
            "YJSE": (due.cast(pl.Float64) * paid_share).round(2).cast(pl.Decimal(18, 2)),
            "RKRQ": period.dt.offset_by("1mo")
            .dt.offset_by(pl.Series(rng.integers(0, 15, n)).cast(pl.Utf8) + "d")
            .cast(pl.Utf8),
        }
    )
    return out, _truth(spec, pk, "subject", "enterprise", f["entity_id"])


TAX_RATINGS = TableSpec(
    "tax",
    "XY_NSPJ",
    "credit_ratings",
    _cols("NSRSBH str:30", "PJND int", "PJJB str:1", "PDRQ date"),
    ("NSRSBH", "PJND"),
    None,
    per_enterprise=0.8,
)


def build_tax_ratings(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(13)
    e = _taxpayers(ctx)
    years = [2023, 2024, 2025]
    parts = []
    for y in years:
        part = _sample(e.filter(pl.col("founded").dt.year() < y), rng, 0.3).with_columns(PJND=pl.lit(y))
        parts.append(part)
    r = pl.concat(parts)
    n = r.height
    pk = r["tin"] + "|" + r["PJND"].cast(pl.Utf8)
    out = pl.DataFrame(
        {
            "NSRSBH": r["tin"],
            "PJND": r["PJND"],
            "PJJB": _pick(rng, vocab.TAX_RATINGS, n, vocab.TAX_RATING_WEIGHTS),
            "PDRQ": (r["PJND"] + 1).cast(pl.Utf8) + "-04-1" + pl.Series(rng.integers(0, 10, n)).cast(pl.Utf8),
        }
    )
    return out, _truth(spec, pk, "subject", "enterprise", r["entity_id"])


TAX_ARREARS = TableSpec(
    "tax",
    "QS_XX",
    "arrears",
    _cols("ID bigint", "NSRSBH str:30", "QSJE dec:18:2", "QSRQ str:10", "SZ str:20", "GXSJ datetime"),
    ("ID",),
    "GXSJ",
    per_enterprise=0.05,
)


def build_tax_arrears(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(14)
    e = _sample(_taxpayers(ctx), rng, 0.05)
    n = e.height
    pk = _pk_int(ctx.pk_base(), n)
    since = _dates(ctx, rng, e["founded"], n)
    out = pl.DataFrame(
        {
            "ID": pk,
            "NSRSBH": e["tin"],
            "QSJE": _money(rng, n, 9.0, 1.5),
            "QSRQ": since.cast(pl.Utf8),
            "SZ": _pick(rng, vocab.TAX_ITEMS[:3], n),
            "GXSJ": _ts(ctx, rng, since, n),
        }
    )
    return out, _truth(spec, pk, "subject", "enterprise", e["entity_id"])


# ================================================================================================
# 法院 courts
# ================================================================================================
COURT_PARTIES = TableSpec(
    "courts",
    "AJ_DSR",
    "case_parties",
    _cols(
        "ID bigint",
        "AH str:60",
        "DSRMC str:200",
        "DSRLX str:10",
        "ZJHM str:40",
        "SSDW str:10",
        "LARQ str:12",
        "JARQ str:12",
        "BDJE dec:16:2",
        "FYMC str:60",
        "GXSJ datetime",
    ),
    ("ID",),
    "GXSJ",
    per_enterprise=0.6,
)


def _party_pool(ctx: BuildContext, rng, n: int) -> pl.DataFrame:
    """n parties: enterprises (60%) or natural persons, with how a court writes them down."""
    p = ctx.profile
    ent = ctx.ent.filter(pl.col("kind") != "branch")
    persons = ctx.persons.filter(pl.col("role") != "employee")
    is_ent = rng.random(n) < 0.6
    ne, np_ = int(is_ent.sum()), int((~is_ent).sum())
    e = ent.select(pl.all().gather(rng.integers(0, ent.height, ne)))
    dereg = e["status"] == "deregistered"
    ename = mess.enterprise_name(e["name"], e["former_name"], rng, p)
    ename = mess.where(dereg & mess.mask(rng, ne, p.name_status_suffix), ename + "（已注销）", ename)
    ekey = mess.where(
        mess.mask(rng, ne, 0.4), mess.enterprise_key(e["uscc"], rng, p), pl.Series([None] * ne, dtype=pl.Utf8)
    )
    ps = persons.select(pl.all().gather(rng.integers(0, persons.height, np_)))
    pkey = mess.resident_id(ps["id_number"], ps["birth"], rng, p, masked_rate=p.id_masked)
    pkey = mess.where(mess.mask(rng, np_, 0.3), pl.Series([None] * np_, dtype=pl.Utf8), pkey)
    ents = pl.DataFrame(
        {
            "name": ename,
            "kind": "法人",
            "key": ekey,
            "entity_type": "enterprise",
            "entity_id": e["entity_id"],
            "division": e["division"],
            "founded": e["founded"],
        }
    )
    pers = pl.DataFrame(
        {
            "name": mess.person_name(ps["name"], rng, p),
            "kind": "自然人",
            "key": pkey,
            "entity_type": "person",
            "entity_id": ps["person_id"],
            "division": pl.Series([vocab.DISTRICTS[0][0]] * np_, dtype=pl.Utf8),
            "founded": pl.Series([dt.date(2000, 1, 1)] * np_, dtype=pl.Date),
        }
    )
    return pl.concat([ents, pers]).select(pl.all().gather(rng.permutation(n)))


def _court_date(d: pl.Series) -> pl.Series:
    return d.dt.strftime("%Y/%-m/%-d")


def build_court_parties(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(20)
    cases = int(ctx.ent.height * 0.3)
    if cases == 0:
        return _empty(spec)
    parties = _party_pool(ctx, rng, 2 * cases)
    first, second = parties.head(cases), parties.tail(cases)
    filed = _dates(ctx, rng, pl.Series([dt.date(2015, 1, 1)] * cases, dtype=pl.Date), cases)
    enforce = mess.mask(rng, cases, 0.2)
    year = filed.dt.year().cast(pl.Utf8)
    court_div = first["division"]
    court_no = court_div.str.slice(2)
    ah = pl.select(
        pl.concat_str(
            [
                pl.lit("（"),
                year,
                pl.lit("）粤"),
                court_no,
                pl.when(enforce).then(pl.lit("执")).otherwise(pl.lit("民初")),
                pl.Series(rng.integers(1, 60000, cases)).cast(pl.Utf8),
                pl.lit("号"),
            ]
        )
    ).to_series()
    closed = mess.where(
        mess.mask(rng, cases, 0.7), _dates(ctx, rng, filed, cases), pl.Series([None] * cases, dtype=pl.Date)
    )
    amount = _money(rng, cases, 10.5, 1.6)
    role1 = pl.select(pl.when(enforce).then(pl.lit("申请执行人")).otherwise(pl.lit("原告"))).to_series()
    role2 = pl.select(pl.when(enforce).then(pl.lit("被执行人")).otherwise(pl.lit("被告"))).to_series()
    both = pl.concat([first.with_columns(AH=ah, SSDW=role1), second.with_columns(AH=ah, SSDW=role2)])
    n = both.height
    filed2, closed2 = pl.concat([filed, filed]), pl.concat([closed, closed])
    pk = _pk_int(ctx.pk_base(), n)
    out = pl.DataFrame(
        {
            "ID": pk,
            "AH": both["AH"],
            "DSRMC": both["name"],
            "DSRLX": both["kind"],
            "ZJHM": both["key"],
            "SSDW": both["SSDW"],
            "LARQ": _court_date(filed2),
            "JARQ": _court_date(closed2).fill_null(""),
            "BDJE": pl.concat([amount, amount]),
            "FYMC": pl.concat([court_div, court_div]).replace_strict(
                vocab.COURT_NAMES, default="深圳市中级人民法院"
            ),
            "GXSJ": _ts(ctx, rng, filed2, n),
        }
    )
    return out, _truth(spec, pk, "party", "enterprise", both["entity_id"]).vstack(
        _truth(spec, pk, "party", "person", both["entity_id"])
    ).join(
        pl.DataFrame({"entity_id": both["entity_id"], "et": both["entity_type"]}).unique(), on="entity_id"
    ).filter(pl.col("entity_type") == pl.col("et")).drop("et").unique(maintain_order=True)


COURT_DEFAULTERS = TableSpec(
    "courts",
    "SXBZXR",
    "judgment_defaulters",
    _cols(
        "ID bigint",
        "XMMC str:200",
        "ZJHM str:40",
        "FDDBR str:50",
        "AH str:60",
        "ZXFY str:60",
        "LASJ str:20",
        "YW text",
        "LXQK str:20",
        "SXQX text",
        "FBSJ datetime",
        "GXSJ datetime",
    ),
    ("ID",),
    "GXSJ",
    per_enterprise=0.05,
)


def build_court_defaulters(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(21)
    p = ctx.profile
    e = _sample(ctx.enterprises_with_rep().filter(pl.col("kind") == "enterprise"), rng, 0.035)
    ne = e.height
    org = mess.where(mess.mask(rng, ne, 0.6), mess.org_code_hyphen(e["org_code"]), e["uscc"])
    persons = ctx.persons.filter(pl.col("role") == "other")
    ps = _sample(persons, rng, 0.05)
    npers = ps.height
    pkey = mess.resident_id(ps["id_number"], ps["birth"], rng, p, masked_rate=0.5)
    d = pl.DataFrame(
        {
            "XMMC": pl.concat(
                [
                    mess.enterprise_name(e["name"], e["former_name"], rng, p),
                    mess.person_name(ps["name"], rng, p),
                ]
            ),
            "ZJHM": pl.concat([org, pkey]),
            "FDDBR": pl.concat([e["rep_name"], pl.Series([None] * npers, dtype=pl.Utf8)]),
            "entity_id": pl.concat([e["entity_id"], ps["person_id"]]),
            "entity_type": ["enterprise"] * ne + ["person"] * npers,
        }
    )
    n = d.height
    filed = _dates(ctx, rng, pl.Series([dt.date(2016, 1, 1)] * n, dtype=pl.Date), n)
    pk = _pk_int(ctx.pk_base(), n)
    out = pl.DataFrame(
        {
            "ID": pk,
            "XMMC": d["XMMC"],
            "ZJHM": d["ZJHM"],
            "FDDBR": d["FDDBR"],
            "AH": "（"
            + filed.dt.year().cast(pl.Utf8)
            + "）粤03执"
            + pl.Series(rng.integers(1, 9000, n)).cast(pl.Utf8)
            + "号",
            "ZXFY": "深圳市中级人民法院",
            "LASJ": filed.dt.strftime("%Y年%m月%d日"),
            "YW": "支付款项" + pl.Series(rng.integers(1, 900, n)).cast(pl.Utf8) + "万元及利息",
            "LXQK": _pick(rng, ["全部未履行", "部分履行"], n, [0.8, 0.2]),
            "SXQX": _pick(rng, vocab.DEFAULT_SITUATIONS, n),
            "FBSJ": _ts(ctx, rng, filed, n),
            "GXSJ": _ts(ctx, rng, filed, n),
        }
    )
    truth = pl.concat(
        [
            _truth(spec, pk.head(ne), "subject", "enterprise", d["entity_id"].head(ne)),
            _truth(spec, pk.tail(npers), "subject", "person", d["entity_id"].tail(npers)),
        ]
    )
    return out, truth


# ================================================================================================
# 人社局 social security (oldest system: GBK text in latin1 columns)
# ================================================================================================
SS_EMPLOYERS = TableSpec(
    "social",
    "SB_DWCBXX",
    "employers",
    _cols(
        "DWBH str:12",
        "JFYF str:6",
        "DWMC str:200 latin1",
        "TYSHXYDM str:40",
        "DZ str:200 latin1",
        "CBRS uint",
        "QJJE dec:14:2",
        "GXSJ datetime",
    ),
    ("DWBH", "JFYF"),
    "GXSJ",
    per_enterprise=4.3,
)


def _employer_no(idx: pl.Series) -> pl.Series:
    return "4403" + (idx * 7 + 1_000_000).cast(pl.Utf8).str.zfill(8)


def build_ss_employers(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(30)
    p = ctx.profile
    e = ctx.ent.filter(pl.col("headcount") > 0)
    ne = e.height
    name = mess.enterprise_name(e["name"], e["former_name"], rng, p, traditional_rate=p.name_traditional)
    key = mess.where(
        mess.mask(rng, ne, 0.6), pl.Series([""] * ne, dtype=pl.Utf8), mess.enterprise_key(e["uscc"], rng, p)
    )
    base = e.with_columns(DWBH=_employer_no(e["idx"]), DWMC=name, KEY=key)
    months = 6
    m = _repeat(base, np.full(ne, months))
    n = m.height
    back = np.tile(np.arange(months, 0, -1), ne)
    month = pl.Series([ctx.as_of.replace(day=1)] * n, dtype=pl.Date).dt.offset_by(
        pl.Series(-back).cast(pl.Utf8) + "mo"
    )
    trend = np.exp(rng.normal(0, 0.08, n))
    headcount = np.maximum(1, np.round(m["headcount"].to_numpy() * trend)).astype(np.int64)
    out = pl.DataFrame(
        {
            "DWBH": m["DWBH"],
            "JFYF": month.dt.strftime("%Y%m"),
            "DWMC": m["DWMC"],
            "TYSHXYDM": m["KEY"],
            "DZ": m["address"],
            "CBRS": headcount,
            "QJJE": pl.Series(
                np.where(rng.random(n) < 0.04, np.round(rng.exponential(20000, n), 2), 0.0)
            ).cast(pl.Decimal(14, 2)),
            "GXSJ": _ts(ctx, rng, month.dt.offset_by("1mo"), n),
        }
    )
    pk = out["DWBH"] + "|" + out["JFYF"]
    return out, _truth(spec, pk, "subject", "enterprise", m["entity_id"])


SS_INSURED = TableSpec(
    "social",
    "SB_GRCBXX",
    "insured_persons",
    _cols(
        "GRBH str:16",
        "SFZHM str:20",
        "XM str:50 latin1",
        "DWBH str:12",
        "CBZT str:1",
        "CBRQ int",
        "GXSJ datetime",
    ),
    ("GRBH",),
    "GXSJ",
    per_enterprise=3.9,
)


def build_ss_insured(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(31)
    p = ctx.profile
    emp = ctx.persons.filter(pl.col("role") == "employee").join(
        ctx.ent.select(employer_id="entity_id", idx="idx", founded="founded"),
        on="employer_id",
        maintain_order="left",
    )
    n = emp.height
    grbh = "GR" + emp["person_id"].str.slice(1)
    since = _dates(ctx, rng, emp["founded"], n)
    serial = (since.cast(pl.Int32) + 25569).cast(pl.Int64)  # Excel serial day numbers
    out = pl.DataFrame(
        {
            "GRBH": grbh,
            "SFZHM": mess.resident_id(emp["id_number"], emp["birth"], rng, p),
            "XM": mess.person_name(emp["name"], rng, p),
            "DWBH": _employer_no(emp["idx"]),
            "CBZT": _pick(rng, ["1", "2", "3"], n, [0.85, 0.05, 0.1]),
            "CBRQ": serial,
            "GXSJ": _ts(ctx, rng, since, n),
        }
    )
    return out, pl.concat(
        [
            _truth(spec, grbh, "subject", "person", emp["person_id"]),
            _truth(spec, grbh, "employer", "enterprise", emp["employer_id"]),
        ]
    )


# ================================================================================================
# 生态环境局 environment (a vendor that used Chinese column names)
# ================================================================================================
ENV_PENALTIES = TableSpec(
    "env",
    "HB_XZCF",
    "penalties",
    _cols(
        "记录编号 bigint",
        "企业名称 str:200",
        "统一社会信用代码 str:40",
        "处罚决定书文号 str:80",
        "违法类型 str:60",
        "处罚金额 dec:14:2",
        "处罚日期 str:20",
        "更新时间 datetime",
    ),
    ("记录编号",),
    "更新时间",
    per_enterprise=0.03,
)


def build_env_penalties(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(40)
    p = ctx.profile
    e = _sample(ctx.ent.filter(pl.col("kind") != "individual"), rng, 0.03)
    n = e.height
    pk = _pk_int(ctx.pk_base(), n)
    decided = _dates(ctx, rng, e["founded"], n)
    key = mess.fullwidth(e["uscc"], rng, min(1.0, p.key_fullwidth * 6))
    key = mess.lowercase(key, rng, min(1.0, p.key_lowercase * 5))
    key = mess.spaces(key, rng, min(1.0, p.key_spaces * 5))
    out = pl.DataFrame(
        {
            "记录编号": pk,
            "企业名称": mess.enterprise_name(e["name"], e["former_name"], rng, p),
            "统一社会信用代码": mess.null_markers(key, rng, p.key_missing),
            "处罚决定书文号": "深环"
            + e["district"].str.slice(0, 2)
            + "罚〔"
            + decided.dt.year().cast(pl.Utf8)
            + "〕"
            + pl.Series(rng.integers(1, 800, n)).cast(pl.Utf8)
            + "号",
            "违法类型": _pick(rng, vocab.ENV_VIOLATIONS, n),
            "处罚金额": _money(rng, n, 10.0, 1.0),
            "处罚日期": decided.dt.strftime("%Y年%-m月%-d日"),
            "更新时间": _ts(ctx, rng, decided, n),
        }
    )
    return out, _truth(spec, pk, "subject", "enterprise", e["entity_id"])


# ================================================================================================
# 政务服务中心 service centre
# ================================================================================================
SERVICE_CASES = TableSpec(
    "service",
    "BJ_BJXX",
    "service_cases",
    _cols(
        "BJBH str:24",
        "SXBM str:10",
        "SXMC str:60",
        "SQRLX str:4",
        "SQRMC str:200",
        "SQRZJHM str:40",
        "SQSJ datetime",
        "SLSJ datetime",
        "BJSJ datetime",
        "FDSX int",
        "CNSX int",
        "BLZT str:4",
        "QD str:4",
        "MYD int",
        "GXSJ datetime",
    ),
    ("BJBH",),
    "GXSJ",
    per_enterprise=1.4,
)


def build_service_cases(ctx: BuildContext, spec: TableSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = ctx.rng(50)
    p = ctx.profile
    horizon = pl.Series([ctx.as_of - dt.timedelta(days=3 * 365)])
    ent = ctx.ent
    # every enterprise founded in the last three years applied for 企业设立登记 just before founding
    start = ent.filter(pl.col("founded") >= horizon[0])
    others = _repeat(ent, rng.poisson(0.6, ent.height))
    n_s, n_o = start.height, others.height
    items = vocab.SERVICE_ITEMS
    item_o = rng.integers(1, len(items) - 1, n_o)
    persons = ctx.persons.filter(pl.col("role") != "employee")
    ps = _sample(persons, rng, 0.5)
    n_p = ps.height
    item_idx = np.concatenate([np.zeros(n_s, int), item_o, np.full(n_p, len(items) - 1)])
    name = pl.concat(
        [
            start["name"],
            mess.enterprise_name(others["name"], others["former_name"], rng, p),
            mess.person_name(ps["name"], rng, p),
        ]
    )
    key = pl.concat(
        [
            start["uscc"],
            mess.enterprise_key(others["uscc"], rng, p),
            mess.resident_id(ps["id_number"], ps["birth"], rng, p),
        ]
    )
    n = n_s + n_o + n_p
    lo = pl.concat(
        [
            start["founded"].dt.offset_by("-10d"),
            _dates(ctx, rng, others["founded"], n_o),
            _dates(ctx, rng, pl.Series([ctx.as_of - dt.timedelta(days=3 * 365)] * n_p, dtype=pl.Date), n_p),
        ]
    )
    applied = lo.cast(pl.Datetime("us")) + pl.Series(rng.integers(8 * 3600, 17 * 3600, n) * 1_000_000).cast(
        pl.Duration("us")
    )
    as_of_end = dt.datetime.combine(ctx.as_of, dt.time(23, 59, 59))
    accepted = applied + pl.Series(rng.integers(600, 2 * 86400, n) * 1_000_000).cast(pl.Duration("us"))
    accepted = pl.select(pl.min_horizontal(accepted, pl.lit(as_of_end))).to_series()  # nothing after as-of
    statutory = np.array([it[2] for it in items])[item_idx]
    promised = np.array([it[3] for it in items])[item_idx]
    work_days = np.maximum(0, np.round(promised * rng.uniform(0.2, 1.3, n)) + (rng.random(n) < 0.04) * 5)
    calendar_days = (work_days * 7 // 5 + rng.integers(0, 2, n)).astype(np.int64)
    completed = accepted + pl.Series(calendar_days * 86_400_000_000).cast(pl.Duration("us"))
    done = completed <= as_of_end
    status = pl.select(
        pl.when(~done)
        .then(pl.lit("在办"))
        .when(pl.Series(rng.random(n) < 0.03))
        .then(pl.lit("退件"))
        .otherwise(pl.lit("办结"))
    ).to_series()
    pk = _pk_str("BJ", ctx.pk_base(), n)
    out = pl.DataFrame(
        {
            "BJBH": pk,
            "SXBM": pl.Series(np.array([it[0] for it in items])[item_idx]),
            "SXMC": pl.Series(np.array([it[1] for it in items])[item_idx]),
            "SQRLX": ["企业"] * (n_s + n_o) + ["个人"] * n_p,
            "SQRMC": name,
            "SQRZJHM": key,
            "SQSJ": applied,
            "SLSJ": accepted,
            "BJSJ": mess.where(done, completed, pl.Series([None] * n, dtype=pl.Datetime("us"))),
            "FDSX": statutory,
            "CNSX": promised,
            "BLZT": status,
            "QD": _pick(rng, vocab.SERVICE_CHANNELS, n, vocab.SERVICE_CHANNEL_WEIGHTS),
            "MYD": mess.where(
                done & mess.mask(rng, n, 0.7),
                pl.Series(rng.choice([3, 4, 5, 5, 5, 4, 2, 1], n)),
                pl.Series([None] * n, dtype=pl.Int64),
            ),
            "GXSJ": mess.where(done, completed, accepted),
        }
    )
    ids = pl.concat([start["entity_id"], others["entity_id"], ps["person_id"]])
    return out, pl.concat(
        [
            _truth(spec, pk.head(n_s + n_o), "applicant", "enterprise", ids.head(n_s + n_o)),
            _truth(spec, pk.tail(n_p), "applicant", "person", ids.tail(n_p)),
        ]
    )


BUILDERS: dict[
    str, tuple[TableSpec, Callable[[BuildContext, TableSpec], tuple[pl.DataFrame, pl.DataFrame]]]
] = {
    f"{s.department}.{s.name}": (s, b)
    for s, b in [
        (SAMR_REG, build_samr_registrations),
        (SAMR_ABNORMAL, build_samr_abnormal),
        (SAMR_PENALTIES, build_samr_penalties),
        (TAX_PAYERS, build_tax_payers),
        (TAX_FILINGS, build_tax_filings),
        (TAX_RATINGS, build_tax_ratings),
        (TAX_ARREARS, build_tax_arrears),
        (COURT_PARTIES, build_court_parties),
        (COURT_DEFAULTERS, build_court_defaulters),
        (SS_EMPLOYERS, build_ss_employers),
        (SS_INSURED, build_ss_insured),
        (ENV_PENALTIES, build_env_penalties),
        (SERVICE_CASES, build_service_cases),
    ]
}
DEPARTMENTS: dict[str, str] = {
    "samr": "市场监管局 market regulation (SAMR)",
    "tax": "税务局 tax",
    "courts": "法院 courts",
    "social": "人社局 human resources and social security",
    "env": "生态环境局 environment",
    "service": "政务服务中心 government service centre",
    "streets": "街道 street offices (file drops)",
}
