"""The search parameters the SDOH Clinical Care IG adds: ServiceRequest?supporting-info and
Task?output (with _include=Task:output)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import app_client
from referral_api.app import create_app
from referral_api.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(database_url=database_url, event_sink_url=""))) as c:
        yield c


async def post(client: httpx.AsyncClient, body: dict) -> dict:
    r = await client.post(f"/fhir/{body['resourceType']}", json=body, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()


async def test_supporting_info_and_output(client: httpx.AsyncClient) -> None:
    patient = await post(client, {"resourceType": "Patient"})
    subject = {"reference": f"Patient/{patient['id']}"}
    consent = await post(
        client,
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {"coding": [{"code": "patient-privacy"}]},
            "category": [{"coding": [{"code": "59284-0", "system": "http://loinc.org"}]}],
            "patient": subject,
        },
    )
    sr = await post(
        client,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]},
            "subject": subject,
            "supportingInfo": [{"reference": f"Consent/{consent['id']}"}],
        },
    )
    procedure = await post(
        client, {"resourceType": "Procedure", "status": "completed", "subject": subject}
    )
    task = await post(
        client,
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": {
                "coding": [
                    {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
                ]
            },
            "for": subject,
            "authoredOn": "2026-11-20T10:00:00Z",
            "requester": {"reference": "Organization/clinic-1"},
            "focus": {"reference": f"ServiceRequest/{sr['id']}"},
            "output": [
                {
                    "type": {"coding": [{"code": "resulting-activity"}]},
                    "valueReference": {"reference": f"Procedure/{procedure['id']}"},
                }
            ],
        },
    )
    found = await client.get(f"/fhir/ServiceRequest?supporting-info=Consent/{consent['id']}")
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [sr["id"]]
    found = await client.get(f"/fhir/Task?output=Procedure/{procedure['id']}")
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [task["id"]]
    bundle = (await client.get(f"/fhir/Task?_id={task['id']}&_include=Task:output")).json()
    included = [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert included == [procedure["id"]]
