"""The directory is asked before the write transaction opens, never while it holds its locks.

A loopback proxy in front of the real directory-api process holds each directory request until
the test lets it go. While referral-api waits on it, another write goes through at once (SQLite
takes its write lock at BEGIN IMMEDIATE, so a transaction open during the wait would stall it for
the busy timeout) and, on PostgreSQL, no referral-api connection sits idle in a transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from closedloop.testing import LoopbackServer, app_client
from referral_api.app import create_app
from referral_api.settings import Settings
from sqlalchemy.engine import make_url

from .conftest import FHIR_JSON, Directory

TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}


class HeldProxy(LoopbackServer):
    """Forwards GETs to the directory, each held until ``release`` is set."""

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.arrived_at = datetime.now(UTC)
        self.base = f"http://127.0.0.1:{self.port}/fhir"

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.arrived_at = datetime.now(UTC)
        self.arrived.set()
        await self.release.wait()
        path = scope["path"].removeprefix("/fhir")
        # referral-api's own token goes on to the directory, as through any proxy
        forwarded = {k.decode(): v.decode() for k, v in scope["headers"] if k == b"authorization"}
        async with httpx.AsyncClient() as client:
            upstream = await client.get(f"{self.upstream}{path}", headers=forwarded)
        await send(
            {
                "type": "http.response.start",
                "status": upstream.status_code,
                "headers": [(b"content-type", b"application/fhir+json")],
            }
        )
        await send({"type": "http.response.body", "body": upstream.content})


@pytest.fixture
async def proxy(directory: Directory) -> AsyncIterator[HeldProxy]:
    async with HeldProxy(directory.base) as p:
        yield p


@pytest.fixture
async def client(database_url: str, proxy: HeldProxy) -> AsyncIterator[httpx.AsyncClient]:
    # consent is test_consent.py's business: these Tasks go straight to a directory target
    app = create_app(
        Settings(database_url=database_url, directory_url=proxy.base, require_consent=False)
    )
    async with app_client(app) as c:
        yield c


async def idle_in_transaction(database_url: str, since: datetime) -> int:
    """Connections idle in a transaction that began by ``since`` (one held across the
    directory call began before the call; the audit writer's brief ones begin later)."""
    url = make_url(database_url)
    conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid() "
                "AND xact_start <= $2",
                url.database,
                since,
            )
        )
    finally:
        await conn.close()


async def referral(client: httpx.AsyncClient) -> tuple[str, str]:
    patient = (
        await client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    ).json()["id"]
    sr = await client.post(
        "/fhir/ServiceRequest",
        headers=FHIR_JSON,
        json={
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]},
            "subject": {"reference": f"Patient/{patient}"},
        },
    )
    assert sr.status_code == 201, sr.text
    return patient, sr.json()["id"]


def task(patient: str, sr: str, owner: str) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": TASK_CODE,
        "focus": {"reference": f"ServiceRequest/{sr}"},
        "for": {"reference": f"Patient/{patient}"},
        "authoredOn": "2026-12-01",
        "requester": {"reference": "Organization/clinic"},
        "owner": {"reference": owner},
    }


@pytest.mark.parametrize("how", ["create", "update", "transaction"])
async def test_the_directory_is_asked_outside_the_transaction(
    client: httpx.AsyncClient, proxy: HeldProxy, backend: str, database_url: str, how: str
) -> None:
    patient, sr = await referral(client)
    body = task(patient, sr, f"{proxy.base}/Organization/cbo-food")
    if how == "create":
        sending = client.post("/fhir/Task", json=body, headers=FHIR_JSON)
    elif how == "update":  # a new owner: the stored Task is locked once the transaction opens
        proxy.release.set()
        created = (await client.post("/fhir/Task", json=body, headers=FHIR_JSON)).json()
        proxy.release.clear()
        proxy.arrived.clear()
        moved = {**created, "owner": {"reference": f"{proxy.base}/HealthcareService/hs-full"}}
        sending = client.put(f"/fhir/Task/{created['id']}", json=moved, headers=FHIR_JSON)
    else:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": body, "request": {"method": "POST", "url": "Task"}}],
        }
        sending = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    pending = asyncio.ensure_future(sending)
    try:
        await asyncio.wait_for(proxy.arrived.wait(), 10)
        # another write while referral-api waits on the directory: not stalled behind a lock
        other = client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
        r = await asyncio.wait_for(other, 5)
        assert r.status_code == 201, r.text
        if backend == "postgres":
            assert await idle_in_transaction(database_url, proxy.arrived_at) == 0
        assert not pending.done()
    finally:
        proxy.release.set()
    r = await asyncio.wait_for(pending, 10)
    assert r.status_code in (200, 201), r.text


async def test_an_unchanged_owner_is_not_asked_again(
    client: httpx.AsyncClient, proxy: HeldProxy
) -> None:
    """An update that keeps its owner (a CBO accepting) costs no directory call."""
    proxy.release.set()
    patient, sr = await referral(client)
    created = await client.post(
        "/fhir/Task",
        json=task(patient, sr, f"{proxy.base}/Organization/cbo-food"),
        headers=FHIR_JSON,
    )
    assert created.status_code == 201, created.text
    proxy.arrived.clear()
    accepted = {**created.json(), "status": "accepted"}
    r = await client.put(f"/fhir/Task/{accepted['id']}", json=accepted, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert not proxy.arrived.is_set()


async def test_a_refused_target_stores_nothing(client: httpx.AsyncClient, proxy: HeldProxy) -> None:
    proxy.release.set()
    patient, sr = await referral(client)
    body = task(patient, sr, f"{proxy.base}/Organization/cbo-closed")
    r = await client.post("/fhir/Task", json=body, headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    found = (await client.get("/fhir/Task", params={"patient": f"Patient/{patient}"})).json()
    assert found.get("entry", []) == []
