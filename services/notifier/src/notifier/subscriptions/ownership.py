"""A Subscription belongs to the organization of the token that created it.

Searches, reads and changes of Subscriptions are narrowed to the caller's own organization
(an admin or one of our services sees them all; without a token, with authorization off,
everything): the server's ``narrower`` and the shared ``InstanceGuard`` make another
organization's Subscription "not known" (404). What a subscription is *told* is decided at
matching time (``matching``) by what its owner may read.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from closedloop.auth.organizations import Party, unrestricted
from closedloop.context import SYSTEM, RequestContext
from closedloop.fhir.search.narrowing import InstanceGuard
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.tables import resources
from closedloop.hooks import HookPoint
from sqlalchemy import false, select

from notifier.subscriptions.tables import subscription_state


def party_of(ctx: RequestContext) -> Party:
    return Party(ctx.subject, ctx.role, ctx.organization)


def sees_all(ctx: RequestContext) -> bool:
    return ctx is SYSTEM or unrestricted(party_of(ctx))


def owned_by(ctx: RequestContext) -> Any | None:
    """The condition on ``subscription_state`` for the caller's own subscriptions (None: all)."""
    if sees_all(ctx):
        return None
    if not ctx.organization:
        return false()
    return subscription_state.c.owner_organization == ctx.organization


def narrower(ctx: RequestContext, resource_type: str) -> list[Any] | None:
    if resource_type != "Subscription" or sees_all(ctx):
        return None
    return list(_owned_subscriptions(ctx.organization or None))


@lru_cache(maxsize=4096)
def _owned_subscriptions(organization: str | None) -> tuple[Any, ...]:
    """Built once per organization: the same expression objects each time let the search
    engine reuse the compiled statement (``closedloop.fhir.search.compiled``)."""
    if organization is None:
        return (false(),)
    state = subscription_state.c
    own = state.owner_organization == organization
    return (resources.c.id.in_(select(state.subscription_id).where(own)),)


def install(server: FhirServer) -> None:
    server.narrower = narrower
    guard = InstanceGuard(server.db, narrower, list(server.config.resource_types))
    server.hooks.register(HookPoint.REQUEST, guard.on_request)
