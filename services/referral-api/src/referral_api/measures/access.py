"""Whose referrals a caller's figures cover, by the token's role: a CBO (``cbo``,
``cbo-staff``) its own, as Task.owner; a requester (``requester``, ``clinician``,
``case-manager``) its organization's, as Task.requester; ``admin`` and ``service`` all. With
authorization off every request is anonymous and sees all, as everywhere else. The role sets
are ``closedloop.auth.roles``', as in ``referral_api.access``."""

from __future__ import annotations

from closedloop import errors
from closedloop.auth.roles import CBO_ROLES, REQUESTER_ROLES, UNRESTRICTED_ROLES
from closedloop.context import RequestContext

from referral_api.measures.compute import Scope

OWNER_ROLES = CBO_ROLES
ALL_ROLES = UNRESTRICTED_ROLES


def organization_ref(value: str) -> str:
    """``Organization/id`` from a token's organization claim (``id``, ``Type/id`` or a URL)."""
    parts = value.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else f"Organization/{value}"


def scope_of(ctx: RequestContext) -> Scope:
    if ctx.anonymous or ctx.role in ALL_ROLES:
        return Scope()
    if ctx.role in OWNER_ROLES | REQUESTER_ROLES:
        if not ctx.organization:
            raise errors.forbidden(
                f"A {ctx.role} token without an organization has no figures to see"
            )
        org = organization_ref(ctx.organization)
        return Scope(owner=org) if ctx.role in OWNER_ROLES else Scope(requester=org)
    raise errors.forbidden("Loop metrics need a token with a role (cbo, requester, admin...)")


def narrowed(scope: Scope, owner: str | None, requester: str | None) -> Scope:
    """The caller's scope narrowed to one CBO and/or requesting organization it asked for (a
    CBO's figures by month, say); asking for another organization's than its own is 403."""
    owner = organization_ref(owner) if owner else None
    requester = organization_ref(requester) if requester else None
    for own, asked in ((scope.owner, owner), (scope.requester, requester)):
        if own is not None and asked is not None and asked != own:
            raise errors.forbidden("A token sees its own organization's figures only")
    return Scope(owner=scope.owner or owner, requester=scope.requester or requester)
