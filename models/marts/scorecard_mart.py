"""报送考核 in the marts: the department scorecard of ``quality/scorecard.py`` by day (as stored) and by month.

A month's row sums the day rows' counts and recomputes the rates, score and grade from the sums with the
scorecard's own formula (``models.scorecard.with_rates``, which the nightly scoring uses too: one place for
the formula), so every record weighs the same and a month of a busy table is not averaged with a quiet one. ``days`` is how many scored days the
month has. Department totals (``asset = '*'``) are summed from the total rows in the same way.
"""

from __future__ import annotations

import duckdb
import polars as pl

from models.marts.common import MartContext, create_table, mart
from models.marts.contract import TABLES
from models.scorecard import SCORECARD_SCHEMA, SILVER_COUNTS, with_rates


def monthly(frame: pl.DataFrame) -> pl.DataFrame:
    scored = pl.col("timeliness_scored").fill_null(False)

    def total(c: str) -> pl.Expr:
        return pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum())

    grouped = (
        frame.with_columns(pl.col("day").dt.truncate("1mo"))
        .group_by("day", "department", "asset", "table", maintain_order=True)
        .agg(
            kind=pl.col("kind").first(),
            first_load_at=pl.col("first_load_at").min(),
            deadline=pl.col("deadline").max(),
            timeliness_scored=scored.any(),
            records_received=pl.col("records_received").sum(),
            on_time=pl.when(scored.any()).then(pl.col("on_time").filter(scored).sum()),
            late=pl.when(scored.any()).then(pl.col("late").filter(scored).sum()),
            days=pl.len(),
            **{c: total(c) for c in SILVER_COUNTS},
        )
    )
    rated = with_rates(grouped.drop("days"))
    return rated.with_columns(grouped.get_column("days"))


def build_scorecard(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    daily = con.sql("SELECT * FROM lake_scorecard").pl()
    daily = daily.select(list(SCORECARD_SCHEMA)).cast(SCORECARD_SCHEMA)
    both = pl.concat(
        [
            daily.with_columns(grain=pl.lit("day"), days=pl.lit(1, pl.Int64)),
            monthly(daily).with_columns(grain=pl.lit("month")),
        ],
        how="diagonal_relaxed",
    )
    con.register("_scorecard_frame", both)
    n = create_table(
        con,
        "mart_department_scorecard",
        """
        SELECT grain, day AS period, department, asset, "table" AS source_table, records_received, on_time, late,
               timeliness_rate, staged, quarantined, completeness_rate, valid_identifier_rate AS validity_rate,
               quarantine_rate, score, grade, days FROM _scorecard_frame""",
        "department, grain, period, asset",
    )
    con.unregister("_scorecard_frame")
    return {"mart_department_scorecard": n}


def _run(ctx: MartContext) -> dict[str, int]:
    """Without ``lake/quality/scorecard`` (the quality step has not scored a night yet) the table is there,
    empty, with its contract's columns, and the report says why."""
    if ctx.has("scorecard"):
        return build_scorecard(ctx.con)
    ctx.notes["mart_department_scorecard"] = "no lake/quality/scorecard: empty"
    nulls = ", ".join(f"NULL AS {c}" for c in TABLES["mart_department_scorecard"].column_names)
    return {
        "mart_department_scorecard": create_table(
            ctx.con, "mart_department_scorecard", f"SELECT * FROM (SELECT {nulls}) WHERE false"
        )
    }


MARTS = (
    mart(
        "scorecard",
        ("mart_department_scorecard",),
        ("scorecard",),
        lambda ctx: _run(ctx),
        optional=("scorecard",),
    ),
)
