"""Silver-layer building blocks: Polars expressions that standardize identifiers, dates and null markers.

Each function takes a column (name or expression) and returns an expression, so a silver model writes one
``select`` over a bronze frame::

    from models.standardize import nullify, parse_date, resident_id, uscc

    silver = bronze.select(uscc("TYSHXYDM"), resident_id("FDDBRZJHM"), parse_date("CLRQ"), nullify("ZS"))

Struct results are unpacked with ``.struct.field(...)`` or ``DataFrame.unnest``. Check algorithms are
those of :mod:`models.identifiers` (the one place they live).
"""

from models.standardize.dates import (
    DATE_STATUSES,
    SENTINEL_DATES,
    excel_serial_to_date,
    excel_serial_to_datetime,
    parse_date,
    parse_datetime,
    parse_year,
    parse_yyyymm,
)
from models.standardize.identifiers import (
    PHONE_KINDS,
    STATUSES,
    TIN_KINDS,
    normalize_code,
    org_code,
    org_code_from_tin,
    org_code_from_uscc,
    phone,
    regno,
    resident_id,
    tin,
    uscc,
)
from models.standardize.nulls import NULL_MARKERS, nullify

__all__ = [
    "DATE_STATUSES",
    "NULL_MARKERS",
    "PHONE_KINDS",
    "SENTINEL_DATES",
    "STATUSES",
    "TIN_KINDS",
    "excel_serial_to_date",
    "excel_serial_to_datetime",
    "normalize_code",
    "nullify",
    "org_code",
    "org_code_from_tin",
    "org_code_from_uscc",
    "parse_date",
    "parse_datetime",
    "parse_year",
    "parse_yyyymm",
    "phone",
    "regno",
    "resident_id",
    "tin",
    "uscc",
]
