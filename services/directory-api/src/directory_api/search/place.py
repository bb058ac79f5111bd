"""``place=latitude|longitude|distance|unit`` (and ``place-postalcode=ZIP|distance|unit``): the
services someone at that place can use, the way a FindHelp search reads.

A service matches when one of its locations is within the distance (``nearby``), when one of its
coverage areas contains the point (``coverage-area``: a statewide help line whose office is far
away), or when it is delivered virtually (``virtual``). Nearby ones come first, nearest first,
then coverage-area ones, then virtual ones; each entry says why it matched
(``MATCH_REASON_EXTENSION``, plus the location-distance for nearby ones). ``location.near`` stays
the strict "has a site within" filter.
"""

from __future__ import annotations

from typing import Any

from closedloop.fhir.search.areas import containing
from closedloop.fhir.search.geo import DISTANCE_EXT, Near, distance_km, parse_near, within
from closedloop.fhir.storage.tables import INDEX_TABLES, resources
from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select

from directory_api.conventions import MATCH_REASON_EXTENSION

DELIVERY_PARAM = "delivery-method"
# rank values: a nearby service ranks by its distance in km (always below COVERAGE_RANK)
COVERAGE_RANK = 1_000_000.0
VIRTUAL_RANK = 2_000_000.0


def _sites(r: Any, resource_type: str, ref_param: str) -> tuple[Any, ColumnElement[bool]]:
    """(Location alias, join condition) for the Locations a service's ``ref_param`` names."""
    ref = INDEX_TABLES["reference"].alias()
    loc = resources.alias()
    joined = and_(
        ref.c.res_pk == r.c.pk,
        ref.c.resource_type == resource_type,
        ref.c.param == ref_param,
        loc.c.resource_type == "Location",
        loc.c.id == ref.c.target_id,
        ref.c.target_type == "Location",
        loc.c.deleted.is_(False),
    )
    return loc, joined


def _coords(loc: Any) -> Any:
    c = INDEX_TABLES["coords"].alias()
    return c, and_(c.c.res_pk == loc.c.pk, c.c.resource_type == "Location", c.c.param == "near")


def _nearby(near: Near, r: Any, resource_type: str) -> ColumnElement[bool]:
    loc, joined = _sites(r, resource_type, "location")
    c, at = _coords(loc)
    return exists().where(joined, at, within(near, c.c.latitude, c.c.longitude))


def _covered(near: Near, r: Any, resource_type: str) -> ColumnElement[bool]:
    loc, joined = _sites(r, resource_type, "coverage-area")
    area = INDEX_TABLES["area"].alias()
    scope = and_(area.c.resource_type == "Location", area.c.param == "contains")
    point = f"{near.latitude}|{near.longitude}"
    return exists().where(joined, loc.c.pk.in_(containing(area, scope, point, "place")))


def _virtual(r: Any, resource_type: str) -> ColumnElement[bool]:
    t = INDEX_TABLES["token"].alias()
    return exists().where(
        t.c.res_pk == r.c.pk,
        t.c.resource_type == resource_type,
        t.c.param == DELIVERY_PARAM,
        t.c.code == "virtual",
    )


def place_condition(value: str, r: Any, resource_type: str) -> ColumnElement[bool]:
    near = parse_near(value)
    return or_(
        _nearby(near, r, resource_type),
        _covered(near, r, resource_type),
        _virtual(r, resource_type),
    )


def place_rank(value: str, r: Any, resource_type: str) -> Any:
    """Distance (km) to the nearest site within reach; else COVERAGE_RANK or VIRTUAL_RANK."""
    near = parse_near(value)
    loc, joined = _sites(r, resource_type, "location")
    c, at = _coords(loc)
    nearest = (
        select(func.min(distance_km(near, c.c.latitude, c.c.longitude)))
        .where(joined, at, within(near, c.c.latitude, c.c.longitude))
        .scalar_subquery()
    )
    return case(
        (nearest.is_not(None), nearest),
        (_covered(near, r, resource_type), literal(COVERAGE_RANK)),
        else_=literal(VIRTUAL_RANK),
    )


def describe_place(rank: Any) -> list[dict[str, Any]]:
    value = float(rank) if rank is not None else VIRTUAL_RANK
    if value < COVERAGE_RANK:
        return [
            {"url": MATCH_REASON_EXTENSION, "valueCode": "nearby"},
            {
                "url": DISTANCE_EXT,
                "valueDistance": {
                    "value": round(value, 3),
                    "unit": "km",
                    "system": "http://unitsofmeasure.org",
                    "code": "km",
                },
            },
        ]
    reason = "coverage-area" if value < VIRTUAL_RANK else "virtual"
    return [{"url": MATCH_REASON_EXTENSION, "valueCode": reason}]
