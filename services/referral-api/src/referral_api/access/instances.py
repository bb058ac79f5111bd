"""Instance interactions by a narrowed caller: a resource it may not see is "not found".

Answering 404 rather than 403 does not tell a CBO that another CBO's Task exists. History
across resources (type and system level) has no narrowed form here, so it is for unrestricted
callers (admin, services) only: 403.
"""

from __future__ import annotations

from closedloop import errors
from closedloop.context import RequestContext
from closedloop.db.engine import Database
from closedloop.fhir.storage.tables import resources
from closedloop.hooks import Interaction
from sqlalchemy import select

from referral_api.access.parties import party_of
from referral_api.access.visibility import narrower

ACROSS_RESOURCES = frozenset({"history-type", "history-system"})


class InstanceGuard:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def on_request(self, ctx: RequestContext, interaction: Interaction, /) -> None:
        if not party_of(ctx).narrowed:
            return
        if interaction.name in ACROSS_RESOURCES:
            raise errors.forbidden(
                f"{interaction.name} is available to unrestricted callers only; search "
                "or read each resource's own history instead"
            )
        if interaction.resource_type is None or interaction.resource_id is None:
            return
        conds = narrower(ctx, interaction.resource_type)
        if conds is None:
            return
        r = resources.c
        key = [r.resource_type == interaction.resource_type, r.id == interaction.resource_id]
        async with self.db.read() as conn:
            exists = (await conn.execute(select(r.pk).where(*key))).first()
            if exists is None:
                return  # nothing there: a create by PUT, or the engine's own 404
            visible = (await conn.execute(select(r.pk).where(*key, *conds))).first()
        if visible is None:
            raise errors.not_found(
                f"{interaction.resource_type}/{interaction.resource_id} is not known"
            )
