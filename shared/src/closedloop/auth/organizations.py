"""May a party read a referral resource? The organization rule, for services that hold no
referral data of their own (the notifier deciding what a Subscription's owner may be told).

It mirrors referral-api's policy (``referral_api.access``) on the one resource in hand:
- unrestricted roles (admin, service) and callers without a token (authorization off) read all;
- a CBO reads a Task its Organization owns, and a ServiceRequest naming it as performer;
- a requester reads a Task or ServiceRequest naming its Organization as requester (a requester
  given as a PractitionerRole cannot be resolved from the resource alone: not readable here);
- anything else, and a role without an Organization, reads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from closedloop.auth.roles import CBO_ROLES, REQUESTER_ROLES, UNRESTRICTED_ROLES


@dataclass(frozen=True)
class Party:
    """Who a decision is for: ``subject`` None means a caller without a token."""

    subject: str | None
    role: str | None = None
    organization: str | None = None  # "Organization/123"


def _names(reference: Any, organization_id: str) -> bool:
    ref = str((reference or {}).get("reference") or "") if isinstance(reference, dict) else ""
    return ref == f"Organization/{organization_id}" or ref.endswith(
        f"/Organization/{organization_id}"
    )


def organization_id(reference: str | None) -> str | None:
    """``Organization/123`` (or a URL ending so) -> ``123``."""
    parts = (reference or "").rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Organization" and parts[-1]:
        return parts[-1]
    return None


def unrestricted(party: Party) -> bool:
    return party.subject is None or party.role in UNRESTRICTED_ROLES


def may_read(party: Party, resource_type: str, resource: dict[str, Any] | None) -> bool:
    if unrestricted(party):
        return True
    org = organization_id(party.organization)
    if org is None or not isinstance(resource, dict):
        return False
    if party.role in CBO_ROLES:
        if resource_type == "Task":
            return _names(resource.get("owner"), org)
        if resource_type == "ServiceRequest":
            return any(_names(p, org) for p in resource.get("performer") or [])
        return False
    if party.role in REQUESTER_ROLES and resource_type in ("Task", "ServiceRequest"):
        return _names(resource.get("requester"), org)
    return False
