"""Who sees and changes what in referral-api: the SDOH Clinical Care roles by Organization.

- ``visibility``: what a caller may see, as SQL the search engine ANDs into every statement
  (``closedloop.fhir.search.narrowing``), so totals and paging stay right;
- the shared ``InstanceGuard`` (``closedloop.fhir.search.narrowing``) makes that hold for
  single resources: one the caller may not see is 404 on every instance interaction, and
  history across resources is for unrestricted callers only;
- ``writes``: what a CBO or a requester may create and change;
- ``consent``: a referral reaches a CBO only with the patient's Consent;
- ``requesters``: which Organization requested each referral, kept at write time so the
  requester's narrowing is one equality.
"""

from __future__ import annotations

from closedloop.fhir.search.narrowing import InstanceGuard
from closedloop.fhir.server import FhirServer
from closedloop.hooks import HookPoint

from referral_api.access.consent import require_consent as require_consent_hook
from referral_api.access.requesters import keep_requesting_organizations
from referral_api.access.visibility import narrower
from referral_api.access.writes import WriteLimits


def install(server: FhirServer, *, require_consent: bool = True) -> None:
    server.narrower = narrower
    guard = InstanceGuard(server.db, narrower, list(server.config.resource_types))
    server.hooks.register(HookPoint.REQUEST, guard.on_request)
    limits = WriteLimits(server.db)
    server.hooks.register(HookPoint.BEFORE_CREATE, limits.on_create)
    server.hooks.register(HookPoint.BEFORE_UPDATE, limits.on_update)
    server.hooks.register(HookPoint.BEFORE_DELETE, limits.on_delete)
    server.hooks.register(HookPoint.BEFORE_COMMIT, keep_requesting_organizations)
    if require_consent:
        server.hooks.register(HookPoint.BEFORE_COMMIT, require_consent_hook)


__all__ = ["consent", "install", "parties", "requesters", "visibility", "writes"]
