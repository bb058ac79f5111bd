"""One trace from the EHR's request to the subscriber, across real processes on PostgreSQL.

The EHR updates a referral Task with a W3C ``traceparent``; referral-api stores the trace with
the outbox event, its dispatcher posts the event under it, the notifier stores it with the
notification; the subscriber is down, so the notifier is restarted before the notification
gets through. The subscriber's POST still carries the EHR's trace id, and the spans every
process exported (OTLP, to a collector played by this test) form one tree: the delivery
span, in the restarted notifier, is a child of the intake span of the notifier before it.
``/metrics`` counted the failed and the successful rest-hook sends."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from contextlib import AsyncExitStack
from typing import Any

import httpx
from closedloop.testing import (
    LoopbackServer,
    Receiver,
    admin_auth,
)
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from ._services import referral_pipeline
from .test_notifier_e2e import BACKPORT, FHIR, new_referral

TRACE_ID = uuid.uuid4().hex
EHR_SPAN = secrets.token_hex(8)
TRACEPARENT = f"00-{TRACE_ID}-{EHR_SPAN}-01"
EVENTS_TOKEN = secrets.token_urlsafe(32)


class SpanCollector(LoopbackServer):
    """An OTLP/HTTP trace receiver: keeps every span exported to it."""

    path = ""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[dict[str, Any]] = []

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        {
                            "service": service,
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "error": span.status.code == 2,
                            "attributes": {a.key: a.value for a in span.attributes},
                        }
                    )
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def counters(client: httpx.AsyncClient, base: str, name: str) -> dict[tuple, float]:
    text = (await client.get(f"{base}/metrics")).text
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


async def test_one_trace_from_the_ehr_to_the_subscriber(postgres_admin_url: str) -> None:
    async with AsyncExitStack() as stack:
        collector = await stack.enter_async_context(SpanCollector())
        tracing = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        services = await stack.enter_async_context(
            referral_pipeline(
                postgres_admin_url,
                events_token=EVENTS_TOKEN,
                common_env=tracing,
                referral_env={"REFERRAL_API_EVENT_RETRY_MAX_SECONDS": "0.5"},
                notifier_env={
                    "NOTIFIER_ALLOW_LOOPBACK_ENDPOINTS": "true",
                    "NOTIFIER_RETRY_INITIAL_SECONDS": "0.1",
                    "NOTIFIER_RETRY_MAX_SECONDS": "0.3",
                    "NOTIFIER_DELIVERY_POLL_SECONDS": "0.1",
                },
            )
        )
        directory, referral, notifier = services.directory, services.referral, services.notifier
        rx = await stack.enter_async_context(Receiver())
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=10, auth=admin_auth()))
        base = f"{referral}/fhir"
        try:
            cbo_id = f"cbo-{uuid.uuid4().hex[:6]}"
            cbo = f"{directory}/fhir/Organization/{cbo_id}"
            await client.put(
                cbo,
                headers=FHIR,
                json={"resourceType": "Organization", "id": cbo_id, "active": True},
            )
            task = await new_referral(client, base, cbo)
            sub = await client.post(
                f"{notifier}/fhir/Subscription",
                headers=FHIR,
                json={
                    "resourceType": "Subscription",
                    "status": "requested",
                    "reason": "CBO inbox",
                    "criteria": "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task",
                    "_criteria": {
                        "extension": [
                            {
                                "url": f"{BACKPORT}/backport-filter-criteria",
                                "valueString": f"Task?owner={cbo}&status=accepted",
                            }
                        ]
                    },
                    "channel": {
                        "type": "rest-hook",
                        "endpoint": rx.url,
                        "payload": "application/fhir+json",
                    },
                },
            )
            assert sub.status_code == 201, sub.text
            await rx.wait_for(1)  # the handshake
            rx.fail_with = 503  # the subscriber is down

            # the EHR's request, in its trace (this process's httpx may be instrumented by an
            # earlier test, and would send a span of its own, unsampled: not here)
            with suppress_http_instrumentation():
                r = await client.put(
                    f"{base}/Task/{task['id']}",
                    headers={**FHIR, "traceparent": TRACEPARENT},
                    json={**task, "status": "accepted"},
                )
            assert r.status_code == 200, r.text
            assert r.request.headers["traceparent"] == TRACEPARENT

            failures = {}
            rest_hook = (("channel", "rest-hook"), ("kind", "notification"))
            for _ in range(200):  # the notifier tried and the subscriber refused
                failures = await counters(client, notifier, "notifier_delivery_failures_total")
                if failures.get(rest_hook, 0) >= 1:
                    break
                await asyncio.sleep(0.05)
            assert failures[rest_hook] >= 1

            # restarted with the notification still pending; the subscriber is back
            await services.stop_notifier()
            rx.fail_with = None
            await services.start_notifier()
            await rx.wait_for(2, timeout=20)
            headers, _bundle = rx.received[1]
            assert headers["traceparent"].split("-")[1] == TRACE_ID
            attempts = await counters(client, notifier, "notifier_delivery_attempts_total")
            assert attempts[rest_hook] >= 1
            outbox = await counters(client, referral, "referral_outbox_depth")
            assert outbox[()] == 0
        finally:
            await services.stop_notifier()  # its spans are flushed as it stops

        # the spans: one tree from the EHR's span to the subscriber's POST (each process
        # exports in batches: wait until every link of the chain has arrived)
        receiver_span = headers["traceparent"].split("-")[2]

        def ancestry(by_id: dict[str, dict]) -> tuple[list[str], str]:
            names, span_id = [], receiver_span
            while span_id in by_id:
                span = by_id[span_id]
                names.append(f"{span['service']}: {span['name']}")
                span_id = span["parent"]
            return names, span_id

        for _ in range(300):
            spans = [s for s in collector.spans if s["trace_id"] == TRACE_ID]
            by_id = {s["span_id"]: s for s in spans}
            chain, end = ancestry(by_id)
            if chain and end == EHR_SPAN:
                break
            await asyncio.sleep(0.1)
        assert end == EHR_SPAN, f"the chain ends at the EHR's span, not after {chain}"
        assert chain[0].startswith("notifier: POST")  # httpx's client span
        assert chain[1] == "notifier: notifier notification"
        assert chain[2] == "notifier: POST /events"  # the intake, before the restart
        assert "referral-api: outbox send" in chain
        assert chain[-1] == "referral-api: PUT /fhir/Task/{id}"
        delivery = by_id[by_id[receiver_span]["parent"]]
        assert not delivery["error"]  # the send that got through, in the restarted notifier
        # no span carries a query string, nor a resource id in its name
        assert all(task["id"] not in s["name"] for s in spans)
        assert not any("url.query" in s["attributes"] for s in spans)
