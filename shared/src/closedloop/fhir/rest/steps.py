"""The steps every way into the FHIR API shares: the request context (with the caller a bearer
token names) and the ``request`` hook, the read and search interactions with their
``before_search`` and ``before_show`` hooks, and create.

``routes.py`` (the full path) and ``fast.py`` (the thin path for plain GET reads and searches,
and JSON creates) both call these, so a hook point cannot be fired on one path and forgotten
on the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Response

from closedloop.context import RequestContext
from closedloop.errors import FhirError
from closedloop.fhir.rest.disconnect import Receive, unless_disconnected
from closedloop.fhir.rest.negotiation import fhir_response
from closedloop.fhir.rest.responses import read_response
from closedloop.fhir.search import narrowing
from closedloop.fhir.search.engine import ShowFn
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.records import StoredResource, WriteResult
from closedloop.hooks import HookPoint, Interaction, PlannedWrite, Shown

REFUSALS = frozenset({401, 403, 429})  # authorization decisions, audited when refused


async def open_context(
    server: FhirServer,
    request_id: str,
    base_url: str,
    authorization: str | None,
    interaction: Interaction,
) -> RequestContext:
    """The context of one request: its caller from the bearer token (when the app checks
    tokens), then the ``request`` hook, which may refuse the interaction."""
    ctx = None
    try:
        caller = None
        if server.authenticator is not None:
            caller = await server.authenticator(authorization)
        ctx = RequestContext.for_caller(caller, request_id, base_url)
        narrowing.begin(server.narrower, ctx)
        if server.hooks.has(HookPoint.REQUEST):
            await server.hooks.fire(HookPoint.REQUEST, ctx, interaction)
    except FhirError as exc:
        if server.audit is not None and exc.status in REFUSALS:
            await server.audit.refused(ctx, interaction, exc.status, request_id)
        raise
    return ctx


async def show(server: FhirServer, ctx: RequestContext, shown: Sequence[Shown]) -> None:
    """Fire ``before_show`` for resources about to be sent (nothing to do without listeners)."""
    if shown and server.hooks.has(HookPoint.BEFORE_SHOW):
        await server.hooks.fire(HookPoint.BEFORE_SHOW, ctx, shown)


def shows(server: FhirServer, ctx: RequestContext) -> ShowFn | None:
    """The search engine's callback for the rows of a Bundle (None without listeners, so a
    search pays nothing for the hook when nobody listens)."""
    if not server.hooks.has(HookPoint.BEFORE_SHOW):
        return None

    async def fire(shown: Sequence[Shown]) -> None:
        await server.hooks.fire(HookPoint.BEFORE_SHOW, ctx, shown)

    return fire


def shown_of(stored: StoredResource, mode: str = "read") -> list[Shown]:
    if stored.content is None:
        return []
    return [Shown(stored.resource_type, stored.id, stored.content, mode)]


async def read(
    server: FhirServer,
    ctx: RequestContext,
    resource_type: str,
    resource_id: str,
    if_none_match: str | None,
    indent: bool,
) -> Response:
    """read (http://hl7.org/fhir/R4/http.html#read), with ``If-None-Match`` (304)."""
    stored = await server.repo.read(resource_type, resource_id)
    await show(server, ctx, shown_of(stored))
    if if_none_match and if_none_match.strip() == stored.etag:
        return fhir_response(None, 304, {"ETag": stored.etag})
    return read_response(stored, indent)


async def search(
    server: FhirServer,
    ctx: RequestContext,
    resource_type: str,
    pairs: list[tuple[str, str]],
    *,
    strict: bool,
    receive: Receive,
) -> str:
    """A type-level search's Bundle text; it stops if the client disconnects."""
    if server.hooks.has(HookPoint.BEFORE_SEARCH):
        await server.hooks.fire(HookPoint.BEFORE_SEARCH, ctx, resource_type, pairs)
    running = server.search.search(
        resource_type, pairs, base_url=ctx.base_url, strict=strict, show=shows(server, ctx)
    )
    return await unless_disconnected(receive, running)


async def create(
    server: FhirServer,
    ctx: RequestContext,
    resource_type: str,
    body: dict[str, Any],
    if_none_exist: str | None,
) -> WriteResult:
    """create (http://hl7.org/fhir/R4/http.html#create), conditional with ``If-None-Exist``:
    the write is planned (``before_transaction``) before its unit of work opens."""
    planned = [PlannedWrite("create", resource_type, None, body)]
    async with server.repo.unit_of_work(ctx, planned) as uow:
        return await server.repo.create(uow, resource_type, body, if_none_exist=if_none_exist)
