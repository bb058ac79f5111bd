"""``contains=latitude|longitude``: the resources whose area (``sp_area`` edges of a GeoJSON
boundary) contains the point.

The crossing-number test, in SQL on both databases: cast a ray east from the point and count
the boundary edges it crosses; an odd count is inside. Only edges whose latitude span holds the
point's latitude can cross (half-open, so a vertex on the ray counts once), and that span is
what the index narrows by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select

from closedloop import errors


@dataclass(frozen=True)
class Point:
    latitude: float
    longitude: float


def parse_point(value: str, code: str = "contains") -> Point:
    parts = value.split("|")
    if len(parts) != 2:
        raise errors.invalid(
            f"{code} must read latitude|longitude, not {value!r}", cl_code="CL-3470"
        )
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise errors.invalid(
            f"{code} needs numbers for latitude and longitude, not {value!r}", cl_code="CL-3471"
        ) from None
    if not math.isfinite(lat) or not -90 <= lat <= 90:
        raise errors.invalid(f"{code}: latitude {parts[0]} is outside -90..90", cl_code="CL-3472")
    if not math.isfinite(lon) or not -180 <= lon <= 180:
        raise errors.invalid(
            f"{code}: longitude {parts[1]} is outside -180..180", cl_code="CL-3473"
        )
    return Point(lat, lon)


def containing(t: Any, scope: ColumnElement[bool], p: Point) -> Any:
    """``SELECT res_pk`` of the areas (rows of the ``sp_area`` alias ``t`` within ``scope``)
    that contain the point ``p``."""
    crosses = and_(
        t.c.low <= p.latitude,
        t.c.high > p.latitude,
        # longitude where the edge meets the point's latitude lies east of the point
        t.c.lon1 + (p.latitude - t.c.lat1) * (t.c.lon2 - t.c.lon1) / (t.c.lat2 - t.c.lat1)
        > p.longitude,
    )
    return (
        select(t.c.res_pk).where(scope, crosses).group_by(t.c.res_pk).having(func.count() % 2 == 1)
    )
