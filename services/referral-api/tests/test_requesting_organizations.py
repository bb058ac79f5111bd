"""The requester's Organization of each referral, kept at write time (``access.requesters``),
on both databases: a requester sees a Task through its PractitionerRole however the two were
written (the role after the Task, the role moved to another clinic, the role deleted, the
requester changed), and the migration's backfill gives the same rows the writes keep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from closedloop.testing import TokenIssuer, app_client, bearer
from fastapi import FastAPI
from referral_api.access.requesters import fill, requesting_organizations
from referral_api.app import create_app
from referral_api.settings import Settings
from sqlalchemy import delete, select, text

AUD = "http://testserver/fhir"
FHIR = {"Content-Type": "application/fhir+json"}
TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}


@pytest.fixture(scope="module")
async def app(database_url: str, token_issuer: TokenIssuer) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=database_url,
        event_sink_url="",
        directory_url="http://127.0.0.1:9/fhir",  # never asked: targets here are relative
        require_consent=False,  # not what this is about
        **token_issuer.settings(AUD),
    )
    yield create_app(settings)


def auth(issuer: TokenIssuer, role: str, org: str | None = None) -> dict[str, str]:
    organization = f"Organization/{org}" if org else None
    return bearer(issuer.token("system/*.cruds", AUD, role=role, organization=organization))


async def post(client: httpx.AsyncClient, who: dict, body: dict[str, Any]) -> str:
    r = await client.post(f"/fhir/{body['resourceType']}", json=body, headers={**FHIR, **who})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def put(client: httpx.AsyncClient, who: dict, body: dict[str, Any]) -> None:
    url = f"/fhir/{body['resourceType']}/{body['id']}"
    r = await client.put(url, json=body, headers={**FHIR, **who})
    assert r.status_code in (200, 201), r.text


def role(org: str, role_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "organization": {"reference": f"Organization/{org}"},
    }
    return {**body, "id": role_id} if role_id else body


async def referral(client: httpx.AsyncClient, admin: dict, requester: str) -> dict[str, Any]:
    pt = await post(client, admin, {"resourceType": "Patient"})
    sr = await post(
        client,
        admin,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]},
            "subject": {"reference": f"Patient/{pt}"},
            "requester": {"reference": requester},
        },
    )
    body = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": TASK_CODE,
        "focus": {"reference": f"ServiceRequest/{sr}"},
        "for": {"reference": f"Patient/{pt}"},
        "authoredOn": "2026-12-05",
        "requester": {"reference": requester},
        "owner": {"reference": "Organization/X"},
    }
    body["id"] = await post(client, admin, body)
    return body


async def sees(client: httpx.AsyncClient, who: dict, task_id: str) -> bool:
    """Whether ``who`` reads the Task, and finds it by search with a right total."""
    read = (await client.get(f"/fhir/Task/{task_id}", headers=who)).status_code
    r = await client.get(f"/fhir/Task?_id={task_id}&_total=accurate", headers=who)
    assert r.status_code == 200, r.text
    found = [e["resource"]["id"] for e in r.json().get("entry", [])]
    assert read in (200, 404) and (read == 200) == (found == [task_id])
    assert r.json()["total"] == len(found)
    return read == 200


async def test_a_role_written_after_the_task_moved_and_deleted(
    app: FastAPI, token_issuer: TokenIssuer
) -> None:
    admin = auth(token_issuer, "admin")
    a, b = auth(token_issuer, "requester", "A"), auth(token_issuer, "requester", "B")
    async with app_client(app) as client:
        # the Task names a PractitionerRole nobody has written yet: no clinic sees it
        task = await referral(client, admin, "PractitionerRole/later-role")
        assert not await sees(client, a, task["id"]) and not await sees(client, b, task["id"])
        await put(client, admin, role("A", "later-role"))
        assert await sees(client, a, task["id"]) and not await sees(client, b, task["id"])
        # the role moves to clinic B: the Task (and its ServiceRequest) go with it
        await put(client, admin, role("B", "later-role"))
        assert not await sees(client, a, task["id"]) and await sees(client, b, task["id"])
        sr = task["focus"]["reference"]
        r = await client.get(f"/fhir/{sr}", headers=b)
        assert r.status_code == 200, r.text
        assert (await client.get(f"/fhir/{sr}", headers=a)).status_code == 404
        r = await client.delete("/fhir/PractitionerRole/later-role", headers=admin)
        assert r.status_code in (200, 204), r.text
        assert not await sees(client, a, task["id"]) and not await sees(client, b, task["id"])


async def test_changing_the_requester_moves_the_referral(
    app: FastAPI, token_issuer: TokenIssuer
) -> None:
    admin = auth(token_issuer, "admin")
    a, b = auth(token_issuer, "requester", "A"), auth(token_issuer, "requester", "B")
    async with app_client(app) as client:
        role_b = await post(client, admin, role("B"))
        task = await referral(client, admin, "Organization/A")
        assert await sees(client, a, task["id"]) and not await sees(client, b, task["id"])
        await put(client, admin, {**task, "requester": {"reference": f"PractitionerRole/{role_b}"}})
        assert not await sees(client, a, task["id"]) and await sees(client, b, task["id"])
        # an update that leaves the requester alone keeps it where it is
        current = (await client.get(f"/fhir/Task/{task['id']}", headers=admin)).json()
        await put(client, admin, {**current, "description": "called the patient"})
        assert await sees(client, b, task["id"])


async def test_the_backfill_gives_the_rows_the_writes_keep(
    app: FastAPI, token_issuer: TokenIssuer
) -> None:
    """The migration fills the table with ``fill()`` from what is stored: that
    must be exactly what the writes kept, through Organizations and PractitionerRoles alike."""
    admin = auth(token_issuer, "admin")
    async with app_client(app) as client:
        role_a = await post(client, admin, role("A"))
        await referral(client, admin, f"PractitionerRole/{role_a}")
        await referral(client, admin, "Organization/B")
        t = requesting_organizations
        db = app.state.db
        async with db.read() as conn:
            kept = set((await conn.execute(select(t.c.res_pk, t.c.organization_id))).all())
        assert {org for _, org in kept} >= {"A", "B"}
        async with db.write() as conn:
            await conn.execute(delete(t))
            await conn.execute(fill())
        async with db.read() as conn:
            filled = set((await conn.execute(select(t.c.res_pk, t.c.organization_id))).all())
        assert filled == kept


async def test_a_task_written_while_its_role_moves_gets_the_new_clinic(
    app: FastAPI, token_issuer: TokenIssuer, database_url: str
) -> None:
    """PostgreSQL: a Task naming a PractitionerRole that another transaction is changing waits
    for that change (``FOR SHARE`` on the role's row) and takes the role's new clinic."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time")
    admin = auth(token_issuer, "admin")
    a, b = auth(token_issuer, "requester", "A"), auth(token_issuer, "requester", "B")
    async with app_client(app) as client:
        role_id = await post(client, admin, role("A"))
        db = app.state.db
        async with db.write() as conn:
            # another writer holds the role's row and moves its index entry to clinic B
            await conn.execute(
                text(
                    "UPDATE resources SET version_id = version_id "
                    "WHERE resource_type = 'PractitionerRole' AND id = :id"
                ),
                {"id": role_id},
            )
            await conn.execute(
                text(
                    "UPDATE sp_reference SET target_id = 'B' WHERE resource_type = "
                    "'PractitionerRole' AND param = 'organization' AND res_pk = "
                    "(SELECT pk FROM resources WHERE resource_type = 'PractitionerRole' "
                    "AND id = :id)"
                ),
                {"id": role_id},
            )
            writing = asyncio.create_task(referral(client, admin, f"PractitionerRole/{role_id}"))
            await asyncio.sleep(0.5)
            assert not writing.done()  # waiting for the role's row
        task = await asyncio.wait_for(writing, 10)
        assert await sees(client, b, task["id"]) and not await sees(client, a, task["id"])
