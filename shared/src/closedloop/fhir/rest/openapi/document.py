"""The OpenAPI 3.0 document of a service's FHIR API, built from its ``FhirServer``: the types
it serves (read-only ones get only the read interactions), each type's search parameters (the
CapabilityStatement's list), the ``$operations`` registered (as each describes itself,
``described.py``) and the system endpoints. Nothing is written by hand per service, so it
cannot drift from what ``dispatch.py`` serves.

OpenAPI 3.0 rather than 3.1: the bundled Swagger UI reads 3.0.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request, Response

from closedloop.fhir.rest.capability import operations_on, search_params
from closedloop.fhir.rest.negotiation import FHIR_JSON, FHIR_XML, JSON_PATCH
from closedloop.fhir.rest.openapi.described import OperationDescription
from closedloop.fhir.rest.openapi.schemas import (
    COMMON_SCHEMAS,
    ID_PATTERN,
    VERSION_PATTERN,
    ref,
    resource_schemas,
)
from closedloop.fhir.rest.routes import base_url, server_of
from closedloop.fhir.server import FhirServer

OPENAPI_PATH = "/openapi.json"

_ERRORS = {
    400: "Bad request: malformed body, parameter or header (OperationOutcome says where)",
    403: "A service rule refuses this change",
    404: "No such resource (or operation)",
    405: "The method is not allowed here (see the Allow header)",
    408: "The request body did not arrive in time",
    409: "Conflict: version clash, or a rule of the service (e.g. a retired id)",
    410: "The resource was deleted",
    412: "Precondition failed: If-Match is stale, or conditional criteria match several",
    413: "The request body is larger than the service accepts",
    414: "The URL is too long (send long searches as POST _search)",
    415: "Unsupported Content-Type",
    422: "The resource is well formed but breaks a profile or business rule",
    503: "A search ran past its time limit, or a service this one depends on is unavailable",
}
_ALWAYS = (400, 414)  # any FHIR request: unknown _format, broken percent-encoding, long URL
_BODY = (408, 413, 415)  # any request with a body
_WRITE = (*_BODY, 403, 409, 422, 503)


def _param(name: str, where: str, description: str, schema: dict[str, Any], **kw: Any) -> Any:
    return {"name": name, "in": where, "description": description, "schema": schema, **kw}


_PARAMETERS: dict[str, Any] = {
    "id": _param(
        "id", "path", "Logical id", {"type": "string", "pattern": ID_PATTERN}, required=True
    ),
    "vid": _param(
        "vid", "path", "Version id", {"type": "string", "pattern": VERSION_PATTERN}, required=True
    ),
    "_format": _param(
        "_format",
        "query",
        "Answer format (wins over Accept)",
        {"type": "string", "enum": ["json", "xml", FHIR_JSON, FHIR_XML]},
    ),
    "_pretty": _param(
        "_pretty", "query", "Indent the answer", {"type": "string", "enum": ["true", "false"]}
    ),
    "PreferReturn": _param(
        "Prefer",
        "header",
        "What a write answers: the resource (return=representation, the default) or an "
        "OperationOutcome (return=OperationOutcome). return=minimal is served too: the same "
        "status and headers with no body (OpenAPI 3.0 cannot say a body is optional, so it "
        "is not listed)",
        {"type": "string", "enum": ["return=representation", "return=OperationOutcome"]},
    ),
    "PreferHandling": _param(
        "Prefer",
        "header",
        "handling=strict: an unknown or unsupported search parameter is a 400, not ignored",
        {"type": "string", "enum": ["handling=strict", "handling=lenient"]},
    ),
    "If-Match": _param(
        "If-Match",
        "header",
        'Only if the current version is this one (W/"<versionId>"); 412 otherwise',
        {"type": "string", "pattern": r'^W/"[0-9]{1,18}"$'},
    ),
    "If-None-Match": _param(
        "If-None-Match", "header", "The ETag the client has: 304 if unchanged", {"type": "string"}
    ),
    "If-None-Exist": _param(
        "If-None-Exist",
        "header",
        "Conditional create: search criteria; a match is returned instead of creating",
        {"type": "string"},
    ),
    "_since": _param("_since", "query", "Only versions after this instant", {"type": "string"}),
    "_count": _param(
        "_count",
        "query",
        "Page size (the server's maximum applies)",
        {"type": "integer", "minimum": 0},
    ),
}
_PARAMETERS["_history_count"] = {**_PARAMETERS["_count"], "description": "Versions per page"}
_OUTPUT = ("_format", "_pretty")
_ENUMS = {
    "_summary": ["true", "text", "data", "count", "false"],
    "_total": ["none", "accurate", "estimate"],
}


def _pref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _fhir(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        FHIR_JSON: {"schema": schema},
        FHIR_XML: {"schema": {"type": "string", "description": "The same, as FHIR XML"}},
    }


_HEADERS = {
    "ETag": {"description": 'W/"<versionId>"', "schema": {"type": "string"}},
    "Last-Modified": {"description": "When this version was stored", "schema": {"type": "string"}},
    "Location": {
        "description": "<base>/<type>/<id>/_history/<versionId>",
        "schema": {"type": "string"},
    },
}


def _ok(description: str, schema: dict[str, Any], *headers: str) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": _fhir(schema)}
    if headers:
        out["headers"] = {h: _HEADERS[h] for h in headers}
    return out


def _responses(success: dict[int, Any], *errors: tuple[int, ...] | int) -> dict[str, Any]:
    codes: set[int] = set(_ALWAYS)
    for e in errors:
        codes.update((e,) if isinstance(e, int) else e)
    out: dict[str, Any] = {str(k): v for k, v in sorted(success.items())}
    for code in sorted(codes - set(success)):
        out[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    return out


def _op(
    op_id: str,
    tag: str,
    summary: str,
    responses: dict[str, Any],
    parameters: list[Any] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op_id,
        "tags": [tag],
        "summary": summary,
        "parameters": [*(parameters or []), *map(_pref, _OUTPUT)],
        "responses": responses,
    }
    if body is not None:
        out["requestBody"] = body
    return out


def _resource_body(rtype: str) -> dict[str, Any]:
    return {"required": True, "content": _fhir(ref(f"{rtype}Input"))}


def _write_answer(rtype: str) -> dict[str, Any]:
    """A write's answer: the resource, an OperationOutcome (``Prefer: return=
    OperationOutcome``), or no body (``return=minimal``)."""
    schema = {"oneOf": [ref(rtype), ref("OperationOutcome")]}
    return _ok("The stored resource (see Prefer)", schema, "ETag", "Last-Modified", "Location")


def _search_parameters(server: FhirServer, rtype: str) -> list[dict[str, Any]]:
    out = []
    for entry in search_params(server, rtype):
        name, kind = entry["name"], entry["type"]
        text = entry.get("documentation") or ""
        schema: dict[str, Any] = {"type": "string"}
        if name == "_count":
            schema = {"type": "integer", "minimum": 0}
        elif name in _ENUMS:
            schema = {"type": "string", "enum": _ENUMS[name]}
        out.append(
            _param(
                name,
                "query",
                f"FHIR {kind} search parameter" + (f": {text}" if text else ""),
                schema,
            )
        )
    return out


def _search_form(server: FhirServer, rtype: str) -> dict[str, Any]:
    props = {p["name"]: p["schema"] for p in _search_parameters(server, rtype)}
    return {
        "required": False,
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": props}}
        },
    }


def _type_paths(server: FhirServer, rtype: str) -> dict[str, dict[str, Any]]:
    writable = rtype not in server.config.read_only_types
    one = ref(rtype)
    bundle = ref("Bundle")
    found = _ok("The matching resource", one, "ETag", "Last-Modified")
    searched = _ok(f"A searchset Bundle of {rtype} (and included resources)", bundle)
    history = _ok("A history Bundle", bundle)
    search_params_ = _search_parameters(server, rtype)
    paths: dict[str, dict[str, Any]] = {
        f"/{rtype}": {
            "get": _op(
                f"search-type-{rtype}",
                rtype,
                f"Search {rtype}",
                _responses({200: searched}, 503),
                [*search_params_, _pref("PreferHandling")],
            )
        },
        f"/{rtype}/_search": {
            "post": _op(
                f"search-post-{rtype}",
                rtype,
                f"Search {rtype} with the criteria in a form body",
                _responses({200: searched}, _BODY, 503),
                [_pref("PreferHandling")],
                _search_form(server, rtype),
            )
        },
        f"/{rtype}/_history": {
            "get": _op(
                f"history-type-{rtype}",
                rtype,
                f"Every version of every {rtype}, newest first",
                _responses({200: history}),
                [_pref("_since"), _pref("_history_count")],
            )
        },
        f"/{rtype}/{{id}}": {
            "get": _op(
                f"read-{rtype}",
                rtype,
                f"Read a {rtype}",
                _responses(
                    {200: found, 304: {"description": "Not modified (If-None-Match)"}}, 404, 410
                ),
                [_pref("id"), _pref("If-None-Match")],
            )
        },
        f"/{rtype}/{{id}}/_history": {
            "get": _op(
                f"history-instance-{rtype}",
                rtype,
                f"Every version of one {rtype}, newest first",
                _responses({200: history}, 404),
                [_pref("id"), _pref("_since"), _pref("_history_count")],
            )
        },
        f"/{rtype}/{{id}}/_history/{{vid}}": {
            "get": _op(
                f"vread-{rtype}",
                rtype,
                f"Read one version of a {rtype}",
                _responses({200: found}, 404, 410),
                [_pref("id"), _pref("vid")],
            )
        },
    }
    if writable:
        written = _write_answer(rtype)
        prefer = _pref("PreferReturn")
        paths[f"/{rtype}"]["post"] = _op(
            f"create-{rtype}",
            rtype,
            f"Create a {rtype} (the server assigns the id; If-None-Exist: conditional create)",
            _responses({201: written, 200: written}, _WRITE, 412),
            [_pref("If-None-Exist"), prefer],
            _resource_body(rtype),
        )
        paths[f"/{rtype}"]["put"] = _op(
            f"conditional-update-{rtype}",
            rtype,
            f"Update the one {rtype} the query matches (create it if none does)",
            _responses({200: written, 201: written}, _WRITE, 412),
            [*search_params_, _pref("If-Match"), prefer],
            _resource_body(rtype),
        )
        paths[f"/{rtype}"]["delete"] = _op(
            f"conditional-delete-{rtype}",
            rtype,
            f"Delete every {rtype} the query matches",
            _responses({204: {"description": "Deleted (or nothing matched)"}}, 403, 409, 412, 503),
            search_params_,
        )
        instance = paths[f"/{rtype}/{{id}}"]
        instance["put"] = _op(
            f"update-{rtype}",
            rtype,
            f"Update a {rtype} (or create it with this id)",
            _responses({200: written, 201: written}, _WRITE, 412),
            [_pref("id"), _pref("If-Match"), prefer],
            _resource_body(rtype),
        )
        instance["patch"] = _op(
            f"patch-{rtype}",
            rtype,
            f"Change a {rtype} with a JSON Patch",
            _responses({200: written}, _WRITE, 404, 410, 412),
            [_pref("id"), _pref("If-Match"), prefer],
            {"required": True, "content": {JSON_PATCH: {"schema": ref("JsonPatch")}}},
        )
        instance["delete"] = _op(
            f"delete-{rtype}",
            rtype,
            f"Delete a {rtype}",
            _responses(
                {204: {"description": "Deleted", "headers": {"ETag": _HEADERS["ETag"]}}},
                403,
                404,
                409,
                503,
            ),
            [_pref("id")],
        )
    return paths


def _operation_paths(server: FhirServer) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for rtype in server.config.resource_types:
        for name, desc in operations_on(server, rtype):
            if desc.type_level:
                paths[f"/{rtype}/${name}"] = _operation(name, desc, rtype, instance=False)
            if desc.instance_level:
                paths[f"/{rtype}/{{id}}/${name}"] = _operation(name, desc, rtype, instance=True)
    return paths


def _operation(
    name: str, desc: OperationDescription, rtype: str, *, instance: bool
) -> dict[str, Any]:
    level = "instance" if instance else "type"
    params = [_pref("id")] if instance else []
    params += [_param(p.name, "query", p.description, p.schema) for p in desc.parameters]
    answer = _ok(desc.summary, ref(desc.response))
    out: dict[str, Any] = {}
    for method in desc.methods:
        body = None
        errors: tuple[int, ...] = desc.errors
        if method == "POST" and desc.body is not None:
            schema = (
                {"oneOf": [ref(f"{rtype}Input"), ref("Parameters")]}
                if desc.body == "resource"
                else ref("Parameters")
            )
            # a resource body is read as any resource (JSON or XML); a Parameters body as JSON
            content = _fhir(schema) if desc.body == "resource" else {FHIR_JSON: {"schema": schema}}
            body = {"required": desc.body_required, "content": content}
            errors = (*errors, *_BODY)
        op = _op(
            f"{name}-{level}-{rtype}-{method.lower()}",
            rtype,
            f"${name}: {desc.summary}",
            _responses({200: answer}, errors),
            params,
            body,
        )
        if desc.definition:
            op["externalDocs"] = {"url": desc.definition}
        out[method.lower()] = op
    return out


def _system_paths(server: FhirServer) -> dict[str, dict[str, Any]]:
    return {
        "/": {
            "post": _op(
                "transaction-batch",
                "System",
                "A batch or transaction Bundle (a transaction stores all its entries or none)",
                _responses(
                    {200: _ok("The batch-response or transaction-response", ref("Bundle"))},
                    _WRITE,
                    404,
                    405,  # a write to a read-only type
                    410,
                    412,
                ),
                [_pref("PreferReturn")],
                {"required": True, "content": _fhir(ref("BundleInput"))},
            )
        },
        "/metadata": {
            "get": _op(
                "capabilities",
                "System",
                "The CapabilityStatement",
                _responses({200: _ok("What this server serves", ref("CapabilityStatement"))}),
            )
        },
        "/_history": {
            "get": _op(
                "history-system",
                "System",
                "Every version of every resource, newest first",
                _responses({200: _ok("A history Bundle", ref("Bundle"))}),
                [_pref("_since"), _pref("_history_count")],
            )
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "tags": ["System"],
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.0",
                        "content": {"application/json": {"schema": ref("OpenApi")}},
                    }
                },
            }
        },
    }


async def openapi_json(request: Request) -> Response:
    """``GET /fhir/openapi.json`` (a row of ``dispatch``'s table)."""
    document = openapi_document(server_of(request), base_url(request))
    return Response(orjson.dumps(document), media_type="application/json")


def openapi_document(server: FhirServer, base_url: str) -> dict[str, Any]:
    """The document; paths are relative to ``base_url`` (the FHIR base clients see)."""
    served = list(server.config.resource_types)
    paths = _system_paths(server)
    for rtype in served:
        paths.update(_type_paths(server, rtype))
    paths.update(_operation_paths(server))
    outcome = _fhir(ref("OperationOutcome"))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{server.config.software_name} FHIR API",
            "version": "4.0.1",
            "description": "FHIR R4 (4.0.1) REST API, generated from what this service serves "
            "(its CapabilityStatement is at /metadata). Errors are OperationOutcomes.",
        },
        "servers": [{"url": base_url}],
        "tags": [{"name": "System"}, *({"name": t} for t in served)],
        "paths": paths,
        "components": {
            "schemas": {**COMMON_SCHEMAS, **resource_schemas(served)},
            "parameters": _PARAMETERS,
            "responses": {
                f"E{code}": {"description": text, "content": outcome}
                for code, text in _ERRORS.items()
            },
        },
    }
