"""The probabilistic model of entity resolution, as data: Splink 5 settings (comparisons, blocking rules, the
rules EM trains on, the match threshold) per kind of entity. The engine is :mod:`models.resolution.probabilistic`.

Chinese text: DuckDB's ``levenshtein``/``jaro_winkler_similarity`` count UTF-8 bytes, not characters (DESIGN.md),
so no comparison here uses them. Fuzzy name and address levels compare *character bigram sets* precomputed in
Polars (``*_bigrams``, distinct lists) with a Jaccard written in list SQL; person names also compare a pinyin
form (``name_pinyin``), which catches homophone misspellings (张伟/张玮). Blocking keys are derived columns too
(``name_prefix2``: the first two characters of ``name_comparison``), so no SQL ``substr`` touches Chinese text.

Branches (分公司) never merge with their parent: every fuzzy name level and every blocking rule requires equal
``name_is_branch``, and the engine drops any predicted pair whose ``name_is_branch`` differs.
"""

from __future__ import annotations

from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on

Kind = str  # "enterprise" | "person"


def _jaccard(col: str) -> str:
    return (f"(len(list_intersect({col}_l, {col}_r))::DOUBLE "
            f"/ nullif(len(list_distinct(list_concat({col}_l, {col}_r))), 0))")


def _null(col: str) -> cll.CustomLevel:
    return cll.CustomLevel(f"{col}_l IS NULL OR {col}_r IS NULL").configure(is_null_level=True)


def _bigram_comparison(col: str, bigrams: str, thresholds: tuple[float, ...], extra: str = "",
                       pinyin: str | None = None) -> cl.CustomComparison:
    same = f" AND {extra}" if extra else ""
    levels: list[Any] = [_null(col), cll.CustomLevel(f"{col}_l = {col}_r{same}", f"{col} exact")]
    if pinyin:
        levels.append(cll.CustomLevel(f"{pinyin}_l = {pinyin}_r{same}", f"{pinyin} exact"))
    levels += [cll.CustomLevel(f"{_jaccard(bigrams)} >= {t}{same}", f"{col} bigram jaccard >= {t}")
               for t in thresholds]
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(levels, output_column_name=col)


def _exact(col: str) -> cl.ExactMatch:
    return cl.ExactMatch(col)


#: Columns the engine derives before Splink sees the frame (see :func:`models.resolution.probabilistic.prepare`).
DERIVED = ("name_bigrams", "name_prefix1", "name_prefix2", "address_bigrams", "name_pinyin", "related_cluster")

ENTERPRISE = {
    "comparisons": lambda: [
        _bigram_comparison("name_comparison", "name_bigrams", (0.7, 0.5),
                           extra="name_is_branch_l = name_is_branch_r"),
        _exact("division_code"),
        _exact("phone"),
        _exact("legal_rep_name"),
        _bigram_comparison("address", "address_bigrams", (0.8, 0.5)),
    ],
    "blocking": lambda: [
        block_on("name_comparison", "name_is_branch"),
        block_on("phone", "name_is_branch"),
        block_on("division_code", "name_prefix2", "name_is_branch"),
        block_on("legal_rep_name", "name_is_branch"),
    ],
    # EM: each rule leaves the comparisons it blocks on untrained; together they train all
    "em_blocking": lambda: [block_on("division_code", "name_prefix2"), block_on("phone")],
    # demo estate (3,000 enterprises): 0.9 and 0.7 give P 1.000 / R 0.969; 0.5 (down to 0.05) P 0.997 / R 0.997,
    # the records with a name and nothing else (court parties) score between 0.5 and 0.7
    "threshold": 0.5,
    # pairs below this may attach a group to one other group only (see probabilistic._unambiguous)
    "strong_threshold": 0.99,
}

PERSON = {
    "comparisons": lambda: [
        _bigram_comparison("name_comparison", "name_bigrams", (0.5,), pinyin="name_pinyin"),
        _exact("id_number_birth_date"),
        _exact("id_number_sex"),
        _exact("phone"),
        _exact("division_code"),
        _exact("employer_local_id"),
        _exact("related_cluster"),
        _bigram_comparison("address", "address_bigrams", (0.8, 0.5)),
    ],
    "blocking": lambda: [
        block_on("name_comparison"),
        block_on("name_pinyin"),
        block_on("phone"),
        block_on("id_number_birth_date", "name_prefix1"),
    ],
    "em_blocking": lambda: [block_on("id_number_birth_date", "name_prefix1"), block_on("name_comparison")],
    # demo estate: 0.9 to 0.2 give P 1.000 / R 0.924; 0.05 collapses precision (0.44): name-only pairs of
    # common names
    "threshold": 0.9,
    "strong_threshold": 0.99,
}

#: Keys that, when both sides carry different values, prove two entities (a validated identifier): the engine drops
#: such pairs. Equal values never reach Splink (the deterministic pass linked them), so they are not comparisons:
#: EM would see no match at the "different" level and its m would be 0.
CONFLICTING_KEYS: dict[Kind, tuple[tuple[str, str | None], ...]] = {
    "enterprise": (("uscc", "uscc_status"), ("link_org_code", None)),
    "person": (("id_number", "id_number_status"),),
}

MODELS: dict[Kind, dict[str, Any]] = {"enterprise": ENTERPRISE, "person": PERSON}


_KEYS = {k: [c for pair in v for c in pair if c] for k, v in CONFLICTING_KEYS.items()}


def settings(kind: Kind, probability_two_random_records_match: float) -> SettingsCreator:
    model = MODELS[kind]
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=model["comparisons"](),
        blocking_rules_to_generate_predictions=model["blocking"](),
        probability_two_random_records_match=probability_two_random_records_match,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=["name_is_branch", "det_cluster", *_KEYS[kind]],
        max_iterations=20,
    )
