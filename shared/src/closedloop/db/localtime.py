"""``minute_of_week(zone, epoch_seconds)``: the local minute of the week (Monday 00:00 = 0) of an
instant in an IANA time zone, in SQL on both databases.

Opening hours are stored as local minute-of-week ranges; "open now" compares the current
instant, seen in each listing's own zone, against them. PostgreSQL computes it with
``AT TIME ZONE``; SQLite with the Python function registered on every connection
(``engine.py``), which answers NULL (no match) for a zone it does not know.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Integer

SQLITE_NAME = "cl_minute_of_week"


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None


def local_minute_of_week(moment: datetime) -> int:
    return moment.weekday() * 1440 + moment.hour * 60 + moment.minute


def python_minute_of_week(name: str | None, epoch_seconds: float | None) -> int | None:
    tz = zone(name) if name else None
    if tz is None or epoch_seconds is None:
        return None
    return local_minute_of_week(datetime.fromtimestamp(epoch_seconds, UTC).astimezone(tz))


class minute_of_week(FunctionElement[int]):
    type = Integer()
    inherit_cache = True
    name = "minute_of_week"


@compiles(minute_of_week, "postgresql")
def _postgres(element: minute_of_week, compiler: Any, **kw: Any) -> str:
    name, seconds = (compiler.process(c, **kw) for c in element.clauses)
    local = f"(to_timestamp({seconds}) AT TIME ZONE {name})"
    return f"floor(extract(epoch FROM ({local} - date_trunc('week', {local}))) / 60)::int"


@compiles(minute_of_week, "sqlite")
def _sqlite(element: minute_of_week, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_NAME}({compiler.process(element.clauses, **kw)})"
