"""报送考核: the department scorecard's own rule -- its row schema, its weights and grades, and how rates, score
and grade follow from a row's counts.

Why in ``models``: the rule is used by the quality step that scores each night (``quality/scorecard.py``) and
by the marts that pool days into months (``models/marts/scorecard_mart.py``). Models must not import quality
(quality -> models is the allowed direction), so the rule lives here and both read it: one formula, whatever
the grain. The formula itself is documented in ``quality/scorecard.py``'s module docstring.
"""

from __future__ import annotations

import polars as pl

__all__ = ["GRADES", "SCORECARD_SCHEMA", "SILVER_COUNTS", "UTC_TS", "WEIGHTS", "with_rates"]

#: component -> weight; ``cleanliness`` is ``1 - quarantine_rate``.
WEIGHTS: dict[str, float] = {"timeliness": 0.3, "completeness": 0.3, "validity": 0.2, "cleanliness": 0.2}
#: (lowest score, grade), best first.
GRADES: tuple[tuple[float, str], ...] = ((90.0, "优"), (75.0, "良"), (60.0, "中"), (float("-inf"), "差"))

UTC_TS = pl.Datetime("us", "UTC")
SCORECARD_SCHEMA = pl.Schema(
    {
        "day": pl.Date(),
        "department": pl.Utf8(),
        "asset": pl.Utf8(),  # the bronze asset; '*' on a department's total row
        "table": pl.Utf8(),  # the source table's or the file drop's name; '*' on a total row
        "kind": pl.Utf8(),  # timestamp | id | snapshot | file_drop (null on a total row)
        "first_load_at": UTC_TS,  # the table's first bronze load (null: never loaded)
        "deadline": UTC_TS,  # D+1 02:00 local + grace
        "timeliness_scored": pl.Boolean(),
        "records_received": pl.Int64(),
        "on_time": pl.Int64(),  # null when timeliness is not scored
        "late": pl.Int64(),
        "timeliness_rate": pl.Float64(),
        "staged": pl.Int64(),  # received rows silver has seen (staging model or quarantine)
        "quarantined": pl.Int64(),
        "mandatory_slots": pl.Int64(),
        "mandatory_filled": pl.Int64(),
        "completeness_rate": pl.Float64(),
        "identifier_values": pl.Int64(),
        "identifier_valid": pl.Int64(),
        "identifier_masked": pl.Int64(),
        "valid_identifier_rate": pl.Float64(),
        "quarantine_rate": pl.Float64(),
        "score": pl.Float64(),
        "grade": pl.Utf8(),
    }
)
#: The counts silver contributes to a scorecard row (summed when rows are pooled).
SILVER_COUNTS = (
    "staged",
    "quarantined",
    "mandatory_slots",
    "mandatory_filled",
    "identifier_values",
    "identifier_valid",
    "identifier_masked",
)


def _ratio(num: str, den: str) -> pl.Expr:
    return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den)).otherwise(None)


def with_rates(frame: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Rates from the counts, then the score and the grade: recomputed from counts (never averaged from rates) so a
    pooled row weighs every record the same."""
    frame = frame.lazy().with_columns(
        timeliness_rate=pl.when(
            pl.col("on_time").is_not_null() & ((pl.col("on_time") + pl.col("late")) > 0)
        ).then(pl.col("on_time") / (pl.col("on_time") + pl.col("late"))),
        completeness_rate=_ratio("mandatory_filled", "mandatory_slots"),
        valid_identifier_rate=_ratio("identifier_valid", "identifier_values"),
        quarantine_rate=_ratio("quarantined", "staged"),
    )
    parts = {
        "timeliness": pl.col("timeliness_rate"),
        "completeness": pl.col("completeness_rate"),
        "validity": pl.col("valid_identifier_rate"),
        "cleanliness": 1 - pl.col("quarantine_rate"),
    }
    weighted = pl.sum_horizontal([(WEIGHTS[k] * e).fill_null(0.0) for k, e in parts.items()])
    weights = pl.sum_horizontal(
        [pl.when(e.is_not_null()).then(WEIGHTS[k]).otherwise(0.0) for k, e in parts.items()]
    )
    score = pl.when(weights > 0).then((100 * weighted / weights).round(1))
    grade_expr = pl.lit(None, pl.Utf8)
    for low, g in reversed(GRADES):
        grade_expr = pl.when(pl.col("score") >= low).then(pl.lit(g)).otherwise(grade_expr)
    out = frame.with_columns(score=score).with_columns(
        grade=pl.when(pl.col("score").is_not_null()).then(grade_expr)
    )
    return out.select(list(SCORECARD_SCHEMA)).collect().cast(SCORECARD_SCHEMA)
