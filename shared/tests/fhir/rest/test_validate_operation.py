"""$validate: the same checks as a write, nothing stored."""

from __future__ import annotations

import httpx

from .conftest import FHIR_JSON


async def test_valid_resource(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/fhir/Patient/$validate", json={"resourceType": "Patient"}, headers=FHIR_JSON
    )
    assert r.status_code == 200
    assert r.json()["issue"][0]["severity"] == "information"


async def test_invalid_resource_and_parameters_form(client: httpx.AsyncClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": {"resourceType": "Patient", "gender": 3}}],
    }
    r = await client.post("/fhir/Patient/$validate", json=body, headers=FHIR_JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Patient.gender"]
    total = (await client.get("/fhir/Patient?_summary=count")).json()["total"]
    r = await client.post(
        "/fhir/Patient/$validate", json={"resourceType": "Patient"}, headers=FHIR_JSON
    )
    assert (await client.get("/fhir/Patient?_summary=count")).json()["total"] == total


async def test_unknown_operation(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Patient/$everything-else", json={}, headers=FHIR_JSON)
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"
