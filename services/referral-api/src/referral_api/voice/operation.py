"""``GET /fhir/Questionnaire/patient-voice/$aggregate``: the patient-voice answers per CBO, as
Parameters or CSV (``_format=csv``), small cells suppressed. A CBO sees its own figures only, a
requesting organization those of the referrals it sent, an admin every CBO's (the loop
metrics' rules, ``measures.access``); ``organization`` narrows to one CBO (another
organization's than a CBO's own is 403)."""

from __future__ import annotations

import orjson
from closedloop import errors
from closedloop.fhir.rest import steps
from closedloop.fhir.rest.negotiation import check_format, fhir_response, pretty
from closedloop.fhir.rest.openapi.described import (
    OperationDescription,
    OperationParameter,
    described,
)
from closedloop.fhir.rest.routes import base_url, check_type
from closedloop.hooks import Interaction
from fastapi import Request, Response

from referral_api.measures.access import narrowed, scope_of
from referral_api.voice.aggregate import count, suppress
from referral_api.voice.questionnaire import QUESTIONNAIRE_ID
from referral_api.voice.report import parameters, to_csv

CSV = "text/csv; charset=utf-8"


@described(
    OperationDescription(
        "The patient-voice answers per CBO (counts under the small-cell limit hidden), as "
        "Parameters or CSV (_format=csv); a CBO sees its own, an admin all",
        resource_types=("Questionnaire",),
        type_level=False,
        methods=("GET",),
        parameters=(
            OperationParameter("organization", "Only this CBO's figures (Organization/id)"),
            OperationParameter("_format", "csv for CSV; else FHIR JSON or XML"),
        ),
        body=None,
        response="Resource",
        errors=(400, 403, 404),
    )
)
async def aggregate(request: Request, resource_type: str, resource_id: str | None) -> Response:
    server = check_type(request, resource_type)
    fmt = (request.query_params.get("_format") or "").strip().lower()
    if fmt != "csv":
        check_format(request.query_params.get("_format"), request.headers.get("accept", ""))
    ctx = await steps.open_context(  # not routes.context: it would refuse _format=csv
        server,
        getattr(request.state, "request_id", "-"),
        base_url(request),
        request.headers.get("authorization"),
        Interaction("operation", resource_type, resource_id, operation="aggregate", like="read"),
    )
    if resource_type != "Questionnaire" or resource_id != QUESTIONNAIRE_ID:
        raise errors.not_supported(
            f"$aggregate is defined on Questionnaire/{QUESTIONNAIRE_ID}", status=404
        )
    asked = request.query_params.getlist("organization")
    if len(asked) > 1:
        raise errors.invalid("organization may be given once", cl_code="CL-6455")
    scope = narrowed(scope_of(ctx), asked[0] if asked else None, None)
    min_cell = request.app.state.measures.min_cell
    async with server.db.read() as conn:
        figures = suppress(await count(conn, scope), min_cell)
    if fmt == "csv":
        return Response(to_csv(figures), media_type=CSV)
    return fhir_response(orjson.dumps(parameters(figures, min_cell)), indent=pretty(request))
