"""ASGI layers that keep hostile or broken requests from reaching the FHIR engine.

``ContainErrors`` sits outside everything (Starlette's own error middleware included) so no
exception ever reaches the HTTP server; ``RequestGuard`` refuses URLs the engine must never see
(too long, broken percent-encoding, NUL characters); ``BodyDeadline`` cuts off a client that
trickles its body. Each answers with an OperationOutcome.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from closedloop import errors
from closedloop.fhir.rest.negotiation import FHIR_JSON

log = logging.getLogger("closedloop.errors")

MAX_URL_BYTES = 8 * 1024
"""Longest path + query accepted (414 beyond): far above any real FHIR URL, and what common
proxies accept."""

_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


async def send_outcome(send: Any, exc: errors.FhirError) -> None:
    """Answer ``exc`` as an OperationOutcome straight on the ASGI ``send``."""
    body = orjson.dumps(exc.outcome)
    headers = [
        (b"content-type", FHIR_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()),
    ]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ContainErrors:
    """The outermost layer: an exception never leaves the app.

    Starlette's ``ServerErrorMiddleware`` answers an unexpected error with the app's 500 handler
    and then re-raises it for the server to log; uvicorn answers a raised error by closing the
    connection, so the client's next request on that keep-alive connection is reset. Here the
    error stops: a finished response stands (the handler has logged the error), an unstarted
    one becomes a 500 OperationOutcome. Only a response cut off midway still closes the
    connection: the client cannot tell where it ended otherwise.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = finished = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if finished:
                return
            if started:
                raise
            request_id = scope.get("state", {}).get("request_id")
            log.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
            await send_outcome(send, errors.internal(request_id))


def check_escapes(raw: bytes, part: str) -> None:
    """400 for a '%' that starts no escape, and for text that percent-decodes to a NUL
    character or to bytes that are not UTF-8."""
    if _BAD_ESCAPE.search(raw):
        raise errors.invalid(
            f"The {part} has a '%' that does not start a percent-escape (%XX)", cl_code="CL-1011"
        )
    decoded = unquote_to_bytes(raw)
    if b"\x00" in decoded:
        raise errors.invalid(f"The {part} holds a NUL character (%00)", cl_code="CL-1010")
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.invalid(
            f"The {part} is not UTF-8 once percent-decoded", cl_code="CL-1011"
        ) from None


def check_url(scope: dict[str, Any]) -> None:
    """414 for an over-long URL; 400 for broken percent-encoding, text that is not UTF-8 or a
    NUL character in the path, the query or an If-None-Exist header (a search's criteria).
    PostgreSQL refuses NUL in text, so it is refused here for both databases."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    query: bytes = scope.get("query_string", b"")
    if len(raw_path) + len(query) > MAX_URL_BYTES:
        raise errors.uri_too_long(
            f"The URL is longer than {MAX_URL_BYTES} bytes: "
            "send long searches as POST [type]/_search"
        )
    if b"%" in raw_path or not raw_path.isascii() or "\x00" in scope["path"]:
        check_escapes(raw_path, "URL path")
    if query and (b"%" in query or not query.isascii()):
        check_escapes(query, "query string")
    for key, value in scope.get("headers", ()):
        if key == b"if-none-exist" and b"%" in value:
            check_escapes(value, "If-None-Exist header")


class RequestGuard:
    """Refuses a request whose URL the engine must not see (``check_url``) before any handler
    runs, the fast path included."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            try:
                check_url(scope)
            except errors.FhirError as exc:
                await send_outcome(send, exc)
                return
        await self.app(scope, receive, send)


def body_timeout(seconds: float) -> errors.FhirError:
    return errors.request_timeout(f"The request body did not arrive within {seconds:g} seconds")


class BodyDeadline:
    """A deadline on reading the request body: each chunk must come within ``read_timeout``
    seconds and the whole body within ``total_timeout`` seconds of the request's start. uvicorn
    has none, so a client sending headers and then a byte now and then holds a connection (and
    a database-backed handler waiting on it) forever. A late body raises a 408 ``FhirError``
    from ``receive``, which the handler answers, with ``Connection: close``."""

    def __init__(self, app: Any, read_timeout: float, total_timeout: float) -> None:
        self.app = app
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_timeout
        complete = False

        async def timed_receive() -> Any:
            nonlocal complete
            if complete:  # after the body: only a disconnect is left to wait for
                return await receive()
            left = deadline - loop.time()
            wait = min(self.read_timeout, left)
            try:
                message = await asyncio.wait_for(receive(), max(wait, 0.0))
            except TimeoutError:
                raise body_timeout(
                    self.read_timeout if wait < left else self.total_timeout
                ) from None
            if message["type"] != "http.request" or not message.get("more_body"):
                complete = True
            return message

        await self.app(scope, timed_receive, send)
