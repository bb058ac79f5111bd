"""The closed loop through HTTP, on both databases: profiles enforced on write, the Task state
machine, the ServiceRequest following its Task, and referral targets checked against a real
directory-api process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import app_client, free_port
from referral_api.app import create_app
from referral_api.settings import Settings

from .conftest import FHIR_JSON, Directory

TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
FOOD = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"


@pytest.fixture(scope="module")
async def client(database_url: str, directory: Directory) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        directory_url=directory.base,
        event_sink_url="",
        require_consent=False,  # these Tasks go to directory targets; consent: test_consent.py
    )
    async with app_client(create_app(settings)) as c:
        yield c


async def post(client: httpx.AsyncClient, body: dict, status: int = 201) -> dict:
    r = await client.post(f"/fhir/{body['resourceType']}", json=body, headers=FHIR_JSON)
    assert r.status_code == status, r.text
    return r.json()


def service_request(patient_id: str, **extra: object) -> dict:
    return {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": FOOD, "code": "food-insecurity"}]}],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        **extra,
    }


def task(sr_id: str, patient_id: str, **extra: object) -> dict:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": TASK_CODE,
        "focus": {"reference": f"ServiceRequest/{sr_id}"},
        "for": {"reference": f"Patient/{patient_id}"},
        "authoredOn": "2026-11-20T10:00:00Z",
        "requester": {"reference": "PractitionerRole/dr-water"},
        **extra,
    }


async def referral(client: httpx.AsyncClient, **task_extra: object) -> tuple[dict, dict]:
    patient = await post(client, {"resourceType": "Patient"})
    sr = await post(client, service_request(patient["id"]))
    return sr, await post(client, task(sr["id"], patient["id"], **task_extra))


async def move(
    client: httpx.AsyncClient, body: dict, status: str, expect: int = 200, **extra: object
) -> dict:
    new = {**body, "status": status, **extra}
    r = await client.put(f"/fhir/Task/{body['id']}", json=new, headers=FHIR_JSON)
    assert r.status_code == expect, r.text
    return r.json()


async def status_of(client: httpx.AsyncClient, ref: str) -> str:
    return str((await client.get(f"/fhir/{ref}")).json()["status"])


class TestProfiles:
    @pytest.mark.parametrize(
        ("drop", "where"),
        [("code", "ServiceRequest.code"), ("subject", "ServiceRequest.subject")],
    )
    async def test_service_request_required(
        self, client: httpx.AsyncClient, drop: str, where: str
    ) -> None:
        body = service_request("p1")
        del body[drop]
        r = await client.post("/fhir/ServiceRequest", json=body, headers=FHIR_JSON)
        assert r.status_code in (400, 422)
        assert where in {e for i in r.json()["issue"] for e in i.get("expression", [])}

    async def test_service_request_bad_category_and_requester(
        self, client: httpx.AsyncClient
    ) -> None:
        body = service_request(
            "p1",
            category=[{"coding": [{"system": FOOD, "code": "hunger-games"}]}],
            requester={"reference": "Location/x"},
        )
        r = await client.post("/fhir/ServiceRequest", json=body, headers=FHIR_JSON)
        assert r.status_code == 422
        exprs = {e for i in r.json()["issue"] for e in i["expression"]}
        assert exprs == {"ServiceRequest.category[0]", "ServiceRequest.requester"}

    @pytest.mark.parametrize(
        ("change", "where"),
        [
            ({"requester": None}, "Task.requester"),
            ({"requester": {"reference": "Practitioner/p"}}, "Task.requester"),
            ({"authoredOn": None}, "Task.authoredOn"),
            ({"intent": "plan"}, "Task.intent"),
            ({"status": "received"}, "Task.status"),
            ({"focus": {"reference": "Patient/x"}}, "Task.focus"),
            ({"status": "rejected"}, "Task.statusReason.text"),
            (
                {
                    "output": [
                        {
                            "type": {"coding": [{"system": FOOD, "code": "resulting-activity"}]},
                            "valueReference": {"reference": "Observation/x"},
                        }
                    ]
                },
                "Task.output[0].valueReference",
            ),
        ],
    )
    async def test_referral_task_rules(
        self, client: httpx.AsyncClient, change: dict, where: str
    ) -> None:
        body = {k: v for k, v in {**task("sr", "p"), **change}.items() if v is not None}
        r = await client.post("/fhir/Task", json=body, headers=FHIR_JSON)
        assert r.status_code == 422, r.text
        assert where in {e for i in r.json()["issue"] for e in i["expression"]}
        v = await client.post("/fhir/Task/$validate", json=body, headers=FHIR_JSON)
        assert v.status_code == 422 and v.json() == r.json()

    async def test_patient_task_rules(self, client: httpx.AsyncClient) -> None:
        body = {
            "resourceType": "Task",
            "status": "ready",
            "intent": "order",
            "priority": "routine",
            "authoredOn": "2026-11-20",
            "code": {"coding": [{"system": FOOD, "code": "make-contact"}]},
            "for": {"reference": "Patient/p"},
            "owner": {"reference": "Patient/p"},
            "requester": {"reference": "Organization/clinic"},
        }
        r = await client.post("/fhir/Task", json=body, headers=FHIR_JSON)
        assert r.status_code == 422
        assert {"Task.description", "Task.input"} <= {
            e for i in r.json()["issue"] for e in i["expression"]
        }
        ok = {
            **body,
            "description": "Call the food bank",
            "input": [
                {
                    "type": {"coding": [{"system": FOOD, "code": "contact-entity"}]},
                    "valueReference": {"reference": "HealthcareService/hs"},
                }
            ],
        }
        created = await post(client, ok)
        await move(client, created, "in-progress")
        await move(client, created, "requested", expect=422)  # not a patient Task status


class TestStateMachine:
    async def test_full_loop_closes_the_service_request(self, client: httpx.AsyncClient) -> None:
        sr, t = await referral(client)
        for status in ("accepted", "in-progress", "on-hold", "in-progress"):
            reason = (
                {"statusReason": {"text": "waiting for documents"}} if status == "on-hold" else {}
            )
            t = await move(
                client, {k: v for k, v in t.items() if k != "statusReason"}, status, **reason
            )
        assert await status_of(client, f"ServiceRequest/{sr['id']}") == "active"
        procedure = await post(
            client,
            {
                "resourceType": "Procedure",
                "status": "completed",
                "code": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]
                },
                "subject": sr["subject"],
                "basedOn": [{"reference": f"ServiceRequest/{sr['id']}"}],
                "performedDateTime": "2026-11-21",
            },
        )
        output = [
            {
                "type": {"coding": [{"system": FOOD, "code": "resulting-activity"}]},
                "valueReference": {"reference": f"Procedure/{procedure['id']}"},
            }
        ]
        t = await move(client, t, "completed", output=output)
        assert await status_of(client, f"ServiceRequest/{sr['id']}") == "completed"
        found = (
            await client.get(f"/fhir/Task?_id={t['id']}&_include=Task:output&_include=Task:focus")
        ).json()
        assert {e["resource"]["resourceType"] for e in found["entry"]} == {
            "Task",
            "Procedure",
            "ServiceRequest",
        }
        # completed is final
        r = await client.put(
            f"/fhir/Task/{t['id']}", json={**t, "status": "in-progress"}, headers=FHIR_JSON
        )
        assert r.status_code == 409
        assert r.json()["issue"][0]["expression"] == ["Task.status"]
        assert await status_of(client, f"Task/{t['id']}") == "completed"

    async def test_rejection_and_cancellation_revoke(self, client: httpx.AsyncClient) -> None:
        sr, t = await referral(client)
        await move(client, t, "rejected", expect=422)  # needs a reason
        await move(client, t, "rejected", statusReason={"text": "At capacity"})
        assert await status_of(client, f"ServiceRequest/{sr['id']}") == "revoked"
        sr2, t2 = await referral(client)
        t2 = await move(client, t2, "accepted")
        await move(client, t2, "cancelled", statusReason={"text": "Patient moved away"})
        assert await status_of(client, f"ServiceRequest/{sr2['id']}") == "revoked"

    async def test_illegal_moves(self, client: httpx.AsyncClient) -> None:
        sr, t = await referral(client)
        r = await client.put(
            f"/fhir/Task/{t['id']}", json={**t, "status": "completed"}, headers=FHIR_JSON
        )
        assert r.status_code == 409
        assert "requested" in r.json()["issue"][0]["diagnostics"]
        assert await status_of(client, f"Task/{t['id']}") == "requested"
        assert await status_of(client, f"ServiceRequest/{sr['id']}") == "active"
        await move(client, t, "entered-in-error")  # always allowed

    async def test_caller_setting_the_service_request_wins(self, client: httpx.AsyncClient) -> None:
        sr, t = await referral(client)
        t = await move(client, t, "accepted")
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {**t, "status": "completed"},
                    "request": {"method": "PUT", "url": f"Task/{t['id']}"},
                },
                {
                    "resource": {**sr, "status": "revoked"},
                    "request": {"method": "PUT", "url": f"ServiceRequest/{sr['id']}"},
                },
            ],
        }
        r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
        assert r.status_code == 200, r.text
        assert await status_of(client, f"ServiceRequest/{sr['id']}") == "revoked"


class TestReferralTargets:
    async def test_active_target_and_owner_searches(
        self, client: httpx.AsyncClient, directory: Directory
    ) -> None:
        _sr, t = await referral(client, owner={"reference": directory.cbo})
        by_url = (await client.get("/fhir/Task", params={"owner": directory.cbo})).json()
        by_ref = (await client.get("/fhir/Task?owner=Organization/cbo-food")).json()
        ids = {e["resource"]["id"] for e in by_url["entry"]}
        assert t["id"] in ids and ids == {e["resource"]["id"] for e in by_ref["entry"]}

    async def test_unknown_and_inactive_targets(
        self, client: httpx.AsyncClient, directory: Directory
    ) -> None:
        patient = await post(client, {"resourceType": "Patient"})
        for ref, code in (
            (f"{directory.base}/Organization/nope", "CL-7404"),
            (directory.closed_cbo, "CL-7410"),
            (f"{directory.base}/PractitionerRole/x", "CL-7422"),
        ):
            body = service_request(patient["id"], performer=[{"reference": ref}])
            r = await client.post("/fhir/ServiceRequest", json=body, headers=FHIR_JSON)
            assert r.status_code == 422, r.text
            assert r.json()["issue"][0]["details"]["coding"][0]["code"] == code

    async def test_full_program_warns(
        self, client: httpx.AsyncClient, directory: Directory
    ) -> None:
        patient = await post(client, {"resourceType": "Patient"})
        body = service_request(patient["id"], performer=[{"reference": directory.full_program}])
        r = await client.post(
            "/fhir/ServiceRequest",
            json=body,
            headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"},
        )
        assert r.status_code == 201
        warnings = [i for i in r.json()["issue"] if i["severity"] == "warning"]
        assert "no-capacity" in warnings[0]["diagnostics"]
        r = await client.post("/fhir/ServiceRequest", json=body, headers=FHIR_JSON)
        assert "no-capacity" in r.headers["warning"]


async def test_directory_down_is_503_and_nothing_stored(database_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/fhir"
    settings = Settings(
        database_url=database_url, directory_url=dead, event_sink_url="", directory_timeout=0.5
    )
    async with app_client(create_app(settings)) as client:
        marker = uuid.uuid4().hex
        body = service_request(
            "p1",
            performer=[{"reference": f"{dead}/Organization/x"}],
            identifier=[{"system": "urn:test", "value": marker}],
        )
        r = await client.post("/fhir/ServiceRequest", json=body, headers=FHIR_JSON)
        assert r.status_code == 503
        assert r.json()["issue"][0]["code"] == "transient"
        found = (await client.get(f"/fhir/ServiceRequest?identifier={marker}")).json()
        assert found["entry"] == []


async def test_polling_queries_from_the_ig(client: httpx.AsyncClient) -> None:
    sr, t = await referral(client, owner={"reference": "Organization/cbo-poll"})
    since = t["meta"]["lastUpdated"]
    t = await move(client, t, "accepted")
    polled = await client.get(
        "/fhir/Task", params={"owner": "Organization/cbo-poll", "_lastUpdated": f"gt{since}"}
    )
    assert [e["resource"]["id"] for e in polled.json()["entry"]] == [t["id"]]
    by_requester = await client.get(
        "/fhir/Task", params={"requester": "PractitionerRole/dr-water", "_id": t["id"]}
    )
    assert len(by_requester.json()["entry"]) == 1
    both = await client.get(f"/fhir/Task?_id={t['id']},nope&_include=Task:focus")
    assert {e["resource"]["id"] for e in both.json()["entry"]} == {t["id"], sr["id"]}
