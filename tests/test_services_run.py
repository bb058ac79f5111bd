"""End to end: the three services as real processes on PostgreSQL, each with its own database,
answering over HTTP on loopback only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from closedloop.testing import admin_auth, postgres_database, running_service

SERVICES = [
    ("referral_api", "REFERRAL_API_", "Patient"),
    ("directory_api", "DIRECTORY_API_", "Organization"),
    ("notifier", "NOTIFIER_", "Subscription"),
]


@pytest.fixture(scope="module")
async def bases(postgres_admin_url: str) -> AsyncIterator[dict[str, str]]:
    async with AsyncExitStack() as stack:
        out = {}
        for module, prefix, _ in SERVICES:
            db = await stack.enter_async_context(postgres_database(postgres_admin_url))
            out[module] = await stack.enter_async_context(running_service(module, prefix, db))
        yield out


async def test_each_service_is_ready_and_describes_itself(bases: dict[str, str]) -> None:
    async with httpx.AsyncClient(auth=admin_auth()) as client:
        for module, _, rtype in SERVICES:
            base = bases[module]
            assert (await client.get(f"{base}/healthz")).json()["status"] == "ok"
            assert (await client.get(f"{base}/readyz")).json()["status"] == "ready"
            cs = (await client.get(f"{base}/fhir/metadata")).json()
            assert rtype in {r["type"] for r in cs["rest"][0]["resource"]}


async def test_a_patient_round_trip_over_real_http(bases: dict[str, str]) -> None:
    base = bases["referral_api"]
    async with httpx.AsyncClient(auth=admin_auth()) as client:
        r = await client.post(
            f"{base}/fhir/Patient",
            json={"resourceType": "Patient", "name": [{"family": "Okafor"}]},
            headers={"Content-Type": "application/fhir+json"},
        )
        assert r.status_code == 201
        assert r.headers["location"].startswith(f"{base}/fhir/Patient/")
        got = await client.get(r.headers["location"].rsplit("/_history", 1)[0])
        assert got.json()["name"][0]["family"] == "Okafor"
        # each service owns its database: the Patient is not in directory-api
        other = await client.get(f"{bases['directory_api']}/fhir/Patient/{r.json()['id']}")
        assert other.status_code == 404


async def test_a_real_service_cuts_off_a_trickling_client(postgres_admin_url: str) -> None:
    """The body deadline and trusted hosts as configured from the environment in a real
    process: a body trickling in is answered 408 within BODY_TIMEOUT and the connection closed;
    an unknown Host never reaches the Location of a create."""
    import asyncio
    import time
    from urllib.parse import urlsplit

    prefix = "REFERRAL_API_"
    env = {f"{prefix}BODY_TIMEOUT": "1.5", f"{prefix}BODY_READ_TIMEOUT": "1"}
    async with (
        postgres_database(postgres_admin_url) as db,
        running_service("referral_api", prefix, db, env) as base,
    ):
        url = urlsplit(base)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        start = time.monotonic()
        token = admin_auth().token().encode()
        writer.write(
            b"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + token + b"\r\n"
            b"Content-Type: application/fhir+json\r\nContent-Length: 5000\r\n\r\n"
        )

        async def trickle() -> None:
            for _ in range(50):  # a byte every 0.25 s, for up to 12 s
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.25)

        sender = asyncio.create_task(trickle())
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 408"), head
            assert b"connection: close" in head.lower()
            assert time.monotonic() - start < 5
        finally:
            sender.cancel()
            writer.close()

        async with httpx.AsyncClient(auth=admin_auth()) as client:
            r = await client.post(
                f"{base}/fhir/Patient",
                json={"resourceType": "Patient"},
                headers={"Content-Type": "application/fhir+json", "Host": "evil.example"},
            )
            assert r.status_code == 201
            assert r.headers["location"].startswith(f"{base}/fhir/Patient/")
