"""``POST /fhir/Task/$sweep-stalled``: run the follow-up sweep now (the periodic one runs every
``REFERRAL_API_FOLLOWUP_SWEEP_SECONDS``), for an admin or one of our services. Answers a
Parameters with how many referrals became stalled and how many follow-ups were escalated."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from closedloop import errors
from closedloop.auth.roles import UNRESTRICTED_ROLES
from closedloop.fhir.rest.negotiation import fhir_response, pretty
from closedloop.fhir.rest.openapi.described import OperationDescription, described
from closedloop.fhir.rest.routes import check_type, context
from fastapi import Request, Response

from referral_api.followup.sweep import sweep

Clock = Callable[[], int]


@described(
    OperationDescription(
        "Follow up stalled referrals now: a follow-up Task for each referral the CBO has not "
        "answered within the stall limit, and escalation of those still unanswered (admin)",
        resource_types=("Task",),
        instance_level=False,
        methods=("POST",),
        body=None,
        response="Resource",
        errors=(403,),
    )
)
async def sweep_stalled(request: Request, resource_type: str, resource_id: str | None) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(
        request, "operation", resource_type, resource_id, operation="sweep-stalled", like="create"
    )
    if resource_type != "Task" or resource_id is not None:
        raise errors.not_supported("$sweep-stalled is defined on the Task type", status=404)
    if request.method != "POST":
        raise errors.FhirError(
            405,
            [errors.Issue("error", "not-supported", "$sweep-stalled is POST", (), "CL-6440")],
            {"Allow": "POST"},
        )
    if not ctx.anonymous and ctx.role not in UNRESTRICTED_ROLES:
        raise errors.forbidden("$sweep-stalled is for an admin")
    state = request.app.state
    clock: Clock = state.clock
    result = await sweep(server, state.followup, clock())
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "stalled", "valueInteger": result.stalled},
            {"name": "escalated", "valueInteger": result.escalated},
        ],
    }
    return fhir_response(orjson.dumps(body), indent=pretty(request))
