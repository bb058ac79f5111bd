"""Referral events: written with the change, delivered in order to a real HTTP receiver,
retried while it is down, never delivered twice by two referral-api instances."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx
from closedloop.testing import Receiver, app_client
from pydantic import SecretStr
from referral_api.app import create_app
from referral_api.settings import Settings

from .test_referral_loop import move, post, service_request, task

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def settings(database_url: str, sink: str) -> Settings:
    return Settings(
        database_url=database_url,
        event_sink_url=sink,
        event_retry_max_seconds=0.3,
        directory_url="http://127.0.0.1:9/fhir",
    )


def events_of(rx: Receiver) -> list[dict]:
    """Every event received, in order (a POST carries one event or a JSON array of them)."""
    return [e for _, body in rx.received for e in (body if isinstance(body, list) else [body])]


async def wait_events(rx: Receiver, count: int, timeout: float = 10.0) -> list[dict]:
    for _ in range(int(timeout / 0.02)):
        if len(events_of(rx)) >= count:
            return events_of(rx)
        await asyncio.sleep(0.02)
    raise AssertionError(f"received {len(events_of(rx))} of {count} events")


async def walk(client: httpx.AsyncClient) -> tuple[dict, dict]:
    patient = await post(client, {"resourceType": "Patient"})
    sr = await post(client, service_request(patient["id"]))
    t = await post(client, task(sr["id"], patient["id"]))
    t = await move(client, t, "accepted")
    t = await move(client, t, "in-progress")
    return sr, t


async def test_events_in_order_with_idempotency_keys(database_url: str) -> None:
    async with Receiver() as rx, app_client(create_app(settings(database_url, rx.url))) as c:
        sr, t = await walk(c)
        bodies = await wait_events(rx, 4)
        assert [(b["type"], b["versionId"]) for b in bodies] == [
            ("ServiceRequest.create", 1),
            ("Task.create", 1),
            ("Task.update", 2),
            ("Task.update", 3),
        ]
        assert [b["resource"]["status"] for b in bodies[1:]] == [
            "requested",
            "accepted",
            "in-progress",
        ]
        assert bodies[2]["previous"]["status"] == "requested"
        for headers, body in rx.received:
            ids = [e["id"] for e in (body if isinstance(body, list) else [body])]
            key = ids[0] if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"
            assert headers["idempotency-key"] == key
        assert bodies[1]["resourceId"] == t["id"] and bodies[0]["resourceId"] == sr["id"]


async def test_receiver_down_then_everything_in_order(database_url: str) -> None:
    async with Receiver() as rx, app_client(create_app(settings(database_url, rx.url))) as c:
        rx.fail_with = 503
        _sr, t = await walk(c)
        t = await move(c, t, "completed")  # the ServiceRequest follows: 6 events in all
        await asyncio.sleep(1.0)
        assert rx.received == []
        rx.fail_with = None
        bodies = await wait_events(rx, 6)
        types = [b["type"] for b in bodies]
        assert types == [
            "ServiceRequest.create",
            "Task.create",
            "Task.update",
            "Task.update",
            "Task.update",
            "ServiceRequest.update",
        ]
        assert bodies[-1]["resource"]["status"] == "completed"


async def test_two_instances_never_deliver_twice(database_url: str) -> None:
    async with AsyncExitStack() as stack:
        rx = await stack.enter_async_context(Receiver())
        a = await stack.enter_async_context(app_client(create_app(settings(database_url, rx.url))))
        b = await stack.enter_async_context(app_client(create_app(settings(database_url, rx.url))))
        for _ in range(3):
            await asyncio.gather(walk(a), walk(b))
        bodies = await wait_events(rx, 24)
        await asyncio.sleep(0.5)
        ids = [event["id"] for event in events_of(rx)]
        assert len(ids) == len(set(ids)) == 24
        # per resource, versions arrive in order
        seen: dict[str, int] = {}
        for body in bodies:
            assert body["versionId"] > seen.get(body["resourceId"], 0)
            seen[body["resourceId"]] = body["versionId"]


async def test_events_carry_the_sink_token(database_url: str) -> None:
    """The notifier only takes events with its secret (NOTIFIER_EVENTS_TOKEN): every post
    carries it as a bearer token."""
    async with Receiver() as rx:
        cfg = settings(database_url, rx.url)
        cfg.event_sink_token = SecretStr("s3")
        async with app_client(create_app(cfg)) as c:
            await walk(c)
            await wait_events(rx, 4)
    assert {headers["authorization"] for headers, _ in rx.received} == {"Bearer s3"}
