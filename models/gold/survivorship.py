"""Golden records (``dim_enterprise``, ``dim_person``): which source record's value survives, attribute by
attribute, for each resolved entity.

The generic part is here, as data (:data:`ENTERPRISE_RULES`, :data:`PERSON_RULES`): each rule names a group of
golden attributes taken *together from one source record* (a name with its comparison form and branch flag; a
legal representative's name with their ID; an address with its division code) and the condition a record's
value must meet to be a candidate (a valid USCC, a non-empty name). Which *source* is authoritative for a group
is not: a city's departments differ, so each deployment's staging specs declare it (``authority:`` in
``specs/*.yaml``, :mod:`models.staging.spec`) and :func:`authority` turns the declarations into one ranking per
group. No department, table or column name of any city appears in this module (issue 15: a new city's registry
was unknown to a hard-coded list, and the tax bureau's status silently won).

Among a rule's candidates the record from the best-ranked source wins (rank 1 before rank 2); among records of
equal rank the most recently updated (``updated_at``), then the smallest source primary key (``source_pk``), then
the smallest ``record_id`` (so a rerun picks the same record; the key before the id because the id begins with the
department's and table's names, and a city must get the same golden record whatever it calls them). A source that declares nothing for a group ranks after every declaring source; when no source of
the deployment declares a group at all, every source ranks equal, recency decides, and the gold build warns
(:attr:`Authority.undeclared`). Every group records the ``record_id`` its values came from (``<group>_from``),
so a golden value can always be traced to the row that said it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from models.roles import FORMER_NAME_ROLE


@dataclass(frozen=True)
class Rule:
    group: str  # the group's name: the ``<group>_from`` column, and the key a spec's ``authority`` ranks
    columns: dict[str, str]  # golden column -> canonical column
    candidate: pl.Expr  # which records may supply the group
    why: str


def _present(col: str) -> pl.Expr:
    return pl.col(col).is_not_null() & (pl.col(col).cast(pl.Utf8).str.len_chars() > 0)


ENTERPRISE_RULES: tuple[Rule, ...] = (
    Rule(
        "name",
        {
            "name": "name",
            "name_comparison": "name_comparison",
            "is_branch": "name_is_branch",
            "name_parent_comparison": "name_parent_comparison",
        },
        _present("name") & pl.col("role").ne_missing(FORMER_NAME_ROLE),
        "a non-empty current name (not a former name, 曾用名), with the comparison form and branch flag read from "
        "the same record",
    ),
    Rule("uscc", {"uscc": "uscc"}, pl.col("uscc_status") == "valid", "a valid 统一社会信用代码"),
    Rule("regno", {"regno": "regno"}, pl.col("regno_status") == "valid", "a valid old registration number"),
    Rule(
        "org_code",
        {"org_code": "link_org_code"},
        pl.col("link_org_code").is_not_null(),
        "the organization code, written or inside a valid USCC/TIN",
    ),
    Rule("tin", {"tin": "tin"}, pl.col("tin_status") == "valid", "a valid taxpayer number"),
    Rule("status", {"status": "status"}, _present("status"), "a registration status (存续/注销/吊销 ...)"),
    Rule(
        "legal_rep",
        {"legal_rep_name": "legal_rep_name", "legal_rep_id_number": "legal_rep_id_number"},
        _present("legal_rep_name"),
        "the legal representative's name with the ID of the same record",
    ),
    Rule(
        "address",
        {"address": "address", "division_code": "division_code"},
        _present("address"),
        "an address with the division code read from it",
    ),
    Rule("phone", {"phone": "phone"}, _present("phone"), "a non-empty phone"),
    Rule(
        "industry",
        {"industry": "industry", "industry_section": "industry_section"},
        _present("industry"),
        "an industry code (GB/T 4754) with its section",
    ),
    Rule("founded_on", {"founded_on": "founded_on"}, pl.col("founded_on").is_not_null(), "a founding date"),
    Rule(
        "capital",
        {"registered_capital_wan": "registered_capital_wan"},
        pl.col("registered_capital_wan").is_not_null(),
        "the registered capital (万元)",
    ),
)

PERSON_RULES: tuple[Rule, ...] = (
    Rule(
        "name",
        {"name": "name", "name_comparison": "name_comparison"},
        _present("name"),
        "a non-empty name with its comparison form",
    ),
    Rule(
        "id_number",
        {"id_number": "id_number", "birth_date": "id_number_birth_date", "sex": "id_number_sex"},
        pl.col("id_number_status") == "valid",
        "a valid 居民身份证号 (15 digits converted to 18) with the birth date and sex it encodes",
    ),
    Rule("phone", {"phone": "phone"}, _present("phone"), "a non-empty phone"),
    Rule(
        "address",
        {"address": "address", "division_code": "division_code"},
        _present("address"),
        "an address with the division code read from it",
    ),
)

RULES = {"enterprise": ENTERPRISE_RULES, "person": PERSON_RULES}

#: kind -> the attribute groups a staging spec may rank in its ``authority:`` section.
GROUPS: dict[str, tuple[str, ...]] = {kind: tuple(r.group for r in rules) for kind, rules in RULES.items()}

#: ``<department>/<asset>`` (a spec's ``source``) -> kind -> group -> declared rank (1 = most authoritative): the specs' declarations.
Declarations = Mapping[str, Mapping[str, Mapping[str, int]]]


@dataclass(frozen=True)
class Authority:
    """One kind's source ranking per group, derived from the deployment's declarations."""

    kind: str
    #: group -> ``<department>/<asset>`` -> place (0 first); a source not listed comes after the listed ones
    ranks: dict[str, dict[str, int]]
    #: groups no source declares: every source ranks equal and recency decides — worth a warning, since a
    #: city whose legal record is not declared gets whichever department wrote last
    undeclared: tuple[str, ...]

    def warnings(self) -> list[str]:
        return [
            f"survivorship: no staging spec of the deployment declares authority for {self.kind} attribute group "
            f"{group!r}: every source ranks equal and the most recently updated record wins (declare it in the "
            f"spec of the source that is the legal record: authority: {{{self.kind}: {{{group}: 1}}}})"
            for group in self.undeclared
        ]


def authority(declarations: Declarations, kind: str) -> Authority:
    """The declared ranks of ``kind`` as places per group: equal ranks share a place, so ``{a: 1, b: 1, c: 5}``
    puts a and b together first (recency between them) and c second — only the order of the numbers matters."""
    ranks: dict[str, dict[str, int]] = {}
    undeclared = []
    for group in GROUPS[kind]:
        declared = {
            source: by_group[group]
            for source, by_kind in declarations.items()
            if (by_group := by_kind.get(kind)) and group in by_group
        }
        if not declared:
            undeclared.append(group)
        places = {rank: i for i, rank in enumerate(sorted(set(declared.values())))}
        ranks[group] = {source: places[rank] for source, rank in sorted(declared.items())}
    return Authority(kind, ranks, tuple(undeclared))


def golden_columns(kind: str) -> list[str]:
    """The golden attribute columns of a kind, in order (without the ``*_from`` lineage columns)."""
    return [c for rule in RULES[kind] for c in rule.columns]


def golden_records(
    records: pl.DataFrame, ids: pl.DataFrame, kind: str, ranking: Authority | Declarations
) -> pl.DataFrame:
    """One row per entity id: ``entity_id``, every golden attribute, ``<group>_from`` (the record it came
    from), ``records`` (how many source records the entity has) and ``departments`` (which departments know
    it, sorted). ``records``: a canonical table; ``ids``: ``record_id, entity_id`` (the crosswalk);
    ``ranking``: the sources' authority (:func:`authority`, or the declarations it is derived from)."""
    rules = RULES[kind]
    if not isinstance(ranking, Authority):
        ranking = authority(ranking, kind)
    if ranking.kind != kind:
        raise ValueError(f"the authority of {ranking.kind} records cannot rank {kind} records")
    needed = {"record_id", "source_department", "source_asset", "source_pk", "updated_at"}
    needed |= {c for r in rules for c in r.columns.values()} | {
        c for r in rules for c in r.candidate.meta.root_names()
    }
    frame = (
        records.select([c for c in records.columns if c in needed])
        .join(ids.select("record_id", "entity_id"), on="record_id")
        .with_columns(
            __source=pl.concat_str("source_department", pl.lit("/"), "source_asset"),
            __recency=-pl.col("updated_at").dt.epoch("us").fill_null(-(2**62)),
            # records without their source key (a hand-made frame) tie-break on the record id alone
            **({} if "source_pk" in records.columns else {"source_pk": pl.lit(None, pl.Utf8)}),
        )
    )
    # a row's rank by recency, then source key, then record id (the tie-breaks of every rule), without sorting the
    # wide frame: ``order`` lists the rows in that order, ``__ord`` is each row's place in it
    order = frame.select(pl.arg_sort_by(["__recency", "source_pk", "record_id"])).to_series().to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    frame = frame.with_columns(__ord=pl.Series(rank))
    # per rule one integer that orders the candidates: (not a candidate, source authority, position); the
    # smallest per entity is the winner, and its low bits are the winner's row
    keys = [
        (
            (~r.candidate.fill_null(False)).cast(pl.Int64) * _PLACES
            + pl.col("__source").replace_strict(
                ranking.ranks[r.group], default=_last(ranking.ranks[r.group]), return_dtype=pl.Int64
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
            *_former_names(kind, frame),
        )
        .sort("entity_id")
    )
    out = [winners.select("entity_id")]
    for rule in rules:
        key = winners[f"__key_{rule.group}"]
        has = (key // _ROW) < _PLACES  # the winner is a candidate
        rows = frame.select("record_id", *rule.columns.values()).gather(order[(key % _ROW).to_numpy()])
        picked = rows.select(
            pl.col("record_id").alias(f"{rule.group}_from"),
            *[pl.col(c).alias(g) for g, c in rule.columns.items()],
        )
        out.append(picked.select(pl.when(pl.Series(has)).then(pl.col(c)).alias(c) for c in picked.columns))
    out.append(winners.select("records", "departments", *(["former_names"] if kind == "enterprise" else [])))
    return pl.concat(out, how="horizontal")


def _former_names(kind: str, frame: pl.DataFrame) -> list[pl.Expr]:
    """An enterprise's former names (曾用名: the names of its ``former_name`` records), distinct and sorted, as
    the aggregation of :func:`golden_records` (persons have none)."""
    if kind != "enterprise":
        return []
    if "role" not in frame.columns:
        return [pl.lit([], pl.List(pl.Utf8)).first().alias("former_names")]
    former = pl.col("name").filter((pl.col("role") == FORMER_NAME_ROLE) & pl.col("name").is_not_null())
    return [former.unique().sort().alias("former_names")]


_ROW = 2**40  # room for a trillion rows
_PLACES = 2**20  # room for a million distinct ranks (the key stays below 2**61)


def _last(places: dict[str, int]) -> int:
    """The place of a source that declared nothing for a group: after every declaring source."""
    last = max(places.values(), default=-1) + 1
    if last >= _PLACES:
        raise ValueError(f"more than {_PLACES - 1} distinct authority ranks in one group")
    return last


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
