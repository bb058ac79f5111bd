"""Resource types a service publishes for clients to read but never to change (the notifier's
subscription topics): every write from a client is refused with 405, whatever path it takes.

FHIR answers an interaction a server does not offer on a type with 405 Method Not Allowed
(http.html: "if the server refuses to delete resources of that type on principle"), and the
CapabilityStatement lists only the read interactions for these types (``capability``), so the
status matches what the server says of itself. The REST interactions are refused before their
body is read (the ``request`` hook); batch and transaction entries, conditional and PATCH writes
reach storage, whose ``before_*`` hooks refuse them there. The service itself still writes these
types, with the ``SYSTEM`` context.
"""

from __future__ import annotations

from collections.abc import Iterable

from closedloop import errors
from closedloop.context import SYSTEM, RequestContext
from closedloop.hooks import Change, HookPoint, Hooks, Interaction

READ_INTERACTIONS = ("read", "vread", "history-instance", "history-type", "search-type")
_WRITES = frozenset({"create", "update", "patch", "delete"})


def refused(resource_type: str, interaction: str) -> errors.FhirError:
    return errors.FhirError(
        405,
        [
            errors.Issue(
                "error",
                "not-supported",
                f"{resource_type} is read-only on this server: {interaction} is not allowed "
                "(read and search are)",
                (),
                "CL-1408",
            )
        ],
        {"Allow": "GET, HEAD"},
    )


def install(hooks: Hooks, types: Iterable[str]) -> None:
    read_only = frozenset(types)
    if not read_only:
        return

    async def on_request(_ctx: RequestContext, interaction: Interaction) -> None:
        resource_type, name = interaction.resource_type, interaction.name
        if resource_type in read_only and name in _WRITES:
            raise refused(resource_type, name)

    async def on_write(ctx: RequestContext, change: Change) -> None:
        if change.resource_type in read_only and ctx is not SYSTEM:
            raise refused(change.resource_type, change.interaction)

    hooks.register(HookPoint.REQUEST, on_request)
    for point in (HookPoint.BEFORE_CREATE, HookPoint.BEFORE_UPDATE, HookPoint.BEFORE_DELETE):
        hooks.register(point, on_write)
