"""Rows for ``sp_coords``: ``Location.position`` latitude/longitude, for the ``near`` search."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node


def _finite(x: object) -> bool:
    return type(x) in (int, float) and math.isfinite(x)  # type: ignore[arg-type]


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    seen: dict[tuple[float, float], None] = {}
    for value, _type in nodes:
        if type(value) is not dict:
            continue
        lat, lon = value.get("latitude"), value.get("longitude")
        if _finite(lat) and _finite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180:
            seen[(float(lat), float(lon))] = None
    return [{"latitude": lat, "longitude": lon} for lat, lon in seen]
