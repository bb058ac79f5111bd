"""referral-api test fixtures: a real directory-api process to check referral targets against,
seeded with an active CBO, a full program and an inactive CBO."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from closedloop.testing import admin_auth, running_service

FHIR_JSON = {"Content-Type": "application/fhir+json"}
CAPACITY = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
    "SDOHCC-ExtensionHealthcareServiceCapacityStatus"
)


@dataclass
class Directory:
    base: str  # FHIR base, e.g. http://127.0.0.1:PORT/fhir
    cbo: str  # absolute URL of an active Organization
    full_program: str  # absolute URL of a HealthcareService with no capacity
    closed_cbo: str  # absolute URL of an inactive Organization


@pytest.fixture(scope="session")
async def directory() -> AsyncIterator[Directory]:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_service(
            "directory_api", "DIRECTORY_API_", f"sqlite:///{tmp}/directory.db"
        ) as base:
            fhir = f"{base}/fhir"
            async with httpx.AsyncClient(auth=admin_auth()) as client:

                async def put(body: dict) -> str:
                    url = f"{fhir}/{body['resourceType']}/{body['id']}"
                    r = await client.put(url, json=body, headers=FHIR_JSON)
                    assert r.status_code in (200, 201), r.text
                    return url

                cbo = await put(
                    {
                        "resourceType": "Organization",
                        "id": "cbo-food",
                        "active": True,
                        "name": "Eastside Food Bank",
                    }
                )
                closed = await put(
                    {
                        "resourceType": "Organization",
                        "id": "cbo-closed",
                        "active": False,
                        "name": "Closed Pantry",
                    }
                )
                full = await put(
                    {
                        "resourceType": "HealthcareService",
                        "id": "hs-full",
                        "active": True,
                        "name": "Emergency Shelter Beds",
                        "providedBy": {"reference": "Organization/cbo-food"},
                        "extension": [
                            {
                                "url": CAPACITY,
                                "extension": [
                                    {
                                        "url": "capacityStatus",
                                        "valueCodeableConcept": {
                                            "coding": [{"code": "no-capacity"}]
                                        },
                                    }
                                ],
                            }
                        ],
                    }
                )
            yield Directory(fhir, cbo, full, closed)
