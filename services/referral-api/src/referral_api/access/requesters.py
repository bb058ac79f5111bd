"""Which Organization requested each Task and ServiceRequest, kept as rows
(``requesting_organizations``, revision 0009) so a requester's narrowing is one equality.

A referral's requester is its Organization or one of that Organization's PractitionerRoles.
Asking that at search time costs an OR of two correlated EXISTS, the second through the
PractitionerRole's own row and its ``organization`` reference: planning it cost more than
running the search it narrowed (``bench/auth.py``). The answer changes only when the referral's
``requester`` changes or when a PractitionerRole changes (or is deleted), so it is computed
then, in the writing transaction, from the reference index (``sp_reference``), and a search
checks one row per candidate through the primary key.

``refresh`` recomputes the rows of a set of resources; the ``before_commit`` listener calls it
for every Task or ServiceRequest whose requester changed, and for every resource that names a
changed PractitionerRole as requester. On PostgreSQL a writer that resolves a PractitionerRole
locks that role's row (``FOR SHARE``) first: a concurrent change of the role either finishes
before (the writer reads its new Organization) or waits for the writer's commit (and then
recomputes the writer's rows too), so no row is left with a stale Organization.
"""

from __future__ import annotations

from typing import Any

from closedloop.context import RequestContext
from closedloop.fhir.search.index.reference import parse_reference
from closedloop.fhir.storage.tables import KEY, resources, sp_reference
from closedloop.hooks import Change, UnitOfWork
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    Table,
    delete,
    exists,
    insert,
    literal,
    select,
    true,
    union,
)
from sqlalchemy.ext.asyncio import AsyncConnection

metadata = MetaData()

requesting_organizations = Table(
    "requesting_organizations",
    metadata,
    Column("res_pk", BigInteger, primary_key=True),  # resources.pk of the Task/ServiceRequest
    Column("organization_id", KEY, primary_key=True),
    # a requester's searches without criteria start from its own rows
    Index("ix_requesting_organizations_org", "organization_id", "res_pk"),
)

REQUESTED_TYPES = ("Task", "ServiceRequest")


def requested_by(org: str, pk: Any) -> Any:
    """The narrowing: resource ``pk`` was requested by Organization ``org``."""
    t = requesting_organizations.c
    return exists().where(t.res_pk == pk, t.organization_id == org)


def _requester_rows() -> Any:
    ref = sp_reference.alias("requester_ref")
    return ref, [ref.c.resource_type.in_(REQUESTED_TYPES), ref.c.param == "requester"]


def _computed(which: Any) -> Any:
    """(res_pk, organization_id) of the resources whose pk meets ``which(res_pk column)``,
    from the index: a requester Organization as is, a PractitionerRole by its (current)
    ``organization``."""
    ref, base = _requester_rows()
    direct = select(ref.c.res_pk, ref.c.target_id).where(
        *base, which(ref.c.res_pk), ref.c.target_type == "Organization"
    )
    ref2, base2 = _requester_rows()
    role = resources.alias("role")
    role_org = sp_reference.alias("role_org")
    through_role = select(ref2.c.res_pk, role_org.c.target_id).where(
        *base2,
        which(ref2.c.res_pk),
        ref2.c.target_type == "PractitionerRole",
        role.c.resource_type == "PractitionerRole",
        role.c.id == ref2.c.target_id,
        role.c.deleted.is_(False),
        role_org.c.res_pk == role.c.pk,
        role_org.c.resource_type == "PractitionerRole",
        role_org.c.param == "organization",
        role_org.c.target_type == "Organization",
    )
    return union(direct, through_role)


def fill(which: Any = None) -> Any:
    """The INSERT of the rows of the resources whose pk meets ``which`` (every resource that
    names a requester when None: the migration's backfill)."""
    computed = _computed(which or (lambda _pk: true()))
    return insert(requesting_organizations).from_select(
        ["res_pk", "organization_id"], computed.subquery().select()
    )


async def refresh(conn: AsyncConnection, pks: Any, *, fresh: bool = False) -> None:
    """Recompute the rows of the resources ``pks``: a list of pks, or the scalar subquery of
    one. Either way the database goes through the index by pk (an ``IN`` subquery was
    planned as a scan of every referral's requester). ``fresh``: a new resource, no rows."""
    t = requesting_organizations
    which = (lambda pk: pk.in_(pks)) if isinstance(pks, list) else (lambda pk: pk == pks)
    if not fresh:
        await conn.execute(delete(t).where(which(t.c.res_pk)))
    await conn.execute(fill(which))


def _pk_of(resource_type: str, resource_id: str) -> Any:
    return (
        select(resources.c.pk)
        .where(resources.c.resource_type == resource_type, resources.c.id == resource_id)
        .scalar_subquery()
    )


async def _naming_role(conn: AsyncConnection, role_id: str) -> list[int]:
    """The pks of the resources that name PractitionerRole ``role_id`` as requester."""
    ref, base = _requester_rows()
    rows = await conn.execute(
        select(ref.c.res_pk).where(
            *base, ref.c.target_type == "PractitionerRole", ref.c.target_id == role_id
        )
    )
    return [int(pk) for pk in rows.scalars()]


def _requester(body: dict[str, Any] | None) -> str | None:
    if not body:
        return None
    reference = (body.get("requester") or {}).get("reference")
    return reference if isinstance(reference, str) else None


async def _lock_role(conn: AsyncConnection, reference: str | None) -> None:
    if conn.dialect.name != "postgresql" or reference is None:
        return
    parsed = parse_reference(reference)
    if parsed is None or parsed[0] != "PractitionerRole":
        return
    role_id = parsed[1]
    await conn.execute(
        select(literal(1))
        .where(resources.c.resource_type == "PractitionerRole", resources.c.id == role_id)
        .with_for_update(read=True)
    )


async def _on_change(conn: AsyncConnection, change: Change) -> None:
    if change.resource_type in REQUESTED_TYPES:
        if change.interaction == "delete":
            return  # the row stays; searches never return deleted resources
        requester = _requester(change.resource)
        if change.interaction == "update" and requester == _requester(change.previous):
            return
        await _lock_role(conn, requester)
        fresh = change.interaction == "create" and change.version_id == 1
        await refresh(conn, _pk_of(change.resource_type, change.resource_id), fresh=fresh)
    elif change.resource_type == "PractitionerRole":
        pks = await _naming_role(conn, change.resource_id)
        if pks:
            await refresh(conn, pks)


async def keep_requesting_organizations(_ctx: RequestContext, uow: UnitOfWork) -> None:
    """``before_commit``: the rows of every resource this unit of work changed the requester
    Organization of."""
    for change in uow.changes:
        await _on_change(uow.conn, change)
