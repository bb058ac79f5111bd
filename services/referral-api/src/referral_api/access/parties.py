"""The caller's party: unrestricted, a CBO or a requester of one Organization, or nobody."""

from __future__ import annotations

from dataclasses import dataclass

from closedloop.auth.organizations import organization_id
from closedloop.auth.roles import CBO_ROLES, REQUESTER_ROLES, UNRESTRICTED_ROLES
from closedloop.context import SYSTEM, RequestContext

UNRESTRICTED = "unrestricted"
CBO = "cbo"
REQUESTER = "requester"
NOBODY = "nobody"


@dataclass(frozen=True)
class Party:
    kind: str
    organization_id: str | None = None  # the id of the caller's Organization

    @property
    def narrowed(self) -> bool:
        return self.kind != UNRESTRICTED


def party_of(ctx: RequestContext) -> Party:
    """Anonymous callers exist only with authorization off: nothing is narrowed then. With a
    token, the role decides; a CBO or requester role without an Organization sees nothing,
    and so does a token without a role."""
    if ctx is SYSTEM or ctx.anonymous or ctx.role in UNRESTRICTED_ROLES:
        return Party(UNRESTRICTED)
    org = organization_id(ctx.organization)
    if org is None:
        return Party(NOBODY)
    if ctx.role in CBO_ROLES:
        return Party(CBO, org)
    if ctx.role in REQUESTER_ROLES:
        return Party(REQUESTER, org)
    return Party(NOBODY)
