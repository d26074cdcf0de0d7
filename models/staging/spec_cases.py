"""The ``service_cases`` declaration of a staging spec: this table describes service cases (办件).

Why a declaration: the service marts (办件效能, 开办企业) and the KPI's overdue cases read the canonical
``int_service_cases`` (:mod:`models.canonical`), never a department's staging table, so a city whose service
centre keeps its cases in another system, or in several, says so in its specs and no code changes. Apart from
:mod:`models.staging.spec` to keep that module short; the spec's format is documented there.

.. code-block:: yaml

    service_cases:                  # canonical case field: staging column of this spec
      case_id: case_id              # required: the case number (办件编号)
      item_code: item_code          # required: the service item (事项编码)
      applied_at: applied_at        # required: application time (申请)
      item_name: item_name
      channel: channel
      applicant_type: applicant_type
      applicant: applicant          # the enterprise mention of the applicant (its uscc, name)
      accepted_at: accepted_at      # acceptance (受理): the legal clock starts here
      completed_at: completed_at    # completion (办结 or 退件)
      statutory_days: statutory_days
      promised_days: promised_days
      case_status: case_status      # completed | in_progress | returned (crosswalk service_status)
      satisfaction: satisfaction    # 好差评 score, 1 to 5

Each value names a staging column the spec produces; a field left out is null in ``int_service_cases``. Times
are ``timestamp``, ``datetime`` or ``date`` columns (a date as its midnight in the city); the day limits and the
score ``integer`` columns. ``applicant`` is a role of an enterprise mention (``enterprises:``): the applicant's
``<prefix>uscc``, ``<prefix>uscc_status`` and ``<prefix>name_comparison`` identify it for the start-up chain.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

#: Kinds a case time may be read from, and the day counts and score.
TIME_KINDS = frozenset({"timestamp", "datetime", "date"})
INTEGER_KINDS = frozenset({"integer"})


class ServiceCasesSpec(BaseModel):
    """Canonical case field -> staging column (``applicant``: an enterprise mention's role)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    item_code: str
    applied_at: str
    item_name: str | None = None
    channel: str | None = None
    applicant_type: str | None = None
    applicant: str | None = None
    accepted_at: str | None = None
    completed_at: str | None = None
    statutory_days: str | None = None
    promised_days: str | None = None
    case_status: str | None = None
    satisfaction: str | None = None

    def columns(self) -> dict[str, str]:
        """The declared case fields read from a staging column (``applicant`` is a role, not a column)."""
        return {f: v for f, v in self.model_dump().items() if v is not None and f != "applicant"}

    def problems(
        self, produced: list[str], kinds: Mapping[str, str], enterprise_roles: set[str]
    ) -> list[tuple[str, str]]:
        """``(field, message)`` for each declared field a spec with these staging columns (``produced``; the
        main columns' kinds in ``kinds``) and enterprise mentions cannot give."""
        out: list[tuple[str, str]] = []
        for field, column in self.columns().items():
            if column not in produced:
                out.append((field, f"{column!r} is not a staging column of this spec"))
                continue
            kind = kinds.get(column)
            for wanted, allowed in (
                (("applied_at", "accepted_at", "completed_at"), TIME_KINDS),
                (("statutory_days", "promised_days", "satisfaction"), INTEGER_KINDS),
            ):
                if field in wanted and kind not in allowed:
                    out.append(
                        (
                            field,
                            f"{column!r} is read as {kind!r}; a case's {field} needs one of {sorted(allowed)}",
                        )
                    )
        if self.applicant is not None and self.applicant not in enterprise_roles:
            out.append(("applicant", f"no enterprise mention has role {self.applicant!r}"))
        return out
