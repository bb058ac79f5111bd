"""``open=now`` / ``open=<dateTime>``: listings open at a moment, from their weekly hours.

Hours (HealthcareService ``availableTime``, Location ``hoursOfOperation``) are indexed as
local minute-of-week ranges (Monday 00:00 = 0, end exclusive) in ``sp_number`` under the
``open`` parameter; a range that runs past midnight (22:00-02:00) becomes two, and Sunday night
wraps to Monday morning. The listing's IANA zone (the ``timezone`` extension) is indexed as the
``timezone`` token, only when the zone is one the server knows.

A moment with a UTC offset (or ``now``, from the injectable clock) is seen in each listing's
own zone, in SQL (``closedloop.db.localtime``), falling back to the directory's default zone
for a listing that names none. A moment without an offset (``2026-12-07T10:00``) is local wall
time wherever the listing is. A ``notAvailable.during`` period that covers the moment closes it.
A listing with no hours is never "open": nobody knows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from closedloop import errors
from closedloop.db.localtime import local_minute_of_week, minute_of_week, zone
from closedloop.fhir.instant import to_us
from closedloop.fhir.storage.tables import INDEX_TABLES
from sqlalchemy import ColumnElement, and_, exists, func, literal, not_, select

OPEN_PARAM = "open"
TIMEZONE_PARAM = "timezone"
NOT_AVAILABLE_PARAM = "not-available"
_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$")
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _minute(text: object) -> int | None:
    match = _TIME.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    hours, minutes = int(match[1]), int(match[2])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        return None
    return hours * 60 + minutes


def week_ranges(entry: dict[str, Any]) -> list[tuple[int, int]]:
    """The minute-of-week ranges [start, end) of one availableTime/hoursOfOperation entry."""
    days = [_DAYS[d] for d in entry.get("daysOfWeek") or _DAYS if d in _DAYS]
    if entry.get("allDay") is True:
        start, end = 0, 1440
    else:
        opens = _minute(entry.get("availableStartTime", entry.get("openingTime")))
        closes = _minute(entry.get("availableEndTime", entry.get("closingTime")))
        if opens is None and closes is None:
            return []
        start = 0 if opens is None else opens
        end = 1440 if closes is None or closes == 0 else closes
        if end == start:
            start, end = 0, 1440
    out: list[tuple[int, int]] = []
    for day in sorted(set(days)):
        base = day * 1440
        if end > start:
            out.append((base + start, base + end))
        else:  # past midnight, into the next day (Sunday night into Monday)
            out.append((base + start, base + 1440))
            following = ((day + 1) % 7) * 1440
            out.append((following, following + end))
    return out


def extract_hours(nodes: list[Any]) -> list[dict[str, Any]]:
    ranges: dict[tuple[int, int], None] = {}
    for value, _type in nodes:
        if isinstance(value, dict):
            for r in week_ranges(value):
                ranges[r] = None
    return [{"value": float(lo), "low": float(lo), "high": float(hi)} for lo, hi in ranges]


def extract_timezone(nodes: list[Any]) -> list[dict[str, Any]]:
    for value, _type in nodes:
        if isinstance(value, str) and zone(value) is not None:
            return [{"system": None, "code": value, "text": None}]
    return []


def parse_moment(value: str, clock: Clock) -> datetime:
    """An aware datetime (``now`` or with an offset), or a naive one (local wall time)."""
    text = value.strip()
    if text == "now":
        return clock().astimezone(UTC)
    try:
        if _LOCAL.match(text):
            return datetime.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise errors.invalid(
            f"open takes now or a dateTime such as 2026-12-07T10:00:00-06:00 (with an offset: "
            f"that instant in each listing's time zone) or 2026-12-07T10:00 (local time), not "
            f"{value!r}",
            cl_code="CL-9420",
        )
    return moment


def open_condition_factory(default_timezone: str, clock: Clock = utc_now) -> Any:
    """The ``condition`` of the ``open`` parameter, bound to the directory's default zone and
    its clock (tests inject one)."""
    default_zone = zone(default_timezone)
    if default_zone is None:
        raise ValueError(f"unknown default time zone {default_timezone!r}")

    def condition(value: str, r: Any, resource_type: str) -> ColumnElement[bool]:
        moment = parse_moment(value, clock)
        hours = INDEX_TABLES["number"].alias()
        scope = and_(
            hours.c.res_pk == r.c.pk,
            hours.c.resource_type == resource_type,
            hours.c.param == OPEN_PARAM,
        )
        if moment.tzinfo is None:
            local: Any = literal(local_minute_of_week(moment))
            is_open = exists().where(scope, hours.c.low <= local, hours.c.high > local)
            instant = moment.replace(tzinfo=default_zone)
        else:
            # the listing's zone joined to each of its hours rows (a correlated scalar
            # subquery two levels down would not stay correlated to ``r``)
            tz = INDEX_TABLES["token"].alias()
            zone_of = and_(
                tz.c.res_pk == hours.c.res_pk,
                tz.c.resource_type == resource_type,
                tz.c.param == TIMEZONE_PARAM,
            )
            local = minute_of_week(func.coalesce(tz.c.code, default_timezone), moment.timestamp())
            is_open = exists(
                select(hours.c.res_pk)
                .select_from(hours.outerjoin(tz, zone_of))
                .where(scope, hours.c.low <= local, hours.c.high > local)
            )
            instant = moment
        return and_(is_open, not_(_closed_at(r, resource_type, instant)))

    return condition


def _closed_at(r: Any, resource_type: str, instant: datetime) -> ColumnElement[bool]:
    """A ``notAvailable.during`` period covers the instant (date rows are microseconds)."""
    at = to_us(instant)
    d = INDEX_TABLES["date"].alias()
    return exists().where(
        d.c.res_pk == r.c.pk,
        d.c.resource_type == resource_type,
        d.c.param == NOT_AVAILABLE_PARAM,
        d.c.low <= at,
        d.c.high >= at,
    )
