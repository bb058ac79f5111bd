"""Rows for ``sp_area``: the edges of a GeoJSON boundary, for the ``contains`` search.

The boundary comes as FHIR's ``location-boundary-geojson`` extension: an Attachment whose
``data`` is base64 GeoJSON (a Polygon, a MultiPolygon, or a Feature/FeatureCollection of them).
Every ring of every polygon is cut into edges (GeoJSON positions are longitude, latitude);
holes need nothing special, because the point test counts crossings (even-odd). Horizontal
edges never cross an east-going ray, so they are not stored.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterator
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import orjson

from closedloop.fhir.search.areas import containing, parse_point
from closedloop.fhir.search.index.kind import IndexKind, any_of, present_values

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node
    from closedloop.fhir.search.query import Criterion

MAX_EDGES = 20_000


def _geojson(value: object) -> Any:
    if type(value) is not dict:
        return None
    data = value.get("data")
    if type(data) is not str:
        return None
    try:
        return orjson.loads(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return None


def _polygons(geo: Any) -> Iterator[list[Any]]:
    """Each polygon's rings, from any of the GeoJSON shapes that can hold polygons."""
    if type(geo) is not dict:
        return
    kind = geo.get("type")
    if kind == "Polygon" and type(geo.get("coordinates")) is list:
        yield geo["coordinates"]
    elif kind == "MultiPolygon" and type(geo.get("coordinates")) is list:
        for polygon in geo["coordinates"]:
            if type(polygon) is list:
                yield polygon
    elif kind == "Feature":
        yield from _polygons(geo.get("geometry"))
    elif kind == "FeatureCollection" and type(geo.get("features")) is list:
        for feature in geo["features"]:
            yield from _polygons(feature)
    elif kind == "GeometryCollection" and type(geo.get("geometries")) is list:
        for geometry in geo["geometries"]:
            yield from _polygons(geometry)


def _point(position: object) -> tuple[float, float] | None:
    """(lat, lon) of a GeoJSON position [lon, lat, ...], if it is a valid one."""
    if type(position) is not list or len(position) < 2:
        return None
    lon, lat = position[0], position[1]
    if type(lon) not in (int, float) or type(lat) not in (int, float):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return float(lat), float(lon)


def edges(geo: Any) -> list[dict[str, float]]:
    out: list[dict[str, float]] = []
    for rings in _polygons(geo):
        for ring in rings:
            if type(ring) is not list:
                continue
            points = [p for p in (_point(pos) for pos in ring) if p is not None]
            if len(points) < 3:
                continue
            if points[0] != points[-1]:
                points.append(points[0])  # close it, as GeoJSON requires anyway
            for (lat1, lon1), (lat2, lon2) in pairwise(points):
                if lat1 == lat2:
                    continue
                out.append(
                    {
                        "lat1": lat1,
                        "lon1": lon1,
                        "lat2": lat2,
                        "lon2": lon2,
                        "low": min(lat1, lat2),
                        "high": max(lat1, lat2),
                    }
                )
    return out[:MAX_EDGES]


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for value, _type in nodes:
        out += edges(_geojson(value))
    return out


class AreaIndex(IndexKind):
    """``contains=latitude|longitude``: areas whose boundary holds the point (``areas.py``)."""

    name = "area"
    sortable = False
    extract = staticmethod(extract)

    def where(self, r: Any, t: Any, scope: Any, c: Criterion, base_url: str) -> Any:
        values = present_values(c)
        return any_of([r.c.pk.in_(containing(t, scope, parse_point(v, c.code))) for v in values])


KIND = AreaIndex()
