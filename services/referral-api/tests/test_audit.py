"""The audit trail on referral-api (both databases, authorization on, real HTTP API): a read, a
search, a create, a refused (403) and an unauthenticated (401) request each leave an AuditEvent
with who, which client, what and the outcome; admins search them, others may not; no resource
body reaches the logs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import TokenIssuer, app_client, bearer
from fastapi import FastAPI
from referral_api.app import create_app
from referral_api.settings import Settings

AUD = "http://testserver/fhir"
FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
async def app(database_url: str, token_issuer: TokenIssuer) -> AsyncIterator[FastAPI]:
    yield create_app(
        Settings(database_url=database_url, event_sink_url="", **token_issuer.settings(AUD))
    )


async def events(client: httpx.AsyncClient, admin: dict, query: str, at_least: int) -> list[dict]:
    """The AuditEvents matching ``query``, once the trail has written them (it writes in the
    background, within a fraction of a second)."""
    for _ in range(50):
        r = await client.get(f"/fhir/AuditEvent?{query}", headers=admin)
        assert r.status_code == 200, r.text
        found = [e["resource"] for e in r.json().get("entry", [])]
        if len(found) >= at_least:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(found)} AuditEvents for {query}, wanted {at_least}")


async def test_reads_searches_writes_and_refusals_are_audited(
    app: FastAPI, token_issuer: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    run = uuid.uuid4().hex[:8]
    family = f"Zyxwv{run}"
    admin = bearer(token_issuer.token("system/*.cruds", AUD, subject="ops", role="admin"))
    clinic = bearer(
        token_issuer.token(
            "system/*.cruds",
            AUD,
            subject=f"ehr-{run}",
            role="requester",
            organization=f"Organization/{run}",
        )
    )
    async with app_client(app) as client:
        created = await client.post(
            "/fhir/Patient",
            headers={**FHIR, **clinic},
            json={
                "resourceType": "Patient",
                "name": [{"family": family}],
                "managingOrganization": {"reference": f"Organization/{run}"},
            },
        )
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        assert (await client.get(f"/fhir/Patient/{pid}", headers=clinic)).status_code == 200
        assert (
            await client.get(f"/fhir/Patient?family={family}", headers=clinic)
        ).status_code == 200
        assert (await client.get("/fhir/Task/_history", headers=clinic)).status_code == 403
        assert (await client.get(f"/fhir/Patient/{pid}")).status_code == 401

        mine = await events(client, admin, f"agent=ehr-{run}", 4)
        by_action = {(e["action"], e["subtype"][0]["code"], e["outcome"]) for e in mine}
        assert ("C", "create", "0") in by_action
        assert ("R", "read", "0") in by_action
        assert ("E", "search", "0") in by_action
        assert ("E", "history-type", "4") in by_action
        read = next(e for e in mine if e["action"] == "R")
        assert read["entity"][0]["what"]["reference"] == f"Patient/{pid}"
        assert read["agent"][0]["who"]["identifier"]["value"] == f"ehr-{run}"
        assert read["agent"][0]["altId"] == f"ehr-{run}"
        assert read["agent"][1]["who"]["reference"] == f"Organization/{run}"
        # who touched this patient, including the request without a token
        touched = await events(client, admin, f"entity=Patient/{pid}", 4)
        assert any(e["outcomeDesc"] == "HTTP 401" for e in touched)
        one = touched[0]
        r = await client.get(f"/fhir/AuditEvent/{one['id']}", headers=admin)
        assert r.status_code == 200 and r.json()["id"] == one["id"]
        # filters, paging
        page = (
            await client.get(f"/fhir/AuditEvent?agent=ehr-{run}&_count=2", headers=admin)
        ).json()
        assert len(page["entry"]) == 2
        nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
        rest = (await client.get(nxt.removeprefix("http://testserver"), headers=admin)).json()
        assert {e["resource"]["id"] for e in rest["entry"]}.isdisjoint(
            {e["resource"]["id"] for e in page["entry"]}
        )
        assert (await client.get("/fhir/AuditEvent?nmae=x", headers=admin)).status_code == 400
        later = await events(client, admin, "date=ge2020-01-01&action=C&outcome=0", 1)
        assert all(e["action"] == "C" for e in later)
        # only admins read the trail
        assert (await client.get("/fhir/AuditEvent", headers=clinic)).status_code == 403
        assert (await client.get("/fhir/AuditEvent")).status_code == 401
    assert family not in caplog.text  # no body, no query string in any log line
