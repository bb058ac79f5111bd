"""Where each HealthcareService is, by category: a denormalised table that answers the hottest
directory search, ``HealthcareService?location.near=...&service-category=...``, from one index.

The generic engine answers that chain by walking every Location near the point to its services
and then intersecting with the category (thousands of index probes on a metro-sized
directory). ``directory_service_sites`` holds one row per (service, site with a position,
category coding), indexed by (code, latitude, longitude) and by (latitude, longitude), so the
search reads only the rows of its category within the bounding box.

Rows are derived from the search index rows themselves (the service's ``location`` references,
the Location's ``near`` coordinates, the service's ``service-category`` tokens), in SQL, in the
same transaction as the change (a ``before_commit`` hook): a changed service or a changed
Location refreshes the rows of the services concerned. ``planner`` then answers those two
criteria from the table; it answers exactly what the chain would.
"""

from __future__ import annotations

from typing import Any

from closedloop.fhir.search.geo import parse_near, within
from closedloop.fhir.search.index.kind import any_of
from closedloop.fhir.search.query import Criterion
from closedloop.fhir.storage.tables import KEY, resources, sp_coords, sp_reference, sp_token
from closedloop.hooks import HookPoint, Hooks
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    MetaData,
    Table,
    and_,
    delete,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

SERVICE = "HealthcareService"
metadata = MetaData()
service_sites = Table(
    "directory_service_sites",
    metadata,
    Column("service_pk", BigInteger, nullable=False),
    Column("location_pk", BigInteger, nullable=False),
    Column("system", KEY, nullable=True),  # the category coding; NULL when it has none
    Column("code", KEY, nullable=True),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Index("ix_sites_category", "code", "latitude", "longitude", "service_pk"),
    Index("ix_sites_position", "latitude", "longitude", "service_pk"),
    Index("ix_sites_service", "service_pk"),
)
_COLUMNS = [c.name for c in service_sites.columns]


def live_location(ref: Any, loc: Any) -> Any:
    """Join condition: ``loc`` (a resources alias) is the live Location ``ref`` names."""
    return and_(
        loc.c.resource_type == "Location", loc.c.id == ref.c.target_id, loc.c.deleted.is_(False)
    )


def rows_of(service_pks: Any | None) -> Any:
    """``SELECT`` of the site rows of the services (all services when None), from the index."""
    ref, loc, c, tok, hs = (
        sp_reference.alias(),
        resources.alias(),
        sp_coords.alias(),
        sp_token.alias(),
        resources.alias(),
    )
    stmt = (
        select(ref.c.res_pk, loc.c.pk, tok.c.system, tok.c.code, c.c.latitude, c.c.longitude)
        .select_from(ref)
        .join(hs, and_(hs.c.pk == ref.c.res_pk, hs.c.deleted.is_(False)))
        .join(loc, live_location(ref, loc))
        .join(
            c,
            and_(c.c.res_pk == loc.c.pk, c.c.resource_type == "Location", c.c.param == "near"),
        )
        .outerjoin(
            tok,
            and_(
                tok.c.res_pk == ref.c.res_pk,
                tok.c.resource_type == SERVICE,
                tok.c.param == "service-category",
            ),
        )
        .where(
            ref.c.resource_type == SERVICE,
            ref.c.param == "location",
            ref.c.target_type == "Location",
        )
    )
    return stmt if service_pks is None else stmt.where(ref.c.res_pk.in_(service_pks))


async def refresh(conn: AsyncConnection, service_ids: set[str], location_ids: set[str]) -> None:
    """Rebuild the rows of these services and of every service naming these Locations."""
    r, ref = resources.c, sp_reference.c
    pks: set[int] = set()
    if service_ids:
        found = await conn.execute(
            select(r.pk).where(r.resource_type == SERVICE, r.id.in_(sorted(service_ids)))
        )
        pks.update(found.scalars())
    if location_ids:
        found = await conn.execute(
            select(ref.res_pk).where(
                ref.resource_type == SERVICE,
                ref.param == "location",
                ref.target_type == "Location",
                ref.target_id.in_(sorted(location_ids)),
            )
        )
        pks.update(found.scalars())
    if not pks:
        return
    chosen = sorted(pks)
    await conn.execute(delete(service_sites).where(service_sites.c.service_pk.in_(chosen)))
    await conn.execute(service_sites.insert().from_select(_COLUMNS, rows_of(chosen)))


def fill_statement() -> Any:
    """``INSERT ... SELECT`` of every service's rows (the migration fills the table with it)."""
    return service_sites.insert().from_select(_COLUMNS, rows_of(None))


async def rebuild(conn: AsyncConnection) -> None:
    """Every service's rows anew (after ``directory-api reindex``)."""
    await conn.execute(delete(service_sites))
    await conn.execute(fill_statement())


async def _before_commit(_ctx: Any, uow: Any) -> None:
    services = {c.resource_id for c in uow.changes if c.resource_type == SERVICE}
    locations = {c.resource_id for c in uow.changes if c.resource_type == "Location"}
    if services or locations:
        await refresh(uow.conn, services, locations)


def register(hooks: Hooks) -> None:
    hooks.register(HookPoint.BEFORE_COMMIT, _before_commit)


# -- the planner -------------------------------------------------------------------------------


def _near_chain(c: Criterion) -> Criterion | None:
    """The inner ``near`` of a plain ``location.near`` (or resolved ``near-postalcode``)."""
    if c.code != "location" or c.modifier is not None or c.has is not None or len(c.chain) != 1:
        return None
    target, inner = c.chain[0]
    if target != "Location" or inner.chain or inner.has is not None or inner.modifier:
        return None
    if inner.code not in ("near", "near-postalcode"):
        return None
    values = [v for v in inner.values if v]
    return inner if values else None


def _category_values(c: Criterion) -> list[tuple[str | None, str]] | None:
    """(system, code) pairs of a plain ``service-category`` criterion, if all are plain."""
    if c.code != "service-category" or c.modifier is not None or c.chain or c.has is not None:
        return None
    out: list[tuple[str | None, str]] = []
    for value in c.values:
        if "\\" in value or not value:
            return None
        system, bar, code = value.rpartition("|")
        if (bar and not system) or not code:
            return None  # |code (no system) and system| keep the generic path
        out.append((system or None, code))
    return out or None


def planner(
    resource_type: str, criteria: list[Criterion], r: Any
) -> tuple[list[Criterion], list[Any]]:
    if resource_type != SERVICE:
        return criteria, []
    found = next(((c, n) for c in criteria if (n := _near_chain(c)) is not None), None)
    if found is None:
        return criteria, []
    near_c, inner = found
    s = service_sites.c
    where: list[Any] = [
        any_of([within(parse_near(v), s.latitude, s.longitude) for v in inner.values if v])
    ]
    category = next(((c, v) for c in criteria if (v := _category_values(c)) is not None), None)
    category_c = category[0] if category is not None else None
    if category is not None:
        pairs = category[1]
        where.append(
            or_(
                *(
                    s.code == code if system is None else and_(s.code == code, s.system == system)
                    for system, code in pairs
                )
            )
        )
    left = [c for c in criteria if c is not near_c and c is not category_c]
    return left, [r.c.pk.in_(select(s.service_pk).where(*where))]
