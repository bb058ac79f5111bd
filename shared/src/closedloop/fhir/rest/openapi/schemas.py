"""JSON schemas of the bodies the FHIR API takes and gives: enough to say which resource type
goes where and what every answer is sure to hold (``resourceType``, ``id``, ``meta``, an
OperationOutcome's issues), not the whole FHIR JSON schema. Each schema only states what every
response really satisfies; a test runs the server against them (schemathesis)."""

from __future__ import annotations

from typing import Any

ID_PATTERN = r"^[A-Za-z0-9\-\.]{1,64}$"
VERSION_PATTERN = r"^[0-9]{1,18}$"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _resource(rtype: str | None, *, stored: bool) -> dict[str, Any]:
    """A resource of ``rtype`` (any type when None); ``stored``: as the server answers it,
    with the id and meta (version, last update) it always has."""
    kind: dict[str, Any] = {"type": "string"}
    if rtype is not None:
        kind["enum"] = [rtype]
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["resourceType", *(["id", "meta"] if stored else [])],
        "properties": {
            "resourceType": kind,
            "id": {"type": "string", "pattern": ID_PATTERN},
            "meta": ref("StoredMeta") if stored else {"type": "object"},
        },
        "additionalProperties": True,
    }
    if rtype is not None:
        schema["description"] = f"A FHIR R4 {rtype} (http://hl7.org/fhir/R4/{rtype.lower()}.html)"
    return schema


def resource_schemas(resource_types: list[str]) -> dict[str, Any]:
    """``<Type>``: as stored and answered; ``<Type>Input``: what a client sends."""
    out: dict[str, Any] = {}
    for rtype in resource_types:
        out[rtype] = _resource(rtype, stored=True)
        out[f"{rtype}Input"] = _resource(rtype, stored=False)
    return out


_ISSUE = {
    "type": "object",
    "required": ["severity", "code"],
    "properties": {
        "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
        "code": {"type": "string"},
        "diagnostics": {"type": "string"},
        "details": {"type": "object"},
        "expression": {"type": "array", "items": {"type": "string"}},
    },
}

COMMON_SCHEMAS: dict[str, Any] = {
    "Resource": {
        **_resource(None, stored=False),
        "description": "Any FHIR R4 resource",
    },
    "StoredMeta": {
        "type": "object",
        "required": ["versionId", "lastUpdated"],
        "properties": {
            "versionId": {"type": "string", "pattern": VERSION_PATTERN},
            "lastUpdated": {"type": "string"},
        },
    },
    "OperationOutcome": {
        "type": "object",
        "description": "What went wrong (or, on success, what was done); each issue has a "
        "stable diagnostic code (CL-xxxx) in details",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {"type": "array", "minItems": 1, "items": _ISSUE},
        },
    },
    "Bundle": {
        "type": "object",
        "description": "A searchset, history, batch-response or transaction-response Bundle",
        "required": ["resourceType", "type"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Bundle"]},
            "type": {
                "type": "string",
                "enum": ["searchset", "history", "batch-response", "transaction-response"],
            },
            "total": {"type": "integer", "minimum": 0},
            "link": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["relation", "url"],
                    "properties": {"relation": {"type": "string"}, "url": {"type": "string"}},
                },
            },
            "entry": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "fullUrl": {"type": "string"},
                        "resource": ref("Resource"),
                        "search": {"type": "object"},
                        "request": {"type": "object"},
                        "response": {"type": "object"},
                    },
                },
            },
        },
    },
    "BundleInput": {
        "type": "object",
        "description": "A batch or transaction Bundle",
        "required": ["resourceType", "type"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Bundle"]},
            "type": {"type": "string", "enum": ["batch", "transaction"]},
            "entry": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "fullUrl": {"type": "string"},
                        "resource": ref("Resource"),
                        "request": {
                            "type": "object",
                            "required": ["method", "url"],
                            "properties": {
                                "method": {
                                    "type": "string",
                                    "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
                                },
                                "url": {"type": "string"},
                                "ifNoneExist": {"type": "string"},
                                "ifMatch": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
    "CapabilityStatement": {
        "type": "object",
        "required": ["resourceType", "status", "kind", "fhirVersion", "format", "rest"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["CapabilityStatement"]},
            "status": {"type": "string"},
            "kind": {"type": "string"},
            "fhirVersion": {"type": "string"},
            "format": {"type": "array", "items": {"type": "string"}},
            "rest": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Parameters": {
        "type": "object",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Parameters"]},
            "parameter": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
            },
        },
    },
    "JsonPatch": {
        "type": "array",
        "description": "RFC 6902 JSON Patch operations",
        "items": {
            "type": "object",
            "required": ["op", "path"],
            "properties": {
                "op": {
                    "type": "string",
                    "enum": ["add", "remove", "replace", "move", "copy", "test"],
                },
                "path": {"type": "string"},
                "from": {"type": "string"},
                "value": {},
            },
        },
    },
    "OpenApi": {
        "type": "object",
        "required": ["openapi", "info", "paths"],
        "properties": {"openapi": {"type": "string"}},
    },
}
