"""Rows for ``sp_date``: every value becomes an inclusive range ``[low, high]`` of integer
microseconds since the Unix epoch (UTC), widened by its precision.

FHIR date search compares ranges ("2020" means the whole year), so storing the implied range
once at write time keeps the query a pair of integer comparisons. A value without a time-zone
offset is taken as UTC. ``parse_date_range`` is shared with the query parser.
"""

from __future__ import annotations

import re
from datetime import date as _date
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func

from closedloop.fhir.instant import now_us
from closedloop.fhir.search.index.kind import IndexKind, bad_value, compare_range
from closedloop.fhir.search.syntax import split_prefix

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node
    from closedloop.fhir.search.query import Criterion, SearchQuery, SortKey

_SECOND = 1_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_EPOCH = _date(1970, 1, 1).toordinal()

MIN_US: int = (_date(1, 1, 1).toordinal() - _EPOCH) * _DAY
"""Start of 0001-01-01 UTC: the open lower end of a Period without ``start``."""
MAX_US: int = (_date(9999, 12, 31).toordinal() - _EPOCH + 1) * _DAY - 1
"""Last microsecond of 9999-12-31 UTC: the open upper end of a Period without ``end``."""

_DATE_RE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?",
    re.ASCII,
)


def _day_us(year: int, month: int, day: int) -> int:
    return (_date(year, month, day).toordinal() - _EPOCH) * _DAY


def parse_date_range(text: str) -> tuple[int, int] | None:
    """The inclusive µs range a FHIR date/dateTime/instant denotes, or None if it doesn't parse.

    ``2020`` → the whole year, ``2020-03`` → the month, ``2020-03-04`` → the day,
    ``...T10:00`` → the minute, ``...T10:00:00`` → the second, ``...T10:00:00.5`` → 100 ms.
    """
    m = _DATE_RE.fullmatch(text) if type(text) is str else None
    if m is None:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        year = int(y)
        if mo is None:
            low = _day_us(year, 1, 1)
            high = _day_us(year + 1, 1, 1) - 1 if year < 9999 else MAX_US
            return low, high
        month = int(mo)
        if d is None:
            low = _day_us(year, month, 1)
            if month == 12:
                high = _day_us(year + 1, 1, 1) - 1 if year < 9999 else MAX_US
            else:
                high = _day_us(year, month + 1, 1) - 1
            return low, high
        low = _day_us(year, month, int(d))
    except ValueError:  # month 13, 31 February, year 0, ...
        return None
    if hh is None:
        return low, low + _DAY - 1
    hour, minute = int(hh), int(mi)
    if hour > 23 or minute > 59:
        return None
    low += hour * _HOUR + minute * _MINUTE
    if ss is None:
        span = _MINUTE
    else:
        second = int(ss)
        if second > 59:
            return None
        low += second * _SECOND
        if frac is None:
            span = _SECOND
        else:
            digits = frac[:6]
            low += int(digits.ljust(6, "0"))
            span = 10 ** (6 - len(digits))
    if tz is not None and tz != "Z":
        oh, om = int(tz[1:3]), int(tz[4:6])
        if oh > 14 or om > 59:
            return None
        offset = oh * _HOUR + om * _MINUTE
        low = low - offset if tz[0] == "+" else low + offset
    high = low + span - 1
    return max(low, MIN_US), min(high, MAX_US)


def _period(value: dict[str, Any]) -> tuple[int, int] | None:
    start, end = value.get("start"), value.get("end")
    if start is None and end is None:
        return None
    low, high = MIN_US, MAX_US
    if start is not None:
        parsed = parse_date_range(start)
        if parsed is None:
            return None
        low = parsed[0]
    if end is not None:
        parsed = parse_date_range(end)
        if parsed is None:
            return None
        high = parsed[1]
    return low, high


def _add(seen: dict[tuple[int, int], None], rng: tuple[int, int] | None) -> None:
    if rng is not None:
        seen[rng] = None


def _timing(seen: dict[tuple[int, int], None], value: dict[str, Any]) -> None:
    events = value.get("event")
    if type(events) is list:
        for event in events:
            _add(seen, parse_date_range(event))
    repeat = value.get("repeat")
    if type(repeat) is dict:
        bounds = repeat.get("boundsPeriod")
        if type(bounds) is dict:
            _add(seen, _period(bounds))


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    seen: dict[tuple[int, int], None] = {}
    for value, node_type in nodes:
        if type(value) is str:
            _add(seen, parse_date_range(value))
        elif type(value) is dict:
            if node_type == "Timing" or "event" in value or "repeat" in value:
                _timing(seen, value)
            elif node_type == "Period" or "start" in value or "end" in value:
                _add(seen, _period(value))
    return [{"low": low, "high": high} for low, high in seen]


def _approx(prefix: str, low: int) -> int:
    """How far ``ap`` reaches: a tenth of the distance from now, at least a day."""
    return max(abs(now_us() - low) // 10, 86_400_000_000) if prefix == "ap" else 0


def condition(value: str, low: Any, high: Any) -> ColumnElement[bool]:
    """One ``[prefix]date`` value against the stored range ``[low, high]`` (index columns, or
    ``resources.last_updated`` twice for ``_lastUpdated``)."""
    prefix, text = split_prefix(value)
    rng = parse_date_range(text)
    if rng is None:
        raise bad_value(
            f"Invalid date {text!r}: use a FHIR date, dateTime or instant "
            "(e.g. 2026-11-01 or 2026-11-01T00:00:00Z)"
        )
    s_low, s_high = rng
    return compare_range(prefix, low, high, s_low, s_high, _approx(prefix, s_low))


def bounds(value: str) -> tuple[str, list[Any]] | None:
    """(prefix, the bounds ``compare_range`` binds for it, in its order), None if unreadable."""
    prefix, text = split_prefix(value)
    rng = parse_date_range(text)
    if rng is None:
        return None
    low, high = rng
    if prefix in ("eq", "ne"):
        return prefix, [low, high]
    if prefix in ("gt", "sa"):
        return prefix, [high]
    if prefix in ("lt", "eb"):
        return prefix, [low]
    if prefix == "ge":
        return prefix, [high, low, high]
    if prefix == "le":
        return prefix, [low, low, high]
    if prefix == "ap":
        approx = _approx(prefix, low)
        return prefix, [low - approx, high + approx]
    return None


class DateIndex(IndexKind):
    """Ranges compared by prefix; sorted by the start (by the end, descending)."""

    name = "date"
    shape_modifiers = frozenset((None,))
    extract = staticmethod(extract)

    def match(
        self, t: Any, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> ColumnElement[bool]:
        return condition(value, t.c.low, t.c.high)

    def order_value(self, t: Any, key: SortKey, q: SearchQuery, postgres: bool) -> Any:
        return func.max(t.c.high) if key.descending else func.min(t.c.low)

    def shape(
        self, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> tuple[str, list[Any]] | None:
        return bounds(value)


KIND = DateIndex()
