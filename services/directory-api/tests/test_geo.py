"""Finding services near a place: HealthcareService?location.near (chained geo search)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import app_client
from directory_api.app import create_app
from directory_api.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(database_url=database_url))) as c:
        yield c


async def test_services_near_a_point(client: httpx.AsyncClient) -> None:
    async def put(body: dict) -> None:
        r = await client.put(
            f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=FHIR_JSON
        )
        assert r.status_code in (200, 201), r.text

    await put(
        {
            "resourceType": "Location",
            "id": "loc-lincoln-park",
            "position": {"latitude": 41.9214, "longitude": -87.6513},
        }
    )
    await put(
        {
            "resourceType": "Location",
            "id": "loc-milwaukee",
            "position": {"latitude": 43.0389, "longitude": -87.9065},
        }
    )
    await put(
        {
            "resourceType": "HealthcareService",
            "id": "hs-pantry",
            "active": True,
            "name": "Lincoln Park Pantry",
            "location": [{"reference": "Location/loc-lincoln-park"}],
        }
    )
    await put(
        {
            "resourceType": "HealthcareService",
            "id": "hs-far",
            "active": True,
            "name": "Milwaukee Pantry",
            "location": [{"reference": "Location/loc-milwaukee"}],
        }
    )
    r = await client.get("/fhir/HealthcareService", params={"location.near": "41.92|-87.65|10|km"})
    assert r.status_code == 200, r.text
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["hs-pantry"]
    r = await client.get(
        "/fhir/HealthcareService", params={"location.near": "41.92|-87.65|200|km", "_sort": "_id"}
    )
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["hs-far", "hs-pantry"]


async def test_directory_filters(client: httpx.AsyncClient) -> None:
    capacity = (
        "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
        "SDOHCC-ExtensionHealthcareServiceCapacityStatus"
    )
    body = {
        "resourceType": "HealthcareService",
        "id": "hs-filters",
        "active": True,
        "name": "Comedor Comunitario",
        "communication": [{"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}]}],
        "serviceProvisionCode": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/service-provision-conditions",
                        "code": "free",
                    }
                ]
            }
        ],
        "eligibility": [{"code": {"coding": [{"code": "low-income"}]}}],
        "extension": [
            {
                "url": capacity,
                "extension": [
                    {
                        "url": "capacityStatus",
                        "valueCodeableConcept": {"coding": [{"code": "waitlist"}]},
                    }
                ],
            }
        ],
    }
    r = await client.put("/fhir/HealthcareService/hs-filters", json=body, headers=FHIR_JSON)
    assert r.status_code in (200, 201), r.text
    for query in (
        "communication=es",
        "serviceProvisionCode=free",
        "eligibility=low-income",
        "capacity-status=waitlist",
    ):
        r = await client.get(f"/fhir/HealthcareService?{query}&_id=hs-filters")
        assert [e["resource"]["id"] for e in r.json()["entry"]] == ["hs-filters"], query
    r = await client.get("/fhir/HealthcareService?capacity-status=capacity&_id=hs-filters")
    assert r.json()["entry"] == []


async def test_near_a_zip_code(client: httpx.AsyncClient) -> None:
    """60614 (Lincoln Park) resolves offline to its centroid."""
    r = await client.get(
        "/fhir/HealthcareService",
        params={"location.near-postalcode": "60614|5|mi", "_id": "hs-pantry"},
    )
    assert r.status_code == 200, r.text
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["hs-pantry"]
    r = await client.get(
        "/fhir/HealthcareService",
        params={"location.near-postalcode": "53202|5|mi", "_id": "hs-pantry"},
    )
    assert r.json()["entry"] == []  # downtown Milwaukee is far from Lincoln Park
    r = await client.get("/fhir/Location", params={"near-postalcode": "00000|5|mi"})
    assert r.status_code == 400
    assert "ZIP" in r.json()["issue"][0]["diagnostics"]


async def test_verified_since(client: httpx.AsyncClient) -> None:
    for sid, day in (("hs-fresh", "2026-10-01"), ("hs-stale", "2024-02-15")):
        body = {
            "resourceType": "HealthcareService",
            "id": sid,
            "active": True,
            "extension": [{"url": "urn:closedloop:fhir:verified-on", "valueDate": day}],
        }
        r = await client.put(f"/fhir/HealthcareService/{sid}", json=body, headers=FHIR_JSON)
        assert r.status_code in (200, 201), r.text
    r = await client.get(
        "/fhir/HealthcareService?verified-since=ge2026-01-01&_id=hs-fresh,hs-stale"
    )
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["hs-fresh"]


def test_zip_centroids_are_the_shipped_census_table() -> None:
    """The table is the Census 2020 ZCTA Gazetteer (public domain), read from the package data:
    a Census internal point for a known ZCTA, and none for a ZIP with no area of its own."""
    from directory_api.geo import zipcodes

    assert len(zipcodes._table()) == 33_791
    assert zipcodes.centroid("60640") == (41.972872, -87.662604)  # Uptown, Chicago
    assert zipcodes.centroid("00601") == (18.180555, -66.749961)  # Adjuntas, Puerto Rico
    assert zipcodes.centroid("60690") is None  # a Chicago PO-box ZIP: no ZCTA
    assert zipcodes.centroid("6064") is None
