"""``install``: metrics and traces on one app, in one call (the service factory makes it; the
auth service, which is no FHIR server, makes it too)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from closedloop.observability.metrics import ServiceMetrics, Templater
from closedloop.observability.requests import RequestObserver
from closedloop.observability.tracing import ServerSpans, setup_tracing


async def metrics_endpoint(request: Request) -> Response:
    metrics: ServiceMetrics = request.app.state.metrics
    body, content_type = await metrics.render()
    return Response(body, media_type=content_type)


def install(
    app: Any, service: str, *, metrics_enabled: bool = True, templater: Templater | None = None
) -> ServiceMetrics:
    """Adds the request metrics and the server span around what the app has so far (call it
    after the request log middleware: its lines then carry the trace id), and ``GET /metrics``
    unless ``metrics_enabled`` is false. The service registers its own series on the
    returned ``ServiceMetrics`` (also ``app.state.metrics``)."""
    metrics = ServiceMetrics(service)
    app.state.metrics = metrics
    metrics.watch_database(lambda: getattr(app.state, "db", None))
    tracing = setup_tracing(service)
    if metrics_enabled or tracing:
        app.add_middleware(
            RequestObserver,
            metrics=metrics if metrics_enabled else None,
            templater=templater,
            spans=ServerSpans() if tracing else None,
        )
    if metrics_enabled:
        app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    return metrics
