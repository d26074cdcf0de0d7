"""The city's time zone, declared once.

The nightly partition (a calendar day), the scorecard's day boundaries, the day a timestamp falls on and
the zone of naive timestamps in the legacy sources all mean the same wall clock: the city's. A
deployment declares it with a top-level ``timezone:`` key in its ``sources.yaml`` (an IANA name); the
per-department ``source_timezone`` defaults to it. Every layer asks :func:`city_timezone` (at call time, so
the deployment of the process is the one that counts); a deployment that declares none is in
:data:`DEFAULT_TIMEZONE`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from lake.deployment import current_deployment

__all__ = ["DEFAULT_TIMEZONE", "check_timezone", "city_timezone", "city_zone"]

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


def city_timezone() -> str:
    """The zone the deployment's ``sources.yaml`` declares (top-level ``timezone:``), else the default."""
    path = current_deployment().sources
    try:
        stat = path.stat()
    except FileNotFoundError:
        return DEFAULT_TIMEZONE
    return _declared_timezone(path, stat.st_mtime_ns)


@cache
def _declared_timezone(path: Path, mtime_ns: int) -> str:
    """Read once per version of the file; the full validation (with line numbers) is the config loader's."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    value = document.get("timezone") if isinstance(document, dict) else None
    return check_timezone(value) if isinstance(value, str) and value else DEFAULT_TIMEZONE


def city_zone(name: str | None = None) -> ZoneInfo:
    """The city's zone as a ``ZoneInfo``: ``name`` when given, else :func:`city_timezone`."""
    return ZoneInfo(name or city_timezone())
