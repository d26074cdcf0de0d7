"""Null markers: the many ways a legacy system writes "no value" (docs/domain/legacy-estate.md, "Nulls").

Departments' systems rarely allowed a real NULL, so a missing value arrives as '', ' ', 'NULL', 'null',
'无', '-', '/', '不详', or as whitespace only (including the full-width space U+3000 that Chinese input
methods type). :func:`nullify` turns each of them into a real null and strips the surrounding whitespace
of every other value. It is a Polars expression, so callers compose it inside one ``select``.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from models.standardize.safe_text import clean_controls

IntoExpr = pl.Expr | str

#: The null markers of docs/domain/legacy-estate.md, as written (whitespace-only values are markers too).
NULL_MARKERS: tuple[str, ...] = ("", " ", "NULL", "null", "无", "-", "/", "不详")

#: Characters stripped from both ends of every value: all Unicode whitespace (ASCII blanks, NBSP U+00A0,
#: the ideographic space U+3000 ...) plus the zero-width space and the byte-order mark that copy-paste
#: from web pages and Excel leave behind.
WHITESPACE: str = "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + "\u200b\ufeff"

# Full-width spellings of the ASCII markers (a full-width '－' or '／' typed alone means "no value" too).
_FULLWIDTH_MARKERS = tuple(
    "".join(chr(ord(c) + 0xFEE0) for c in m) for m in NULL_MARKERS if m.strip() and m.isascii()
)

#: What a value is compared with after stripping (stripping makes '' and ' ' the same marker).
MARKERS_AFTER_STRIP: tuple[str, ...] = tuple(
    dict.fromkeys(m.strip(WHITESPACE) for m in NULL_MARKERS + _FULLWIDTH_MARKERS)
)


def as_expr(expr: IntoExpr) -> pl.Expr:
    """A column name or an expression, as an expression."""
    return pl.col(expr) if isinstance(expr, str) else expr


def keep_name(result: pl.Expr, source: pl.Expr) -> pl.Expr:
    """Give ``result`` the output name of ``source`` (when/then and struct() would otherwise rename it)."""
    name = source.meta.output_name(raise_if_undetermined=False)
    return result.alias(name) if name else result


def struct_of(fields: Mapping[str, pl.Expr]) -> pl.Expr:
    """``pl.struct(**fields)``: a struct with one field per name (a mapping, which Polars' overloads of
    :func:`polars.struct` do not take as ``**kwargs`` under a type checker)."""
    return pl.struct([expr.alias(name) for name, expr in fields.items()])


class Stages:
    """Build an expression in stages, as fields of a struct, so an intermediate is computed once.

    Polars expressions are trees: an intermediate used in several places is copied into each, and a
    pipeline of checks grows exponentially. Each :meth:`add` instead stores named intermediates as struct
    fields that later stages reference with ``pl.field(name)`` (a leaf), keeping the tree linear::

        s = Stages(code=normalize(col)).add(shape=pl.field("code").str.contains(p))
        s.result(source, value=..., status=...)
    """

    def __init__(self, **first: pl.Expr) -> None:
        self.expr = struct_of(first)

    def add(self, **fields: pl.Expr) -> Stages:
        """Add fields computed from the fields of earlier stages (not from each other)."""
        self.expr = self.expr.struct.with_fields(**fields)
        return self

    def result(self, source: pl.Expr, expr: pl.Expr | None = None, **fields: pl.Expr) -> pl.Expr:
        """The final expression: ``expr``, or a struct of ``fields``, named like ``source``."""
        out = expr if expr is not None else struct_of(fields)
        return keep_name(self.expr.struct.with_fields(__result=out).struct.field("__result"), source)


def strip(expr: IntoExpr) -> pl.Expr:
    """The value as text with leading and trailing :data:`WHITESPACE` removed (no marker handling)."""
    return as_expr(expr).cast(pl.Utf8).str.strip_chars(WHITESPACE)


def nullify(expr: IntoExpr, markers: tuple[str, ...] = MARKERS_AFTER_STRIP) -> pl.Expr:
    """Null for a null marker or whitespace-only value; otherwise the value as stripped text.

    Any input type is accepted (it is cast to text). The output keeps the input's column name.
    """
    source = as_expr(expr)
    return keep_name(strip(source).replace(list(markers), None), source)


def clean_text(expr: IntoExpr) -> pl.Expr:
    """:func:`nullify` of the value with its control characters removed first
    (:func:`models.standardize.safe_text.clean_controls`): the form of every value silver keeps as free text.
    Removed first, so that a NUL between a value and its padding does not keep the padding."""
    source = as_expr(expr)
    return keep_name(nullify(clean_controls(source.cast(pl.Utf8))), source)
