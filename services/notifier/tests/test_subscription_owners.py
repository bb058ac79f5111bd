"""A Subscription is told only what its owner may read, and belongs to its owner's organization
(on both databases, authorization on, through the real HTTP API): two CBOs subscribe without
filters and each hears only of its own Tasks; a clinic hears of what it requested; another
organization's Subscription is not known to a CBO (404), an admin sees them all."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import Receiver, TokenIssuer, app_client, bearer
from fastapi import FastAPI
from notifier.app import create_app
from notifier.settings import Settings

from .test_subscriptions import EVENTS_TOKEN, FHIR_JSON, params, subscription, task_event

AUD = "http://testserver/fhir"
EVENTS = {"Authorization": f"Bearer {EVENTS_TOKEN}"}


@pytest.fixture(scope="module")
async def app(database_url: str, token_issuer: TokenIssuer) -> AsyncIterator[FastAPI]:
    yield create_app(
        Settings(
            database_url=database_url,
            allow_loopback_endpoints=True,
            retry_initial_seconds=0.05,
            delivery_poll_seconds=0.05,
            referral_url="http://referrals.test/fhir",
            events_token=EVENTS_TOKEN,
            **token_issuer.settings(AUD),
        )
    )


def party(issuer: TokenIssuer, role: str, org: str | None) -> dict[str, str]:
    organization = f"Organization/{org}" if org else None
    return bearer(issuer.token("system/*.cruds", AUD, role=role, organization=organization))


async def subscribe(client: httpx.AsyncClient, rx: Receiver, auth: dict[str, str]) -> str:
    r = await client.post(
        "/fhir/Subscription",
        json=subscription(rx.url, filter_=None),
        headers={**FHIR_JSON, **auth},
    )
    assert r.status_code == 201, r.text
    await rx.wait_for(1)  # the handshake
    return str(r.json()["id"])


def focus_ids(rx: Receiver) -> list[str]:
    out = []
    for _, bundle in rx.received:
        for event in params(bundle).get("notification-event", []):
            ref = next(p for p in event["part"] if p["name"] == "focus")["valueReference"]
            out.append(ref["reference"].rsplit("/", 1)[-1])
    return out


async def test_each_owner_hears_only_what_it_may_read(
    app: FastAPI, token_issuer: TokenIssuer
) -> None:
    run = uuid.uuid4().hex[:6]
    cbo_x, cbo_y, clinic = f"x-{run}", f"y-{run}", f"a-{run}"
    async with (
        app_client(app) as client,
        Receiver() as rx_x,
        Receiver() as rx_y,
        Receiver() as rx_clinic,
    ):
        sub_x = await subscribe(client, rx_x, party(token_issuer, "cbo", cbo_x))
        sub_y = await subscribe(client, rx_y, party(token_issuer, "cbo-staff", cbo_y))
        await subscribe(client, rx_clinic, party(token_issuer, "requester", clinic))
        events = []
        for n, owner in enumerate((cbo_x, cbo_y, cbo_x)):
            event = task_event(
                f"t{n}-{run}", "requested", 1, owner=f"Organization/{owner}", interaction="create"
            )
            # the first two were requested by the clinic, the third by another one
            requester = clinic if n < 2 else f"b-{run}"
            event["resource"]["requester"] = {"reference": f"Organization/{requester}"}
            events.append(event)
        r = await client.post("/events", json=events, headers=EVENTS)
        assert r.status_code == 200, r.text
        await rx_x.wait_for(2, timeout=10)
        await rx_y.wait_for(2, timeout=10)
        await rx_clinic.wait_for(2, timeout=10)
        await asyncio.sleep(0.3)  # anything not meant for them would have come by now
        assert sorted(focus_ids(rx_x)) == [f"t0-{run}", f"t2-{run}"]
        assert focus_ids(rx_y) == [f"t1-{run}"]
        assert sorted(focus_ids(rx_clinic)) == [f"t0-{run}", f"t1-{run}"]

        # a Subscription belongs to its owner's organization
        mine, theirs = party(token_issuer, "cbo", cbo_x), party(token_issuer, "cbo", cbo_y)
        assert (await client.get(f"/fhir/Subscription/{sub_x}", headers=mine)).status_code == 200
        assert (await client.get(f"/fhir/Subscription/{sub_x}", headers=theirs)).status_code == 404
        r = await client.get(f"/fhir/Subscription/{sub_x}/$events", headers=theirs)
        assert r.status_code == 404
        r = await client.get(f"/fhir/Subscription/{sub_x}/$status", headers=theirs)
        assert r.status_code == 404
        listed = (await client.get("/fhir/Subscription?_total=accurate", headers=theirs)).json()
        assert [e["resource"]["id"] for e in listed["entry"]] == [sub_y]
        assert listed["total"] == 1
        statuses = (await client.get("/fhir/Subscription/$status", headers=theirs)).json()
        assert len(statuses["entry"]) == 1
        r = await client.delete(f"/fhir/Subscription/{sub_x}", headers=theirs)
        assert r.status_code == 404
        admin = party(token_issuer, "admin", None)
        everything = (await client.get("/fhir/Subscription?_count=1000", headers=admin)).json()
        assert {sub_x, sub_y} <= {e["resource"]["id"] for e in everything["entry"]}


async def test_a_token_without_a_role_hears_nothing(
    app: FastAPI, token_issuer: TokenIssuer
) -> None:
    run = uuid.uuid4().hex[:6]
    async with app_client(app) as client, Receiver() as rx:
        auth = bearer(token_issuer.token("system/*.cruds", AUD, organization=f"Organization/{run}"))
        r = await client.post(
            "/fhir/Subscription",
            json=subscription(rx.url, filter_=None),
            headers={**FHIR_JSON, **auth},
        )
        assert r.status_code == 201, r.text
        await rx.wait_for(1)
        event = task_event(
            f"t-{run}", "requested", 1, owner=f"Organization/{run}", interaction="create"
        )
        assert (await client.post("/events", json=event, headers=EVENTS)).status_code == 200
        await asyncio.sleep(0.5)
        assert focus_ids(rx) == []
