"""The CapabilityStatement, generated from what the service registered: never written by hand,
so it cannot drift from what the server does."""

from __future__ import annotations

from typing import Any

from closedloop.fhir.instant import format_instant, now_us
from closedloop.fhir.read_only import READ_INTERACTIONS
from closedloop.fhir.rest.openapi.described import OperationDescription, description_of
from closedloop.fhir.search.query import queryable
from closedloop.fhir.server import FhirServer

_INTERACTIONS = [
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
_RESULT_PARAMS = [
    ("_count", "number", "Page size (server maximum applies)"),
    ("_sort", "string", "_id or _lastUpdated, '-' for descending"),
    ("_include", "special", "Include referenced resources (Type:param[:target], :iterate)"),
    ("_revinclude", "special", "Include resources that refer to the matches"),
    ("_summary", "token", "true | text | data | count | false"),
    ("_elements", "string", "Top-level elements to return"),
    ("_total", "token", "none (default) | accurate | estimate"),
]


def search_params(server: FhirServer, rtype: str) -> list[dict[str, Any]]:
    """The searchParam entries of ``rtype`` (the OpenAPI document lists the same ones)."""
    params: list[dict[str, Any]] = [
        {"name": "_id", "type": "token"},
        {"name": "_lastUpdated", "type": "date"},
    ]
    for code, p in sorted(server.registry.for_type(rtype).items()):
        if code in ("_id", "_lastUpdated") or not queryable(p):
            continue
        entry: dict[str, Any] = {"name": code, "type": p.type}
        if p.url:
            entry["definition"] = p.url
        if p.description:
            entry["documentation"] = p.description[:500]
        params.append(entry)
    return params + [{"name": n, "type": t, "documentation": d} for n, t, d in _RESULT_PARAMS]


def operations_on(server: FhirServer, rtype: str) -> list[tuple[str, OperationDescription]]:
    """The ``$operations`` served on ``rtype``, as each handler describes itself."""
    found = []
    for name, handler in sorted(server.operations.items()):
        desc = description_of(handler)
        if desc is None or (desc.resource_types and rtype not in desc.resource_types):
            continue
        if desc.writes_only and rtype in server.config.read_only_types:
            continue
        found.append((name, desc))
    return found


def capability_statement(server: FhirServer, base_url: str) -> dict[str, Any]:
    resources = []
    for rtype in server.config.resource_types:
        params = search_params(server, rtype)
        writable = rtype not in server.config.read_only_types
        operations = [
            {"name": name, "definition": d.definition}
            for name, d in operations_on(server, rtype)
            if d.definition  # required in R4
        ]
        resources.append(
            {
                "type": rtype,
                "interaction": [
                    {"code": c} for c in _INTERACTIONS if writable or c in READ_INTERACTIONS
                ],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": writable,
                "conditionalCreate": writable,
                "conditionalUpdate": writable,
                "conditionalDelete": "multiple" if writable else "not-supported",
                "searchInclude": ["*"],
                "searchRevInclude": ["*"],
                "searchParam": params,
                **({"operation": operations} if operations else {}),
                **(
                    {"extension": server.config.capability_extensions[rtype]}
                    if rtype in server.config.capability_extensions
                    else {}
                ),
            }
        )
    rest: dict[str, Any] = {"mode": "server"}
    if server.config.security is not None:
        rest["security"] = server.config.security
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_instant(now_us()),
        "kind": "instance",
        "software": {"name": server.config.software_name},
        "implementation": {"description": server.config.software_name, "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json", "application/fhir+xml", "xml"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                **rest,
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
            }
        ],
    }
