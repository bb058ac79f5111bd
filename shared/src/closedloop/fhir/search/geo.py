"""``near`` (Location.position): great-circle distance searches.

``near=latitude|longitude|distance|unit`` finds positions within ``distance`` (km by default;
``km``, ``m``, ``mi``, ``[mi_i]`` accepted) of the point. A latitude/longitude bounding box first
narrows the candidates through the coordinates index, then the haversine formula decides, in
SQL, on both databases (SQLite's math functions: ``closedloop.db`` registers them where SQLite
was built without). ``_sort=near`` orders by that distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal

from closedloop import errors

EARTH_KM = 6371.0088
DEFAULT_KM = 50.0
UNITS_KM = {"km": 1.0, "m": 0.001, "mi": 1.609344, "[mi_i]": 1.609344}
DISTANCE_EXT = "http://hl7.org/fhir/StructureDefinition/location-distance"


@dataclass(frozen=True)
class Near:
    latitude: float
    longitude: float
    km: float


def parse_near(value: str) -> Near:
    parts = value.split("|")
    if len(parts) < 2 or len(parts) > 4:
        raise errors.invalid(
            f"near must read latitude|longitude|distance|unit, not {value!r}", cl_code="CL-3450"
        )
    try:
        lat, lon = float(parts[0]), float(parts[1])
        distance = float(parts[2]) if len(parts) > 2 and parts[2] else None
    except ValueError:
        raise errors.invalid(
            f"near needs numbers for latitude, longitude and distance, not {value!r}",
            cl_code="CL-3451",
        ) from None
    if not (-90 <= lat <= 90) or not math.isfinite(lat):
        raise errors.invalid(f"near: latitude {parts[0]} is outside -90..90", cl_code="CL-3452")
    if not (-180 <= lon <= 180) or not math.isfinite(lon):
        raise errors.invalid(f"near: longitude {parts[1]} is outside -180..180", cl_code="CL-3453")
    unit = parts[3] if len(parts) > 3 and parts[3] else "km"
    if unit not in UNITS_KM:
        raise errors.invalid(
            f"near: unit {unit!r} is not supported (use km, m or mi)", cl_code="CL-3454"
        )
    if distance is not None and (distance < 0 or not math.isfinite(distance)):
        raise errors.invalid("near: the distance must be a positive number", cl_code="CL-3455")
    km = DEFAULT_KM if distance is None else distance * UNITS_KM[unit]
    return Near(lat, lon, km)


def distance_extension(km: float) -> dict[str, Any]:
    """The ``location-distance`` extension of a search entry: how far the match is, in km."""
    return {
        "url": DISTANCE_EXT,
        "valueDistance": {
            "value": round(km, 3),
            "unit": "km",
            "system": "http://unitsofmeasure.org",
            "code": "km",
        },
    }


def distance_km(near: Near, lat: Any, lon: Any) -> Any:
    """SQL for the haversine distance (km) from ``near`` to the columns ``lat``/``lon``."""
    p1 = math.radians(near.latitude)
    dlat = func.radians(lat) - p1
    dlon = func.radians(lon) - math.radians(near.longitude)
    a = func.pow(func.sin(dlat / 2), 2) + math.cos(p1) * func.cos(func.radians(lat)) * func.pow(
        func.sin(dlon / 2), 2
    )
    # rounding can push ``a`` a hair above 1, where asin is undefined
    return literal(2 * EARTH_KM) * func.asin(func.sqrt(case((a > 1.0, 1.0), else_=a)))


def python_distance_km(near: Near, lat: float, lon: float) -> float:
    p1, p2 = math.radians(near.latitude), math.radians(lat)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon - near.longitude) / 2) ** 2
    )
    return 2 * EARTH_KM * math.asin(math.sqrt(min(a, 1.0)))


def within(near: Near, lat: Any, lon: Any) -> Any:
    """Bounding box (index friendly) and then the exact distance."""
    dlat = math.degrees(near.km / EARTH_KM)
    cos = max(math.cos(math.radians(near.latitude)), 1e-6)
    dlon = min(180.0, dlat / cos)
    box = and_(lat >= near.latitude - dlat, lat <= near.latitude + dlat)
    if dlon < 180.0:
        box = and_(box, lon >= near.longitude - dlon, lon <= near.longitude + dlon)
    return and_(box, distance_km(near, lat, lon) <= near.km)
