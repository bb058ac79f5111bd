"""Who sees and changes what in referral-api: the SDOH Clinical Care roles by Organization.

- ``visibility``: what a caller may see, as SQL the search engine ANDs into every statement
  (``closedloop.fhir.search.narrowing``), so totals and paging stay right;
- the shared ``InstanceGuard`` (``closedloop.fhir.search.narrowing``) makes that hold for
  single resources: one the caller may not see is 404 on every instance interaction, and
  history across resources is for unrestricted callers only;
- ``writes``: what a CBO or a requester may create and change.
"""

from __future__ import annotations

from closedloop.fhir.search.narrowing import InstanceGuard
from closedloop.fhir.server import FhirServer
from closedloop.hooks import HookPoint

from referral_api.access.visibility import narrower
from referral_api.access.writes import WriteLimits


def install(server: FhirServer) -> None:
    server.narrower = narrower
    guard = InstanceGuard(server.db, narrower, list(server.config.resource_types))
    server.hooks.register(HookPoint.REQUEST, guard.on_request)
    limits = WriteLimits(server.db)
    server.hooks.register(HookPoint.BEFORE_CREATE, limits.on_create)
    server.hooks.register(HookPoint.BEFORE_UPDATE, limits.on_update)
    server.hooks.register(HookPoint.BEFORE_DELETE, limits.on_delete)


__all__ = ["install", "parties", "visibility", "writes"]
