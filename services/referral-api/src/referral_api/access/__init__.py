"""Who sees and changes what in referral-api: the SDOH Clinical Care roles by Organization.

- ``visibility``: what a caller may see, as SQL the search engine ANDs into every statement
  (``closedloop.fhir.search.narrowing``), so totals and paging stay right;
- ``instances``: a resource the caller may not see reads as 404 on every instance interaction
  (read, vread, its history, update, patch, delete, operations), and history across resources
  is for unrestricted callers only;
- ``writes``: what a CBO or a requester may create and change.
"""

from __future__ import annotations

from closedloop.fhir.server import FhirServer
from closedloop.hooks import HookPoint

from referral_api.access.instances import InstanceGuard
from referral_api.access.visibility import narrower
from referral_api.access.writes import WriteLimits


def install(server: FhirServer) -> None:
    server.narrower = narrower
    server.hooks.register(HookPoint.REQUEST, InstanceGuard(server.db).on_request)
    limits = WriteLimits(server.db)
    server.hooks.register(HookPoint.BEFORE_CREATE, limits.on_create)
    server.hooks.register(HookPoint.BEFORE_UPDATE, limits.on_update)
    server.hooks.register(HookPoint.BEFORE_DELETE, limits.on_delete)


__all__ = ["install", "instances", "parties", "visibility", "writes"]
