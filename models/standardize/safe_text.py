"""Text every layer can carry: which characters a value may hold and how long it may be -- one rule, here.

Why one place: a value from a department's database goes through silver, gold and the marts to a bureau's CSV,
which a clerk opens in a spreadsheet and the bureau checks with ``qst verify-export``.  If silver, the exports
and the verification each had their own idea of a "clean" or a "too long" value, a night could publish what the
verification then rejects (a fault probe saw it: one 200,000-character name made ``verify-export`` reject
packages the night had just reported as published).  So:

* **Control characters** (:data:`CONTROL_CHARS`): the C0 and C1 control characters (Unicode category Cc: NUL,
  BEL, ESC, DEL, U+0080..U+009F ...) except TAB, LF and CR, and the explicit bidirectional embeddings,
  overrides and isolates (U+202A..U+202E, U+2066..U+2069: a name holding them *displays* other than it reads,
  the "Trojan source" trick).  No registry value needs one; legacy databases hold them by accident (fixed-width
  C strings padded with NUL, bytes of another encoding).  They are **removed** from every value silver keeps
  as text (:func:`models.standardize.nulls.clean_text`: the kinds ``text``, ``enterprise_name``,
  ``person_name`` and a code's source value), so gold and the marts carry none; an identifier, a date or a
  number holding one fails its shape check and is ``invalid``, as any other garbage.  The exports remove them
  again from every text value they write (:func:`clean_controls`): the last guard, for values no
  standardizer saw.  TAB, LF and CR inside a value stay (a multi-line address or remark); at its ends they
  are whitespace and silver strips them.  The raw value stays in bronze as the department sent it.
* **Length** (:data:`MAX_FIELD_CHARS`, 32,767 characters: the most a spreadsheet cell holds -- Excel's limit,
  WPS's too -- so a longer CSV cell would be cut silently when a bureau opens it).  Silver quarantines a row
  whose source value is longer, with the reason ``value_too_long:<column>`` (:func:`too_long`); the exports
  refuse to write a longer CSV cell (an error naming the table and column: the night fails loudly rather than
  publish it); ``qst verify-export`` reports a longer cell as a problem.  The three agree because they read the
  same constant.
"""

from __future__ import annotations

import polars as pl

__all__ = ["CONTROL_CHARS", "MAX_FIELD_CHARS", "TOO_LONG", "clean_controls", "too_long"]

#: The longest text value, in characters, that the lake carries to the exports (a spreadsheet cell's limit).
MAX_FIELD_CHARS = 32_767

#: The quarantine reason of a row with a source value longer than :data:`MAX_FIELD_CHARS` (``:<column>`` follows).
TOO_LONG = "value_too_long"

#: A regular expression (Rust ``regex`` syntax, as Polars reads it) of the characters removed from text.
CONTROL_CHARS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\x{202A}-\x{202E}\x{2066}-\x{2069}]"


def clean_controls(expr: pl.Expr) -> pl.Expr:
    """Text without :data:`CONTROL_CHARS` (null stays null; nothing else changes)."""
    return expr.str.replace_all(CONTROL_CHARS, "")


def too_long(expr: pl.Expr) -> pl.Expr:
    """True where a text value has more than :data:`MAX_FIELD_CHARS` characters (null: False)."""
    return (expr.str.len_chars() > MAX_FIELD_CHARS).fill_null(False)
