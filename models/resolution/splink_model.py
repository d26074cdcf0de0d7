"""The Splink model of a kind (Splink 5; DuckDB backend, or Spark for prediction: :mod:`spark_backend`): loading
the profiles into DuckDB, training, the model files, and predicting the pairs between profiles.

The model is loaded from ``trained/<kind>.json`` (Splink's settings JSON with the trained m and u, written by
:func:`models.resolution.probabilistic.train` / ``qst er-train``), so a nightly run does not retrain: it is
deterministic and fast. The prior is recomputed per run from the counts the model was trained on (see
:mod:`models.resolution.probabilistic`).
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import polars as pl

from lake.deployment import current_deployment
from lake.platform import LinkageSettings
from models.resolution import splink_settings
from models.resolution.profiles import BIGRAMS, Kind, bigram_sql

log = logging.getLogger(__name__)


def trained_dir() -> Path:
    """Where the trained models live: the deployment's ``trained/`` (a city's model is trained on its own data,
    and reviewed like code before a night uses it)."""
    return current_deployment().trained


#: DuckDB settings of the connection Splink uses: bounded memory, the machine's two cores.
DUCKDB_MEMORY_LIMIT = "3GB"
DUCKDB_THREADS = 2


def _connection() -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    # what does not fit spills here (an in-memory DuckDB would otherwise write .tmp/ into the working directory)
    spill = Path(tempfile.gettempdir()) / "qst-splink-spill"
    con.execute(f"SET temp_directory = '{spill.as_posix()}'")
    con.execute(f"SET threads = {DUCKDB_THREADS}")
    con.execute("SET preserve_insertion_order = false")
    return con


#: The DuckDB table of the profiles Splink reads (:func:`load_profiles`).
PROFILE_TABLE = "qst_profiles"


def load_profiles(profiles: pl.DataFrame) -> Any:
    """A DuckDB connection (:func:`_connection`) holding ``profiles`` as :data:`PROFILE_TABLE`, with the bigram
    columns (:data:`BIGRAMS`) derived there. Why in DuckDB: the bigram lists of the 1M city's 4.9M profiles cost
    several GB as Polars lists (a 16-byte view per bigram, copied again on the way into DuckDB); a DuckDB table
    stays within the connection's memory limit and spills to disk beyond it."""
    con = _connection()
    con.register("qst_profiles_arrow", profiles.drop("key").to_arrow())
    derived = ", ".join(f"{bigram_sql(source)} AS {name}" for name, source in BIGRAMS.items())
    con.execute(f"CREATE TABLE {PROFILE_TABLE} AS SELECT *, {derived} FROM qst_profiles_arrow")
    con.unregister("qst_profiles_arrow")
    return con


def _linker(con: Any, settings: Any, spark: Any = None) -> Any:
    """A Splink linker over the profiles loaded in ``con`` (:func:`load_profiles`), on DuckDB, or on Spark when
    ``spark`` (a :class:`models.resolution.spark_backend.SparkProfiles` of them) is given."""
    from splink import DuckDBAPI, Linker

    logging.getLogger("splink").setLevel(logging.ERROR)
    if spark is not None:
        return Linker(spark.db_api().register(spark.table), settings, log_level=logging.ERROR)
    return Linker(DuckDBAPI(connection=con).register(PROFILE_TABLE), settings, log_level=logging.ERROR)


def profile_counts(profiles: pl.DataFrame) -> dict[str, int]:
    return {"profiles": profiles.height, "keyless": int(profiles["keyless"].sum())}


def _initial_prior(counts: dict[str, int]) -> float:
    """Before training: each keyless profile assumed to have one true partner among the other profiles."""
    n = counts["profiles"]
    return float(min(max(counts["keyless"] / (n * (n - 1) / 2), 1e-9), 0.5)) if n > 1 else 1e-4


def relevant_pairs_factor(counts: dict[str, int]) -> float:
    """All pairs of profiles over the pairs that can match: those with a keyless profile on one side at least.

    Two profiles with validated keys are two deterministic clusters with different keys, which never join (the
    constraint pass), so their pairs hold no true match; Splink's prior, the probability that two random profiles
    match, averages over them all. Predicting a pair that can match with that average understates its prior by this
    factor: measured on the 1M simulated city, person pairs of a masked ID and a name scored 0.35 while 99.2 % of
    them were right (24,140 pairs), and at 100k, with the same evidence, 0.84 — the threshold fell between the two
    sizes and recall drifted 1.7 points. With the prior over the pairs that can match, such a pair scores what its
    evidence says at any size."""
    n, k = counts["profiles"], min(max(counts["keyless"], 1), counts["profiles"])
    if n < 2:
        return 1.0
    can_match = k * (k - 1) / 2 + k * (n - k)
    return float((n * (n - 1) / 2) / max(can_match, 1.0))


def _prior(model: dict[str, Any], counts: dict[str, int]) -> float:
    """The trained prior rescaled to this run's profiles (see the module docstring), over the pairs that can
    match (:func:`relevant_pairs_factor`)."""
    meta = model.get("quanshitong") or {}
    trained = model.get("probability_two_random_records_match")
    if not meta or trained is None or counts["profiles"] < 2:
        prior = _initial_prior(counts)
    else:
        p0, k0 = meta["profiles"], max(meta["keyless"], 1)
        n = counts["profiles"]
        prior = trained * (max(counts["keyless"], 1) / k0) * (p0 * (p0 - 1)) / (n * (n - 1))
    return float(min(max(prior * relevant_pairs_factor(counts), 1e-12), 0.5))


def train_on_profiles(profiles: pl.DataFrame, kind: Kind, *, seed: int = 1, max_pairs: float = 2e6) -> dict:
    from splink.internals.exceptions import EMTrainingException

    model = splink_settings.MODELS[kind]
    counts = profile_counts(profiles)
    con = load_profiles(profiles)
    try:
        linker = _linker(con, splink_settings.settings(kind, _initial_prior(counts)))
        linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
        for rule in model["em_blocking"]():
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(rule)
            except (
                EMTrainingException,
                ValueError,
            ) as err:  # a rule with no pairs, or a level EM drove to m = 0
                log.warning("EM on %s skipped: %s", rule, str(err).splitlines()[0])
        out = _fixed(_floored(linker.misc.save_model_to_json(), counts["profiles"]), model.get("fixed", {}))
    finally:
        con.close()
    out["quanshitong"] = {"kind": kind, **counts}
    return out


def _fixed(model: dict, fixed: dict[str, dict[str, dict[str, float]]]) -> dict:
    """Set the m and u that the settings fix from first principles (``fixed`` in :mod:`splink_settings`: levels
    no training rule can estimate), documented there."""
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            level.update(
                fixed.get(comparison["output_column_name"], {}).get(level.get("label_for_charts", ""), {})
            )
    return model


#: The smallest m and u a trained level keeps. On the simulated estates EM drives the levels it never sees among
#: matches to m = 0 (fuzzy names, a different division): a weight of minus infinity, so one typo would veto any
#: link. A floor keeps such a level strong evidence against, not a veto; an untrained u (random sampling met no
#: agreement, e.g. on phones) becomes one in the number of profiles, and an untrained m makes the level neutral.
M_FLOOR = 1e-3


def _floored(model: dict, profiles: int) -> dict:
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            if not level.get("u_probability"):
                level["u_probability"] = 1.0 / max(profiles, 2)
            m = level.get("m_probability")
            # a level EM never trained (no pair of its rules reached it) says nothing: m = u, weight 0
            level["m_probability"] = level["u_probability"] if m is None else max(m, M_FLOOR)
    return model


def save_model(kind: Kind, model: dict, directory: Path | str | None = None) -> Path:
    path = Path(directory or trained_dir()) / f"{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_model(kind: Kind, directory: Path | str | None = None) -> dict | None:
    path = Path(directory or trained_dir()) / f"{kind}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _level_labels(linker: Any) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for comparison in linker._settings_obj.comparisons:
        out[comparison.output_column_name] = {
            level.comparison_vector_value: level.label_for_charts for level in comparison.comparison_levels
        }
    return out


def best_pairs_sql(table: str, comparisons: list[str], kind: Kind) -> str:
    """The pairs of Splink's predictions ``table`` the graph needs: between two different deterministic clusters,
    never a branch with a non-branch, and of the pairs between two clusters (a court party against each profile of
    one enterprise) only the strongest, which alone can matter (fewer pairs, less memory). SQL that DuckDB and
    Spark both run (Spark has no ``QUALIFY``: the window is filtered outside)."""
    branch = (
        " AND name_is_branch_l = name_is_branch_r"
        if "name_is_branch" in splink_settings.RETAINED[kind]
        else ""
    )
    gammas = ", ".join(f"gamma_{c}" for c in comparisons)
    return f"""
        SELECT profile_id_l, profile_id_r, match_probability, match_weight, {gammas}
        FROM (
            SELECT profile_id_l, profile_id_r, match_probability, match_weight, {gammas},
                   row_number() OVER (PARTITION BY least(det_cluster_l, det_cluster_r),
                                                   greatest(det_cluster_l, det_cluster_r)
                                      ORDER BY match_probability DESC, profile_id_l, profile_id_r) AS qst_rank
            FROM {table}
            WHERE det_cluster_l <> det_cluster_r{branch}
        ) AS ranked
        WHERE qst_rank = 1
        ORDER BY profile_id_l, profile_id_r"""


def predict_pairs(
    con: Any,
    counts: dict[str, int],
    kind: Kind,
    model: dict,
    threshold: float,
    linkage: LinkageSettings | None = None,
) -> pl.DataFrame:
    """``profile_id_l, profile_id_r, match_probability, match_weight, levels``: the Splink pairs at or above
    ``threshold`` between the profiles loaded in ``con`` (:func:`load_profiles`; ``counts`` of them for the prior)
    that join two different deterministic clusters and never a branch with a non-branch (:func:`best_pairs_sql`).
    ``linkage``: the engine Splink runs on (DuckDB in ``con`` by default; Spark, the same model and pairs, see
    :mod:`models.resolution.spark_backend`).

    Only what the graph needs leaves the engine: Splink's output keeps the compared columns of both sides (to say
    which level each pair hit), bigram lists included — 1.4M pairs at 1M enterprises, several GB as a Python
    frame."""
    backend = "duckdb" if linkage is None else linkage.backend
    settings = splink_settings.for_dialect(
        {k: v for k, v in model.items() if k != "quanshitong"}, kind, backend
    )
    settings["probability_two_random_records_match"] = _prior(model, counts)
    settings["retain_matching_columns"] = True  # with it the gamma columns: which level each pair hit
    spark = None
    if linkage is not None and backend == "spark":
        from models.resolution.spark_backend import SparkProfiles

        spark = SparkProfiles(con, PROFILE_TABLE, linkage)
    try:
        linker = _linker(con, settings, spark)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predicted = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
        labels = _level_labels(linker)
        sql = best_pairs_sql(predicted.physical_name, list(labels), kind)
        pairs = con.sql(sql).pl() if spark is None else spark.frame(sql)
        predicted.drop_table_from_database_and_remove_from_cache()
    finally:
        if spark is not None:
            spark.close()
    levels = pl.struct(
        [
            pl.col(f"gamma_{c}").replace_strict(m, default=None, return_dtype=pl.Utf8).alias(c)
            for c, m in labels.items()
        ]
    ).struct.json_encode()
    return pairs.select(
        pl.col("profile_id_l", "profile_id_r").cast(pl.Int64),
        pl.col("match_probability").cast(pl.Float64),
        pl.col("match_weight").cast(pl.Float64),
        levels=levels,
    )


def describe(model: dict) -> list[str]:
    """One line per comparison level: its label, m, u and match weight (log2 m/u), for a reviewer of a retrain."""
    import math

    lines = [
        f"prior (probability two random profiles match): {model.get('probability_two_random_records_match')}"
    ]
    for comparison in model.get("comparisons", []):
        lines.append(f"{comparison['output_column_name']}:")
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            weight = f"{math.log2(m / u):+.2f}" if m and u else "n/a"
            tf = "  (term-frequency adjusted)" if level.get("tf_adjustment_column") else ""
            lines.append(
                f"  {level.get('label_for_charts', level['sql_condition'])[:60]:<60} m={m if m is None else round(m, 4)!s:<8}"
                f" u={u if u is None else round(u, 6)!s:<10} weight={weight}{tf}"
            )
    return lines
