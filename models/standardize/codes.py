"""Department code lists -> canonical codes, through crosswalks kept as data (the deployment's ``crosswalks/*.csv``).

Every department has its own status and industry codes. A crosswalk is a CSV file, one row per source value:

* key columns ``department, source_table, source_column, source_value`` (unique together);
* one or more target columns (see :data:`TARGETS`), then a free-text ``note``.

=================== ========================================= ============================================
crosswalk           targets                                   canonical values
=================== ========================================= ============================================
``status``          ``canonical_status``                      active, revoked, deregistered, moved_out,
                                                              suspended, abnormal
``industry``        ``industry_code`` (GB/T 4754 digits),     section A-T, consistent with the code's
                    ``section``                               2-digit division (models/data/gbt4754_sections)
``service_status``  ``canonical_status``                      completed, in_progress, returned
``insurance_status`` ``canonical_status``                     paying, suspended, ended
=================== ========================================= ============================================

:func:`map_code` maps a column: ``struct{<targets...>, unmapped}``. A value that is not in the crosswalk maps to
null with ``unmapped`` true, so silver can count and report it -- never silently dropped. A null or blank value
maps to null with ``unmapped`` false. Values are compared after NFKC (full-width digits) and trimming.
Onboarding a new code list is a change to a CSV file, not to code.

One list of another shape sits beside them, read by :func:`service_item_departments`:
``service_item_departments.csv`` (``item_code, department, department_name_zh, note``) — which department
(委办局) decides each service item of the city's 一窗受理 system; the centre receives, the department decides.
It is the city's own (item codes are local), so it is deployment data, never a table in code.
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

import polars as pl

from lake.deployment import current_deployment
from models.standardize.nulls import Stages, struct_of

__all__ = [
    "CANONICAL",
    "KEYS",
    "TARGETS",
    "crosswalk",
    "crosswalk_dir",
    "crosswalk_names",
    "gbt4754_sections",
    "map_code",
    "service_item_departments",
    "startup_items",
]

SECTIONS_CSV = Path(__file__).resolve().parents[1] / "data" / "gbt4754_sections.csv"
KEYS = ["department", "source_table", "source_column", "source_value"]
TARGETS: dict[str, list[str]] = {
    "status": ["canonical_status"],
    "industry": ["industry_code", "section"],
    "service_status": ["canonical_status"],
    "insurance_status": ["canonical_status"],
}
CANONICAL: dict[str, dict[str, set[str]]] = {
    "status": {
        "canonical_status": {"active", "revoked", "deregistered", "moved_out", "suspended", "abnormal"}
    },
    "service_status": {"canonical_status": {"completed", "in_progress", "returned"}},
    "insurance_status": {"canonical_status": {"paying", "suspended", "ended"}},
}


def _as_expr(value: pl.Expr | pl.Series | str) -> pl.Expr:
    if isinstance(value, str):
        return pl.col(value)
    if isinstance(value, pl.Series):
        return pl.lit(value)
    return value


def crosswalk_dir() -> Path:
    """The deployment's crosswalks folder (:mod:`lake.deployment`): a city's code lists are its own."""
    return current_deployment().crosswalks


#: The deployment's lists of another shape than a code crosswalk (not listed by :func:`crosswalk_names`).
ITEM_DEPARTMENTS = "service_item_departments"
ITEM_DEPARTMENT_COLUMNS = ["item_code", "department", "department_name_zh", "note"]
#: Which service item is each step of 开办企业 (starting a business) in the city's 一窗受理 system.
STARTUP_STEPS_FILE = "service_startup_steps"
STARTUP_STEPS = ("registration", "seal", "invoice")


def crosswalk_names() -> list[str]:
    """The code crosswalks of the deployment (the item-department and start-up lists are not ones)."""
    other = {ITEM_DEPARTMENTS, STARTUP_STEPS_FILE}
    return sorted(p.stem for p in crosswalk_dir().glob("*.csv") if p.stem not in other)


def startup_items() -> dict[str, str]:
    """``{step: item_code}`` for the steps of :data:`STARTUP_STEPS`, from the deployment's
    ``crosswalks/service_startup_steps.csv`` (``step,item_code,note``): a city names its own service items.
    Empty when the deployment has no such file (the 开办企业 marts are then built empty, with a note)."""
    path = crosswalk_dir() / f"{STARTUP_STEPS_FILE}.csv"
    if not path.is_file():
        return {}
    df = pl.read_csv(path, infer_schema=False)
    if df.columns != ["step", "item_code", "note"]:
        raise ValueError(f"{path}: columns {df.columns}, expected ['step', 'item_code', 'note']")
    steps = df["step"].to_list()
    if sorted(s for s in steps if s) != sorted(STARTUP_STEPS) or df["item_code"].null_count():
        raise ValueError(
            f"{path}: one row per step {list(STARTUP_STEPS)}, each with its item_code; got {steps}"
        )
    return dict(zip(steps, df["item_code"].to_list(), strict=True))


def service_item_departments() -> pl.DataFrame:
    """``item_code, department, department_name_zh`` of the deployment's ``service_item_departments.csv``,
    validated; no rows when the deployment has no such file (every item is then reported unmapped by the
    service marts, never guessed)."""
    path = crosswalk_dir() / f"{ITEM_DEPARTMENTS}.csv"
    schema = dict.fromkeys(ITEM_DEPARTMENT_COLUMNS[:3], pl.Utf8)
    if not path.is_file():
        return pl.DataFrame(schema=schema)
    stat = path.stat()
    return _read_item_departments(path, stat.st_mtime_ns, stat.st_size).select(list(schema))


@cache
def _read_item_departments(path: Path, mtime_ns: int, size: int) -> pl.DataFrame:
    df = pl.read_csv(path, infer_schema=False)
    if df.columns != ITEM_DEPARTMENT_COLUMNS:
        raise ValueError(f"{path}: columns {df.columns}, expected {ITEM_DEPARTMENT_COLUMNS}")
    required = ITEM_DEPARTMENT_COLUMNS[:3]
    empty = df.filter(pl.any_horizontal(pl.col(required).is_null()))
    if empty.height:
        raise ValueError(f"{path}: empty item_code, department or name in {empty.head(3).to_dicts()}")
    dup = df.filter(pl.col("item_code").is_duplicated())
    if dup.height:
        raise ValueError(f"{path}: items with two departments: {sorted(set(dup['item_code']))[:5]}")
    return df


@lru_cache(maxsize=1)
def gbt4754_sections() -> pl.DataFrame:
    """The 20 sections of GB/T 4754-2017: ``section, name, first_division, last_division``."""
    return pl.read_csv(SECTIONS_CSV, infer_schema=False)


def _section_of(code: pl.Series) -> pl.Series:
    """The section letter a GB/T 4754 code's 2-digit division belongs to."""
    sections = gbt4754_sections()
    division = code.str.slice(0, 2)
    out = pl.Series(code.name, [None] * len(code), dtype=pl.Utf8)
    for sec, lo, hi in sections.select("section", "first_division", "last_division").iter_rows():
        out = pl.select(
            pl.when((division >= lo) & (division <= hi)).then(pl.lit(sec)).otherwise(out)
        ).to_series()
    return out


def crosswalk(name: str) -> pl.DataFrame:
    """The crosswalk ``<deployment>/crosswalks/<name>.csv``, validated (all columns text)."""
    if name not in TARGETS:
        raise ValueError(f"unknown crosswalk {name!r}; known: {sorted(TARGETS)}")
    path = crosswalk_dir() / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the crosswalk {name!r} is missing from the deployment's crosswalks/"
        )
    stat = path.stat()
    return _read_crosswalk(path, name, stat.st_mtime_ns, stat.st_size)


@cache
def _read_crosswalk(path: Path, name: str, mtime_ns: int, size: int) -> pl.DataFrame:
    """Read once per version of the file (a night maps millions of codes through it; a long-running process,
    the Dagster UI's, sees an edited crosswalk at its next use)."""
    df = pl.read_csv(path, infer_schema=False)
    expected = [*KEYS, *TARGETS[name], "note"]
    if df.columns != expected:
        raise ValueError(f"{path.name}: columns {df.columns}, expected {expected}")
    required = [*KEYS, *TARGETS[name]]
    empty = df.filter(pl.any_horizontal(pl.col(required).is_null()))
    if empty.height:
        raise ValueError(f"{path.name}: empty key or target in {empty.head(3).to_dicts()}")
    dup = df.filter(pl.struct(KEYS).is_duplicated())
    if dup.height:
        raise ValueError(f"{path.name}: duplicate keys {dup.select(KEYS).unique().head(5).to_dicts()}")
    for column, allowed in CANONICAL.get(name, {}).items():
        bad = sorted(set(df[column]) - allowed)
        if bad:
            raise ValueError(f"{path.name}: {column} values {bad} not in {sorted(allowed)}")
    if name == "industry":
        malformed = df.filter(
            ~pl.col("industry_code").str.contains(r"^\d{2,4}$")
            | (pl.col("section") != _section_of(df["industry_code"])).fill_null(True)
        )
        if malformed.height:
            raise ValueError(
                f"{path.name}: codes not of the form NN..NNNN or section not matching the "
                f"division: {malformed.head(5).to_dicts()}"
            )
    return df


def map_code(
    expr: pl.Expr | pl.Series | str,
    crosswalk_name: str,
    department: str,
    column: str,
    *,
    table: str | None = None,
) -> pl.Expr:
    """``struct{<targets of the crosswalk>, unmapped}`` for a department's code column.

    ``column`` is the source column name (``DJZT``); ``table`` is needed only when the department has that
    column in several tables with different code lists. Raises ValueError when the crosswalk has no row
    for ``(department, [table,] column)`` at all -- a configuration error, not data to flag.
    """
    expr = _as_expr(expr)
    cw = crosswalk(crosswalk_name)
    rows = cw.filter((pl.col("department") == department) & (pl.col("source_column") == column))
    if table is not None:
        rows = rows.filter(pl.col("source_table") == table)
    where = f"{department}.{table + '.' if table else ''}{column}"
    if rows.height == 0:
        raise ValueError(f"crosswalk {crosswalk_name!r} has no rows for {where}")
    targets = TARGETS[crosswalk_name]
    conflict = rows.group_by("source_value").agg(n=pl.struct(targets).n_unique()).filter(pl.col("n") > 1)
    if conflict.height:
        raise ValueError(
            f"crosswalk {crosswalk_name!r}: {where} maps {conflict['source_value'].to_list()} "
            "differently in different tables; pass table="
        )
    rows = rows.unique("source_value", keep="first", maintain_order=True)
    # the normalized value is computed once (a Stages field), not once per target (Polars copies subtrees)
    text = expr.cast(pl.Utf8).str.normalize("NFKC").str.strip_chars()
    s = Stages(text=text).add(value=pl.when(pl.field("text").str.len_chars() > 0).then(pl.field("text")))
    value = pl.field("value")
    fields = {
        t: value.replace_strict(
            dict(zip(rows["source_value"], rows[t], strict=True)), default=None, return_dtype=pl.Utf8
        )
        for t in targets
    }
    unmapped = (value.is_not_null() & ~value.is_in(rows["source_value"].to_list())).fill_null(False)
    return s.result(expr, struct_of({**fields, "unmapped": unmapped}))
