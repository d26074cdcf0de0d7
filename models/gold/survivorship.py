"""Golden records (``dim_enterprise``, ``dim_person``): which source record's value survives, attribute by
attribute, for each resolved entity.

The rules are data (:data:`ENTERPRISE_RULES`, :data:`PERSON_RULES`). Each rule names a group of golden
attributes taken *together from one source record* (a name with its comparison form and branch flag; a
legal representative's name with their ID; an address with its division code), the condition a record's
value must meet to be a candidate (a valid USCC, a non-empty name), and the sources in order of authority.
Among a rule's candidates the record from the most authoritative source wins; among records of equal
authority the most recently updated (``updated_at``), then the smallest ``record_id`` (so a rerun picks the
same record). A source not listed ranks after the listed ones. Every group records the ``record_id`` its
values came from (``<group>_from``), so a golden value can always be traced to the row that said it.

Why these authorities: the market-regulation registry (市场监管局 登记) is the legal record of an enterprise's
name, status, legal representative, capital and founding date; the tax bureau knows taxpayer numbers and
often the freshest phone; for persons the registry and tax know the legal representatives, social security
and the street rosters the residents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Rule:
    group: str  # the group's name: the ``<group>_from`` column
    columns: dict[str, str]  # golden column -> canonical column
    candidate: pl.Expr  # which records may supply the group
    sources: tuple[str, ...]  # ``<department>.<asset>``, most authoritative first
    why: str


def _present(col: str) -> pl.Expr:
    return pl.col(col).is_not_null() & (pl.col(col).cast(pl.Utf8).str.len_chars() > 0)


REGISTRY = "samr.registrations"
TAXPAYERS = "tax.taxpayers"

ENTERPRISE_RULES: tuple[Rule, ...] = (
    Rule(
        "name",
        {
            "name": "name",
            "name_comparison": "name_comparison",
            "is_branch": "name_is_branch",
            "name_parent_comparison": "name_parent_comparison",
        },
        _present("name"),
        (REGISTRY, TAXPAYERS, "social.employers", "samr.penalties", "samr.abnormal_operations"),
        "the registry's name (the latest registration), else the taxpayer's, else the employer's",
    ),
    Rule(
        "uscc",
        {"uscc": "uscc"},
        pl.col("uscc_status") == "valid",
        (REGISTRY, TAXPAYERS),
        "a valid 统一社会信用代码, the registry's first",
    ),
    Rule(
        "regno",
        {"regno": "regno"},
        pl.col("regno_status") == "valid",
        (REGISTRY,),
        "a valid old registration number",
    ),
    Rule(
        "org_code",
        {"org_code": "link_org_code"},
        pl.col("link_org_code").is_not_null(),
        (REGISTRY, TAXPAYERS),
        "the organization code, written or inside a valid USCC/TIN",
    ),
    Rule(
        "tin",
        {"tin": "tin"},
        pl.col("tin_status") == "valid",
        (TAXPAYERS,),
        "the tax bureau's taxpayer number (tax attributes come from tax)",
    ),
    Rule(
        "status",
        {"status": "status"},
        _present("status"),
        (REGISTRY, TAXPAYERS),
        "the registry's status (存续/注销/吊销 ...), else the taxpayer's",
    ),
    Rule(
        "legal_rep",
        {"legal_rep_name": "legal_rep_name", "legal_rep_id_number": "legal_rep_id_number"},
        _present("legal_rep_name"),
        (REGISTRY, TAXPAYERS),
        "the registry's legal representative, else the taxpayer's",
    ),
    Rule(
        "address",
        {"address": "address", "division_code": "division_code"},
        _present("address"),
        (REGISTRY, TAXPAYERS, "social.employers"),
        "the registered address, else the tax address",
    ),
    Rule(
        "phone",
        {"phone": "phone"},
        _present("phone"),
        (TAXPAYERS, REGISTRY, "social.employers"),
        "the taxpayer's phone (tax keeps contacts freshest), else the registry's",
    ),
    Rule(
        "industry",
        {"industry": "industry", "industry_section": "industry_section"},
        _present("industry"),
        (REGISTRY, TAXPAYERS),
        "the registry's industry (GB/T 4754), else the taxpayer's",
    ),
    Rule(
        "founded_on",
        {"founded_on": "founded_on"},
        pl.col("founded_on").is_not_null(),
        (REGISTRY, TAXPAYERS),
        "the registry's founding date",
    ),
    Rule(
        "capital",
        {"registered_capital_wan": "registered_capital_wan"},
        pl.col("registered_capital_wan").is_not_null(),
        (REGISTRY,),
        "the registered capital (万元)",
    ),
)

PERSON_RULES: tuple[Rule, ...] = (
    Rule(
        "name",
        {"name": "name", "name_comparison": "name_comparison"},
        _present("name"),
        (
            "samr.registrations",
            "tax.taxpayers",
            "social.insured_persons",
            "streets.street_rosters_csv",
            "streets.street_rosters_excel",
            "service.service_cases",
        ),
        "the name as the registry or tax record it, else social security, the street rosters, the service centre",
    ),
    Rule(
        "id_number",
        {"id_number": "id_number", "birth_date": "id_number_birth_date", "sex": "id_number_sex"},
        pl.col("id_number_status") == "valid",
        (
            "samr.registrations",
            "social.insured_persons",
            "tax.taxpayers",
            "streets.street_rosters_csv",
            "streets.street_rosters_excel",
        ),
        "a valid 居民身份证号 (15 digits converted to 18) with the birth date and sex it encodes",
    ),
    Rule(
        "phone",
        {"phone": "phone"},
        _present("phone"),
        (
            "service.service_cases",
            "streets.street_rosters_csv",
            "streets.street_rosters_excel",
            "social.insured_persons",
        ),
        "the most recently given phone, the service centre's first",
    ),
    Rule(
        "address",
        {"address": "address", "division_code": "division_code"},
        _present("address"),
        (
            "streets.street_rosters_csv",
            "streets.street_rosters_excel",
            "social.insured_persons",
            "service.service_cases",
        ),
        "the street office's roster address, else social security's",
    ),
)

RULES = {"enterprise": ENTERPRISE_RULES, "person": PERSON_RULES}


def golden_columns(kind: str) -> list[str]:
    """The golden attribute columns of a kind, in order (without the ``*_from`` lineage columns)."""
    return [c for rule in RULES[kind] for c in rule.columns]


def golden_records(records: pl.DataFrame, ids: pl.DataFrame, kind: str) -> pl.DataFrame:
    """One row per entity id: ``entity_id``, every golden attribute, ``<group>_from`` (the record it came
    from), ``records`` (how many source records the entity has) and ``departments`` (which departments know
    it, sorted). ``records``: a canonical table; ``ids``: ``record_id, entity_id`` (the crosswalk)."""
    rules = RULES[kind]
    needed = {"record_id", "source_department", "source_asset", "updated_at"}
    needed |= {c for r in rules for c in r.columns.values()} | {
        c for r in rules for c in r.candidate.meta.root_names()
    }
    frame = (
        records.select([c for c in records.columns if c in needed])
        .join(ids.select("record_id", "entity_id"), on="record_id")
        .with_columns(
            __source=pl.concat_str("source_department", pl.lit("."), "source_asset"),
            __recency=-pl.col("updated_at").dt.epoch("us").fill_null(-(2**62)),
        )
    )
    # a row's rank by recency, then record id (the tie-breaks of every rule), without sorting the wide frame:
    # ``order`` lists the rows in that order, ``__ord`` is each row's place in it
    order = frame.select(pl.arg_sort_by(["__recency", "record_id"])).to_series().to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    frame = frame.with_columns(__ord=pl.Series(rank))
    # per rule one integer that orders the candidates: (not a candidate, source authority, position); the
    # smallest per entity is the winner, and its low bits are the winner's row
    keys = [
        (
            (~r.candidate.fill_null(False)).cast(pl.Int64) * 64
            + pl.col("__source").replace_strict(
                {s: i for i, s in enumerate(r.sources)}, default=len(r.sources), return_dtype=pl.Int64
            )
        )
        * _ROW
        + pl.col("__ord").cast(pl.Int64)
        for r in rules
    ]
    winners = (
        frame.group_by("entity_id")
        .agg(
            *[k.min().alias(f"__key_{r.group}") for k, r in zip(keys, rules, strict=True)],
            pl.len().cast(pl.Int64).alias("records"),
            pl.col("source_department").unique().sort().alias("departments"),
        )
        .sort("entity_id")
    )
    out = [winners.select("entity_id")]
    for rule in rules:
        key = winners[f"__key_{rule.group}"]
        has = (key // _ROW) < 64  # the winner is a candidate
        rows = frame.select("record_id", *rule.columns.values()).gather(order[(key % _ROW).to_numpy()])
        picked = rows.select(
            pl.col("record_id").alias(f"{rule.group}_from"),
            *[pl.col(c).alias(g) for g, c in rule.columns.items()],
        )
        out.append(picked.select(pl.when(pl.Series(has)).then(pl.col(c)).alias(c) for c in picked.columns))
    out.append(winners.select("records", "departments"))
    return pl.concat(out, how="horizontal")


_ROW = 2**40  # room for a trillion rows


def link_branches(golden: pl.DataFrame) -> pl.DataFrame:
    """Add ``parent_entity_id`` to enterprise golden records: a branch (分公司) is its own entity, linked to
    the non-branch entity whose comparison name is the branch's parent form, when exactly one such entity
    exists (two same-named parents in different districts are not guessed between)."""
    parents = (
        golden.filter(~pl.col("is_branch").fill_null(False) & pl.col("name_comparison").is_not_null())
        .group_by("name_comparison")
        .agg(parent_entity_id=pl.col("entity_id").first(), n=pl.len())
        .filter(pl.col("n") == 1)
        .drop("n")
    )
    return golden.join(
        parents,
        left_on="name_parent_comparison",
        right_on="name_comparison",
        how="left",
        maintain_order="left",
    ).with_columns(
        parent_entity_id=pl.when(pl.col("is_branch").fill_null(False)).then(pl.col("parent_entity_id"))
    )
