"""Routes ``/fhir/...`` to the interaction handlers by the shape of the path.

FHIR URLs have a handful of shapes (``Type``, ``Type/id``, ``Type/id/_history/vid``...). One
Starlette route takes them all and this table picks the handler from the path segments and the
method: cheaper than matching a regular expression per route and solving FastAPI dependencies
on every request, which showed up as a quarter of a read's cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from starlette.routing import Route

from closedloop import errors
from closedloop.fhir.rest import routes
from closedloop.fhir.rest.negotiation import as_xml, wants_xml
from closedloop.fhir.rest.openapi.document import openapi_json

Handler = Callable[..., Awaitable[Response]]

# (shape, method) -> handler; a shape names each segment: a literal, "T" (type), "id", "vid".
_TABLE: dict[tuple[tuple[str, ...], str], Handler] = {
    ((), "POST"): routes.batch_or_transaction,
    (("metadata",), "GET"): routes.metadata,
    (("openapi.json",), "GET"): openapi_json,
    (("_history",), "GET"): routes.history_system,
    (("T",), "GET"): routes.search_type,
    (("T",), "POST"): routes.create,
    (("T",), "PUT"): routes.conditional_update,
    (("T",), "DELETE"): routes.conditional_delete,
    (("T", "_search"), "POST"): routes.search_post,
    (("T", "_history"), "GET"): routes.history_type,
    (("T", "id"), "GET"): routes.read,
    (("T", "id"), "PUT"): routes.update,
    (("T", "id"), "PATCH"): routes.patch,
    (("T", "id"), "DELETE"): routes.delete,
    (("T", "id", "_history"), "GET"): routes.history_instance,
    (("T", "id", "_history", "vid"), "GET"): routes.vread,
}
_SHAPES = {shape for shape, _ in _TABLE}
# shape -> the Allow header of its 405 (HEAD wherever GET is)
_ALLOW = {
    shape: ", ".join(
        sorted(
            {m for s, m in _TABLE if s == shape} | ({"HEAD"} if (shape, "GET") in _TABLE else set())
        )
    )
    for shape in _SHAPES
}
_METHODS = sorted({method for _, method in _TABLE} | {"HEAD"})
_SYSTEM = {"metadata", "_history", "openapi.json"}


def _shape(segments: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """The path's shape and its variable parts (type, id, version) in order."""
    if not segments:
        return (), []
    if len(segments) == 1 and segments[0] in _SYSTEM:
        return (segments[0],), []
    names = ["T", "id", "_history", "vid"]
    if len(segments) == 2 and segments[1] in ("_search", "_history"):
        return ("T", segments[1]), [segments[0]]
    if len(segments) > 4 or (len(segments) >= 3 and segments[2] != "_history"):
        return ("unknown",), []
    shape = tuple(names[: len(segments)])
    params = [seg for seg, name in zip(segments, shape, strict=False) if name != "_history"]
    return shape, params


async def dispatch(request: Request) -> Response:
    rest: str = request.path_params.get("rest", "")
    segments = [s for s in rest.split("/") if s]
    if segments and segments[-1].startswith("$") and len(segments) in (2, 3):
        operation = routes.server_of(request).operations.get(segments[-1][1:])
        if operation is None:
            raise errors.not_supported(
                f"Operation {segments[-1]} is not supported", status=404, cl_code="CL-1406"
            )
        response = await operation(
            request, segments[0], segments[1] if len(segments) == 3 else None
        )
        return as_xml(response, routes.pretty(request)) if wants_xml(request) else response
    if segments == [".well-known", "smart-configuration"] and request.method in ("GET", "HEAD"):
        return await routes.smart_configuration(request)
    shape, params = _shape(segments)
    method = "GET" if request.method == "HEAD" else request.method
    handler = _TABLE.get((shape, method))
    if handler is None:
        if shape in _SHAPES:
            raise errors.FhirError(
                405,
                [
                    errors.Issue(
                        "error",
                        "not-supported",
                        f"{request.method} is not allowed on {request.url.path}",
                        (),
                        "CL-1405",
                    )
                ],
                {"Allow": _ALLOW[shape]},
            )
        raise errors.not_found(f"No FHIR interaction at {request.url.path}", cl_code="CL-1404")
    response = await handler(request, *params)
    if wants_xml(request):
        return as_xml(response, routes.pretty(request))
    return response


def fhir_routes(prefix: str = "/fhir") -> list[Any]:
    return [
        Route(prefix, dispatch, methods=_METHODS, include_in_schema=False),
        Route(prefix + "/{rest:path}", dispatch, methods=_METHODS, include_in_schema=False),
    ]


_VARIABLE = ("{id}", "_history", "{vid}")


def route_template(scope: dict[str, Any]) -> str | None:
    """The route template of a request to the FHIR engine, for metrics and span names: the
    path with ids replaced (``/fhir/Task/{id}/_history/{vid}``), only served types and
    operations named (anything else is ``{type}``, ``{operation}``), so a label never holds an
    id or a client's invention. None for what another route serves (the router's own match
    names it)."""
    path: str = scope["path"]
    if path != "/fhir" and not path.startswith("/fhir/"):
        return None
    route = scope.get("route")
    if route is not None and getattr(route, "endpoint", None) is not dispatch:
        return None  # a service's own route under /fhir (AuditEvent)
    server = getattr(getattr(scope.get("app"), "state", None), "fhir", None)
    segments = [s for s in path[len("/fhir/") :].split("/") if s]
    if not segments:
        return "/fhir"
    first = segments[0]
    if len(segments) == 1 and first in _SYSTEM:
        return f"/fhir/{first}"
    if segments == [".well-known", "smart-configuration"]:
        return "/fhir/.well-known/smart-configuration"
    if first.startswith("$"):
        return "/fhir/" + _operation(first, server)
    named = ["/fhir", first if server is not None and server.supports(first) else "{type}"]
    for i, segment in enumerate(segments[1:4]):
        if segment.startswith("$"):
            named.append(_operation(segment, server))
            break
        if i == 0 and segment in ("_search", "_history"):
            named.append(segment)
            break
        named.append(_VARIABLE[i] if i != 1 or segment == "_history" else "{segment}")
    if len(segments) > 4:
        named.append("{more}")
    return "/".join(named)


def _operation(segment: str, server: Any) -> str:
    known = server is not None and segment[1:] in server.operations
    return segment if known else "${operation}"
