"""Rows for ``sp_coords``: ``Location.position`` latitude/longitude, for the ``near`` search."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func

from closedloop import errors
from closedloop.fhir.search.geo import Near, distance_km, parse_near, within
from closedloop.fhir.search.index.kind import IndexKind

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node
    from closedloop.fhir.search.query import Criterion, SearchQuery, SortKey


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


def near_of(q: SearchQuery, code: str = "near") -> Near | None:
    """The point of the query's (unchained) ``near`` criterion, if it has one."""
    for c in q.criteria:
        if (
            c.code == code
            and c.type == "special"
            and not c.chain
            and c.values
            and c.modifier is None
        ):
            return parse_near(c.values[0])
    return None


class CoordsIndex(IndexKind):
    """``near=latitude|longitude|distance|unit``; ``_sort=near`` orders by the distance from
    that point, nearest first."""

    name = "coords"
    extract = staticmethod(extract)

    def match(
        self, t: Any, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> ColumnElement[bool]:
        return within(parse_near(value), t.c.latitude, t.c.longitude)  # type: ignore[no-any-return]

    def order_value(self, t: Any, key: SortKey, q: SearchQuery, postgres: bool) -> Any:
        near = near_of(q, key.code)
        if near is None:
            raise errors.invalid(
                f"_sort={key.code} needs a {key.code} parameter to measure from", cl_code="CL-3456"
            )
        return func.min(distance_km(near, t.c.latitude, t.c.longitude))


KIND = CoordsIndex()
