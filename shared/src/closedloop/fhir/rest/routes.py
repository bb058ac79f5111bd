"""The FHIR REST interactions (http://hl7.org/fhir/R4/http.html): one handler per interaction.

``dispatch.py`` picks the handler from the URL's shape. Handlers stay thin: parse the HTTP
request, call the repository or the search engine with the request context, render. Policy
lives in hooks, storage rules in the repository.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from fastapi import Request, Response

from closedloop import errors
from closedloop.context import RequestContext
from closedloop.fhir.instant import parse_instant
from closedloop.fhir.rest import steps
from closedloop.fhir.rest.bundles import process_bundle
from closedloop.fhir.rest.capability import capability_statement
from closedloop.fhir.rest.guards import check_escapes
from closedloop.fhir.rest.history import history_bundle
from closedloop.fhir.rest.negotiation import (
    check_output_format,
    fhir_response,
    media_type,
    pretty,
    read_body,
    read_patch_body,
    read_resource_body,
)
from closedloop.fhir.rest.prefer import parse_etag, preferences
from closedloop.fhir.rest.responses import read_response, write_response
from closedloop.fhir.search.limits import version_number, whole_number
from closedloop.fhir.server import FhirServer
from closedloop.hooks import Interaction, PlannedWrite

_RESULT_ONLY = {"_format", "_pretty"}


def server_of(request: Request) -> FhirServer:
    return request.app.state.fhir  # type: ignore[no-any-return]


def base_url(request: Request) -> str:
    return server_of(request).base_url(str(request.base_url))


async def context(
    request: Request,
    interaction: str,
    resource_type: str | None,
    resource_id: str | None = None,
    *,
    operation: str | None = None,
    like: str | None = None,
) -> RequestContext:
    """The request's context (its caller from the bearer token) after the ``request`` hook;
    an operation names itself and the interaction it amounts to (``like``)."""
    check_output_format(request)
    return await steps.open_context(
        server_of(request),
        getattr(request.state, "request_id", "-"),
        base_url(request),
        request.headers.get("authorization"),
        Interaction(interaction, resource_type, resource_id, operation, like),
    )


def check_type(request: Request, resource_type: str) -> FhirServer:
    server = server_of(request)
    server.require_type(resource_type)
    return server


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    return [
        (k, v)
        for k, v in parse_qsl(request.url.query, keep_blank_values=True)
        if k not in _RESULT_ONLY
    ]


# -- system level -----------------------------------------------------------------------------


async def metadata(request: Request) -> Response:
    await context(request, "capabilities", None)
    body = orjson.dumps(capability_statement(server_of(request), base_url(request)))
    return fhir_response(body, indent=pretty(request))


async def smart_configuration(request: Request) -> Response:
    """SMART discovery (``/fhir/.well-known/smart-configuration``): public, and only where
    tokens are checked (elsewhere there is no authorization server to point to)."""
    configuration = server_of(request).config.smart_configuration
    if configuration is None:
        raise errors.not_found("This server does not check access tokens", cl_code="CL-1404")
    return Response(
        orjson.dumps(configuration),
        media_type="application/json",
        headers={"Cache-Control": "max-age=3600"},
    )


async def batch_or_transaction(request: Request) -> Response:
    ctx = await context(request, "batch", None)
    server = server_of(request)
    bundle = await read_resource_body(request, server.config.max_body_bytes)
    result = await process_bundle(server, ctx, bundle, preferences(request))
    return fhir_response(orjson.dumps(result), indent=pretty(request))


async def history_system(request: Request) -> Response:
    ctx = await context(request, "history-system", None)
    return await _history(request, ctx, None, None)


# -- type level -------------------------------------------------------------------------------


async def history_type(request: Request, resource_type: str) -> Response:
    check_type(request, resource_type)
    ctx = await context(request, "history-type", resource_type)
    return await _history(request, ctx, resource_type, None)


async def search_type(request: Request, resource_type: str) -> Response:
    return await _search(request, resource_type, _query_pairs(request))


async def search_post(request: Request, resource_type: str) -> Response:
    check_type(request, resource_type)
    if media_type(request) != "application/x-www-form-urlencoded":
        raise errors.unsupported_media_type(
            "POST _search takes an application/x-www-form-urlencoded body"
        )
    body = await read_body(request, server_of(request).config.max_body_bytes)
    check_escapes(body, "form body")  # the query string's rules (guards.RequestGuard)
    form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return await _search(request, resource_type, _query_pairs(request) + form)


async def _search(request: Request, resource_type: str, pairs: list[tuple[str, str]]) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(request, "search-type", resource_type)
    text = await steps.search(
        server,
        ctx,
        resource_type,
        pairs,
        strict=preferences(request).strict,
        receive=request.receive,
    )
    return fhir_response(text, indent=pretty(request))


async def create(request: Request, resource_type: str) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(request, "create", resource_type)
    body = await read_resource_body(request, server.config.max_body_bytes)
    condition = request.headers.get("if-none-exist") or None
    result = await steps.create(server, ctx, resource_type, body, condition)
    return write_response(result, ctx.base_url, preferences(request), pretty(request))


async def conditional_update(request: Request, resource_type: str) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(request, "update", resource_type)
    criteria = "&".join(
        f"{k}={v}"
        for k, v in parse_qsl(request.url.query, keep_blank_values=True)
        if k not in _RESULT_ONLY
    )
    if not criteria:
        raise errors.invalid("PUT needs an id in the URL or search criteria", cl_code="CL-2402")
    body = await read_resource_body(request, server.config.max_body_bytes)
    if_match = parse_etag(request.headers.get("if-match"))
    planned = [PlannedWrite("update", resource_type, None, body)]
    async with server.repo.unit_of_work(ctx, planned) as uow:
        result = await server.repo.conditional_update(
            uow, resource_type, criteria, body, if_match=if_match
        )
    return write_response(result, ctx.base_url, preferences(request), pretty(request))


async def conditional_delete(request: Request, resource_type: str) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(request, "delete", resource_type)
    if not request.url.query:
        raise errors.invalid("DELETE needs an id in the URL or search criteria", cl_code="CL-2403")
    async with server.repo.unit_of_work(ctx) as uow:
        await server.repo.conditional_delete(uow, resource_type, request.url.query)
    return Response(status_code=204)


# -- instance level ---------------------------------------------------------------------------


async def read(request: Request, resource_type: str, resource_id: str) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(request, "read", resource_type, resource_id)
    return await steps.read(
        server,
        ctx,
        resource_type,
        resource_id,
        request.headers.get("if-none-match"),
        pretty(request),
    )


async def history_instance(request: Request, resource_type: str, resource_id: str) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(request, "history-instance", resource_type, resource_id)
    await _exists(server, resource_type, resource_id)
    return await _history(request, ctx, resource_type, resource_id)


async def vread(request: Request, resource_type: str, resource_id: str, version: str) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(request, "vread", resource_type, resource_id)
    stored = await server.repo.vread(resource_type, resource_id, version_number(version))
    await steps.show(server, ctx, steps.shown_of(stored))
    return read_response(stored, pretty(request))


async def update(request: Request, resource_type: str, resource_id: str) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(request, "update", resource_type, resource_id)
    body = await read_resource_body(request, server.config.max_body_bytes)
    if_match = parse_etag(request.headers.get("if-match"))
    planned = [PlannedWrite("update", resource_type, resource_id, body)]
    async with server.repo.unit_of_work(ctx, planned) as uow:
        result = await server.repo.update(uow, resource_type, resource_id, body, if_match=if_match)
    return write_response(result, ctx.base_url, preferences(request), pretty(request))


async def patch(request: Request, resource_type: str, resource_id: str) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(request, "patch", resource_type, resource_id)
    ops = await read_patch_body(request, server.config.max_body_bytes)
    if_match = parse_etag(request.headers.get("if-match"))
    async with server.repo.unit_of_work(ctx) as uow:
        result = await server.repo.patch(uow, resource_type, resource_id, ops, if_match=if_match)
    return write_response(result, ctx.base_url, preferences(request), pretty(request))


async def delete(request: Request, resource_type: str, resource_id: str) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(request, "delete", resource_type, resource_id)
    async with server.repo.unit_of_work(ctx) as uow:
        result = await server.repo.delete(uow, resource_type, resource_id)
    headers = {"ETag": result.stored.etag} if result else {}
    return Response(status_code=204, headers=headers)


# -- helpers ----------------------------------------------------------------------------------


async def _exists(server: FhirServer, resource_type: str, resource_id: str) -> None:
    try:
        await server.repo.read(resource_type, resource_id)
    except errors.FhirError as exc:
        if exc.status != 410:  # a deleted resource still has a history
            raise


async def _history(
    request: Request, ctx: RequestContext, resource_type: str | None, resource_id: str | None
) -> Response:
    server = server_of(request)
    params = request.query_params
    since = None
    if "_since" in params:
        since = parse_instant(params["_since"])
        if since is None:
            raise errors.invalid(
                f"_since {params['_since']!r} is not an instant", cl_code="CL-1420"
            )
    count = 100
    if "_count" in params:
        count = min(
            whole_number("_count", params["_count"], cl_code="CL-1421"), server.config.max_count
        )
    before: int | None = None
    if "_before_seq" in params:
        before = whole_number("_before_seq", params["_before_seq"], cl_code="CL-1422")
    rows = await server.repo.history(resource_type, resource_id, since, count + 1, before)
    await steps.show(
        server,
        ctx,
        [shown for _, stored in rows[:count] for shown in steps.shown_of(stored, "history")],
    )
    body = history_bundle(rows, count, request, base_url(request))
    return fhir_response(body, indent=pretty(request))
