"""The loop metrics' settings, from referral-api's own (``REFERRAL_API_MEASURES_*``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MeasureSettings:
    stall_days: int = 7
    stall_days_by_category: Mapping[str, int] = field(default_factory=dict)
    min_cell: int = 11


def parse_stall_days(text: str) -> dict[str, int]:
    """``food-insecurity=3,housing-instability=14``: a stall limit in days per category code."""
    out: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        code, sep, days = part.partition("=")
        if not sep or not code.strip() or not days.strip().isdigit():
            raise ValueError(f"expected category=days, got {part.strip()!r}")
        out[code.strip()] = int(days)
    return out
