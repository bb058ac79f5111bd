"""What a referral sent from the app is made of, and how its history reads.

``transaction``: one referral-api transaction with the patient's Consent to share (naming no
recipient, as the README's example), the ServiceRequest (category, code, the chosen
HealthcareService as performer, the clinician's note) and the Task (``requested``, owned by the
service's Organization in directory-api, requested by the clinician's Organization)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
TASK_CODES = "http://hl7.org/fhir/CodeSystem/task-code"
# SDOH Clinical Care categories offered, with the request's code (SNOMED CT where one is
# well known, otherwise the category's words)
CATEGORIES: dict[str, dict[str, str]] = {
    "food-insecurity": {
        "system": "http://snomed.info/sct",
        "code": "467771000124109",
        "display": "Assistance with application for food pantry program",
    },
    "housing-instability": {"display": "Referral to housing assistance"},
    "transportation-insecurity": {"display": "Referral to transportation assistance"},
    "financial-insecurity": {"display": "Referral to financial assistance"},
    "utility-insecurity": {"display": "Referral to utility assistance"},
    "social-connection": {"display": "Referral to social support services"},
}


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def transaction(
    *,
    patient: str,
    requester: str,
    category: str,
    service_url: str,
    organization_url: str,
    organization_name: str,
    note: str,
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    consent, service_request = _urn(), _urn()
    code = CATEGORIES.get(category, {"display": category})
    concept: dict[str, Any] = (
        {"coding": [dict(code)]} if "code" in code else {"text": code["display"]}
    )
    sr: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": SDOHCC, "code": category}]}],
        "code": concept,
        "subject": {"reference": patient},
        "requester": {"reference": requester},
        "performer": [{"reference": service_url}],
        "authoredOn": now,
        "supportingInfo": [{"reference": consent}],
    }
    if note:
        sr["note"] = [{"text": note}]
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODES, "code": "fulfill"}]},
        "focus": {"reference": service_request},
        "for": {"reference": patient},
        "authoredOn": now,
        "requester": {"reference": requester},
        "owner": {"reference": organization_url, "display": organization_name},
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": consent,
                "resource": {
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
                    "patient": {"reference": patient},
                    "dateTime": now,
                    "organization": [{"reference": requester}],
                    "policyRule": {"text": "share this referral with a community organization"},
                },
                "request": {"method": "POST", "url": "Consent"},
            },
            {
                "fullUrl": service_request,
                "resource": sr,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {"resource": task, "request": {"method": "POST", "url": "Task"}},
        ],
    }


def timeline(versions: list[dict[str, Any]]) -> list[dict[str, str]]:
    """A Task's versions (any order) as the steps it went through: one per status change,
    oldest first, with the reason given."""
    ordered = sorted(versions, key=lambda t: int((t.get("meta") or {}).get("versionId") or 0))
    steps: list[dict[str, str]] = []
    last = None
    for task in ordered:
        status = str(task.get("status") or "")
        if status == last:
            continue
        last = status
        reason = (task.get("statusReason") or {}).get("text") or ""
        when = str((task.get("meta") or {}).get("lastUpdated") or "")[:16].replace("T", " ")
        steps.append({"status": status, "reason": str(reason), "when": when})
    return steps
