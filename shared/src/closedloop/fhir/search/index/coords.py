"""Rows for ``sp_coords``: ``Location.position`` latitude/longitude, for the ``near`` search."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node


def _number(x: object) -> float | None:
    """A finite JSON number as float (bools are not numbers here), else None."""
    if type(x) is int or type(x) is float:
        value = float(x)
        return value if math.isfinite(value) else None
    return None


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    seen: dict[tuple[float, float], None] = {}
    for value, _type in nodes:
        if type(value) is not dict:
            continue
        lat, lon = _number(value.get("latitude")), _number(value.get("longitude"))
        if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
            seen[(lat, lon)] = None
    return [{"latitude": lat, "longitude": lon} for lat, lon in seen]
