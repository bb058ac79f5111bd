"""``$evaluate-measure`` on the published Measure: the loop metrics for a period, as a
MeasureReport (FHIR JSON or XML), as CSV (``_format=csv``) or as an SVG bar chart
(``_format=svg`` with ``figure`` and ``by``), for what the caller's token may see
(``measures.access``), with small cells suppressed."""

from __future__ import annotations

from datetime import date

import orjson
from closedloop import errors
from closedloop.fhir.instant import now_us, parse_instant
from closedloop.fhir.rest import steps
from closedloop.fhir.rest.negotiation import check_format, fhir_response, pretty
from closedloop.fhir.rest.openapi.described import (
    OperationDescription,
    OperationParameter,
    described,
)
from closedloop.fhir.rest.routes import base_url, check_type, server_of
from closedloop.hooks import Interaction
from fastapi import Request, Response

from referral_api.measures.access import narrowed, scope_of
from referral_api.measures.chart import FIGURES, bar_chart
from referral_api.measures.compute import STRATIFIERS, Query, compute
from referral_api.measures.definition import CANONICAL, MEASURE_ID
from referral_api.measures.report import measure_report
from referral_api.measures.suppress import suppress
from referral_api.measures.table import to_csv

OWN_FORMATS = {"csv": "text/csv; charset=utf-8", "svg": "image/svg+xml"}
MAX_DAYS = 3660


def _one(request: Request, name: str, required: bool = False) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise errors.invalid(f"{name} may be given once", cl_code="CL-6430")
    if required and not values:
        raise errors.invalid(f"{name} is required", cl_code="CL-6431")
    return values[0] if values else None


def _day(request: Request, name: str) -> tuple[str, int]:
    """A period bound: a date (YYYY-MM-DD), as microseconds at its UTC midnight."""
    text = _one(request, name, required=True) or ""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise errors.invalid(f"{name} must be a date (YYYY-MM-DD)", cl_code="CL-6432") from None
    at = parse_instant(day.isoformat())
    assert at is not None
    return day.isoformat(), at


@described(
    OperationDescription(
        "Loop metrics for a period: a MeasureReport, or CSV (_format=csv), or an SVG chart "
        "(_format=svg); a CBO sees its own referrals, a requester its organization's",
        resource_types=("Measure",),
        methods=("GET",),
        parameters=(
            OperationParameter("periodStart", "First day of the period (YYYY-MM-DD), inclusive"),
            OperationParameter("periodEnd", "Last day of the period (YYYY-MM-DD), inclusive"),
            OperationParameter("measure", f"The Measure's canonical ({CANONICAL}), type level"),
            OperationParameter("reportType", "summary (the only one)"),
            OperationParameter("owner", "Only this CBO's referrals (Organization/id)"),
            OperationParameter("requester", "Only this requesting organization's referrals"),
            OperationParameter("figure", "svg: the figure charted (e.g. sent, closure-rate)"),
            OperationParameter("by", "svg: the stratifier (cbo, category, month...)"),
        ),
        body=None,
        response="Resource",
        errors=(400, 403, 404),
    )
)
async def evaluate_measure(
    request: Request, resource_type: str, resource_id: str | None
) -> Response:
    server = check_type(request, resource_type)
    fmt = (request.query_params.get("_format") or "").strip().lower()
    if fmt not in OWN_FORMATS:
        check_format(request.query_params.get("_format"), request.headers.get("accept", ""))
    ctx = await steps.open_context(
        server,
        getattr(request.state, "request_id", "-"),
        base_url(request),
        request.headers.get("authorization"),
        Interaction(
            "operation", resource_type, resource_id, operation="evaluate-measure", like="read"
        ),
    )
    if resource_type != "Measure":
        raise errors.not_supported("$evaluate-measure is defined on Measure", status=404)
    if resource_id not in (None, MEASURE_ID):
        raise errors.not_found(f"Measure/{resource_id} is not known")
    if resource_id is None and _one(request, "measure") not in (CANONICAL, MEASURE_ID):
        raise errors.invalid(f"measure must be {CANONICAL}", cl_code="CL-6433")
    if _one(request, "reportType") not in (None, "summary"):
        raise errors.not_supported("Only reportType=summary is offered", cl_code="CL-6434")
    if _one(request, "subject") is not None:
        raise errors.not_supported(
            "subject is not offered: the report is about a population", cl_code="CL-6435"
        )
    start_text, start = _day(request, "periodStart")
    end_text, end_day = _day(request, "periodEnd")
    end = end_day + 86_400 * 1_000_000  # periodEnd is inclusive
    if end <= start or end - start > MAX_DAYS * 86_400 * 1_000_000:
        raise errors.invalid(
            f"The period must end on or after its start and span at most {MAX_DAYS} days",
            cl_code="CL-6436",
        )
    figure, by = _one(request, "figure"), _one(request, "by")
    if fmt == "svg" and (figure not in FIGURES or by not in STRATIFIERS):
        raise errors.invalid(
            f"_format=svg needs figure (one of {', '.join(FIGURES)}) and by (one of "
            f"{', '.join(STRATIFIERS)})",
            cl_code="CL-6437",
        )
    settings = request.app.state.measures
    scope = narrowed(scope_of(ctx), _one(request, "owner"), _one(request, "requester"))
    query = Query(start, end, now_us(), settings.stall_days, settings.stall_days_by_category, scope)
    async with server_of(request).db.read() as conn:
        figures = suppress(await compute(conn, query), settings.min_cell)
    if fmt == "csv":
        return Response(to_csv(figures), media_type=OWN_FORMATS["csv"])
    if fmt == "svg":
        assert figure is not None and by is not None
        title = f"{figure} by {by}, {start_text} to {end_text}"
        return Response(bar_chart(figures, figure, by, title), media_type=OWN_FORMATS["svg"])
    reporter = scope.owner or scope.requester
    report = measure_report(figures, start_text, end_text, reporter)
    return fhir_response(orjson.dumps(report), indent=pretty(request))
