"""Work that cannot be delivered backs off instead of spinning, on both databases: a failing
receiver with several queued events, a restart in the middle of a backoff, a subscription whose
processing keeps failing, and the email/sms channels when their settings are missing (refused
at creation; a subscription already on one goes to ``error`` and is never retried). The worker's
database statements are counted to tell a backoff from a hot loop."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from closedloop.fhir.instant import now_us
from closedloop.testing import Receiver, app_client, database_url_for
from fastapi import FastAPI
from notifier.app import create_app
from notifier.settings import Settings
from notifier.subscriptions.tables import notification_events, subscription_state
from sqlalchemy import event, select

from .test_people import people_subscription
from .test_subscriptions import EVENTS_AUTH, EVENTS_TOKEN, FHIR_JSON, subscription, task_event

SMTP_SET = {"smtp_host": "127.0.0.1", "smtp_port": 9}  # configured; nobody needs to answer


@pytest.fixture
async def db_url(backend: str, postgres_admin_url: str) -> AsyncIterator[str]:
    """A database of its own per test: the statement counts see only that test's work."""
    async with database_url_for(backend, postgres_admin_url) as url:
        yield url


def settings(database_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "allow_loopback_endpoints": True,
        "retry_initial_seconds": 0.5,
        "retry_max_seconds": 2.0,
        "referral_url": "http://referrals.test/fhir",
        "events_token": EVENTS_TOKEN,
    }  # the default poll period (0.5 s): what an idle worker costs is part of the test
    return Settings(**{**values, **extra})


@asynccontextmanager
async def notifier(cfg: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(cfg)
    async with app_client(app, headers=EVENTS_AUTH) as client:
        yield app, client


@contextmanager
def statements(app: FastAPI) -> Iterator[list[int]]:
    """Count the SQL statements the app runs inside the block (``counted[0]``)."""
    counted = [0]

    def count(*_: Any) -> None:
        counted[0] += 1

    engine = app.state.fhir.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def state_of(app: FastAPI, sub_id: str) -> Any:
    async with app.state.fhir.db.read() as conn:
        return (
            await conn.execute(
                select(subscription_state).where(subscription_state.c.subscription_id == sub_id)
            )
        ).first()


async def events_of(app: FastAPI, sub_id: str) -> list[Any]:
    e = notification_events.c
    async with app.state.fhir.db.read() as conn:
        return list(
            (
                await conn.execute(
                    select(notification_events)
                    .where(e.subscription_id == sub_id)
                    .order_by(e.event_number)
                )
            ).all()
        )


async def active_rest_hook(client: httpx.AsyncClient, rx: Receiver) -> str:
    r = await client.post("/fhir/Subscription", json=subscription(rx.url), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    sub_id = str(r.json()["id"])
    await rx.wait_for(len(rx.received) + 1)  # the handshake
    await wait_status(client, sub_id, "active")
    return sub_id


async def wait_status(client: httpx.AsyncClient, sub_id: str, status: str) -> dict:
    for _ in range(250):
        sub = (await client.get(f"/fhir/Subscription/{sub_id}")).json()
        if sub["status"] == status:
            return dict(sub)
        await asyncio.sleep(0.02)
    raise AssertionError(f"Subscription/{sub_id} never became {status}: {sub}")


async def queue_events(client: httpx.AsyncClient, count: int) -> None:
    task_id = f"t-{uuid.uuid4().hex[:8]}"
    for version in range(1, count + 1):
        r = await client.post("/events", json=task_event(task_id, "requested", version))
        assert r.status_code == 200 and r.json()["matched"] >= 1, r.text


async def test_failing_receiver_backs_off_with_queued_events(db_url: str) -> None:
    async with Receiver() as rx, notifier(settings(db_url)) as (app, client):
        sub_id = await active_rest_hook(client, rx)
        rx.fail_with = 503
        await queue_events(client, 5)
        await asyncio.sleep(1.0)  # the first attempts fail and back off
        with statements(app) as counted:
            await asyncio.sleep(2.0)
        # backing off: a few attempts and polls (a hot loop ran thousands of statements)
        assert counted[0] < 120, f"{counted[0]} statements in 2 s while nothing is deliverable"
        rows = await events_of(app, sub_id)
        assert rows[0].attempts >= 2 and rows[0].last_error == "the endpoint answered HTTP 503"
        assert all(r.attempts == 0 for r in rows[1:])  # later events wait for the first
        state = await state_of(app, sub_id)
        assert state.next_due_at == rows[0].next_attempt_at  # due when the first event is
        rx.fail_with = None  # the receiver is back: everything goes out, in order
        bundles = await rx.wait_for(1 + 5, timeout=10)
        numbers = [
            int(p["part"][0]["valueString"])
            for b in bundles[1:]
            for p in b["entry"][0]["resource"]["parameter"]
            if p["name"] == "notification-event"
        ]
        assert numbers == [1, 2, 3, 4, 5]


async def test_backoff_survives_a_restart(db_url: str) -> None:
    cfg = settings(db_url, retry_initial_seconds=30.0, retry_max_seconds=60.0)
    async with Receiver() as rx:
        async with notifier(cfg) as (app, client):
            sub_id = await active_rest_hook(client, rx)
            rx.fail_with = 503
            await queue_events(client, 3)
            for _ in range(250):
                rows = await events_of(app, sub_id)
                if rows[0].attempts == 1:
                    break
                await asyncio.sleep(0.02)
            retry_at = rows[0].next_attempt_at
            assert retry_at > now_us() + 10_000_000  # 15-30 s away
            for _ in range(250):  # the worker has scheduled the subscription for the retry
                if (await state_of(app, sub_id)).next_due_at == retry_at:
                    break
                await asyncio.sleep(0.02)
        async with notifier(cfg) as (app, client):  # a restart: the backoff is in the database
            with statements(app) as counted:
                await asyncio.sleep(1.5)
            assert counted[0] < 60, f"{counted[0]} statements in 1.5 s after a restart"
            rows = await events_of(app, sub_id)
            assert rows[0].attempts == 1 and rows[0].next_attempt_at == retry_at
            assert (await state_of(app, sub_id)).next_due_at == retry_at


async def test_a_subscription_that_fails_to_process_backs_off(db_url: str) -> None:
    async with Receiver() as rx, notifier(settings(db_url)) as (app, client):
        sub_id = await active_rest_hook(client, rx)

        async def broken_send(*_: Any, **__: Any) -> None:
            raise RuntimeError("a bug in a channel")

        app.state.delivery.channels.send = broken_send
        await queue_events(client, 2)  # each new event makes it due at once: new work
        for _ in range(250):
            state = await state_of(app, sub_id)
            if state.failures >= 1 and state.next_due_at > now_us():
                break
            await asyncio.sleep(0.02)
        assert state.failures >= 1 and state.next_due_at > now_us()
        assert state.lease_holder is None  # released with its backoff, for any process
        with statements(app) as counted:
            await asyncio.sleep(1.5)
        assert counted[0] < 60, f"{counted[0]} statements in 1.5 s"


async def test_unconfigured_channels_are_refused(db_url: str) -> None:
    async with notifier(settings(db_url)) as (_app, client):
        for body, setting in (
            (people_subscription("mailto:intake@foodbank.test", "email", "cbo"), "SMTP_HOST"),
            (people_subscription("tel:+15551234567", "sms", "patient"), "SMS_API_URL"),
        ):
            r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
            assert r.status_code == 400, r.text
            issue = r.json()["issue"][0]
            assert f"NOTIFIER_{setting}" in issue["diagnostics"]
            assert "not configured" in issue["diagnostics"]
            assert issue["expression"] == ["Subscription.channel.type"]
        stored = (await client.get("/fhir/Subscription?_count=1000")).json().get("entry", [])
        assert all(e["resource"]["channel"]["type"] == "rest-hook" for e in stored)
    async with notifier(settings(db_url, **SMTP_SET)) as (_app, client):
        body = people_subscription("mailto:someone", "email", "cbo")
        r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 400 and "not a single email address" in r.text


async def test_existing_subscription_on_an_unconfigured_channel_goes_to_error(
    db_url: str,
) -> None:
    body = people_subscription("mailto:intake@foodbank.test", "email", "cbo")
    async with notifier(settings(db_url, **SMTP_SET, delivery_enabled=False)) as (_, c):
        r = await c.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 201, r.text
        sub_id = r.json()["id"]
    async with notifier(settings(db_url)) as (app, client):  # SMTP unset now
        sub = await wait_status(client, sub_id, "error")  # at start-up, with nothing due
        assert "NOTIFIER_SMTP_HOST" in sub["error"] and "not retried" in sub["error"]
        await queue_events(client, 3)  # still counted, for $events; never sent
        with statements(app) as counted:
            await asyncio.sleep(1.5)
        assert counted[0] < 30, f"{counted[0]} statements in 1.5 s for an errored subscription"
        assert all(r.attempts == 0 for r in await events_of(app, sub_id))
        events = await client.get(f"/fhir/Subscription/{sub_id}/$events")
        assert events.status_code == 200 and len(events.json()["entry"]) == 1 + 3
        restart = {**sub, "status": "active"}
        restart.pop("error")
        r = await client.put(f"/fhir/Subscription/{sub_id}", json=restart, headers=FHIR_JSON)
        assert r.status_code == 400 and "NOTIFIER_SMTP_HOST" in r.text  # still not configured
        off = {**restart, "status": "off"}
        r = await client.put(f"/fhir/Subscription/{sub_id}", json=off, headers=FHIR_JSON)
        assert r.status_code == 200 and r.json()["status"] == "off"  # turning off always works


async def test_channel_unconfigured_on_the_delivering_process(db_url: str) -> None:
    """One notifier takes subscriptions (SMTP set, no worker), another delivers without SMTP:
    the deliverer sets the subscription to error on its first due work."""
    body = people_subscription("mailto:intake@foodbank.test", "email", "cbo")
    async with (
        notifier(settings(db_url)) as (deliverer, _),
        notifier(settings(db_url, **SMTP_SET, delivery_enabled=False)) as (_, front),
    ):
        r = await front.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 201, r.text
        sub_id = r.json()["id"]
        await queue_events(front, 3)
        sub = await wait_status(front, sub_id, "error")
        assert "NOTIFIER_SMTP_HOST" in sub["error"]
        started = time.monotonic()
        with statements(deliverer) as counted:
            await asyncio.sleep(1.5)
        assert counted[0] < 30, f"{counted[0]} statements in {time.monotonic() - started:.1f} s"
        assert all(r.attempts == 0 for r in await events_of(deliverer, sub_id))
