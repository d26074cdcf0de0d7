"""The rows of the generic department kinds (:mod:`simulator.kinds`), with logical values.

Each builder takes one generation unit (:class:`~simulator.tables.BuildContext`) and the city's shape and returns
:class:`Built`: the rows under the fields' logical names — dates as ``Date``, the update stamp as ``Datetime``,
the departments' own numbers already in the shape's formats — and the truth, as ``(role, entity_type, ids)``
per mention (an id null where the row does not mention such an entity). :func:`simulator.kinds.realize` names
and encodes them. The mess is :mod:`simulator.mess`'s, at the rates of the city's profile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from simulator import mess, vocab
from simulator.shapes import CityShape
from simulator.tables import BuildContext


@dataclass
class Built:
    rows: pl.DataFrame
    truth: list[tuple[str, str, pl.Series]] = field(default_factory=list)


def _us(d: dt.date, t: dt.time = dt.time()) -> int:
    return int((dt.datetime.combine(d, t) - dt.datetime(1970, 1, 1)).total_seconds() * 1_000_000)


def stamps(ctx: BuildContext, rng: np.random.Generator, start: pl.Series) -> pl.Series:
    """Random whole-second datetimes between ``start`` (per row; the context's window if later) and the end of
    the as-of day."""
    n = len(start)
    start_us = start.cast(pl.Datetime("us")).cast(pl.Int64).fill_null(_us(dt.date(2000, 1, 1))).to_numpy()
    end_us = _us(ctx.as_of, dt.time(23, 59, 59))
    if ctx.window_start is not None:
        start_us = np.maximum(start_us, _us(ctx.window_start))
    start_us = np.minimum(start_us, end_us)
    us = start_us + (rng.random(n) * (end_us - start_us)).astype(np.int64)
    return pl.Series(us - us % 1_000_000).cast(pl.Datetime("us"))


def dates(ctx: BuildContext, rng: np.random.Generator, start: pl.Series) -> pl.Series:
    return stamps(ctx, rng, start).dt.date()


def _sample(df: pl.DataFrame, rng: np.random.Generator, rate: float) -> pl.DataFrame:
    return df.filter(pl.Series(rng.random(df.height) < rate))


def _pick(rng: np.random.Generator, pool: list[str], n: int, p: list[float] | None = None) -> pl.Series:
    weights = None if p is None else np.asarray(p) / np.sum(p)
    return pl.Series(
        np.asarray(pool, dtype=object)[rng.choice(len(pool), n, p=weights)].tolist(), dtype=pl.Utf8
    )


def _money(rng: np.random.Generator, n: int, mu: float, sigma: float, scale: int = 2) -> pl.Series:
    return pl.Series(np.round(np.exp(rng.normal(mu, sigma, n)), scale)).cast(pl.Decimal(14, scale))


def _nulls(n: int) -> pl.Series:
    return pl.Series([None] * n, dtype=pl.Utf8)


# ================================================================================================
# registry: the legal record of every commercial entity, and its change log
# ================================================================================================
def registry(ctx: BuildContext, shape: CityShape) -> Built:
    rng = ctx.rng(201)
    p = ctx.profile
    e = ctx.enterprises_with_rep()
    status_codes = shape.registry_status or {s: s for s in ("active", "revoked", "deregistered", "moved_out")}
    rows = pl.DataFrame(
        {
            "corp_id": shape.corp_id.render(e["idx"]),
            "uscc": mess.enterprise_key(e["uscc"], rng, p, scale=0.3),
            "corp_name": mess.trailing_space(e["name"], rng, 0.01),
            "legal_rep": e["rep_name"],
            "legal_rep_id": mess.resident_id(e["rep_id_number"], e["rep_birth"], rng, p, old_form_rate=0.01),
            "capital_wan": e["capital"].cast(pl.Decimal(18, 4)),
            "founded_on": e["founded"],
            "status": e["status"].replace_strict(status_codes),
            "address": e["address"],
            "industry_code": e["hydm"],
            "phone": mess.null_markers(e["phone"], rng, p.null_marker),
            "updated_at": stamps(ctx, rng, e["founded"]),
        }
    )
    return Built(rows, [("subject", "enterprise", e["entity_id"]), ("legal_rep", "person", e["rep_id"])])


CHANGE_NAME = "名称变更"
CHANGE_ADDRESS = "住所变更"


def change_log(ctx: BuildContext, shape: CityShape) -> Built:
    """变更登记: every renamed enterprise's name change (曾用名 before, the current name after), and address
    changes of some others; each row names the enterprise by its registry corp id and current name."""
    rng = ctx.rng(202)
    e = ctx.ent
    renamed = e.filter(pl.col("former_name").is_not_null())
    moved = _sample(e.filter(pl.col("former_name").is_null() & (pl.col("kind") != "branch")), rng, 0.2)
    n_r, n_m = renamed.height, moved.height
    old_address = (
        vocab.CITY
        + _pick(rng, [d for _, d in vocab.DISTRICTS], n_m)
        + _pick(rng, vocab.STREETS, n_m)
        + pl.Series(rng.integers(1, 3000, n_m)).cast(pl.Utf8)
        + "号"
    )
    both = pl.concat([renamed, moved])
    n = both.height
    changed = dates(ctx, rng, both["founded"].dt.offset_by("30d"))
    rows = pl.DataFrame(
        {
            "change_id": pl.Series(ctx.pk_base() + np.arange(n, dtype=np.int64)),
            "corp_id": shape.corp_id.render(both["idx"]),
            "corp_name": both["name"],
            "change_item": [CHANGE_NAME] * n_r + [CHANGE_ADDRESS] * n_m,
            "before_value": pl.concat([renamed["former_name"], old_address]),
            "after_value": pl.concat([renamed["name"], moved["address"]]),
            "changed_on": changed,
            "updated_at": stamps(ctx, rng, changed),
        }
    )
    return Built(rows, [("subject", "enterprise", both["entity_id"])])


# ================================================================================================
# tax: taxpayers (some still under the old 15-character TIN) and annual credit ratings
# ================================================================================================
TAX_STATUS_TEXT = {"active": "正常", "revoked": "非正常", "deregistered": "注销", "moved_out": "停业"}


def _taxpayers(ctx: BuildContext) -> pl.DataFrame:
    if "kinds_taxpayers" not in ctx._cache:
        rng = ctx.rng(210)
        e = _sample(ctx.enterprises_with_rep(), rng, 0.95)
        keeps_old = e["old_tin"].is_not_null() & mess.mask(rng, e.height, 0.6)
        ctx._cache["kinds_taxpayers"] = e.with_columns(tin=mess.where(keeps_old, e["old_tin"], e["uscc"]))
    return ctx._cache["kinds_taxpayers"]


def taxpayers(ctx: BuildContext, shape: CityShape) -> Built:
    rng = ctx.rng(211)
    p = ctx.profile
    e = _taxpayers(ctx)
    rows = pl.DataFrame(
        {
            "taxpayer_no": e["idx"].cast(pl.Int64) + 3_044_000_000_000,
            "tin": mess.enterprise_key(e["tin"], rng, p, 0.3),
            "taxpayer_name": mess.enterprise_name(e["name"], e["former_name"], rng, p),
            "legal_rep": mess.person_name(e["rep_name"], rng, p),
            "legal_rep_id": mess.resident_id(e["rep_id_number"], e["rep_birth"], rng, p),
            "address": mess.null_markers(e["address"], rng, p.null_marker),
            "tax_status": e["status"].replace_strict(TAX_STATUS_TEXT),
            "registered_on": e["founded"].dt.offset_by("20d"),
            "updated_at": stamps(ctx, rng, e["founded"]),
        }
    )
    return Built(rows, [("subject", "enterprise", e["entity_id"]), ("legal_rep", "person", e["rep_id"])])


def tax_ratings(ctx: BuildContext, shape: CityShape) -> Built:
    """纳税信用评价: one row per taxpayer and rating year; the year is the only date the table has."""
    rng = ctx.rng(212)
    e = _taxpayers(ctx)
    parts = [
        _sample(e.filter(pl.col("founded").dt.year() < y), rng, 0.3).with_columns(rating_year=pl.lit(y))
        for y in (2023, 2024, 2025)
    ]
    r = pl.concat(parts)
    n = r.height
    rows = pl.DataFrame(
        {
            "tin": r["tin"],
            "rating_year": r["rating_year"].cast(pl.Int64),
            "rating": _pick(rng, vocab.TAX_RATINGS, n, vocab.TAX_RATING_WEIGHTS),
        }
    )
    return Built(rows, [("subject", "enterprise", r["entity_id"])])


# ================================================================================================
# urban management (城管): penalties whose party is a shop, a company or a person, told apart by nothing
# ================================================================================================
URBAN_VIOLATIONS = ["占道经营", "违法搭建", "乱张贴小广告", "店外经营", "违规排放油烟", "渣土车未密闭运输"]


def urban_penalties(ctx: BuildContext, shape: CityShape) -> Built:
    rng = ctx.rng(220)
    p = ctx.profile
    n = int(ctx.ent.height * 0.3)
    if n == 0:
        return Built(pl.DataFrame(schema={"case_no": pl.Utf8}))
    is_ent = rng.random(n) < shape.party_enterprise_share
    ne, np_ = int(is_ent.sum()), int((~is_ent).sum())
    ent = ctx.ent.filter(pl.col("kind") != "branch")
    e = ent.select(pl.all().gather(rng.integers(0, ent.height, ne)))
    persons = ctx.persons.filter(pl.col("role") != "employee")
    ps = persons.select(pl.all().gather(rng.integers(0, persons.height, np_)))
    ekey = mess.enterprise_key(e["uscc"], rng, p)
    pkey = mess.resident_id(ps["id_number"], ps["birth"], rng, p)
    parties = pl.DataFrame(
        {
            "party_name": pl.concat(
                [
                    mess.enterprise_name(e["name"], e["former_name"], rng, p),
                    mess.person_name(ps["name"], rng, p),
                ]
            ),
            "id_no": pl.concat([ekey, pkey]),
            "enterprise_id": pl.concat([e["entity_id"], _nulls(np_)]),
            "person_id": pl.concat([_nulls(ne), ps["person_id"]]),
            "since": pl.concat([e["founded"], pl.Series([dt.date(2018, 1, 1)] * np_, dtype=pl.Date)]),
        }
    ).select(pl.all().gather(rng.permutation(n)))
    keyless = mess.mask(rng, n, shape.party_key_missing)
    id_no = mess.where(keyless, pl.Series([""] * n, dtype=pl.Utf8), parties["id_no"])
    decided = dates(ctx, rng, parties["since"])
    rows = pl.DataFrame(
        {
            "case_no": "CGCF"
            + pl.Series(ctx.pk_base() + np.arange(n, dtype=np.int64)).cast(pl.Utf8).str.zfill(11),
            "party_name": parties["party_name"],
            "id_no": id_no,
            "violation": _pick(rng, URBAN_VIOLATIONS, n),
            "fine": _money(rng, n, 6.5, 0.9),
            "decided_on": decided,
            "updated_at": stamps(ctx, rng, decided),
        }
    )
    return Built(
        rows, [("party", "enterprise", parties["enterprise_id"]), ("party", "person", parties["person_id"])]
    )


# ================================================================================================
# housing provident fund (住房公积金): employer accounts and member accounts
# ================================================================================================
MEMBER_STATUS = {"paying": "01", "sealed": "02", "closed": "03"}


def _fund_employers(ctx: BuildContext) -> pl.DataFrame:
    if "kinds_fund" not in ctx._cache:
        rng = ctx.rng(230)
        ctx._cache["kinds_fund"] = _sample(ctx.ent.filter(pl.col("headcount") > 0), rng, 0.75)
    return ctx._cache["kinds_fund"]


def fund_employers(ctx: BuildContext, shape: CityShape) -> Built:
    rng = ctx.rng(231)
    p = ctx.profile
    e = _fund_employers(ctx)
    n = e.height
    uscc = mess.where(mess.mask(rng, n, 0.5), _nulls(n), mess.enterprise_key(e["uscc"], rng, p))
    opened = dates(ctx, rng, e["founded"])
    rows = pl.DataFrame(
        {
            "employer_account": shape.employer_account.render(e["idx"]),
            "employer_name": mess.enterprise_name(
                e["name"], e["former_name"], rng, p, traditional_rate=p.name_traditional
            ),
            "uscc": uscc,
            "depositor_count": e["headcount"],
            "monthly_deposit": (e["headcount"] * pl.Series(rng.uniform(600, 2400, n)))
            .round(2)
            .cast(pl.Decimal(14, 2)),
            "opened_on": opened,
            "updated_at": stamps(ctx, rng, opened),
        }
    )
    return Built(rows, [("subject", "enterprise", e["entity_id"])])


def fund_members(ctx: BuildContext, shape: CityShape) -> Built:
    """One account per employee of a participating employer, carrying the employer's account number."""
    rng = ctx.rng(232)
    p = ctx.profile
    employers = _fund_employers(ctx).select(employer_id="entity_id", employer_idx="idx", founded="founded")
    emp = ctx.persons.filter(pl.col("role") == "employee").join(
        employers, on="employer_id", maintain_order="left"
    )
    n = emp.height
    person_no = emp["person_id"].str.slice(1).cast(pl.Int64)
    since = dates(ctx, rng, emp["founded"])
    rows = pl.DataFrame(
        {
            "member_account": shape.member_account.render(person_no),
            "member_name": mess.person_name(emp["name"], rng, p),
            "id_number": mess.resident_id(emp["id_number"], emp["birth"], rng, p),
            "employer_account": shape.employer_account.render(emp["employer_idx"]),
            "account_status": _pick(rng, list(MEMBER_STATUS.values()), n, [0.85, 0.1, 0.05]),
            "member_since": since,
            "updated_at": stamps(ctx, rng, since),
        }
    )
    return Built(
        rows, [("subject", "person", emp["person_id"]), ("employer", "enterprise", emp["employer_id"])]
    )
