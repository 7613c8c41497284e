"""Timestamps as people and scripts read them."""

from __future__ import annotations

from datetime import datetime, timezone


def iso_local(timestamp: float | None) -> str | None:
    """ISO 8601 in the local time zone, to the second (None stays None)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def iso_utc(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC, to the second (None stays None)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")
