"""``place=latitude|longitude|distance|unit`` (and ``place-postalcode=ZIP|distance|unit``): the
services someone at that place can use, the way a FindHelp search reads.

A service matches when one of its locations is within the distance (``nearby``), when one of its
coverage areas contains the point (``coverage-area``: a statewide help line whose office is far
away), or when it is delivered virtually (``virtual``). Nearby ones come first, nearest first,
then coverage-area ones, then virtual ones; each entry says why it matched
(``MATCH_REASON_EXTENSION``, plus the location-distance for nearby ones). ``location.near`` stays
the strict "has a site within" filter.

The three ways are one ``IN (... UNION ...)`` so each reads its own index: sites from the
service-sites table (``sites.py``), areas from ``sp_area``, virtual delivery from ``sp_token``.
"""

from __future__ import annotations

from typing import Any

from closedloop.fhir.search.areas import Point, containing
from closedloop.fhir.search.geo import (
    Near,
    distance_extension,
    distance_km,
    parse_near,
    within,
)
from closedloop.fhir.storage.tables import INDEX_TABLES, resources
from sqlalchemy import ColumnElement, and_, case, func, literal, select, union

from directory_api.conventions import MATCH_REASON_EXTENSION
from directory_api.search.sites import live_location, service_sites

DELIVERY_PARAM = "delivery-method"
# rank values: a nearby service ranks by its distance in km (always below COVERAGE_RANK)
COVERAGE_RANK = 1_000_000.0
VIRTUAL_RANK = 2_000_000.0


def _nearby(near: Near) -> Any:
    """``SELECT service_pk`` of services with a site within reach (``sites.py``)."""
    s = service_sites.c
    return select(s.service_pk).where(within(near, s.latitude, s.longitude))


def _covered(near: Near, resource_type: str) -> Any:
    """``SELECT res_pk`` of services with a coverage area containing the point."""
    ref, loc = INDEX_TABLES["reference"].alias(), resources.alias()
    area = INDEX_TABLES["area"].alias()
    scope = and_(area.c.resource_type == "Location", area.c.param == "contains")
    point = Point(near.latitude, near.longitude)
    return (
        select(ref.c.res_pk)
        .join(loc, live_location(ref, loc))
        .where(
            ref.c.resource_type == resource_type,
            ref.c.param == "coverage-area",
            ref.c.target_type == "Location",
            loc.c.pk.in_(containing(area, scope, point)),
        )
    )


def _virtual(resource_type: str) -> Any:
    t = INDEX_TABLES["token"].alias()
    return select(t.c.res_pk).where(
        t.c.resource_type == resource_type, t.c.param == DELIVERY_PARAM, t.c.code == "virtual"
    )


def place_condition(value: str, r: Any, resource_type: str) -> ColumnElement[bool]:
    near = parse_near(value)
    found = union(_nearby(near), _covered(near, resource_type), _virtual(resource_type))
    return r.c.pk.in_(select(found.subquery().c[0]))


def place_rank(value: str, r: Any, resource_type: str) -> Any:
    """Distance (km) to the nearest site within reach; else COVERAGE_RANK or VIRTUAL_RANK."""
    near = parse_near(value)
    s = service_sites.c
    nearest = (
        select(func.min(distance_km(near, s.latitude, s.longitude)))
        .where(s.service_pk == r.c.pk, within(near, s.latitude, s.longitude))
        .scalar_subquery()
    )
    return case(
        (nearest.is_not(None), nearest),
        (r.c.pk.in_(_covered(near, resource_type)), literal(COVERAGE_RANK)),
        else_=literal(VIRTUAL_RANK),
    )


def describe_place(rank: Any) -> list[dict[str, Any]]:
    value = float(rank) if rank is not None else VIRTUAL_RANK
    if value < COVERAGE_RANK:
        return [{"url": MATCH_REASON_EXTENSION, "valueCode": "nearby"}, distance_extension(value)]
    reason = "coverage-area" if value < VIRTUAL_RANK else "virtual"
    return [{"url": MATCH_REASON_EXTENSION, "valueCode": reason}]
