"""Who may change which listing: a token bound to an Organization writes its own listings only.

- Unrestricted: the service's own jobs (``SYSTEM``), callers without a token (authorization
  off), the ``admin`` and ``service`` roles, and a client with neither a role nor an
  Organization (a backend client registered so): their scopes alone decide, as before.
- A token naming an Organization (``organization`` claim; a CBO's staff, a CBO platform, a
  clinic) may create, change or delete:
  - a HealthcareService whose ``providedBy`` is its Organization, before and after the change,
    and whose new ``location`` sites are not another Organization's;
  - a Location that is its own: its ``managingOrganization`` is its Organization, or (none
    given) every stored HealthcareService at it is its own (a site shared with another
    Organization's listing is an administrator's to change); a new Location names the
    Organization as ``managingOrganization``;
  - its own Organization resource (change only);
  and nothing else (Endpoints, other Organizations).
- A CBO or requester role without an Organization writes nothing.
Refusals are 403 OperationOutcomes saying which rule.
"""

from __future__ import annotations

import json
from typing import Any

from closedloop import errors
from closedloop.auth.organizations import organization_id
from closedloop.auth.roles import CBO_ROLES, REQUESTER_ROLES, UNRESTRICTED_ROLES
from closedloop.context import SYSTEM, RequestContext
from closedloop.db.engine import Database
from closedloop.fhir.storage.tables import resources, sp_reference
from closedloop.hooks import Change, HookPoint, Hooks
from sqlalchemy import and_, select

UNRESTRICTED = "*"  # no FHIR id is "*"


def own_organization(ctx: RequestContext) -> str | None:
    """The caller's Organization id, ``UNRESTRICTED``, or None (may write nothing)."""
    if ctx is SYSTEM or ctx.anonymous or ctx.role in UNRESTRICTED_ROLES:
        return UNRESTRICTED
    org = organization_id(ctx.organization)
    if org is not None:
        return org
    if ctx.role in CBO_ROLES or ctx.role in REQUESTER_ROLES or ctx.organization:
        return None
    return UNRESTRICTED  # a backend client with no role and no Organization: scopes decide


def _org_of(reference: Any) -> str | None:
    ref = reference.get("reference") if isinstance(reference, dict) else None
    return organization_id(str(ref or ""))


def _location_ids(service: dict[str, Any] | None) -> set[str]:
    out = set()
    for ref in (service or {}).get("location") or []:
        text = str((ref or {}).get("reference") or "") if isinstance(ref, dict) else ""
        parts = text.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "Location" and parts[-1]:
            out.add(parts[-1])
    return out


class ListingLimits:
    def __init__(self, db: Database) -> None:
        self.db = db

    def install(self, hooks: Hooks) -> None:
        hooks.register(HookPoint.BEFORE_CREATE, self.on_create)
        hooks.register(HookPoint.BEFORE_UPDATE, self.on_update)
        hooks.register(HookPoint.BEFORE_DELETE, self.on_delete)

    async def on_create(self, ctx: RequestContext, change: Change, /) -> None:
        await self._judge(ctx, change, None, change.resource or {})

    async def on_update(self, ctx: RequestContext, change: Change, /) -> None:
        await self._judge(ctx, change, change.previous or {}, change.resource or {})

    async def on_delete(self, ctx: RequestContext, change: Change, /) -> None:
        await self._judge(ctx, change, change.previous or {}, None)

    async def _judge(
        self,
        ctx: RequestContext,
        change: Change,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        org = own_organization(ctx)
        if org == UNRESTRICTED:
            return
        if org is None:
            raise errors.forbidden(
                "This token names no Organization: it may not change directory listings"
            )
        mine = f"Organization/{org}"
        kind = change.resource_type
        if kind == "HealthcareService":
            if before is not None and _org_of(before.get("providedBy")) != org:
                raise errors.forbidden(
                    f"HealthcareService/{change.resource_id} is provided by another "
                    f"Organization: a token of {mine} may change only its own listings"
                )
            if after is not None:
                if _org_of(after.get("providedBy")) != org:
                    raise errors.forbidden(f"HealthcareService.providedBy must be {mine}")
                for loc in sorted(_location_ids(after) - _location_ids(before)):
                    owners = await self._location_owners(loc)
                    if owners - {org}:
                        raise errors.forbidden(
                            f"Location/{loc} is another Organization's site: "
                            "a listing of yours may not name it"
                        )
            return
        if kind == "Location":
            if before is None:
                if _org_of((after or {}).get("managingOrganization")) != org:
                    raise errors.forbidden(f"A new Location's managingOrganization must be {mine}")
                return
            managing = _org_of(before.get("managingOrganization"))
            owners = {managing} if managing else await self._location_owners(change.resource_id)
            if owners != {org}:
                raise errors.forbidden(
                    f"Location/{change.resource_id} is not a site of {mine} alone (its "
                    "managingOrganization, or the listings at it): an administrator changes it"
                )
            handed = (after or {}).get("managingOrganization")
            if handed is not None and _org_of(handed) != org:
                raise errors.forbidden(f"Location.managingOrganization must be {mine}")
            return
        if kind == "Organization":
            if before is not None and after is not None and change.resource_id == org:
                return
            raise errors.forbidden(
                f"A token of {mine} may change only that Organization, not create or delete one"
            )
        raise errors.forbidden(f"A token of {mine} may not change {kind}")

    async def _location_owners(self, location_id: str) -> set[str | None]:
        """The ``providedBy`` Organizations (None for a service naming none) of the live
        HealthcareServices at the Location."""
        ref, hs = sp_reference.alias(), resources.alias()
        stmt = (
            select(hs.c.content)
            .select_from(ref)
            .join(hs, and_(hs.c.pk == ref.c.res_pk, hs.c.deleted.is_(False)))
            .where(
                ref.c.resource_type == "HealthcareService",
                ref.c.param == "location",
                ref.c.target_type == "Location",
                ref.c.target_id == location_id,
            )
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return {_org_of(json.loads(row[0] or "{}").get("providedBy")) for row in rows}
