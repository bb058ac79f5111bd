"""Turning stored resources and write results into HTTP responses (headers, Prefer)."""

from __future__ import annotations

import orjson
from fastapi import Response

from closedloop.errors import information, operation_outcome
from closedloop.fhir.rest.negotiation import fhir_response
from closedloop.fhir.rest.prefer import Preferences
from closedloop.fhir.storage.records import StoredResource, WriteResult


def version_headers(stored: StoredResource) -> dict[str, str]:
    return {"ETag": stored.etag, "Last-Modified": stored.last_modified}


def read_response(stored: StoredResource, indent: bool) -> Response:
    return fhir_response(stored.content, 200, version_headers(stored), indent=indent)


def write_response(
    result: WriteResult, base_url: str, prefs: Preferences, indent: bool
) -> Response:
    stored = result.stored
    headers = version_headers(stored)
    status = 201 if result.created else 200
    if result.created or result.changed:
        headers["Location"] = f"{base_url}/{stored.location}"
    if result.warnings:
        # No standard place for warnings beside a resource: an HTTP Warning header for plain
        # responses, the full OperationOutcome with Prefer: return=OperationOutcome.
        headers["Warning"] = "; ".join(
            f'199 closedloop "{w.diagnostics.replace(chr(34), chr(39))}"' for w in result.warnings
        )
    if prefs.return_ == "minimal":
        return fhir_response(None, status, headers)
    if prefs.return_ == "OperationOutcome":
        verb = "created" if result.created else ("updated" if result.changed else "unchanged")
        text = f"{stored.resource_type}/{stored.id} {verb} (version {stored.version_id})"
        body = orjson.dumps(operation_outcome([information(text), *result.warnings]))
        return fhir_response(body, status, headers, indent=indent)
    return fhir_response(stored.content, status, headers, indent=indent)
