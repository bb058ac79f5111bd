"""Every error leaves as an OperationOutcome: FhirError with its own status, FastAPI/Starlette
errors (unknown route 404, wrong method 405) translated, and anything unexpected as a 500 that
names the request id (the traceback goes to the log, never to the client)."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from closedloop import errors
from closedloop.fhir.rest.negotiation import as_xml, fhir_response, pretty, wants_xml

log = logging.getLogger("closedloop.errors")

_HTTP_CODES = {404: ("not-found", "CL-1404"), 405: ("not-supported", "CL-1405")}


def error_response(exc: errors.FhirError, request: Request | None = None) -> Response:
    """The OperationOutcome, in XML when the request asked for XML."""
    response = fhir_response(orjson.dumps(exc.outcome), exc.status, exc.headers or None)
    if request is not None and wants_xml(request):
        return as_xml(response, pretty(request))
    return response


def add_exception_handlers(app: FastAPI) -> None:
    async def on_fhir_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.FhirError)
        return error_response(exc, request)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code, cl = _HTTP_CODES.get(exc.status_code, ("processing", f"CL-1{exc.status_code}"))
        text = (
            f"No route for {request.method} {request.url.path}"
            if exc.status_code == 404
            else f"{request.method} is not allowed on {request.url.path}"
            if exc.status_code == 405
            else str(exc.detail)
        )
        return error_response(
            errors.FhirError(
                exc.status_code,
                [errors.Issue("error", code, text, (), cl)],
                dict(exc.headers or {}),
            ),
            request,
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        issues = [
            errors.Issue(
                "error", "invalid", f"{'.'.join(map(str, e['loc']))}: {e['msg']}", (), "CL-1400"
            )
            for e in exc.errors()
        ]
        return error_response(errors.FhirError(400, issues), request)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", None)
        log.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
        return error_response(errors.internal(request_id), request)

    app.add_exception_handler(errors.FhirError, on_fhir_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
