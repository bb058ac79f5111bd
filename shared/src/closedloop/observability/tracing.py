"""OpenTelemetry traces: one tracer provider per process, the W3C ``traceparent`` carried in
and out of every service, and helpers to keep a trace going across a queue (an outbox row, a
stored notification) by storing the ``traceparent`` with the work.

- On unless ``OTEL_SDK_DISABLED=true``. Spans are exported (OTLP over HTTP) only when
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set; otherwise
  nothing is recorded (the sampler is off), but trace ids still flow: incoming ones are kept,
  passed on in every outgoing call (httpx), stored with queued work and written in the logs.
- What a span may carry: a method, a route template, a status, SQL text without its
  parameters. Never a query string (searches carry names and birth dates), a body or an
  exception message (``ServerSpans``; the httpx hook drops the query string).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_W3C = TraceContextTextMapPropagator()
_EXPORT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_state: dict[str, bool] = {}
tracer = trace.get_tracer("closedloop")
_ids = RandomIdGenerator()


def disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def exporting() -> bool:
    return any(os.environ.get(name, "").strip() for name in _EXPORT_VARS)


def setup_tracing(service: str) -> bool:
    """The process's tracer provider and client instrumentations, once; False when tracing is
    off (``OTEL_SDK_DISABLED``). A provider set before (a test's in-memory one) is kept."""
    if disabled():
        return False
    if _state.get("configured"):
        return True
    provider = trace.get_tracer_provider()
    recording = isinstance(provider, TracerProvider)
    if not recording:
        export = exporting()
        # recorded only when they go somewhere (OTEL_TRACES_SAMPLER still decides if set)
        sampler = None if export or os.environ.get("OTEL_TRACES_SAMPLER") else ALWAYS_OFF
        sdk = TracerProvider(
            resource=Resource.create(
                {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service}
            ),
            sampler=sampler,
        )
        if export:  # imported only then: it brings protobuf and requests along
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            sdk.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(sdk)
        recording = export or sampler is None
    _instrument_clients(database=recording)
    _state["recording"] = recording
    _state["configured"] = True
    return True


def _instrument_clients(*, database: bool) -> None:
    """httpx always (it passes the trace on); asyncpg only when spans are recorded (a span per
    statement that nobody keeps is pure cost)."""
    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(request_hook=_scrub_url, async_request_hook=_scrub_url_async)
    if database:
        pg = AsyncPGInstrumentor()
        if not pg.is_instrumented_by_opentelemetry:
            pg.instrument()


def _scrub_url(span: Span, request: Any) -> None:
    """A client span keeps scheme, host and path: a query string can carry a secret or data."""
    if span.is_recording():
        url = request.url
        safe = f"{url.scheme}://{url.host}{f':{url.port}' if url.port else ''}{url.path}"
        span.set_attribute("http.url", safe)
        span.set_attribute("url.full", safe)


async def _scrub_url_async(span: Span, request: Any) -> None:
    _scrub_url(span, request)


# -- carrying a trace across stored work ----------------------------------------------------


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (None outside any trace)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id (32 hex digits) of a well-formed ``traceparent``."""
    if not traceparent:
        return None
    ctx = trace.get_current_span(_W3C.extract({"traceparent": traceparent})).get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def _parent(traceparent: str | None) -> otel_context.Context | None:
    return _W3C.extract({"traceparent": traceparent}) if traceparent else None


@contextmanager
def span_from(
    name: str,
    traceparent: str | None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    also: Sequence[str | None] = (),
    attributes: dict[str, str | int] | None = None,
) -> Iterator[Span]:
    """A span that continues the stored ``traceparent`` (a new trace without one), linked to
    the other traces it works for (``also``: a batch of events from several requests)."""
    links = []
    for other in also:
        if other and other != traceparent:
            ctx = trace.get_current_span(_W3C.extract({"traceparent": other})).get_span_context()
            if ctx.is_valid:
                links.append(Link(ctx))
    with tracer.start_as_current_span(
        name,
        context=_parent(traceparent),
        kind=kind,
        links=links,
        attributes=attributes,
        record_exception=False,  # an exception's message can quote stored data
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            if span.is_recording():
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


# -- incoming requests -----------------------------------------------------------------------

NOT_TRACED = frozenset({"/healthz", "/readyz", "/metrics"})


class ServerSpans:
    """The server span of each request, continuing the caller's W3C trace (``RequestObserver``
    opens and closes it). It starts as the method alone and is named after the route template
    when the request is answered, so a span never carries a path or a query.

    Cheap on purpose (every request, the FHIR fast path's too): when nothing is recorded (no
    exporter: the default), the span is a bare span context (the caller's trace id, a new
    span id, the caller's sampled flag passed on), with no sampler and no SDK span."""

    def __init__(self) -> None:
        self._tracer: trace.Tracer | None = None
        self._recording = False

    def open(self, scope: dict[str, Any]) -> tuple[Span, object]:
        if self._tracer is None:  # the provider is set by now (setup_tracing)
            self._tracer = trace.get_tracer_provider().get_tracer("closedloop")
            self._recording = _state.get("recording", True)
        carrier: dict[str, str] | None = None
        for key, value in scope["headers"]:
            if key == b"traceparent" or key == b"tracestate":
                carrier = carrier or {}
                carrier[key.decode()] = value.decode("latin-1")
        parent = _W3C.extract(carrier) if carrier else None
        if self._recording:
            span = self._tracer.start_span(scope["method"], context=parent, kind=SpanKind.SERVER)
        else:
            caller = trace.get_current_span(parent).get_span_context() if parent else None
            span = NonRecordingSpan(
                SpanContext(
                    trace_id=caller.trace_id
                    if caller and caller.is_valid
                    else _ids.generate_trace_id(),
                    span_id=_ids.generate_span_id(),
                    is_remote=False,
                    trace_flags=caller.trace_flags if caller else TraceFlags(0),
                    trace_state=caller.trace_state if caller else None,
                )
            )
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    @staticmethod
    def close(span: Span, token: object, method: str, route: str, status: int) -> None:
        if span.is_recording():
            span.update_name(f"{method} {route}")
            span.set_attributes(
                {
                    "http.request.method": method,
                    "http.route": route,
                    "http.response.status_code": status,
                }
            )
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        otel_context.detach(token)  # type: ignore[arg-type]
