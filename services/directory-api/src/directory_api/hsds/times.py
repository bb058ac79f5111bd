"""Clock times as directory publishers write them -> FHIR ``time`` (``HH:MM:SS``).

HSDS says ``HH:MM`` (with a zone), but real exports hold ``9:00am``, ``09:00 AM``, ``9am``,
``9 a.m.``, ``noon``, ``0900`` or ``17:00:00``. Each is read; anything not already
``H:MM[:SS]`` (plus an optional zone, which the importer replaces by an IANA zone) counts as
repaired so the import report can say so.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$")
_MERIDIEM = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?(?::(\d{2}))?\s*([ap])\.?\s*m\.?$")
_MILITARY = re.compile(r"^(\d{2})(\d{2})$")
_WORDS = {"noon": (12, 0), "midday": (12, 0), "12 noon": (12, 0), "midnight": (0, 0)}


class ParsedTime(NamedTuple):
    value: str  # HH:MM:SS
    repaired: bool  # the text was not already an HSDS/ISO clock time


def parse_time(text: Any) -> ParsedTime | None:
    """``None`` for empty or unreadable text (the caller reports the latter)."""
    if text is None:
        return None
    raw = str(text).strip().lower()
    if not raw:
        return None
    m = _CLOCK.match(raw)
    if m:
        return _checked(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), False)
    if raw in _WORDS:
        h, mi = _WORDS[raw]
        return ParsedTime(f"{h:02d}:{mi:02d}:00", True)
    m = _MERIDIEM.match(raw)
    if m:
        h, mi, s = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if m.group(4) == "p" else 0)
        return _checked(h, mi, s, True)
    m = _MILITARY.match(raw)
    if m:
        return _checked(int(m.group(1)), int(m.group(2)), 0, True)
    return None


def _checked(h: int, mi: int, s: int, repaired: bool) -> ParsedTime | None:
    if h > 23 or mi > 59 or s > 59:
        return None
    return ParsedTime(f"{h:02d}:{mi:02d}:{s:02d}", repaired)
