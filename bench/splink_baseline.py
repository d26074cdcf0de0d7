"""The Splink baseline of bench/bench_resolution.py: plain Splink 5 configured as Splink's documentation advises.

The anchor against which Quanshitong's resolution is measured, so it must be what a competent Splink user gets on
the same records, WITHOUT Quanshitong's own resolution code (no deterministic pass, no profiles, nothing from
``models.resolution``): the input is the silver tables as they are (``int_enterprise_records``,
``int_person_records``: the standardized columns every contender reads), one Splink ``dedupe_only`` model per kind,
trained on those records, predictions clustered with Splink's own connected components.

Docs cited below (Splink 5 documentation, https://moj-analytical-services.github.io/splink/):

* [TRAIN] topic_guides/training/training_rationale.md — "a hybrid approach": ``probability_two_random_records_match``
  from deterministic rules and a recall guess, u by random sampling ("max_pairs=1e7 ... increase max_pairs if you
  need more precision"), m by EM in a "round robin" of blocking rules so every comparison gets an estimate.
* [TUT4] demos/tutorials/04_Estimating_model_parameters — the same sequence; "For large datasets, we recommend
  using at least 10 million [pairs] - but the higher the better and 1 billion is often appropriate"; exact-match
  and name comparisons from ``splink.comparison_library``; term frequency adjustments for skewed columns.
* [BLOCK] topic_guides/blocking/blocking_rules.md — "It's usually better to use a longer list of strict blocking
  rules, than a short list of loose blocking rules"; "tighter blocking rules may be needed" as data grows
  (e.g. ``block_on("first_name", "surname", "substr(postcode,1,3)")``).
* [TF] topic_guides/comparisons/term-frequency.md — term frequency adjustments where values are skewed (names:
  a match on a common name is weaker evidence than a match on a rare one).
* [COMP] topic_guides/comparisons/comparators.md and comparison_library — ``ExactMatch`` for identifiers,
  ``NameComparison`` (exact with TF, Jaro-Winkler 0.92 / 0.88 / 0.7), Damerau-Levenshtein "useful for: data entry
  errors e.g. character transpositions and miskeys", ``LevenshteinAtThresholds`` for free text.
* [FEAT] topic_guides/data_preparation/feature_engineering.md — "the quality of a Splink model is dictated by the
  features provided": derive the columns that carry the evidence before linking.
* [PERF] topic_guides/performance/drivers_of_performance.md — "The primary driver of run time is the number of
  record pairs that the Splink model has to process". (Dropping exact duplicate rows, which multiply the pairs and
  tell the model nothing new, is this module's reading of it, not a quotation.)
* [CLUST] api_docs/clustering.md — ``predict`` then ``cluster_pairwise_predictions_at_threshold`` (connected
  components at a match probability threshold).

What a Splink user has to decide from the data itself (each choice has a reason that needs no truth):

* Identifiers are columns of their own, compared exactly, and blocked on, each: ``uscc`` (统一社会信用代码),
  ``tin`` (taxpayer number), ``link_org_code`` (the 9-character organization code as silver standardizes it: the
  code written, or the one inside a USCC or an old 15-character TIN — the only identifier the tax filings carry),
  ``regno`` (registration number), ``link_local_key`` (a department's own key, namespaced by silver: the employer
  number of the social-insurance tables, which is all an insured person's employer mention carries); for persons
  ``id_number`` (居民身份证号). Records that share none of them and have no name cannot be linked by anyone.
* DuckDB's ``levenshtein`` counts UTF-8 *bytes*: one Chinese character is three, so the thresholds on Chinese text
  are in multiples of three.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import polars as pl

KINDS = ("enterprise", "person")

#: The silver columns each model reads (everything else of the record is not compared).
COLUMNS: dict[str, list[str]] = {
    "enterprise": [
        "record_id",
        "name_comparison",
        "uscc",
        "tin",
        "link_org_code",
        "regno",
        "link_local_key",
        "phone",
        "legal_rep_name",
        "division_code",
        "address",
    ],
    "person": [
        "record_id",
        "name_comparison",
        "id_number",
        "id_number_birth_date",
        "phone",
        "division_code",
        "address",
    ],
}
TABLES = {"enterprise": "int_enterprise_records", "person": "int_person_records"}

#: Random pairs for u ([TUT4]: at least 10 million for large datasets, more is better; [TRAIN] uses 1e7).
U_MAX_PAIRS = 1e7
#: u of an exact match on an identifier: the chance that two *different* entities carry the same value, which for
#: a registered identifier is a keying error. Random sampling cannot measure it on these records: a pair drawn at
#: random that shares a USCC is almost always two records of one enterprise (an enterprise has ~14 records, an
#: employer up to hundreds of insured persons' mentions), so the sampled u is the share of duplicate pairs — as
#: large as the prior, and an identifier match alone scores a match probability below one half ([TRAIN]'s
#: "occasionally, our sampled records will match. In practice, this rarely has a big effect" does not hold here).
#: Measured on the 100k estate with u sampled: prior weight -16.5, an employer-number match +15.1, so the 2.5
#: million pairs sharing only the employer number scored 0.26 and enterprise recall was 0.45. Set by hand and
#: fixed, as Splink allows per comparison level (``fix_u_probability``): one in a billion pairs of different
#: entities.
U_IDENTIFIER = 1e-9
#: m of an identifier's exact match and of its disagreement, fixed by hand ([TRAIN]: "the user can fix the m
#: values" when EM does not converge): EM on the name rule drives the disagreement's m to exactly 0.0 (the pairs
#: sharing a name but not a USCC are all non-matches, and each iteration makes them more so) and Splink 5 stops with
#: "m_probability value 0.0 is below the minimum allowed value" — on the 100k estate, with u sampled or fixed. (A
#: failed EM session also leaves its half-iterated prior, 0.53, in the linker.) One identifier in a hundred mistyped
#: or out of date between two records of one entity.
M_IDENTIFIER = (0.99, 0.01)
#: Link the distinct rows (of the compared columns) rather than every record, per kind ([PERF]): an employer's
#: insured persons are hundreds of identical enterprise mentions (only the employer number), a taxpayer's filings
#: dozens — a third of the enterprise records are distinct (51,372 of 143,999 on a 10k estate), so the pairs shrink
#: by an order of magnitude. Person records are three quarters distinct already (48,700 of 65,203): left as they are.
DISTINCT_ROWS = {"enterprise": True, "person": False}
#: Cluster threshold ([CLUST]); predictions are kept from a lower threshold so the cut is the clustering's.
PREDICT_THRESHOLD = 0.5
CLUSTER_THRESHOLD = 0.9
#: The user's guess of the share of true pairs the deterministic rules find ([TRAIN]: "the deterministic rules may
#: capture (say) 80% of matches"; a wrong guess moves the prior little).
DETERMINISTIC_RECALL = 0.8


def identifier(col: str, *, fuzzy: bool = False) -> Any:
    """Exact match on an identifier column, its u and m fixed (:data:`U_IDENTIFIER`, :data:`M_IDENTIFIER`, see
    there); ``fuzzy``: a level for one edit or transposition between (a mistyped digit, [COMP]), its m trained by
    EM and its u sampled as usual."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    exact, other = M_IDENTIFIER
    levels = [
        cll.NullLevel(col),
        cll.ExactMatchLevel(col).configure(
            u_probability=U_IDENTIFIER, fix_u_probability=True, m_probability=exact, fix_m_probability=True
        ),
    ]
    if fuzzy:
        levels.append(cll.DamerauLevenshteinLevel(col, 1))
    levels.append(cll.ElseLevel().configure(m_probability=other, fix_m_probability=True))
    return cl.CustomComparison(
        output_column_name=col,
        comparison_levels=levels,
        comparison_description=f"exact match on the identifier {col}",
    )


def read_frame(home: Path, kind: str, enterprise_clusters: pl.DataFrame | None = None) -> pl.DataFrame:
    """The silver records of ``kind``, the columns :data:`COLUMNS` names (dates as text for Splink's SQL).

    Persons get one derived column, ``related_enterprise``: the baseline's own enterprise cluster (``record_id,
    cluster`` in ``enterprise_clusters``) of the enterprise record the person is mentioned with (silver's
    ``related_record_id``: the legal representative of a registration, taxpayer or penalty, the insured person of an
    employer) — what links a penalty's legal representative, known by name only, to the same person on the
    registration (feature engineering on the input, [FEAT])."""
    from models.silver import read_silver

    columns = COLUMNS[kind] + (["related_record_id"] if kind == "person" else [])
    frame = read_silver(home, TABLES[kind], columns=columns)
    if kind == "person":
        frame = frame.with_columns(pl.col("id_number_birth_date").cast(pl.Utf8))
        if enterprise_clusters is None:
            frame = frame.with_columns(related_enterprise=pl.lit(None, dtype=pl.Utf8))
        else:
            related = enterprise_clusters.select(
                related_record_id="record_id", related_enterprise=pl.col("cluster").cast(pl.Utf8)
            )
            frame = frame.join(related, on="related_record_id", how="left", maintain_order="left")
        frame = frame.drop("related_record_id")
    return frame


def settings(kind: str, unique_id: str = "record_id") -> Any:
    """The Splink settings of ``kind``: comparisons and prediction blocking rules."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    if kind == "enterprise":
        comparisons = [
            # identifiers: exact match, one comparison each ([COMP], [TUT4]); u and m fixed (U_IDENTIFIER, M_IDENTIFIER)
            identifier("uscc"),
            identifier("tin"),
            identifier("link_org_code"),
            identifier("regno"),
            identifier("link_local_key"),
            # the name: exact (with term frequencies, [TF]) and Jaro-Winkler levels ([COMP] NameComparison)
            cl.NameComparison("name_comparison"),
            cl.ExactMatch("phone"),
            # the legal representative's name: a common name is weaker evidence ([TF])
            cl.ExactMatch("legal_rep_name").configure(term_frequency_adjustments=True),
            # district: few values, very skewed ([TF])
            cl.ExactMatch("division_code").configure(term_frequency_adjustments=True),
            # free text; DuckDB's levenshtein counts bytes, 3 to a Chinese character: 1 and 3 characters apart
            cl.LevenshteinAtThresholds("address", [3, 9]),
        ]
        blocking = [
            # every identifier on its own ([BLOCK]: a longer list of strict rules)
            block_on("uscc"),
            block_on("tin"),
            block_on("link_org_code"),
            block_on("regno"),
            block_on("link_local_key"),
            # the name, and name fragments with a second column (typos in one or the other) ([BLOCK])
            block_on("name_comparison"),
            block_on("substr(name_comparison, 1, 2)", "division_code"),
            block_on("legal_rep_name", "substr(name_comparison, 1, 1)"),
            block_on("phone"),
        ]
    else:
        comparisons = [
            # the resident ID: exact (u fixed, see U_IDENTIFIER), then one edit or transposition (a mistyped
            # digit, [COMP])
            identifier("id_number", fuzzy=True),
            cl.NameComparison("name_comparison"),
            # the enterprise the person is mentioned with (its baseline cluster): the same name at the same
            # enterprise
            cl.ExactMatch("related_enterprise"),
            cl.ExactMatch("id_number_birth_date"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("division_code").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("address", [3, 9]),
        ]
        blocking = [
            block_on("id_number"),
            # a mistyped ID: the name with a fragment of the ID — one mistyped digit leaves the birth date or the
            # last four intact ([BLOCK])
            block_on("name_comparison", "substr(id_number, 7, 8)"),
            block_on("name_comparison", "substr(id_number, 15, 4)"),
            block_on("name_comparison", "related_enterprise"),
            block_on("name_comparison", "phone"),
            block_on("name_comparison", "address"),
        ]
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=unique_id,
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking,
    )


def train(linker: Any, kind: str, *, max_pairs: float | None = None, seed: int = 1) -> None:
    """The training sequence of [TRAIN]: prior from deterministic rules, u by random sampling, m by EM."""
    from splink import block_on

    if kind == "enterprise":
        deterministic = [block_on(c) for c in ("uscc", "tin", "link_org_code", "regno", "link_local_key")]
        # round robin ([TRAIN]): the name rule trains the other columns, the identifier rules train the name
        em = [block_on("name_comparison"), block_on("link_org_code"), block_on("link_local_key")]
    else:
        deterministic = [block_on("id_number")]
        em = [block_on("id_number"), block_on("name_comparison", "id_number_birth_date")]
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=DETERMINISTIC_RECALL)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs or U_MAX_PAIRS, seed=seed)
    for rule in em:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)


def distinct_rows(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame`` without exact duplicates (``record_id`` -> ``row_id``, one row per distinct combination of the
    compared columns), and ``record_id, row_id`` to map results back ([PERF]: fewer records, fewer pairs)."""
    cols = [c for c in frame.columns if c != "record_id"]
    grouped = frame.group_by(cols, maintain_order=True).agg("record_id").with_row_index("row_id")
    mapping = grouped.select("row_id", "record_id").explode("record_id")
    return grouped.drop("record_id"), mapping


def resolve(
    frame: pl.DataFrame,
    kind: str,
    con: Any,
    phases: dict[str, float] | None = None,
    *,
    distinct: bool | None = None,
) -> pl.DataFrame:
    """``record_id, cluster`` of every record of ``frame``: train, predict, cluster, on DuckDB connection ``con``
    (``distinct``: on the distinct rows, :func:`distinct_rows`; by default as :data:`DISTINCT_ROWS` says)."""
    from splink import DuckDBAPI, Linker

    phases = {} if phases is None else phases
    t = time.perf_counter()
    if DISTINCT_ROWS[kind] if distinct is None else distinct:
        rows, mapping = distinct_rows(frame)
        unique_id = "row_id"
    else:
        rows, mapping, unique_id = frame, None, "record_id"
    db = DuckDBAPI(connection=con)
    linker = Linker(db.register(rows.to_arrow()), settings(kind, unique_id), log_level=logging.ERROR)
    del rows
    train(linker, kind)
    phases[f"{kind}: train"] = time.perf_counter() - t
    t = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=PREDICT_THRESHOLD)
    phases[f"{kind}: predict"] = time.perf_counter() - t
    t = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, CLUSTER_THRESHOLD)
    out = pl.from_arrow(clusters.as_pyarrow_table())
    assert isinstance(out, pl.DataFrame)
    out = out.select(
        unique_id,
        cluster=pl.col("cluster_id").cast(pl.Utf8).cast(pl.Categorical).to_physical().cast(pl.Int64),
    )
    if mapping is not None:
        out = mapping.join(out, on="row_id").select("record_id", "cluster")
    phases[f"{kind}: cluster"] = time.perf_counter() - t
    return out
