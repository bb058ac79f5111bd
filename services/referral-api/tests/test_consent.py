"""A referral reaches a CBO only with the patient's consent (REFERRAL_API_REQUIRE_CONSENT, on by
default), on both databases through the HTTP API: its ServiceRequest must cite an active
Consent of the patient that names the CBO, or no recipient at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from closedloop.testing import app_client
from fastapi import FastAPI
from referral_api.app import create_app
from referral_api.settings import Settings

FHIR = {"Content-Type": "application/fhir+json"}
TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    assert Settings().require_consent is True  # the default
    app: FastAPI = create_app(Settings(database_url=database_url, event_sink_url=""))
    async with app_client(app) as c:
        yield c


async def post(client: httpx.AsyncClient, body: dict[str, Any], status: int = 201) -> dict:
    r = await client.post(f"/fhir/{body['resourceType']}", json=body, headers=FHIR)
    assert r.status_code == status, r.text
    return dict(r.json())


def consent(patient: str, status: str = "active", actors: list[str] | None = None) -> dict:
    body: dict[str, Any] = {
        "resourceType": "Consent",
        "status": status,
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "policyRule": {"text": "share with the named CBO"},
    }
    if actors is not None:
        body["provision"] = {
            "type": "permit",
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {"reference": a},
                }
                for a in actors
            ],
        }
    return body


async def referral(client: httpx.AsyncClient, cited: list[str], patient: str) -> str:
    sr = await post(
        client,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "supportingInfo": [{"reference": f"Consent/{c}"} for c in cited],
        },
    )
    return str(sr["id"])


def task(sr: str, patient: str, owner: str, status: str = "requested") -> dict:
    return {
        "resourceType": "Task",
        "status": status,
        "intent": "order",
        "code": TASK_CODE,
        "focus": {"reference": f"ServiceRequest/{sr}"},
        "for": {"reference": f"Patient/{patient}"},
        "authoredOn": "2026-12-04",
        "requester": {"reference": "Organization/clinic"},
        "owner": {"reference": owner},
    }


async def test_no_consent_no_referral(client: httpx.AsyncClient) -> None:
    pid = (await post(client, {"resourceType": "Patient"}))["id"]
    sr = await referral(client, [], pid)
    r = await client.post("/fhir/Task", json=task(sr, pid, "Organization/cbo-1"), headers=FHIR)
    assert r.status_code == 422, r.text
    issue = r.json()["issue"][0]
    assert "Consent" in issue["diagnostics"] and issue["expression"] == ["Task.owner"]
    found = (await client.get(f"/fhir/Task?focus=ServiceRequest/{sr}")).json()
    assert found.get("total", len(found.get("entry", []))) == 0  # nothing stored
    # an open referral (no owner) and a draft wait for consent without it
    await post(client, {k: v for k, v in task(sr, pid, "x").items() if k != "owner"})
    draft = await post(client, task(sr, pid, "Organization/cbo-1", status="draft"))
    r = await client.put(
        f"/fhir/Task/{draft['id']}", json={**draft, "status": "requested"}, headers=FHIR
    )
    assert r.status_code == 422, r.text


async def test_the_consent_must_cover_the_recipient(client: httpx.AsyncClient) -> None:
    pid = (await post(client, {"resourceType": "Patient"}))["id"]
    other = (await post(client, {"resourceType": "Patient"}))["id"]
    for_cbo1 = (await post(client, consent(pid, actors=["Organization/cbo-1"])))["id"]
    revoked = (await post(client, consent(pid, status="inactive")))["id"]
    not_theirs = (await post(client, consent(other)))["id"]
    sr = await referral(client, [for_cbo1, revoked, not_theirs], pid)
    r = await client.post("/fhir/Task", json=task(sr, pid, "Organization/cbo-2"), headers=FHIR)
    assert r.status_code == 422, r.text
    sent = await post(client, task(sr, pid, "Organization/cbo-1"))
    # handing it to a CBO the consent does not name is refused too
    r = await client.put(
        f"/fhir/Task/{sent['id']}",
        json={**sent, "owner": {"reference": "Organization/cbo-2"}},
        headers=FHIR,
    )
    assert r.status_code == 422, r.text
    # only an inactive or another patient's consent: refused
    sr2 = await referral(client, [revoked, not_theirs], pid)
    r = await client.post("/fhir/Task", json=task(sr2, pid, "Organization/cbo-1"), headers=FHIR)
    assert r.status_code == 422, r.text


async def test_a_consent_naming_nobody_covers_any_recipient(client: httpx.AsyncClient) -> None:
    pid = (await post(client, {"resourceType": "Patient"}))["id"]
    general = (await post(client, consent(pid)))["id"]
    sr = await referral(client, [general], pid)
    await post(client, task(sr, pid, "Organization/cbo-9"))


async def test_one_transaction_carries_the_consent_with_the_referral(
    client: httpx.AsyncClient,
) -> None:
    pid = (await post(client, {"resourceType": "Patient"}))["id"]
    c, s = (
        "urn:uuid:0e0e0e0e-0000-4000-8000-000000000001",
        "urn:uuid:0e0e0e0e-0000-4000-8000-000000000002",
    )
    sr_body = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "supportingInfo": [{"reference": c}],
    }
    the_task = {**task("x", pid, "Organization/cbo-3"), "focus": {"reference": s}}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": c,
                "resource": consent(pid, actors=["Organization/cbo-3"]),
                "request": {"method": "POST", "url": "Consent"},
            },
            {
                "fullUrl": s,
                "resource": sr_body,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {"resource": the_task, "request": {"method": "POST", "url": "Task"}},
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=FHIR)
    assert r.status_code == 200, r.text
    bundle["entry"][0]["resource"] = consent(pid, actors=["Organization/someone-else"])
    r = await client.post("/fhir", json=bundle, headers=FHIR)
    assert r.status_code == 422, r.text
