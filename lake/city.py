"""The city's time zone, declared once.

The nightly partition (a calendar day), the scorecard's day boundaries, the day a timestamp falls on and
the zone of naive timestamps in the legacy sources all mean the same wall clock: the city's. A
deployment may declare it with a top-level ``timezone:`` key in ``sources.yaml`` (an IANA name); the
per-department ``source_timezone`` defaults to it. Code that has no configuration at hand (a schedule
declared at import, a docstring example) uses :data:`DEFAULT_TIMEZONE`.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DEFAULT_TIMEZONE", "check_timezone", "city_zone"]

#: The zone of a deployment that declares none (the city Quanshitong was built for).
DEFAULT_TIMEZONE = "Asia/Shanghai"


def check_timezone(value: str) -> str:
    """``value`` if it names an IANA time zone; a ValueError whose message says what is expected otherwise.

    Configuration files validate their zone keys with it, so every file rejects a zone the same way.
    """
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as {DEFAULT_TIMEZONE!r} or 'UTC'"
        ) from None
    return value


def city_zone(name: str | None = None) -> ZoneInfo:
    """The city's zone as a ``ZoneInfo``: ``name`` when a deployment declared one, else the default."""
    return ZoneInfo(name or DEFAULT_TIMEZONE)
