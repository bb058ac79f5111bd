"""Delivery guarantees in process, on both databases: heartbeats, two notifier instances on one
database sending each event once, and the move to ``error`` after the maximum retry age with
the events kept for $events."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack

from closedloop.testing import Receiver, app_client
from notifier.app import create_app
from notifier.settings import Settings

from .test_subscriptions import (
    EVENTS_AUTH,
    EVENTS_TOKEN,
    FHIR_JSON,
    params,
    subscription,
    task_event,
)


def settings(database_url: str, **extra: object) -> Settings:
    values: dict = {
        "database_url": database_url,
        "allow_loopback_endpoints": True,
        "retry_initial_seconds": 0.05,
        "retry_max_seconds": 0.2,
        "delivery_poll_seconds": 0.05,
        "referral_url": "http://referrals.test/fhir",
        "events_token": EVENTS_TOKEN,
    }
    return Settings(**{**values, **extra})


async def test_heartbeats(database_url: str) -> None:
    async with (
        Receiver() as rx,
        app_client(create_app(settings(database_url)), headers=EVENTS_AUTH) as client,
    ):
        body = subscription(
            rx.url,
            extension=[
                {
                    "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                    "backport-heartbeat-period",
                    "valueUnsignedInt": 1,
                }
            ],
        )
        r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 201, r.text
        bundles = await rx.wait_for(3, timeout=6)
        kinds = [params(b)["type"][0]["valueCode"] for b in bundles]
        assert kinds[0] == "handshake" and kinds[1:] == ["heartbeat", "heartbeat"]


async def test_two_instances_send_each_event_once(database_url: str) -> None:
    async with AsyncExitStack() as stack:
        rx = await stack.enter_async_context(Receiver())
        a = await stack.enter_async_context(
            app_client(create_app(settings(database_url)), headers=EVENTS_AUTH)
        )
        b = await stack.enter_async_context(
            app_client(create_app(settings(database_url)), headers=EVENTS_AUTH)
        )
        r = await a.post("/fhir/Subscription", json=subscription(rx.url), headers=FHIR_JSON)
        assert r.status_code == 201
        await rx.wait_for(1)
        task_id = f"t-{uuid.uuid4().hex[:8]}"
        statuses = ["requested", "accepted", "in-progress", "on-hold", "in-progress", "completed"]
        for version, status in enumerate(statuses, 1):
            client = a if version % 2 else b
            await client.post("/events", json=task_event(task_id, status, version))
        await rx.wait_for(1 + len(statuses))
        await asyncio.sleep(0.5)
        numbers = [
            int(params(body)["notification-event"][0]["part"][0]["valueString"])
            for _, body in rx.received[1:]
        ]
        assert numbers == list(range(1, len(statuses) + 1))


async def test_too_old_goes_to_error_and_keeps_events(database_url: str) -> None:
    cfg = settings(database_url, max_event_age_hours=0.3 / 3600)  # 0.3 s of retries
    async with Receiver() as rx, app_client(create_app(cfg), headers=EVENTS_AUTH) as client:
        r = await client.post("/fhir/Subscription", json=subscription(rx.url), headers=FHIR_JSON)
        sid = r.json()["id"]
        await rx.wait_for(1)
        rx.fail_with = 503
        task_id = f"t-{uuid.uuid4().hex[:8]}"
        await client.post("/events", json=task_event(task_id, "requested", 1))
        await client.post("/events", json=task_event(task_id, "accepted", 2))
        for _ in range(200):
            if (await client.get(f"/fhir/Subscription/{sid}")).json()["status"] == "error":
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the subscription never went to error")
        sub = (await client.get(f"/fhir/Subscription/{sid}")).json()
        assert "undeliverable" in sub["error"]
        events = (await client.get(f"/fhir/Subscription/{sid}/$events")).json()
        got = [
            p["part"][0]["valueString"]
            for p in events["entry"][0]["resource"]["parameter"]
            if p["name"] == "notification-event"
        ]
        assert got == ["1", "2"]
        # an errored subscription keeps counting; the client restarts it and gets the rest
        await client.post("/events", json=task_event(task_id, "in-progress", 3))
        rx.fail_with = None
        restart = {**sub, "status": "requested"}
        restart.pop("error", None)
        r = await client.put(f"/fhir/Subscription/{sid}", json=restart, headers=FHIR_JSON)
        assert r.status_code == 200, r.text
        bundles = await rx.wait_for(5, timeout=10)
        numbers = [
            params(b)["notification-event"][0]["part"][0]["valueString"]
            for b in bundles
            if "notification-event" in params(b)
        ]
        assert numbers == ["1", "2", "3"]
