"""The deterministic pass of entity resolution: records that share a validated key are one entity.

Why first, and why only validated keys: a USCC whose check character passes identifies one enterprise by law,
so linking on it needs no model and explains itself ("same USCC"); an invalid, masked or missing key proves
nothing and never links here (docs/domain/identifiers.md). What remains unlinked goes to the probabilistic pass.

The rules are data (:data:`ENTERPRISE_KEYS`, :data:`PERSON_KEYS`): each names a key built from columns of the
canonical tables (:mod:`models.canonical`). Records sharing the value of any rule's key are connected; the
entities are the connected components (a registration with both a USCC and an old registration number joins
the taxpayer known by the first and the employer known by the second). Each link keeps the rule that made it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.resolution.graph import components


@dataclass(frozen=True)
class KeyRule:
    """Records with the same non-null ``key`` are one entity."""

    name: str
    key: pl.Expr
    why: str


def _when_valid(value: str, status: str) -> pl.Expr:
    return pl.when(pl.col(status) == "valid").then(pl.col(value))


#: Enterprise keys, strongest first (the first rule that links a record is the one recorded).
ENTERPRISE_KEYS: tuple[KeyRule, ...] = (
    KeyRule("uscc", _when_valid("uscc", "uscc_status"), "the same valid 统一社会信用代码"),
    KeyRule(
        "tin_uscc",
        pl.when((pl.col("tin_status") == "valid") & (pl.col("tin_kind") == "uscc")).then(pl.col("tin")),
        "a taxpayer number that is a valid USCC, the same as another record's USCC",
    ),
    KeyRule(
        "org_code",
        pl.col("link_org_code"),
        "the same organization code: written, inside a valid USCC or inside a valid old 15-character TIN",
    ),
    KeyRule("regno", _when_valid("regno", "regno_status"), "the same valid 15-digit registration number"),
    # a department's own key identifies the entity within that department: the spec declares which columns are
    # one (keys:), the canonical record carries it with the table that owns it (link_local_key)
    KeyRule(
        "local_id",
        pl.col("link_local_key"),
        "the same department's own number (a declared local key, e.g. an employer's 单位编号)",
    ),
    # a former name (曾用名) declared on a record is that record's enterprise by the source's own word: the
    # canonical build gives both records the subject's record id (link_same_entity)
    KeyRule(
        "former_name",
        pl.col("link_same_entity"),
        "a former name (曾用名) declared on the same source row as the enterprise's record: the same entity",
    ),
)
#: The USCC-shaped keys are one key space: a TIN that is a USCC links to the same USCC written elsewhere.
_SAME_SPACE = {"tin_uscc": "uscc"}

PERSON_KEYS: tuple[KeyRule, ...] = (
    KeyRule(
        "resident_id",
        _when_valid("id_number", "id_number_status"),
        "the same valid 居民身份证号 (15-digit IDs converted to 18)",
    ),
)


def key_columns(rules: tuple[KeyRule, ...]) -> list[str]:
    """The columns of the canonical table that ``rules`` read (what :func:`clusters` needs of a record)."""
    return sorted({c for rule in rules for c in rule.key.meta.root_names()})


def clusters(records: pl.DataFrame, rules: tuple[KeyRule, ...]) -> pl.DataFrame:
    """``cluster, rule`` of every record of ``records`` (at least :func:`key_columns`), in its order: records
    linked by no rule are clusters of their own (``rule`` null); ``rule`` is the first rule that linked the
    record to another. Needs no record id, so a caller can read the key columns alone (14 million rows at 1M
    enterprises)."""
    frame = records.select(*[r.key.alias(f"__k_{r.name}") for r in rules]).with_row_index("__i")
    n = frame.height
    spaces: dict[str, list[str]] = {}  # key space -> the rules whose keys live in it, strongest first
    for rule in rules:
        spaces.setdefault(_SAME_SPACE.get(rule.name, rule.name), []).append(rule.name)
    edges_a: list[np.ndarray] = []
    edges_b: list[np.ndarray] = []
    first_rule = np.full(n, -1, dtype=np.int64)  # index into the key spaces, -1: linked by none
    for number, names in enumerate(spaces.values()):
        keyed = pl.concat([frame.select("__i", key=pl.col(f"__k_{name}")) for name in names]).drop_nulls(
            "key"
        )
        # each record to the first record with the same key value: a star per value is enough for components
        anchors = keyed.group_by("key").agg(anchor=pl.col("__i").min(), size=pl.col("__i").n_unique())
        pairs = keyed.join(anchors.filter(pl.col("size") > 1), on="key").filter(
            pl.col("__i") != pl.col("anchor")
        )
        if pairs.height == 0:
            continue
        edges_a.append(pairs["__i"].to_numpy())
        edges_b.append(pairs["anchor"].to_numpy())
        linked = np.unique(np.concatenate([edges_a[-1], edges_b[-1]]))
        unset = linked[first_rule[linked] < 0]
        first_rule[unset] = number
    a = np.concatenate(edges_a) if edges_a else np.empty(0, dtype=np.int64)
    b = np.concatenate(edges_b) if edges_b else np.empty(0, dtype=np.int64)
    labels = components(n, a, b) if n else np.empty(0, dtype=np.int64)
    rule_names = pl.Series("rule", first_rule).replace_strict(
        dict(enumerate(spaces)), default=None, return_dtype=pl.Utf8
    )
    return pl.DataFrame([pl.Series("cluster", labels, dtype=pl.Int64), rule_names])


def link(records: pl.DataFrame, rules: tuple[KeyRule, ...]) -> pl.DataFrame:
    """``record_id, cluster, rule``: every record of ``records`` (a canonical table) with its deterministic
    cluster (:func:`clusters`), in the order of ``records``."""
    return records.select("record_id").hstack(clusters(records, rules))
