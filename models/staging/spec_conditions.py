"""Conditions of a staging spec: a column's ``only_if`` and a mention's ``when``.

Why a small language and not only ``{COLUMN: [values]}``: a party column that mixes enterprises and persons is
split by what its rows are *not* (``not`` a natural person), by what they lack (no USCC: ``null``) or by one of
several signs (a USCC-shaped key *or* an enterprise name: ``any``). Apart from :mod:`models.staging.spec` so the
format module stays short; the format is documented there and here.

A condition is a mapping; each key is a staging column or an operator, and all its entries must hold (AND):

- ``COLUMN: [v1, v2]`` — the column's value is one of the listed values (a null value is in no list);
- ``COLUMN: null`` — the column is null;
- ``not: CONDITION`` — the condition does not hold;
- ``any: [CONDITION, ...]`` — at least one holds (OR);
- ``all: [CONDITION, ...]`` — every one holds (AND, for symmetry with ``any``).

.. code-block:: yaml

    when: {not: {party_type: [自然人]}}
    when: {party_uscc: null}
    when: {any: [{party_key_kind: [uscc, org_code]}, {party_kind: [enterprise]}]}
    only_if: {not: {id_number: null}}

A condition compiles to one Polars expression that is never null (:func:`condition_expr`). The columns it reads
(:func:`condition_columns`) must be staging columns the spec defines above (checked by the spec).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import polars as pl
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

#: The keys of a condition that are operators, not columns (no staging column may be named so).
OPERATORS = ("not", "any", "all")

Path = tuple[str | int, ...]


def _problems(raw: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """``(path, message)`` for each thing wrong with ``raw`` read as a condition (paths relative to it)."""
    if not isinstance(raw, dict):
        yield (
            path,
            f"a condition is a mapping ({{COLUMN: [values]}}, {{not: ...}}, {{any: [...]}}), not {raw!r}",
        )
        return
    if not raw:
        yield path, "an empty condition: name a column or one of the operators not, any, all"
    for key, value in raw.items():
        at = (*path, key)
        if not isinstance(key, str):
            yield at, f"a condition's key is a staging column or one of not, any, all, not {key!r}"
        elif key == "not":
            yield from _problems(value, at)
        elif key in ("any", "all"):
            if not isinstance(value, list) or not value:
                yield at, f"'{key}' takes a non-empty list of conditions ([{{COLUMN: [values]}}, ...])"
                continue
            for i, sub in enumerate(value):
                yield from _problems(sub, (*at, i))
        elif value is None:
            continue
        elif not isinstance(value, list):
            yield at, f"a column takes a list of values ([a, b]) or null (the column is null), not {value!r}"
        else:
            for i, v in enumerate(value):
                if not isinstance(v, str):
                    yield (*at, i), f'values are text, not {v!r}: put it in quotes ("{v}")'


def validate_condition(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """``raw`` if it is a well-formed condition (an empty mapping at the top means no condition: None); else a
    ``qst_rules`` error placing each problem at its own key, so the data engineer sees file, line and key."""
    if raw is None or raw == {}:
        return None
    problems = list(_problems(raw, ()))
    if problems:
        raise PydanticCustomError(
            "qst_rules",
            "{summary}",
            {
                "summary": "; ".join(m for _, m in problems),
                "issues": [(path, message, None) for path, message in problems],
            },
        )
    return raw


#: The type of a spec's ``only_if`` / ``when`` field.
Condition = Annotated[dict[str, Any] | None, AfterValidator(validate_condition)]


def condition_columns(cond: dict[str, Any] | None, path: Path = ()) -> list[tuple[Path, str]]:
    """``(path, column)`` of every column a (validated) condition reads, in order of appearance."""
    out: list[tuple[Path, str]] = []
    for key, value in (cond or {}).items():
        at = (*path, key)
        if key == "not":
            out += condition_columns(value, at)
        elif key in ("any", "all"):
            for i, sub in enumerate(value):
                out += condition_columns(sub, (*at, i))
        else:
            out.append((at, key))
    return out


def condition_expr(cond: dict[str, Any] | None) -> pl.Expr | None:
    """One Polars expression, true where the condition holds and never null (None: no condition)."""
    if not cond:
        return None
    parts: list[pl.Expr] = []
    for key, value in cond.items():
        if key == "not":
            inner = condition_expr(value)
            parts.append(inner.not_() if inner is not None else pl.lit(False))
        elif key in ("any", "all"):
            subs = [condition_expr(sub) for sub in value]
            exprs = [e if e is not None else pl.lit(True) for e in subs]
            parts.append(pl.any_horizontal(exprs) if key == "any" else pl.all_horizontal(exprs))
        elif value is None:
            parts.append(pl.col(key).is_null())
        else:
            parts.append(pl.col(key).is_in(value).fill_null(False))
    return parts[0] if len(parts) == 1 else pl.all_horizontal(parts)
