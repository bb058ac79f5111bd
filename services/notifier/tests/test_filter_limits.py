"""No single Subscription can stop event intake, on both databases: filters larger than the
limits are refused at creation (400), and a subscription whose stored filters cannot be
evaluated (too large, an unknown parameter, a value the database refuses) is set to ``error``
with the reason and left out of matching while ``POST /events`` goes on for everyone else."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import Receiver, app_client
from fastapi import FastAPI
from notifier.app import create_app
from notifier.settings import Settings
from notifier.subscriptions.spec import MAX_FILTER_CRITERIA, MAX_FILTER_VALUES
from notifier.subscriptions.tables import subscription_state
from sqlalchemy import select, update

from .test_subscriptions import EVENTS_AUTH, EVENTS_TOKEN, FHIR_JSON, subscription, task_event


@pytest.fixture(scope="module")
async def notifier(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = Settings(
        database_url=database_url,
        allow_loopback_endpoints=True,
        retry_initial_seconds=0.05,
        retry_max_seconds=0.2,
        delivery_poll_seconds=0.05,
        referral_url="http://referrals.test/fhir",
        events_token=EVENTS_TOKEN,
    )
    app = create_app(settings)
    async with app_client(app, headers=EVENTS_AUTH) as client:
        yield app, client


def owners(count: int, prefix: str = "o") -> str:
    return ",".join(f"Organization/{prefix}-{i}" for i in range(count))


@pytest.mark.parametrize(
    ("filter_", "needle"),
    [
        (
            f"Task?owner={owners(600)}",
            f"filter parameter 'owner' has 600 values; at most {MAX_FILTER_VALUES}",
        ),
        (
            "Task?"
            + "&".join(f"owner={owners(2, str(i))}" for i in range(MAX_FILTER_CRITERIA + 1)),
            f"the filters have {MAX_FILTER_CRITERIA + 1} parameters; at most {MAX_FILTER_CRITERIA}",
        ),
        (  # within the filter limits, past the search's own cap for one search
            "Task?"
            + "&".join(
                f"owner={owners(MAX_FILTER_VALUES, str(i))}" for i in range(MAX_FILTER_CRITERIA)
            ),
            "at most 400 are allowed in one search",
        ),
    ],
)
async def test_oversized_filters_are_refused(
    notifier: tuple[FastAPI, httpx.AsyncClient], filter_: str, needle: str
) -> None:
    _, client = notifier
    body = subscription("http://127.0.0.1:9/hook", filter_=filter_)
    r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert needle in issue["diagnostics"] and issue["diagnostics"].startswith("CL-8406")
    assert issue["expression"] == ["Subscription.criteria.extension"]


async def test_filters_at_the_limits_are_accepted(
    notifier: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = notifier
    one = f"Task?owner={owners(MAX_FILTER_VALUES)}"
    # one filter is one search, also held to the search caps (MAX_SEARCH_VALUES, 400)
    many = "Task?" + "&".join(f"owner={owners(20, str(i))}" for i in range(MAX_FILTER_CRITERIA - 1))
    for filter_ in (one, many):
        body = subscription("http://127.0.0.1:9/hook", filter_=filter_)
        r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 201, r.text
        sub_id = r.json()["id"]
        r = await client.post("/events", json=task_event(f"t-{uuid.uuid4().hex[:8]}", "ready", 1))
        assert r.status_code == 200, r.text
        assert (await client.delete(f"/fhir/Subscription/{sub_id}")).status_code in (200, 204)


async def set_criteria(app: FastAPI, sub_id: str, criteria: str) -> None:
    """Store filters the API would refuse, as an older version or a direct write might have."""
    s = subscription_state.c
    async with app.state.fhir.db.write() as conn:
        await conn.execute(
            update(subscription_state).where(s.subscription_id == sub_id).values(criteria=criteria)
        )


async def events_count(app: FastAPI, sub_id: str) -> int:
    s = subscription_state.c
    async with app.state.fhir.db.read() as conn:
        return int(
            (
                await conn.execute(select(s.events_count).where(s.subscription_id == sub_id))
            ).scalar_one()
        )


async def test_a_broken_subscription_does_not_stop_intake(
    notifier: tuple[FastAPI, httpx.AsyncClient], backend: str
) -> None:
    app, client = notifier
    async with Receiver() as rx:
        ids = {}
        for name in ("healthy", "oversized", "unknown", "refused-by-database"):
            body = subscription(rx.url, filter_="Task?owner=Organization/cbo-1")
            r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
        await rx.wait_for(4)  # the handshakes
        # (its commas percent-encoded: the same 600 values once decoded)
        await set_criteria(app, ids["oversized"], f"owner={owners(600).replace(',', '%2C')}")
        await set_criteria(app, ids["unknown"], "no-such-parameter=1")
        # a NUL character: PostgreSQL refuses it inside the intake's transaction
        await set_criteria(app, ids["refused-by-database"], "owner=Organization/cbo-1%00x")
        task_id = f"t-{uuid.uuid4().hex[:8]}"
        r = await client.post("/events", json=task_event(task_id, "requested", 1))
        assert r.status_code == 200, r.text
        broken = ["oversized", "unknown"] + (
            ["refused-by-database"] if backend == "postgres" else []
        )
        assert r.json()["matched"] == 1
        first = await rx.wait_for(5)
        assert first[4]["entry"][0]["resource"]["parameter"][0]["valueReference"][
            "reference"
        ].endswith(ids["healthy"])
        reasons = {
            "oversized": f"filter parameter 'owner' has 600 values; at most {MAX_FILTER_VALUES}",
            "unknown": "no-such-parameter",
            "refused-by-database": "database error",
        }
        for name in broken:
            sub = (await client.get(f"/fhir/Subscription/{ids[name]}")).json()
            assert sub["status"] == "error", (name, sub)
            assert "filters could not be evaluated" in sub["error"]
            assert reasons[name] in sub["error"], (name, sub["error"])
        # set aside: the next events are neither matched against them nor failing
        r = await client.post("/events", json=task_event(task_id, "accepted", 2))
        assert r.status_code == 200 and r.json()["matched"] == 1, r.text
        await rx.wait_for(6)
        for name in broken:
            assert await events_count(app, ids[name]) == 0
        # the client fixes its filters: matched again
        sub = (await client.get(f"/fhir/Subscription/{ids['unknown']}")).json()
        fixed = {**sub, "status": "requested"}
        fixed.pop("error")
        r = await client.put(f"/fhir/Subscription/{ids['unknown']}", json=fixed, headers=FHIR_JSON)
        assert r.status_code == 200, r.text
        for _ in range(250):
            sub = (await client.get(f"/fhir/Subscription/{ids['unknown']}")).json()
            if sub["status"] == "active":
                break
            await asyncio.sleep(0.02)
        r = await client.post("/events", json=task_event(task_id, "in-progress", 3))
        assert r.status_code == 200 and r.json()["matched"] == 2, r.text
