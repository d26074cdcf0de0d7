"""The sections of a staging spec beside its columns and mentions: keys, relations, events, quarantine rules,
expectations and authority.

Apart from :mod:`models.staging.spec` (which documents the whole format and re-exports these models) so that
each module stays short enough to read; nothing here knows a city.
"""

from __future__ import annotations

import difflib
import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from models.events import CATEGORY_KEYS, describe_categories
from models.gold.survivorship import GROUPS

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
SOURCE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*/[a-z][a-z0-9_]*$")


#: Every part of a spec: unknown keys are errors (a misspelled key never passes silently), values frozen.
SPEC_CONFIG = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SpecModel(BaseModel):
    """The base of the spec's parts defined here."""

    model_config = SPEC_CONFIG


def canonical_name(name: str) -> str:
    """``name`` if it is a canonical (snake_case) name, else a ValueError saying what one is."""
    if not NAME_PATTERN.match(name) or len(name) > 63:
        raise ValueError(
            f"{name!r} is not a canonical column name (snake_case, [a-z][a-z0-9_]*, <= 63 chars)"
        )
    return name


class KeyReference(SpecModel):
    """A column holding the local key of another table of the same department (checked against the other specs
    by :func:`load_specs`, which passes the tables that declare a local key as ``local_keys``)."""

    column: str
    table: str

    @field_validator("table")
    @classmethod
    def _table(cls, v: str, info: ValidationInfo) -> str:
        if not SOURCE_PATTERN.match(v):
            raise ValueError(f"{v!r} must be '<department>/<asset>', both snake_case")
        known = (info.context or {}).get("local_keys")
        if known is not None and v not in known:
            raise ValueError(
                f"no spec of {v!r} declares a local key (keys: {{local: ...}}); declared: {sorted(known)}"
            )
        return v


class KeysSpec(SpecModel):
    """A department's own numbers (see the module's docstring): valid as link keys within that department."""

    local: str | None = None
    references: list[KeyReference] = []


class RelationSpec(SpecModel):
    """What a row says between the persons and enterprises it mentions (employment, roster membership)."""

    kind: Literal["employment", "roster"]
    person: str
    enterprise: str | None = None

    @model_validator(mode="after")
    def _roles(self) -> RelationSpec:
        if self.kind == "employment" and self.enterprise is None:
            raise ValueError("an employment relation names its 'enterprise' role")
        if self.kind == "roster" and self.enterprise is not None:
            raise ValueError("a roster relation has no 'enterprise'")
        return self


class EventSpec(SpecModel):
    type: str
    #: what the event means to the marts: one of :data:`models.events.CATEGORY_KEYS` (required)
    event_category: str | None = Field(None, validate_default=True)
    subject: str
    date: str
    end_date: str | None = None
    amount: str | None = None
    category: str | None = None
    reference: str | None = None
    status: str | None = None

    _type = field_validator("type")(lambda v: canonical_name(v))

    @field_validator("event_category")
    @classmethod
    def _category(cls, v: str | None) -> str:
        """Required, and one of the closed vocabulary: a missing or misspelled category would silently take the
        event out of every mart, so the error lists what the marts understand."""
        if v is None:
            raise ValueError(f"required: what the event means to the marts, one of {describe_categories()}")
        if v not in CATEGORY_KEYS:
            close = difflib.get_close_matches(v, CATEGORY_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown event category {v!r}{hint}; the categories are {describe_categories()}"
            )
        return v

    @property
    def category_key(self) -> str:
        """The declared category (validated: never None)."""
        return self.event_category or "other"

    def columns(self) -> dict[str, str]:
        fields = ("date", "end_date", "amount", "category", "reference", "status")
        return {f: getattr(self, f) for f in fields if getattr(self, f) is not None}


class QuarantineRule(SpecModel):
    reason: str
    all_missing: list[str] | None = None
    invalid: str | None = None
    missing: str | None = None

    _reason = field_validator("reason")(lambda v: canonical_name(v))

    @model_validator(mode="after")
    def _one(self) -> QuarantineRule:
        given = [k for k in ("all_missing", "invalid", "missing") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a rule has exactly one of 'all_missing', 'invalid', 'missing'")
        return self

    def columns(self) -> list[str]:
        return list(self.all_missing or []) + [c for c in (self.invalid, self.missing) if c]


class ExpectationSpec(SpecModel):
    """A rule of this table's own, beside those every table gets from its kinds (quality/expectations.py):
    what a department's data must hold for downstream to trust it (``hard`` blocks downstream assets) or
    should hold (``soft`` warns)."""

    rule: Literal["not_null", "unique", "in_set", "between"]
    column: str
    severity: Literal["hard", "soft"] = "hard"
    mostly: float | None = Field(None, gt=0, le=1)
    values: list[str] | None = None
    min: float | str | None = None
    max: float | str | None = None
    why: str | None = None

    @model_validator(mode="after")
    def _arguments(self) -> ExpectationSpec:
        if (self.rule == "in_set") != (self.values is not None):
            raise ValueError("'values' goes with rule 'in_set' and is required there")
        if self.rule == "between" and self.min is None and self.max is None:
            raise ValueError("rule 'between' needs 'min', 'max' or both")
        if self.rule != "between" and (self.min is not None or self.max is not None):
            raise ValueError("'min' and 'max' go with rule 'between' only")
        return self


def _group_ranks(kind: str) -> type[BaseModel]:
    """The ranks one kind's groups may take: a model of its own so that an unknown group is an unknown key,
    reported at its line with the known groups listed (and a likely misspelling)."""
    rank = (StrictInt | None, Field(None, ge=1, description="1 = most authoritative; a lower number wins"))
    fields: dict = dict.fromkeys(GROUPS[kind], rank)
    return create_model(f"{kind.title()}Authority", __base__=SpecModel, **fields)


EnterpriseAuthority = _group_ranks("enterprise")
PersonAuthority = _group_ranks("person")


class AuthoritySpec(SpecModel):
    """Which golden attribute groups (:data:`models.gold.survivorship.GROUPS`) this source is authoritative for,
    and how it ranks against the other sources that declare the same group: the deployment, not the code,
    knows which department keeps a city's legal record."""

    enterprise: EnterpriseAuthority = EnterpriseAuthority()  # type: ignore[valid-type]
    person: PersonAuthority = PersonAuthority()  # type: ignore[valid-type]

    def ranks(self) -> dict[str, dict[str, int]]:
        """kind -> group -> rank, the groups declared only."""
        return {
            kind: {g: r for g, r in getattr(self, kind).model_dump().items() if r is not None}
            for kind in ("enterprise", "person")
        }
