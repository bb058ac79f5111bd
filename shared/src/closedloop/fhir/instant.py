"""FHIR instants as integer microseconds: the storage format of ``meta.lastUpdated``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)


def format_instant(us: int) -> str:
    """``2026-11-22T22:08:54.123456+00:00``: full precision so a round trip is exact."""
    return to_datetime(us).isoformat(timespec="microseconds")


def http_date(us: int) -> str:
    return format_datetime(to_datetime(us), usegmt=True)


def to_us(value: datetime) -> int:
    """An aware datetime as microseconds since the epoch (exact, no float rounding)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_instant(text: str) -> int | None:
    """Parse an ISO instant or dateTime (``Z`` or offset; date-only means midnight UTC)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return to_us(value)
