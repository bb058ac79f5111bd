"""Test data written through the real FHIR APIs with an admin token: a food bank listed in
directory-api, and a referral to it in referral-api (Patient, Consent, ServiceRequest, Task)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

FHIR = {"Content-Type": "application/fhir+json"}
TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"


async def post(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await http.post(url, json=body, headers=FHIR)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def put(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await http.put(url, json={**body, "id": url.rsplit("/", 1)[1]}, headers=FHIR)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def food_bank(
    http: httpx.AsyncClient,
    directory: str,
    org_id: str = "eastside-food-bank",
    name: str = "Eastside Food Bank",
) -> dict[str, str]:
    """An Organization, its Location (address, hours) and HealthcareService, with fixed ids
    (written again, nothing changes); their URLs."""
    org = await put(
        http,
        f"{directory}/Organization/{org_id}",
        {
            "resourceType": "Organization",
            "active": True,
            "name": name,
            "telecom": [{"system": "phone", "value": "312-555-0142"}],
        },
    )
    location = await put(
        http,
        f"{directory}/Location/{org_id}-site",
        {
            "resourceType": "Location",
            "status": "active",
            "name": "Eastside pantry",
            "managingOrganization": {"reference": f"Organization/{org['id']}"},
            "address": {
                "line": ["1200 W Fullerton Ave"],
                "city": "Chicago",
                "state": "IL",
                "postalCode": "60614",
            },
            "position": {"latitude": 41.925, "longitude": -87.658},
            "hoursOfOperation": [
                {
                    "daysOfWeek": ["mon", "wed", "fri"],
                    "openingTime": "09:00:00",
                    "closingTime": "17:00:00",
                }
            ],
        },
    )
    service = await put(
        http,
        f"{directory}/HealthcareService/{org_id}-pantry",
        {
            "resourceType": "HealthcareService",
            "active": True,
            "name": "Food pantry",
            "providedBy": {
                "reference": f"Organization/{org['id']}",
                "display": name,
            },
            "category": [{"coding": [{"system": SDOHCC, "code": "food-insecurity"}]}],
            "location": [{"reference": f"Location/{location['id']}"}],
            "telecom": [{"system": "phone", "value": "312-555-0142"}],
            "availableTime": [
                {
                    "daysOfWeek": ["mon", "wed", "fri"],
                    "availableStartTime": "09:00:00",
                    "availableEndTime": "17:00:00",
                }
            ],
        },
    )
    return {
        "organization": f"{directory}/Organization/{org['id']}",
        "organization_id": org["id"],
        "service": f"{directory}/HealthcareService/{service['id']}",
    }


async def referral(
    http: httpx.AsyncClient,
    base: str,
    bank: dict[str, str],
    language: str = "es",
    authored: str = "2026-11-22T10:00:00Z",
    family: str = "Rivera",
) -> dict[str, Any]:
    """A referral Task sent to the food bank (``requested``), with the patient's consent."""
    patient = await post(
        http,
        f"{base}/Patient",
        {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:mrn", "value": uuid.uuid4().hex[:10]}],
            "name": [{"family": family, "given": ["Ana"]}],
            "birthDate": "1990-05-17",
            "address": [{"postalCode": "60614", "city": "Chicago", "state": "IL"}],
            "telecom": [{"system": "phone", "value": "312-555-0199"}],
            "communication": [
                {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": language}]}}
            ],
            "managingOrganization": {"reference": "Organization/clinic-1"},
        },
    )
    consent = await post(
        http,
        f"{base}/Consent",
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{patient['id']}"},
            "policyRule": {"text": "share referrals with community organizations"},
        },
    )
    service_request = await post(
        http,
        f"{base}/ServiceRequest",
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "category": [{"coding": [{"system": SDOHCC, "code": "food-insecurity"}]}],
            "code": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "467771000124109",
                        "display": "Assistance with application for food pantry program",
                    }
                ]
            },
            "subject": {"reference": f"Patient/{patient['id']}"},
            "requester": {"reference": "Organization/clinic-1"},
            "performer": [{"reference": bank["service"]}],
            "supportingInfo": [{"reference": f"Consent/{consent['id']}"}],
        },
    )
    return await post(
        http,
        f"{base}/Task",
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": TASK_CODE,
            "focus": {"reference": f"ServiceRequest/{service_request['id']}"},
            "for": {"reference": f"Patient/{patient['id']}"},
            "authoredOn": authored,
            "requester": {"reference": "Organization/clinic-1"},
            "owner": {"reference": bank["organization"], "display": "Eastside Food Bank"},
        },
    )


async def move(
    http: httpx.AsyncClient, base: str, task: dict[str, Any], status: str, **extra: Any
) -> dict[str, Any]:
    r = await http.put(
        f"{base}/Task/{task['id']}", json={**task, "status": status, **extra}, headers=FHIR
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def complete(http: httpx.AsyncClient, base: str, task: dict[str, Any]) -> dict[str, Any]:
    """accepted -> in-progress -> completed, with the delivered Procedure as output."""
    task = await move(http, base, task, "accepted")
    task = await move(http, base, task, "in-progress")
    procedure = await post(
        http,
        f"{base}/Procedure",
        {
            "resourceType": "Procedure",
            "status": "completed",
            "code": {"text": "Food pantry visit: two weeks of groceries"},
            "subject": task["for"],
            "basedOn": [task["focus"]],
            "performedDateTime": "2026-12-01",
        },
    )
    output = [
        {
            "type": {"coding": [{"system": SDOHCC, "code": "resulting-activity"}]},
            "valueReference": {"reference": f"Procedure/{procedure['id']}"},
        }
    ]
    return await move(http, base, task, "completed", output=output)
