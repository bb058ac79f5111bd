"""A Task's whole life passes the state machine, through HTTP on both databases: it is created
only in a start status (plain, conditional, in batch and transaction Bundles), a deleted Task's
id is never re-created, a referral Task is deleted only while a draft, a Task never changes
kind, and PATCH, old versions and If-Match races cannot move a Task out of a final status."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from closedloop.testing import app_client
from referral_api.app import create_app
from referral_api.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PATCH_JSON = {"Content-Type": "application/json-patch+json"}
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
FULFILL = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
IDS = "urn:test:task"


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(database_url=database_url, event_sink_url=""))) as c:
        yield c


def referral_task(status: str = "requested", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "identifier": [{"system": IDS, "value": str(uuid.uuid4())}],
        "status": status,
        "intent": "order",
        "code": FULFILL,
        "focus": {"reference": "ServiceRequest/not-stored-here"},
        "for": {"reference": "Patient/p1"},
        "authoredOn": "2026-11-20T10:00:00Z",
        "requester": {"reference": "Organization/clinic"},
        **extra,
    }


def patient_task(status: str = "ready") -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "status": status,
        "intent": "order",
        "priority": "routine",
        "authoredOn": "2026-11-20",
        "code": {"coding": [{"system": SDOHCC, "code": "general-information"}]},
        "description": "Do you have a way to get to the food bank?",
        "for": {"reference": "Patient/p1"},
        "owner": {"reference": "Patient/p1"},
        "requester": {"reference": "Organization/clinic"},
    }


def cl_code(response: httpx.Response) -> str:
    return str(response.json()["issue"][0]["details"]["coding"][0]["code"])


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/fhir/Task", json=body, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def put(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.put(f"/fhir/Task/{body['id']}", json=body, headers={**FHIR_JSON, **headers})


async def move(client: httpx.AsyncClient, task: dict[str, Any], status: str) -> dict[str, Any]:
    r = await put(client, {**task, "status": status})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def completed(client: httpx.AsyncClient) -> dict[str, Any]:
    task = await create(client, referral_task())
    return await move(client, await move(client, task, "accepted"), "completed")


async def statuses(client: httpx.AsyncClient, task_id: str) -> list[str | None]:
    """The Task's stored history, oldest first (None for a deletion)."""
    bundle = (await client.get(f"/fhir/Task/{task_id}/_history")).json()
    return [(e.get("resource") or {}).get("status") for e in reversed(bundle.get("entry", []))]


async def stored_with(client: httpx.AsyncClient, identifier: str) -> int:
    found = (await client.get(f"/fhir/Task?identifier={IDS}|{identifier}")).json()
    return len(found.get("entry", []))


class TestCreation:
    @pytest.mark.parametrize("status", ["draft", "requested"])
    async def test_a_referral_task_starts_requested_or_draft(
        self, client: httpx.AsyncClient, status: str
    ) -> None:
        await create(client, referral_task(status))

    @pytest.mark.parametrize(
        "status", ["accepted", "in-progress", "completed", "failed", "entered-in-error"]
    )
    async def test_a_referral_task_cannot_start_further_along(
        self, client: httpx.AsyncClient, status: str
    ) -> None:
        extra = {"statusReason": {"text": "why"}} if status == "failed" else {}
        body = referral_task(status, **extra)
        r = await client.post("/fhir/Task", json=body, headers=FHIR_JSON)
        assert r.status_code == 422, r.text
        assert cl_code(r) == "CL-6423"
        assert r.json()["issue"][0]["expression"] == ["Task.status"]
        assert await stored_with(client, body["identifier"][0]["value"]) == 0

    async def test_a_patient_task_starts_ready(self, client: httpx.AsyncClient) -> None:
        await create(client, patient_task("ready"))
        r = await client.post("/fhir/Task", json=patient_task("completed"), headers=FHIR_JSON)
        assert r.status_code == 422, r.text
        assert cl_code(r) == "CL-6423"

    async def test_put_and_conditional_writes_create_by_the_same_rule(
        self, client: httpx.AsyncClient
    ) -> None:
        body = referral_task("completed")
        ident = body["identifier"][0]["value"]
        r = await put(client, {**body, "id": str(uuid.uuid4())})
        assert r.status_code == 422 and cl_code(r) == "CL-6423", r.text
        r = await client.put(f"/fhir/Task?identifier={IDS}|{ident}", json=body, headers=FHIR_JSON)
        assert r.status_code == 422 and cl_code(r) == "CL-6423", r.text
        r = await client.post(
            "/fhir/Task",
            json=body,
            headers={**FHIR_JSON, "If-None-Exist": f"identifier={IDS}|{ident}"},
        )
        assert r.status_code == 422 and cl_code(r) == "CL-6423", r.text
        assert await stored_with(client, ident) == 0

    async def test_bundles_create_by_the_same_rule(self, client: httpx.AsyncClient) -> None:
        bad = referral_task("in-progress")
        ok = referral_task()
        entries = [
            {"resource": ok, "request": {"method": "POST", "url": "Task"}},
            {"resource": bad, "request": {"method": "POST", "url": "Task"}},
            {
                "resource": {**bad, "id": str(uuid.uuid4())},
                "request": {"method": "PUT", "url": f"Task/{uuid.uuid4()}"},
            },
        ]
        entries[2]["request"]["url"] = f"Task/{entries[2]['resource']['id']}"
        transaction = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        r = await client.post("/fhir", json=transaction, headers=FHIR_JSON)
        assert r.status_code == 422 and cl_code(r) == "CL-6423", r.text
        assert await stored_with(client, ok["identifier"][0]["value"]) == 0  # all rolled back

        batch = {**transaction, "type": "batch"}
        r = await client.post("/fhir", json=batch, headers=FHIR_JSON)
        assert r.status_code == 200, r.text
        assert [e["response"]["status"][:3] for e in r.json()["entry"]] == ["201", "422", "422"]
        assert await stored_with(client, bad["identifier"][0]["value"]) == 0


class TestDeletion:
    @pytest.mark.parametrize("path", ["accepted", "completed", "entered-in-error"])
    async def test_a_sent_referral_task_is_not_deleted(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        task = await create(client, referral_task())
        if path != "entered-in-error":
            task = await move(client, task, "accepted")
        task = await move(client, task, path) if path != "accepted" else task
        before = await statuses(client, task["id"])
        for attempt in (
            client.delete(f"/fhir/Task/{task['id']}"),
            client.delete(f"/fhir/Task?_id={task['id']}"),
        ):
            r = await attempt
            assert r.status_code == 409, r.text
            assert cl_code(r) == "CL-6411"
            assert "entered-in-error" in r.json()["issue"][0]["diagnostics"]
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": f"Task/{task['id']}"}}],
        }
        r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
        assert r.status_code == 409 and cl_code(r) == "CL-6411", r.text
        assert (await client.get(f"/fhir/Task/{task['id']}")).json()["status"] == path
        assert await statuses(client, task["id"]) == before

    async def test_a_draft_is_deleted_and_its_id_retired(self, client: httpx.AsyncClient) -> None:
        task = await create(client, referral_task("draft"))
        r = await client.delete(f"/fhir/Task/{task['id']}")
        assert r.status_code == 204, r.text
        for status in ("draft", "requested", "in-progress"):
            r = await put(client, {**task, "status": status})
            assert r.status_code == 409, r.text
            assert cl_code(r) == "CL-6410"
        assert await statuses(client, task["id"]) == ["draft", None]

    async def test_a_deleted_task_is_not_recreated_in_a_bundle(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await create(client, referral_task("draft"))
        resurrect = {
            "resource": {**task, "status": "in-progress"},
            "request": {"method": "PUT", "url": f"Task/{task['id']}"},
        }
        delete = {"request": {"method": "DELETE", "url": f"Task/{task['id']}"}}
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [delete, resurrect]}
        r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
        assert r.status_code == 409 and cl_code(r) == "CL-6410", r.text
        assert await statuses(client, task["id"]) == ["draft"]  # rolled back, delete and all
        r = await client.post("/fhir", json={**bundle, "type": "batch"}, headers=FHIR_JSON)
        assert [e["response"]["status"][:3] for e in r.json()["entry"]] == ["204", "409"]
        assert await statuses(client, task["id"]) == ["draft", None]

    async def test_a_completed_patient_task_deleted_stays_deleted(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await create(client, patient_task())
        task = await move(client, task, "completed")
        assert (await client.delete(f"/fhir/Task/{task['id']}")).status_code == 204
        r = await put(client, {**task, "status": "in-progress"})
        assert r.status_code == 409 and cl_code(r) == "CL-6410", r.text
        assert await statuses(client, task["id"]) == ["ready", "completed", None]

    async def test_a_plain_task_deleted_does_not_come_back_as_a_referral(
        self, client: httpx.AsyncClient
    ) -> None:
        plain = {**referral_task("completed"), "code": {"text": "file the paperwork"}}
        plain.pop("focus")
        task = await create(client, plain)
        assert (await client.delete(f"/fhir/Task/{task['id']}")).status_code == 204
        r = await put(client, referral_task("completed", id=task["id"]))
        assert r.status_code == 409 and cl_code(r) == "CL-6410", r.text


class TestNoWayAround:
    async def test_a_plain_task_does_not_become_a_referral(self, client: httpx.AsyncClient) -> None:
        plain = {**referral_task("completed"), "code": {"text": "file the paperwork"}}
        task = await create(client, plain)
        r = await put(client, {**task, "code": FULFILL})
        assert r.status_code == 422 and cl_code(r) == "CL-6424", r.text
        referral = await create(client, referral_task())
        r = await put(client, {**referral, "code": {"text": "something else"}})
        assert r.status_code == 422 and cl_code(r) == "CL-6424", r.text

    async def test_patch_cannot_leave_a_final_status(self, client: httpx.AsyncClient) -> None:
        task = await completed(client)
        ops = [{"op": "replace", "path": "/status", "value": "in-progress"}]
        r = await client.patch(f"/fhir/Task/{task['id']}", json=ops, headers=PATCH_JSON)
        assert r.status_code == 409 and cl_code(r) == "CL-6409", r.text
        binary = {
            "resourceType": "Binary",
            "contentType": "application/json-patch+json",
            "data": base64.b64encode(orjson.dumps(ops)).decode(),
        }
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": binary, "request": {"method": "PATCH", "url": f"Task/{task['id']}"}}
            ],
        }
        r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
        assert r.status_code == 409 and cl_code(r) == "CL-6409", r.text
        assert await statuses(client, task["id"]) == ["requested", "accepted", "completed"]

    async def test_an_old_version_cannot_be_put_back(self, client: httpx.AsyncClient) -> None:
        task = await completed(client)
        old = (await client.get(f"/fhir/Task/{task['id']}/_history/2")).json()
        assert old["status"] == "accepted"
        r = await put(client, old)
        assert r.status_code == 409 and cl_code(r) == "CL-6409", r.text
        r = await put(client, old, **{"If-Match": 'W/"2"'})
        assert r.status_code == 412, r.text
        r = await client.put(f"/fhir/Task/{task['id']}/_history/2", json=old, headers=FHIR_JSON)
        assert r.status_code in (404, 405), r.text
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": old,
                    "request": {"method": "PUT", "url": f"Task/{task['id']}/_history/2"},
                }
            ],
        }
        r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
        # a versioned URL is refused for a PUT entry before the state machine is asked
        assert r.status_code == 400 and cl_code(r) == "CL-2405", r.text
        bundle["entry"][0]["request"]["url"] = f"Task/{task['id']}"
        r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
        assert r.status_code == 409, r.text
        assert await statuses(client, task["id"]) == ["requested", "accepted", "completed"]

    async def test_if_match_races_have_one_winner(self, client: httpx.AsyncClient) -> None:
        task = await create(client, referral_task())
        accept = {**task, "status": "accepted"}
        reject = {**task, "status": "rejected", "statusReason": {"text": "At capacity"}}
        answers = await asyncio.gather(
            put(client, accept, **{"If-Match": 'W/"1"'}),
            put(client, reject, **{"If-Match": 'W/"1"'}),
        )
        assert sorted(r.status_code for r in answers) == [200, 412], [r.text for r in answers]
        winner = next(r.json()["status"] for r in answers if r.status_code == 200)
        assert await statuses(client, task["id"]) == ["requested", winner]
