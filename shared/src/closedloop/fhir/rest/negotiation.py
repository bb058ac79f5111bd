"""Content negotiation: what bodies we accept and how we answer.

In: ``application/fhir+json`` or ``application/json``, ``application/fhir+xml`` (``xml.py``
turns it into the same JSON), ``application/json-patch+json`` for PATCH, form bodies for
``_search``; anything else is 415, a body over the limit is 413, broken JSON or XML (or JSON
nested too deep, or holding a NUL character) is 400. Out: FHIR JSON, or FHIR XML when
``_format`` (which wins) or the Accept header asks for XML first; ``_pretty`` indents either.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request, Response
from starlette.requests import ClientDisconnect

from closedloop import errors
from closedloop.fhir.rest.xml import parse_xml, to_xml
from closedloop.fhir.validation import MAX_JSON_DEPTH, check_json

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
JSON_PATCH = "application/json-patch+json"
_JSON_TYPES = {FHIR_JSON, "application/json", "application/json+fhir", "text/json"}
_FORMAT_ALIASES = {"json", "application/json", FHIR_JSON, "application/json+fhir", "text/json"}
_XML = {"xml", "application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir"}


def media_type(request: Request) -> str:
    return media_type_of(request.headers.get("content-type", ""))


def media_type_of(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def is_json_type(kind: str) -> bool:
    """A media type taken as a FHIR JSON body."""
    return kind in _JSON_TYPES


async def read_body(request: Request, max_bytes: int) -> bytes:
    _check_declared(request.headers.get("content-length"), max_bytes)
    body = b""
    async for chunk in request.stream():
        body += chunk
        _check_read(body, max_bytes)
    return body


async def receive_body(receive: Any, declared: str | None, max_bytes: int) -> bytes:
    """``read_body`` straight from the ASGI receive channel, for the fast path (which builds
    no ``Request``): the same limits, and a client gone midway is Starlette's
    ``ClientDisconnect`` as from ``Request.stream``."""
    _check_declared(declared, max_bytes)
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        body += message.get("body", b"")
        _check_read(body, max_bytes)
        if not message.get("more_body", False):
            return body


def _check_declared(declared: str | None, max_bytes: int) -> None:
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise errors.too_large(f"The request body is {declared} bytes; the limit is {max_bytes}")


def _check_read(body: bytes, max_bytes: int) -> None:
    if len(body) > max_bytes:
        raise errors.too_large(f"The request body exceeds the limit of {max_bytes} bytes")


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise errors.invalid(
            "The request body is empty; a JSON resource was expected", cl_code="CL-1000"
        )
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.invalid(f"The body is not valid JSON: {exc}", cl_code="CL-1000") from None
    # nesting and NUL characters (cheap byte counts spare most bodies the walk)
    if b"\\u0000" in body or body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH:
        check_json(value)
    return value


async def read_resource_body(request: Request, max_bytes: int) -> Any:
    kind = media_type(request)
    if kind in _XML:
        return parse_xml(await read_body(request, max_bytes))
    if kind not in _JSON_TYPES:
        raise errors.unsupported_media_type(
            f"Content-Type {kind or '(none)'} is not supported: send {FHIR_JSON} or {FHIR_XML}"
        )
    return parse_json(await read_body(request, max_bytes))


async def read_patch_body(request: Request, max_bytes: int) -> Any:
    kind = media_type(request)
    if kind != JSON_PATCH:
        raise errors.unsupported_media_type(
            f"Content-Type {kind or '(none)'} is not supported for PATCH: send {JSON_PATCH}"
        )
    return parse_json(await read_body(request, max_bytes))


def check_output_format(request: Request) -> None:
    check_format(request.query_params.get("_format"), request.headers.get("accept", ""))


def check_format(fmt: str | None, accept: str) -> None:
    """400 for an unknown ``_format``."""
    if fmt is not None and _format_name(fmt) not in _FORMAT_ALIASES | _XML:
        raise errors.invalid(f"Unknown _format {fmt!r}: use json or xml", cl_code="CL-1407")


def _format_name(fmt: str) -> str:
    """``_format=application/fhir+xml`` sent without percent-encoding arrives with a space
    for the ``+``; clients do that often enough to take it."""
    return fmt.strip().lower().replace(" ", "+")


def wants_xml(request: Request) -> bool:
    return xml_asked(request.query_params.get("_format"), request.headers.get("accept", ""))


def xml_asked(fmt: str | None, accept: str) -> bool:
    """XML when ``_format`` names it, else when the Accept header lists an XML type before any
    JSON one (``*/*`` and unknown types do not decide)."""
    if fmt is not None:
        return _format_name(fmt) in _XML
    if "xml" not in accept:
        return False
    for part in accept.split(","):
        kind = part.split(";")[0].strip().lower()
        if kind in _XML:
            return True
        if kind in _JSON_TYPES:
            return False
    return False


def as_xml(response: Response, indent: bool = False) -> Response:
    """A FHIR JSON response rendered as FHIR XML (same status and headers); others, and a body
    the models cannot render, as they are."""
    if response.media_type != FHIR_JSON or not response.body:
        return response
    headers = {
        k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")
    }
    try:
        content = to_xml(bytes(response.body), pretty=indent)
    except (ValueError, TypeError):
        # a body the R4B models cannot render (ValidationError is a ValueError) still reaches
        # the client, as the JSON it is, rather than as a 500
        return response
    return Response(
        content=content,
        status_code=response.status_code,
        headers=headers,
        media_type=FHIR_XML,
    )


def pretty(request: Request) -> bool:
    return request.query_params.get("_pretty", "").lower() == "true"


def fhir_response(
    content: str | bytes | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    indent: bool = False,
) -> Response:
    if content is None:
        return Response(status_code=status, headers=headers)
    if indent:
        content = orjson.dumps(orjson.loads(content), option=orjson.OPT_INDENT_2)
    return Response(content=content, status_code=status, headers=headers, media_type=FHIR_JSON)
