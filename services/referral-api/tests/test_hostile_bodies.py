"""Odd but well-formed referral resources (the profile rules' corner cases) get a 4xx
OperationOutcome or are stored, never a 5xx, on create, $validate and as a Task's next version
(both databases). A guard for the profile and workflow rules, which read these bodies raw."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from closedloop.testing import app_client
from referral_api.app import create_app
from referral_api.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}
IG = "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
FULFILL = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
RESULT = {"coding": [{"system": SDOHCC, "code": "resulting-activity"}]}


def task(**extra: Any) -> dict[str, Any]:
    body = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": FULFILL,
        "focus": {"reference": "ServiceRequest/sr"},
        "for": {"reference": "Patient/p"},
        "authoredOn": "2026-11-20",
        "requester": {"reference": "Organization/clinic"},
        **extra,
    }
    return {k: v for k, v in body.items() if v is not None}


def claiming(rtype: str, profile: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": rtype, "meta": {"profile": [IG + profile]}, **extra}


BODIES = [
    task(output=[{"type": RESULT}]),
    task(output=[{"type": RESULT, "valueString": "a pantry visit"}]),
    task(output=[{"type": RESULT, "valueReference": {"display": "no reference"}}]),
    task(output=[{"type": RESULT, "valueReference": {"reference": "#contained"}}]),
    task(output=[{"type": RESULT, "valueReference": {"reference": "urn:uuid:1"}}]),
    task(focus={"identifier": {"value": "sr-1"}}),
    task(focus={"reference": "ServiceRequest/sr/_history/x"}),
    task(focus={"reference": "http://127.0.0.1:9/fhir/ServiceRequest/sr"}),
    task(status=None),
    task(status="received"),
    task(code={"text": "no coding"}, meta={"profile": [IG + "SDOHCC-TaskForReferralManagement"]}),
    task(
        meta={"profile": [IG + "SDOHCC-TaskForPatient", IG + "SDOHCC-TaskForReferralManagement|9"]}
    ),
    claiming("Task", "SDOHCC-TaskForPatient", status="ready", intent="order"),
    {"resourceType": "ServiceRequest"},
    {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"text": "x"},
        "subject": {"display": "no reference"},
        "category": [{"coding": [{"system": SDOHCC}]}, {"text": "x"}],
        "performer": [{"reference": "#x"}, {"type": "Organization"}],
    },
    claiming("Consent", "SDOHCC-Consent"),
    claiming("Consent", "SDOHCC-Consent", status="active", category=[{}], sourceUri="x"),
    claiming("Procedure", "SDOHCC-Procedure", status="completed", basedOn=[{"reference": "x"}]),
    claiming("Condition", "SDOHCC-Condition", category=[{"text": "x"}], code={}),
    claiming("Goal", "SDOHCC-Goal", subject={"reference": "Group/g"}),
]


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(database_url=database_url, event_sink_url=""))) as c:
        yield c


def expect_no_5xx(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b["resourceType"])
async def test_odd_bodies_are_answered(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    rtype = body["resourceType"]
    expect_no_5xx(await client.post(f"/fhir/{rtype}", json=body, headers=FHIR_JSON))
    expect_no_5xx(await client.post(f"/fhir/{rtype}/$validate", json=body, headers=FHIR_JSON))
    if rtype == "Task":
        created = await client.post("/fhir/Task", json=task(), headers=FHIR_JSON)
        assert created.status_code == 201, created.text
        next_version = {**body, "id": created.json()["id"]}
        r = await client.put(
            f"/fhir/Task/{next_version['id']}", json=next_version, headers=FHIR_JSON
        )
        expect_no_5xx(r)
