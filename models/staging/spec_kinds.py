"""The kinds a staging spec standardizes a column as (``as: <kind>``), and the columns each adds.

Apart from the spec's format because the engine, the canonical checks and the scorecard ask the same
questions of a kind (which extra columns it writes, whether it reports a status, whether it is an
identifier) without needing the whole spec model.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal[
    "text",
    "enterprise_name",
    "person_name",
    "uscc",
    "org_code",
    "regno",
    "tin",
    "resident_id",
    "key_kind",
    "party_kind",
    "phone",
    "date",
    "datetime",
    "period",
    "year",
    "timestamp",
    "amount",
    "capital_wan",
    "integer",
    "code",
    "division",
]

#: The extra staging columns each kind adds beside its main column ``X`` (as ``X_<suffix>``).
KIND_SUFFIXES: dict[str, tuple[str, ...]] = {
    "text": (),
    "timestamp": (),
    "key_kind": (),
    "party_kind": (),
    "enterprise_name": (
        "original",
        "comparison",
        "legal_form",
        "region",
        "is_branch",
        "parent_comparison",
        "status_suffix",
    ),
    "person_name": ("comparison",),
    "uscc": ("status",),
    "org_code": ("status",),
    "regno": ("status",),
    "tin": ("kind", "status", "org_code", "resident_id"),
    "resident_id": ("status", "was_15", "birth_date", "sex", "masked"),
    "phone": ("kind",),
    "date": ("status",),
    "datetime": ("status",),
    "period": ("status",),
    "year": ("status",),
    "amount": ("status",),
    "capital_wan": ("status",),
    "integer": ("status",),
    "code": ("source", "unmapped"),  # plus one per extra crosswalk target
    "division": ("source", "retired"),
}
#: Kinds whose ``X_status`` says whether a value could be read (for ``invalid:`` quarantine rules).
STATUS_KINDS = frozenset(k for k, s in KIND_SUFFIXES.items() if "status" in s)
#: Kinds that are identifiers (the scorecard's share of valid identifiers).
IDENTIFIER_KINDS = frozenset({"uscc", "org_code", "regno", "tin", "resident_id"})
