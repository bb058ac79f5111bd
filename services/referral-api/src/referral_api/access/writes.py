"""What a narrowed caller may write.

- A **CBO** changes its Tasks' progress (the state machine's owner rules say which fields:
  ``workflow.task_states.OWNER_EDITABLE``) and records the Procedures it delivered for them
  (``Procedure.basedOn`` one of its referrals); it creates, changes or deletes nothing else.
- A **requester** writes on behalf of its own Organization: the Tasks and ServiceRequests it
  creates or changes name it (or one of its PractitionerRoles) as requester.
- A caller without a usable role writes nothing.
Which existing resources a caller may change at all is ``instances``' business (404 otherwise).
"""

from __future__ import annotations

from typing import Any

from closedloop import errors
from closedloop.context import RequestContext
from closedloop.db.engine import Database
from closedloop.fhir.storage.tables import resources
from closedloop.hooks import Change
from sqlalchemy import select

from referral_api.access.parties import CBO, NOBODY, REQUESTER, Party, party_of
from referral_api.access.visibility import narrower, points

CBO_UPDATES = frozenset({"Task", "Procedure"})
REQUESTED_TYPES = frozenset({"Task", "ServiceRequest"})


class WriteLimits:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def on_create(self, ctx: RequestContext, change: Change, /) -> None:
        party = party_of(ctx)
        if not party.narrowed:
            return
        self._refuse_nobody(party)
        body = change.resource or {}
        if party.kind == CBO:
            if change.resource_type != "Procedure":
                raise errors.forbidden(
                    f"A CBO may not create {change.resource_type}: it records the Procedures "
                    "it delivered and changes its Tasks' progress"
                )
            await self._require_own_referral(ctx, body)
        elif party.kind == REQUESTER and change.resource_type in REQUESTED_TYPES:
            await self._require_own_request(ctx, party, change.resource_type, body)

    async def on_update(self, ctx: RequestContext, change: Change, /) -> None:
        party = party_of(ctx)
        if not party.narrowed:
            return
        self._refuse_nobody(party)
        body = change.resource or {}
        if party.kind == CBO:
            if change.resource_type not in CBO_UPDATES:
                raise errors.forbidden(f"A CBO may not change {change.resource_type}")
            if change.resource_type == "Procedure":
                await self._require_own_referral(ctx, body)
            elif (body.get("owner") or {}) != ((change.previous or {}).get("owner") or {}):
                raise errors.forbidden("A CBO may not hand its Task to another owner")
        elif party.kind == REQUESTER and change.resource_type in REQUESTED_TYPES:
            await self._require_own_request(ctx, party, change.resource_type, body)

    async def on_delete(self, ctx: RequestContext, change: Change, /) -> None:
        party = party_of(ctx)
        if not party.narrowed:
            return
        self._refuse_nobody(party)
        if party.kind == CBO:
            raise errors.forbidden(f"A CBO may not delete {change.resource_type}")

    @staticmethod
    def _refuse_nobody(party: Party) -> None:
        if party.kind == NOBODY:
            raise errors.forbidden(
                "This token has no role with an Organization (requester or CBO): it may not write"
            )

    async def _require_own_request(
        self, ctx: RequestContext, party: Party, resource_type: str, body: dict[str, Any]
    ) -> None:
        ref = str((body.get("requester") or {}).get("reference") or "")
        if ref.endswith(f"Organization/{party.organization_id}"):
            return
        if "PractitionerRole/" in ref:
            role_id = ref.rstrip("/").rsplit("/", 1)[-1]
            r = resources.c
            async with self.db.read() as conn:
                found = (
                    await conn.execute(
                        select(r.pk).where(
                            r.resource_type == "PractitionerRole",
                            r.id == role_id,
                            points(
                                "PractitionerRole",
                                "organization",
                                "Organization",
                                pk=r.pk,
                                to=str(party.organization_id),
                            ),
                        )
                    )
                ).first()
            if found is not None:
                return
        raise errors.forbidden(
            f"{resource_type}.requester must be your Organization "
            f"(Organization/{party.organization_id}) or one of its PractitionerRoles"
        )

    async def _require_own_referral(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        """A CBO's Procedure is based on a ServiceRequest it was sent (through its Task)."""
        ids = [
            str(ref.get("reference", "")).rstrip("/").rsplit("/", 1)[-1]
            for ref in body.get("basedOn") or []
            if "ServiceRequest/" in str(ref.get("reference", ""))
        ]
        conds = narrower(ctx, "ServiceRequest")
        if ids and conds is not None:
            r = resources.c
            async with self.db.read() as conn:
                found = (
                    await conn.execute(
                        select(r.pk).where(
                            r.resource_type == "ServiceRequest", r.id.in_(ids), *conds
                        )
                    )
                ).first()
            if found is not None:
                return
        raise errors.forbidden(
            "A CBO's Procedure must be basedOn a ServiceRequest of one of its Tasks"
        )
