"""A thin path for the three hottest interactions: read by id, a type-level search (GET) and
a create (POST).

``GET /fhir/Type/id`` and ``GET /fhir/Type?query`` go from the ASGI scope straight to the
handler's steps, which are ``steps.py``'s very functions (the caller from the bearer token,
the ``request``, ``before_search`` and ``before_show`` hooks, storage, search, responses), as
``routes.read``, ``routes.search_type`` and ``routes.create`` call them, without building a
Starlette ``Request``, running the router, the exception-handler wrappers and the exit-stack
middleware. Those cost as much as the read itself, and a fifth of a create. ``POST /fhir/Type``
takes this path only with no query string and a JSON body. Every other request (and a read or
search with ``_format``/``_pretty``) takes the full path through ``dispatch``, and so does
one that asks for XML (Accept), so the JSON path never pays for it.

The middleware sits inside ``RequestLogMiddleware`` (request id, access log) and outside the
exception middleware, so it hands an error to the app's exception handler for its class itself
(a ``FhirError`` becomes its OperationOutcome); anything else propagates to the server-error
handler like an error from a route.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from closedloop.context import RequestContext
from closedloop.fhir.rest import steps
from closedloop.fhir.rest.disconnect import Receive
from closedloop.fhir.rest.negotiation import (
    fhir_response,
    is_json_type,
    media_type_of,
    parse_json,
    receive_body,
    xml_asked,
)
from closedloop.fhir.rest.prefer import parse_prefer
from closedloop.fhir.rest.responses import write_response
from closedloop.fhir.server import FhirServer
from closedloop.hooks import Interaction

_PREFIX = "/fhir/"
_SYSTEM = {"metadata", "_history", "openapi.json"}
_SUB = {"_search", "_history"}
_RESULT_ONLY = {"_format", "_pretty"}
_WANTED = {
    b"host",
    b"accept",
    b"if-none-match",
    b"prefer",
    b"authorization",
    b"content-type",
    b"content-length",
    b"if-none-exist",
}
_BASE_CACHE_LIMIT = 64


class FhirFastPath:
    """Pure ASGI middleware: serves plain reads and GET searches, passes the rest on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._routes_checked = False
        self._enabled = False
        self._bases: dict[tuple[Any, ...], str] = {}

    def _check_routes(self, app: Any) -> bool:
        """Only when nothing but the FHIR dispatch routes live under /fhir (a service router
        there would otherwise be shadowed)."""
        from closedloop.fhir.rest.dispatch import dispatch

        server = getattr(getattr(app, "state", None), "fhir", None)
        for route in getattr(getattr(app, "router", None), "routes", ()):
            path = getattr(route, "path", "")
            if path.startswith("/fhir") and getattr(route, "endpoint", None) is not dispatch:
                first = path[len(_PREFIX) :].split("/", 1)[0]
                if server is not None and first and "{" not in first and not server.supports(first):
                    continue  # a type the engine does not serve (AuditEvent): never shadowed
                return False
        return True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD", "POST")
            or not scope["path"].startswith(_PREFIX)
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        app = scope.get("app")
        server: FhirServer | None = getattr(getattr(app, "state", None), "fhir", None)
        if server is None:
            await self.app(scope, receive, send)
            return
        if not self._routes_checked:
            self._enabled = self._check_routes(app)
            self._routes_checked = True
        segments = [s for s in scope["path"][len(_PREFIX) :].split("/") if s]
        query: bytes = scope.get("query_string", b"")
        if not self._enabled or (
            segments and segments[0] not in _SYSTEM and not server.supports(segments[0])
        ):  # not a served type: the full path routes it (AuditEvent) or answers 404
            response = None
        elif scope["method"] == "POST":
            if len(segments) == 1 and not query and segments[0] not in _SYSTEM:
                response = await self._guarded(
                    scope, self._create(scope, receive, server, segments[0])
                )
            else:
                response = None
        elif len(segments) == 2 and not query:
            if segments[1] in _SUB or segments[1].startswith("$") or segments[0].startswith("."):
                response = None
            else:
                response = await self._guarded(scope, self._read(scope, server, segments))
        elif len(segments) == 1 and segments[0] not in _SYSTEM:
            response = await self._guarded(scope, self._search(scope, receive, server, segments))
        else:
            response = None
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    async def _guarded(self, scope: dict[str, Any], handling: Awaitable[Any]) -> Any:
        try:
            return await handling
        except Exception as exc:
            # What the exception middleware would do: the app's handler for the error's class
            # (FhirError -> OperationOutcome); the rest goes on to the server-error handler.
            for cls in type(exc).__mro__:
                if cls is Exception:
                    break
                on_error = scope["app"].exception_handlers.get(cls)
                if on_error is not None:
                    result = on_error(Request(scope), exc)
                    return await result if inspect.isawaitable(result) else result
            raise

    def _headers(self, scope: dict[str, Any]) -> dict[bytes, str]:
        found: dict[bytes, str] = {}
        for key, value in scope["headers"]:
            if key in _WANTED and key not in found:
                found[key] = value.decode("latin-1")
        return found

    def _base_url(self, scope: dict[str, Any], server: FhirServer, host: str | None) -> str:
        """``server.base_url`` of the request's base, which is cached by what it depends on
        (building a Starlette ``Request`` for it costs more than the rest of a read)."""
        key = (scope.get("scheme"), host, scope.get("server"), scope.get("app_root_path"))
        base = self._bases.get(key)
        if base is None:
            base = server.base_url(str(Request(scope).base_url))
            if len(self._bases) >= _BASE_CACHE_LIMIT:
                self._bases.clear()
            self._bases[key] = base
        return base

    async def _context(
        self,
        scope: dict[str, Any],
        server: FhirServer,
        headers: dict[bytes, str],
        interaction: Interaction,
    ) -> RequestContext:
        return await steps.open_context(
            server,
            scope.get("state", {}).get("request_id", "-"),
            self._base_url(scope, server, headers.get(b"host")),
            headers.get(b"authorization"),
            interaction,
        )

    async def _read(self, scope: dict[str, Any], server: FhirServer, segments: list[str]) -> Any:
        """``routes.read`` without ``_format``/``_pretty`` (a read with a query string takes
        the full path) or XML; returns None (before any check or hook) for XML."""
        headers = self._headers(scope)
        if xml_asked(None, headers.get(b"accept", "")):
            return None  # XML is rendered on the full path
        resource_type, resource_id = segments
        server.require_type(resource_type)
        interaction = Interaction("read", resource_type, resource_id)
        ctx = await self._context(scope, server, headers, interaction)
        return await steps.read(
            server, ctx, resource_type, resource_id, headers.get(b"if-none-match"), False
        )

    async def _create(
        self, scope: dict[str, Any], receive: Receive, server: FhirServer, resource_type: str
    ) -> Any:
        """``routes.create`` for a JSON body and a JSON answer; None (before any check or
        hook) for XML either way, or a body type the full path refuses (415)."""
        headers = self._headers(scope)
        if xml_asked(None, headers.get(b"accept", "")) or not is_json_type(
            media_type_of(headers.get(b"content-type", ""))
        ):
            return None
        server.require_type(resource_type)
        interaction = Interaction("create", resource_type)
        ctx = await self._context(scope, server, headers, interaction)
        body = parse_json(
            await receive_body(
                receive, headers.get(b"content-length"), server.config.max_body_bytes
            )
        )
        result = await steps.create(
            server, ctx, resource_type, body, headers.get(b"if-none-exist") or None
        )
        return write_response(result, ctx.base_url, parse_prefer(headers.get(b"prefer", "")), False)

    async def _search(
        self, scope: dict[str, Any], receive: Receive, server: FhirServer, segments: list[str]
    ) -> Any:
        """``routes.search_type``; a query with ``_format`` or ``_pretty``, or asking for
        XML, takes the full path (returns None before any check or hook has run). The search
        stops if the client disconnects."""
        query: bytes = scope.get("query_string", b"")
        pairs = parse_qsl(query.decode(), keep_blank_values=True) if query else []
        if any(k in _RESULT_ONLY for k, _ in pairs):
            return None
        headers = self._headers(scope)
        if xml_asked(None, headers.get(b"accept", "")):
            return None
        resource_type = segments[0]
        server.require_type(resource_type)
        interaction = Interaction("search-type", resource_type)
        ctx = await self._context(scope, server, headers, interaction)
        strict = parse_prefer(headers.get(b"prefer", "")).strict
        text = await steps.search(server, ctx, resource_type, pairs, strict=strict, receive=receive)
        return fhir_response(text)
