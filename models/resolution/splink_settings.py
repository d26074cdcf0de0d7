"""The probabilistic model of entity resolution, as data: Splink 5 settings (comparisons, blocking rules, the
rules EM trains on, the thresholds) per kind of entity. The engine is :mod:`models.resolution.probabilistic`; the
*trained* model (these settings plus the m and u Splink estimated) is ``trained/<kind>.json``, written by
``qst er-train`` and loaded by every nightly run.

Chinese text: DuckDB's ``levenshtein``/``jaro_winkler_similarity`` count UTF-8 bytes, not characters (DESIGN.md),
so no comparison here uses them on names or addresses. Fuzzy name and address levels compare *character bigram
sets* derived when the profiles are loaded (``*_bigrams``, distinct lists, built with DuckDB's ``substring``, which
counts characters) with a Jaccard written in list SQL; person names also compare a pinyin form (``name_pinyin``),
which catches homophone misspellings (张伟/张玮). Blocking keys are derived columns too (``name_prefix2``: the
first two characters of ``name_comparison``), so no SQL ``substr`` touches Chinese text in a blocking rule.
Resident ID numbers are ASCII, so a byte ``hamming`` on them is a character one.

Two engines, one model: the levels whose SQL differs between DuckDB and Spark (the list Jaccard, the Hamming
distance) are declared once as functions of the dialect (:class:`DialectLevel`); the trained files hold DuckDB's
SQL, and :func:`for_dialect` rewrites a trained model's levels for Spark from these declarations, m and u untouched
(``linkage.backend`` in platform.yaml; :mod:`models.resolution.spark_backend`).

Term frequencies: the exact levels of names, phones, addresses, legal representatives and related enterprises are adjusted by the name's frequency (Splink's
``tf_adjustment_column``): 张伟 agreeing is weaker evidence than 欧阳修远 agreeing.

Blocking (what keeps the candidate pairs near-linear): Splink sees one row per distinct *profile* (a deterministic
cluster's distinct values of the compared columns) and every rule requires

* ``l.det_cluster <> r.det_cluster``: records the deterministic pass linked are never compared again;
* ``l.keyless``: the left profile belongs to a cluster without a validated key (no valid USCC/organization code for
  enterprises, no valid resident ID for persons). Two keyed clusters never need comparing: equal keys were linked
  by the deterministic pass, different keys are different entities. The engine numbers keyless profiles first and
  Splink compares ``l.id < r.id``, so every pair with a keyless side has it on the left, and DuckDB filters the
  left side before the join: pairs grow with (keyless profiles) x (block size), not with the square of the estate;
* a name key only when the name is not too common (``name_block``: the name when at most ``name_block_max``
  profiles carry it): a name shared by hundreds cannot link on its own, other rules (phone, division, the related
  enterprise, the birth date) bring its pairs.

Branches (分公司) never merge with their parent: every fuzzy name level and every enterprise blocking rule
requires equal ``name_is_branch``, and the engine drops any predicted pair whose ``name_is_branch`` differs.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from typing import Any, Literal

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator
from splink.blocking_rule_library import CustomRule
from splink.internals.comparison_level_creator import ComparisonLevelCreator

Kind = str  # "enterprise" | "person"


#: The SQL backends Splink runs the model on (``linkage.backend`` in platform.yaml, :mod:`lake.platform`).
Dialect = Literal["duckdb", "spark"]
DIALECTS: tuple[Dialect, ...] = ("duckdb", "spark")

#: The list functions the comparisons need, per dialect: the intersection of two lists, and a list's size.
#: (Splink's own transpiler, sqlglot, turns DuckDB's ``len(list)`` into Spark's ``LENGTH``, a string length
#: Spark rejects on arrays, so the SQL is written per dialect rather than translated.)
_LIST_SQL: dict[str, tuple[str, str]] = {
    "duckdb": ("list_intersect", "len"),
    "spark": ("array_intersect", "size"),
}


def _jaccard_at_least(col: str, t: float, dialect: str = "duckdb") -> str:
    """Jaccard(A, B) >= t for two distinct lists, without a division or a union list:
    |A∩B| / (|A|+|B|-|A∩B|) >= t  <=>  |A∩B| >= t (|A|+|B|) / (1+t)  (one list_intersect per level; 3x faster
    in DuckDB than building the union). Both engines read the factor as an exact DECIMAL literal, so the
    comparison is exact in both: the same pairs reach the same level."""
    intersect, size = _LIST_SQL[dialect]
    return f"{size}({intersect}({col}_l, {col}_r)) >= {t / (1 + t)!r} * ({size}({col}_l) + {size}({col}_r))"


def _hamming_at_most(col: str, n: int, dialect: str = "duckdb") -> str:
    """Two equally long texts that differ in at most ``n`` positions. Spark SQL has no ``hamming``: there, the
    positions that differ are counted with a higher-order filter over the positions (ASCII identifiers, so a
    character is a byte in both)."""
    same_length = f"length({col}_l) = length({col}_r)"
    if dialect == "duckdb":
        return f"{same_length} AND hamming({col}_l, {col}_r) <= {n}"
    differ = (
        f"size(filter(sequence(1, length({col}_l)), "
        f"i -> substring({col}_l, i, 1) <> substring({col}_r, i, 1)))"
    )
    return f"{same_length} AND {differ} <= {n}"


def _jaccard_sql(col: str, t: float, same: str) -> Callable[[str], str]:
    return lambda dialect: f"{_jaccard_at_least(col, t, dialect)}{same}"


class DialectLevel(ComparisonLevelCreator):
    """A comparison level whose SQL is written per dialect by one function (``sql(dialect) -> condition``): one
    declaration, the same level on DuckDB and on Spark (see :data:`DIALECTS`)."""

    def __init__(self, sql: Callable[[str], str], label_for_charts: str) -> None:
        self.sql = sql
        self.label_for_charts = label_for_charts

    def create_sql(self, sql_dialect: Any) -> str:
        return self.sql(sql_dialect.sql_dialect_str)

    def create_label_for_charts(self) -> str:
        return self.label_for_charts


def _null(col: str) -> cll.CustomLevel:
    # splink annotates configure() as returning the base ComparisonLevelCreator, but it returns self
    return cll.CustomLevel(f"{col}_l IS NULL OR {col}_r IS NULL").configure(is_null_level=True)  # type: ignore[return-value]


def _bigram_comparison(
    col: str,
    bigrams: str,
    thresholds: tuple[float, ...],
    extra: str = "",
    pinyin: str | None = None,
    tf: bool = False,
) -> cl.CustomComparison:
    same = f" AND {extra}" if extra else ""
    # the exact level is plain equality (Splink finds its u by that shape for the term-frequency adjustment);
    # a pair of different name_is_branch never reaches prediction (blocking) nor survives it (the engine)
    exact = cll.CustomLevel(f"{col}_l = {col}_r", f"{col} exact")
    if tf:
        # splink annotates configure() as returning the base ComparisonLevelCreator, but it returns self
        exact = exact.configure(tf_adjustment_column=col, tf_adjustment_weight=1.0)  # type: ignore[assignment]
    levels: list[Any] = [_null(col), exact]
    if pinyin:
        levels.append(cll.CustomLevel(f"{pinyin}_l = {pinyin}_r{same}", f"{pinyin} exact"))
    levels += [
        DialectLevel(_jaccard_sql(bigrams, t, same), f"{col} bigram jaccard >= {t}") for t in thresholds
    ]
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(levels, output_column_name=col)


def _exact(col: str, tf: bool = False) -> cl.ExactMatch:
    # splink annotates configure() as returning the base ComparisonCreator, but it returns self
    return cl.ExactMatch(col).configure(term_frequency_adjustments=True) if tf else cl.ExactMatch(col)  # type: ignore[return-value]


def _id_number() -> cl.CustomComparison:
    """Resident IDs that differ by one or two characters: a typing error (an invalid ID beside the valid one)."""
    return cl.CustomComparison(
        [
            _null("id_number"),
            cll.CustomLevel("id_number_l = id_number_r", "id_number exact"),
            DialectLevel(
                lambda dialect: _hamming_at_most("id_number", 2, dialect),
                "id_number differs in at most 2 characters",
            ),
            cll.ElseLevel(),
        ],
        output_column_name="id_number",
    )


def _id_fragment() -> cl.CustomComparison:
    """A masked resident ID (courts publish ``4403**********123X``) against another ID, masked or not: do the
    digits it still shows agree? Only when a side is masked (two full IDs are the id_number comparison's)."""
    return cl.CustomComparison(
        [
            cll.CustomLevel(
                "id_tail_l IS NULL OR id_tail_r IS NULL "
                "OR (id_number_masked_l IS NULL AND id_number_masked_r IS NULL)"
            ).configure(is_null_level=True),
            cll.CustomLevel(
                "id_head_l = id_head_r AND id_tail_l = id_tail_r", "shown digits of a masked ID agree"
            ),
            cll.ElseLevel(),
        ],
        output_column_name="id_fragment",
    )


def rule(*equal: str, extra: str = "") -> CustomRule:
    """A blocking rule: equality on ``equal``, a keyless left side, two different deterministic clusters."""
    cond = " AND ".join([f"l.{c} = r.{c}" for c in equal] + ["l.keyless", "l.det_cluster <> r.det_cluster"])
    return CustomRule(cond + (f" AND {extra}" if extra else ""), sql_dialect="duckdb")


#: Columns the engine derives before Splink sees the frame (see :func:`models.resolution.probabilistic.prepare`).
DERIVED = (
    "name_bigrams",
    "name_prefix1",
    "name_prefix2",
    "name_block",
    "address_bigrams",
    "name_pinyin (persons)",
    "related_cluster",
    "birth_date",
    "id_head",
    "id_tail",
    "keyless",
    "det_cluster",
)

ENTERPRISE: dict[str, Any] = {
    "comparisons": lambda: [
        _bigram_comparison(
            "name_comparison",
            "name_bigrams",
            (0.7, 0.5),
            extra="name_is_branch_l = name_is_branch_r",
            tf=True,
        ),
        _exact("division_code"),
        _exact("phone", tf=True),
        _exact("legal_rep_name", tf=True),
        _bigram_comparison("address", "address_bigrams", (0.8, 0.5), tf=True),
    ],
    "blocking": lambda: [
        rule("name_block", "name_is_branch"),
        rule("phone", "name_is_branch"),
        rule("division_code", "name_prefix2", "name_is_branch"),
        rule("legal_rep_name", "name_prefix1", "name_is_branch"),
    ],
    # EM: each rule leaves the comparisons it blocks on untrained; together they train all
    "em_blocking": lambda: [rule("division_code", "name_prefix2"), rule("phone")],
    "name_block_max": 200,
    # pairs at or above this probability link; [review_threshold, threshold) go to the review queue.
    # Measured on the 100k-enterprise estate with the prior over all pairs (before the prior was taken over the
    # pairs that can match, splink_model.relevant_pairs_factor: x2.38 in odds on that estate, which the three
    # thresholds below carry, so that estate links exactly as before): a name agreeing and nothing else to compare
    # (a court party) scored ~0.107 and such pairs were 99.9% right (8,727 of 8,732): they link; the guard keeps a
    # name that fits two groups from bridging. Below: one pair per two deterministic groups, against the truth:
    # (0.06, 0.08] 27,478 of 27,652 right (99.4%), (0.05, 0.06] 6,061 of 6,589 (92%), (0.04, 0.05] 2,779 of 5,747
    # (48%), (0.03, 0.04] 1,540 of 3,990 (39%) — then 0.06 -> 0.132, 0.03 -> 0.069, 0.99 -> 0.9958
    "threshold": 0.132,
    "review_threshold": 0.069,
    # pairs below this may attach a group to one other group only (see models.resolution.graph.unambiguous)
    "strong_threshold": 0.9958,
}

PERSON: dict[str, Any] = {
    "comparisons": lambda: [
        _bigram_comparison("name_comparison", "name_bigrams", (0.5,), pinyin="name_pinyin", tf=True),
        _id_number(),
        _id_fragment(),
        _exact("birth_date"),
        _exact("id_number_sex"),
        _exact("phone", tf=True),
        _exact("division_code"),
        _exact("related_cluster", tf=True),
        _bigram_comparison("address", "address_bigrams", (0.8, 0.5), tf=True),
    ],
    "blocking": lambda: [
        rule("name_block"),
        rule("related_cluster", "name_prefix1"),
        rule("phone"),
        rule("birth_date", "name_prefix1"),
        rule("id_head", "id_tail", "name_prefix1"),
        rule("name_pinyin", "division_code"),
    ],
    "em_blocking": lambda: [rule("birth_date", "name_prefix1"), rule("name_block"), rule("related_cluster")],
    # m and u that training cannot estimate, set from what the values are. A masked ID (4403**********123X) is
    # the person's ID with digits hidden: its shown digits disagree with the person's full ID only by a typing
    # error (about 2% of IDs carry one); two different persons of the city share the first 4 digits and agree on
    # the last 4 (3 sequence digits and the check character) about once in 11,000. No EM rule reaches these
    # pairs without also drawing in same-name strangers, and random sampling meets too few masked IDs.
    "fixed": {
        "id_fragment": {
            "shown digits of a masked ID agree": {"m_probability": 0.98, "u_probability": 1 / 11000},
            "All other comparisons": {"m_probability": 0.02, "u_probability": 1 - 1 / 11000},
        }
    },
    "name_block_max": 50,
    # 100k estate: [0.5, 0.9) held 611 pairs, 609 right (an exact name with a related enterprise or a birth date
    # and nothing against); below 0.5 the name-only pairs of common names (court parties) start
    "threshold": 0.5,
    "review_threshold": 0.2,
    "strong_threshold": 0.99,
}

#: Keys that, when two deterministic clusters carry different values, prove two entities (a validated
#: identifier): a cluster with one is "keyed", and the engine never puts two clusters of different keys together.
#: Equal values never reach Splink (the deterministic pass linked them), so they are not comparisons.
CLUSTER_KEYS: dict[Kind, tuple[tuple[str, str | None], ...]] = {
    "enterprise": (("link_org_code", None), ("uscc", "uscc_status")),
    "person": (("id_number", "id_number_status"),),
}

MODELS: dict[Kind, dict[str, Any]] = {"enterprise": ENTERPRISE, "person": PERSON}

RETAINED: dict[Kind, list[str]] = {"enterprise": ["name_is_branch", "det_cluster"], "person": ["det_cluster"]}


def settings(kind: Kind, probability_two_random_records_match: float) -> SettingsCreator:
    model = MODELS[kind]
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="profile_id",
        comparisons=model["comparisons"](),
        blocking_rules_to_generate_predictions=model["blocking"](),
        probability_two_random_records_match=probability_two_random_records_match,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=RETAINED[kind],
        max_iterations=20,
    )


def for_dialect(model: dict[str, Any], kind: Kind, dialect: str) -> dict[str, Any]:
    """The trained ``model`` (Splink settings JSON; its SQL is DuckDB's, the dialect it was trained in) with each
    comparison level's SQL as this module declares it for ``dialect``; m, u, term frequencies and the prior stay
    as trained, so the same model runs on either backend. Blocking rules carry their dialect (``duckdb``) and
    plain equalities, which Splink translates itself.

    A level is translated only when the trained SQL is exactly what the declaration gives for DuckDB: a model
    trained from other settings (an older or a hand-edited file) is refused, naming the level, rather than run
    with SQL that may mean something else."""
    if dialect == "duckdb":
        return model
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}: expected one of {', '.join(DIALECTS)}")
    declared = settings(kind, 1e-4)
    source = {c["output_column_name"]: c for c in declared.create_settings_dict("duckdb")["comparisons"]}
    target = {c["output_column_name"]: c for c in declared.create_settings_dict(dialect)["comparisons"]}
    out = deepcopy(model)
    for comparison in out["comparisons"]:
        name = comparison["output_column_name"]
        levels = comparison["comparison_levels"]
        if name not in source or len(source[name]["comparison_levels"]) != len(levels):
            raise ValueError(
                f"the trained {kind} model's comparison {name!r} is not one models/resolution/splink_settings.py "
                f"declares: retrain it (qst er-train) before running it on {dialect}"
            )
        for i, level in enumerate(levels):
            if level["sql_condition"] != source[name]["comparison_levels"][i]["sql_condition"]:
                raise ValueError(
                    f"the trained {kind} model's comparison {name!r}, level {i} "
                    f"({level.get('label_for_charts', '')!r}), has SQL models/resolution/splink_settings.py "
                    f"does not declare: retrain it (qst er-train) before running it on {dialect}"
                )
            level["sql_condition"] = target[name]["comparison_levels"][i]["sql_condition"]
    out["sql_dialect"] = dialect
    return out
