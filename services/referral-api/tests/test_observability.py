"""referral-api's ``/metrics`` and traces: the outbox's depth and lag while the event sink is
down and after it recovers, and each event carrying the trace of the request that made it
(stored with the event, in the event, and on the POST to the sink)."""

from __future__ import annotations

import asyncio

from closedloop.testing import Receiver, app_client
from prometheus_client.parser import text_string_to_metric_families
from referral_api.app import create_app

from .test_outbox import settings, wait_events
from .test_referral_loop import post, service_request

FHIR_JSON = {"Content-Type": "application/fhir+json"}
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


async def scrape(client) -> dict[tuple[str, tuple], float]:  # type: ignore[no-untyped-def]
    r = await client.get("/metrics")
    assert r.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


async def test_outbox_depth_lag_and_the_events_trace(database_url: str) -> None:
    async with Receiver() as rx, app_client(create_app(settings(database_url, rx.url))) as c:
        rx.fail_with = 503
        patient = await post(c, {"resourceType": "Patient"})
        r = await c.post(
            "/fhir/ServiceRequest",
            json=service_request(patient["id"]),
            headers={**FHIR_JSON, "traceparent": TRACEPARENT},
        )
        assert r.status_code == 201, r.text
        await asyncio.sleep(0.5)
        failed = ("referral_outbox_events_sent_total", (("outcome", "failed"),))
        for _ in range(200):  # the dispatcher tried, and the sink refused
            found = await scrape(c)
            if found.get(failed, 0) >= 1:
                break
            await asyncio.sleep(0.05)
        assert found[("referral_outbox_depth", ())] == 1
        assert 0.4 < found[("referral_outbox_lag_seconds", ())] < 60
        assert found[failed] >= 1
        rx.fail_with = None
        (event,) = await wait_events(rx, 1)
        # the event and its POST continue the request's trace
        assert event["traceparent"].split("-")[1] == TRACE_ID
        headers, _ = rx.received[0]
        assert headers["traceparent"].split("-")[1] == TRACE_ID
        for _ in range(100):  # the receiver answered; the event is marked delivered next
            found = await scrape(c)
            if found[("referral_outbox_depth", ())] == 0:
                break
            await asyncio.sleep(0.05)
        assert found[("referral_outbox_depth", ())] == 0
        assert found[("referral_outbox_lag_seconds", ())] == 0
        assert found[("referral_outbox_events_sent_total", (("outcome", "delivered"),))] == 1
        route = (("method", "POST"), ("route", "/fhir/ServiceRequest"), ("status", "201"))
        assert found[("closedloop_http_requests_total", route)] == 1
