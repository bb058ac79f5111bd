"""End to end on PostgreSQL: directory-api and referral-api as real processes. An EHR refers a
patient to a CBO listed in the directory and the CBO walks the referral through every status;
then the directory goes down and a referral to it fails cleanly (503, nothing stored)."""

from __future__ import annotations

import uuid

import httpx
from closedloop.testing import admin_auth, postgres_database, running_service

from .test_notifier_e2e import consent_for

FHIR = {"Content-Type": "application/fhir+json"}
TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"


CONSENT_RECIPIENT = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
    ]
}


def referral_bundle(mrn: str, owner: str) -> dict:
    patient, sr = "urn:uuid:" + str(uuid.uuid4()), "urn:uuid:" + str(uuid.uuid4())
    consent = "urn:uuid:" + str(uuid.uuid4())
    # the patient's consent to share this referral with the CBO (REFERRAL_API_REQUIRE_CONSENT)
    permit = {
        **consent_for("x"),
        "patient": {"reference": patient},
        "provision": {
            "type": "permit",
            "actor": [{"role": CONSENT_RECIPIENT, "reference": {"reference": owner}}],
        },
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:mrn", "value": mrn}],
                },
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier=urn:mrn|{mrn}",
                },
            },
            {
                "fullUrl": sr,
                "resource": {
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "category": [{"coding": [{"system": SDOHCC, "code": "food-insecurity"}]}],
                    "code": {
                        "coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]
                    },
                    "subject": {"reference": patient},
                    "performer": [{"reference": owner}],
                    "supportingInfo": [{"reference": consent}],
                },
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {
                "resource": {
                    "resourceType": "Task",
                    "status": "requested",
                    "intent": "order",
                    "code": TASK_CODE,
                    "focus": {"reference": sr},
                    "for": {"reference": patient},
                    "authoredOn": "2026-11-22T09:00:00Z",
                    "requester": {"reference": "PractitionerRole/dr-water"},
                    "owner": {"reference": owner},
                },
                "request": {"method": "POST", "url": "Task"},
            },
            {
                "fullUrl": consent,
                "resource": permit,
                "request": {"method": "POST", "url": "Consent"},
            },
        ],
    }


async def put_status(
    client: httpx.AsyncClient,
    base: str,
    task: dict,
    status: str,
    expect: int = 200,
    **extra: object,
) -> dict:
    body = {**{k: v for k, v in task.items() if k != "statusReason"}, "status": status, **extra}
    r = await client.put(
        f"{base}/Task/{task['id']}",
        json=body,
        headers={**FHIR, "If-Match": f'W/"{task["meta"]["versionId"]}"'},
    )
    assert r.status_code == expect, r.text
    return r.json() if expect == 200 else task


async def refer(client: httpx.AsyncClient, base: str, owner: str) -> tuple[dict, dict]:
    r = await client.post(base, json=referral_bundle(uuid.uuid4().hex, owner), headers=FHIR)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    return entries[1]["resource"], entries[2]["resource"]


async def sr_status(client: httpx.AsyncClient, base: str, sr: dict) -> str:
    return str((await client.get(f"{base}/ServiceRequest/{sr['id']}")).json()["status"])


async def test_referral_loop_across_real_services(postgres_admin_url: str) -> None:
    async with (
        postgres_database(postgres_admin_url) as directory_db,
        postgres_database(postgres_admin_url) as referral_db,
    ):
        directory = running_service("directory_api", "DIRECTORY_API_", directory_db)
        directory_base = await directory.__aenter__()
        try:
            dir_fhir = f"{directory_base}/fhir"
            env = {"REFERRAL_API_DIRECTORY_URL": dir_fhir, "REFERRAL_API_EVENT_SINK_URL": ""}
            async with (
                running_service("referral_api", "REFERRAL_API_", referral_db, env) as referral,
                httpx.AsyncClient(auth=admin_auth()) as client,
            ):
                base = f"{referral}/fhir"
                r = await client.put(
                    f"{dir_fhir}/Organization/food-bank",
                    headers=FHIR,
                    json={
                        "resourceType": "Organization",
                        "id": "food-bank",
                        "active": True,
                        "name": "Eastside Food Bank",
                    },
                )
                assert r.status_code == 201
                cbo = f"{dir_fhir}/Organization/food-bank"

                # the whole loop, ending with the service delivered
                sr, task = await refer(client, base, cbo)
                inbox = (
                    await client.get(
                        f"{base}/Task",
                        params={
                            "owner": "Organization/food-bank",
                            "status": "requested",
                            "_include": "Task:focus",
                        },
                    )
                ).json()
                assert task["id"] in {e["resource"]["id"] for e in inbox["entry"]}
                task = await put_status(client, base, task, "accepted")
                task = await put_status(client, base, task, "in-progress")
                task = await put_status(
                    client,
                    base,
                    task,
                    "on-hold",
                    statusReason={"text": "Waiting for proof of address"},
                )
                task = await put_status(client, base, task, "in-progress")
                procedure = (
                    await client.post(
                        f"{base}/Procedure",
                        headers=FHIR,
                        json={
                            "resourceType": "Procedure",
                            "status": "completed",
                            "code": sr["code"],
                            "subject": sr["subject"],
                            "basedOn": [{"reference": f"ServiceRequest/{sr['id']}"}],
                            "performedDateTime": "2026-11-23",
                        },
                    )
                ).json()
                task = await put_status(
                    client,
                    base,
                    task,
                    "completed",
                    output=[
                        {
                            "type": {"coding": [{"system": SDOHCC, "code": "resulting-activity"}]},
                            "valueReference": {"reference": f"Procedure/{procedure['id']}"},
                        }
                    ],
                )
                assert await sr_status(client, base, sr) == "completed"
                # an illegal move out of a final status
                await put_status(client, base, task, "in-progress", expect=409)

                # a rejection, and a cancellation
                sr2, task2 = await refer(client, base, cbo)
                await put_status(
                    client, base, task2, "rejected", statusReason={"text": "At capacity"}
                )
                assert await sr_status(client, base, sr2) == "revoked"
                sr3, task3 = await refer(client, base, cbo)
                task3 = await put_status(client, base, task3, "accepted")
                await put_status(
                    client,
                    base,
                    task3,
                    "cancelled",
                    statusReason={"text": "Patient found help elsewhere"},
                )
                assert await sr_status(client, base, sr3) == "revoked"
                # an illegal jump
                _sr4, task4 = await refer(client, base, cbo)
                await put_status(client, base, task4, "completed", expect=409)

                # the directory goes down: a referral to it fails cleanly, nothing stored
                await directory.__aexit__(None, None, None)
                directory = None
                mrn = uuid.uuid4().hex
                r = await client.post(base, json=referral_bundle(mrn, cbo), headers=FHIR)
                assert r.status_code == 503, r.text
                found = (await client.get(f"{base}/Patient?identifier=urn:mrn|{mrn}")).json()
                assert found["entry"] == []
        finally:
            if directory is not None:
                await directory.__aexit__(None, None, None)
