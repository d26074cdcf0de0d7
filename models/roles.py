"""Roles of canonical records that the canonical build derives itself, beside the roles the specs declare.

A leaf module (no imports of the project) because the spec format reserves these names, the canonical build
writes them, the mention reconciliation leaves them out and survivorship keeps them from the golden name, and
those modules import one another in that order.
"""

from __future__ import annotations

#: An enterprise's former name (曾用名) declared on a mention (``former_names:``): a record of its own, linked to
#: the mention's record as the same entity, so that other departments' records under the old name find it.
FORMER_NAME_ROLE = "former_name"

#: Every derived role: no declared mention may take one, and the mention reconciliation does not count them.
DERIVED_ROLES = frozenset({FORMER_NAME_ROLE})
