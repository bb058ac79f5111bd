"""``$validate`` (http://hl7.org/fhir/R4/resource-operation-validate.html): the checks a create
or update would run (structure, then the service's profile rules), without storing anything.

The body is the resource itself, or a Parameters resource with a ``resource`` parameter. The
answer is an OperationOutcome: 200 with an information issue (plus any warnings) when the
resource would be accepted, or the same 4xx status and issues a write would get.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request, Response

from closedloop import errors
from closedloop.fhir.rest.negotiation import fhir_response, pretty, read_resource_body
from closedloop.fhir.rest.openapi.described import OperationDescription, described
from closedloop.fhir.rest.routes import check_type, context


def _resource_of(body: Any, resource_type: str) -> Any:
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for param in body.get("parameter") or []:
            if isinstance(param, dict) and param.get("name") == "resource":
                return param.get("resource")
        raise errors.invalid(
            "$validate Parameters need a 'resource' parameter",
            ("Parameters.parameter",),
            cl_code="CL-5400",
        )
    return body


@described(
    OperationDescription(
        "Would this resource be accepted? (nothing is stored)",
        methods=("POST",),
        body="resource",
        body_required=True,
        response="OperationOutcome",
        errors=(400, 422),
        writes_only=True,
        definition="http://hl7.org/fhir/OperationDefinition/Resource-validate",
    )
)
async def validate(request: Request, resource_type: str, resource_id: str | None) -> Response:
    server = check_type(request, resource_type)
    # $validate checks what a create (or, on an instance, an update) would: it needs the same
    ctx = await context(
        request,
        "operation",
        resource_type,
        resource_id,
        operation="validate",
        like="create" if resource_id is None else "update",
    )
    if request.method != "POST":
        raise errors.FhirError(
            405,
            [
                errors.Issue(
                    "error",
                    "not-supported",
                    "$validate takes a POST with the resource",
                    (),
                    "CL-1405",
                )
            ],
        )
    resource = _resource_of(
        await read_resource_body(request, server.config.max_body_bytes), resource_type
    )
    if (
        resource_id is not None
        and isinstance(resource, dict)
        and resource.get("id") not in (None, resource_id)
    ):
        raise errors.invalid(
            f"The resource id does not match {resource_id}",
            (f"{resource_type}.id",),
            cl_code="CL-2400",
        )
    warnings = await server.repo.validate(ctx, resource_type, resource)
    outcome = errors.operation_outcome(
        [errors.information(f"{resource_type} is valid", "CL-5200"), *warnings]
    )
    return fhir_response(orjson.dumps(outcome), indent=pretty(request))
