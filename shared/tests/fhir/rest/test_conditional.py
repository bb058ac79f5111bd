"""Conditional create under concurrency: a unique guard, not search-then-insert."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from .conftest import FHIR_JSON


async def test_fifty_concurrent_identical_conditional_creates(client: httpx.AsyncClient) -> None:
    mrn = uuid.uuid4().hex
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": mrn}]}
    headers = {**FHIR_JSON, "If-None-Exist": f"identifier=urn:mrn|{mrn}"}
    responses = await asyncio.gather(
        *(client.post("/fhir/Patient", json=body, headers=headers) for _ in range(50))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(200) == 49, statuses
    assert len({r.json()["id"] for r in responses}) == 1
    found = (await client.get(f"/fhir/Patient?identifier=urn:mrn|{mrn}&_total=accurate")).json()
    assert found["total"] == 1


async def test_conditional_create_matches_existing(client: httpx.AsyncClient) -> None:
    mrn = uuid.uuid4().hex
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": mrn}]}
    first = await client.post("/fhir/Patient", json=body, headers=FHIR_JSON)
    again = await client.post(
        "/fhir/Patient", json=body, headers={**FHIR_JSON, "If-None-Exist": f"identifier={mrn}"}
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


async def test_conditional_create_with_two_matches_is_412(client: httpx.AsyncClient) -> None:
    family = f"Twin{uuid.uuid4().hex[:6]}"
    for _ in range(2):
        await client.post(
            "/fhir/Patient",
            json={"resourceType": "Patient", "name": [{"family": family}]},
            headers=FHIR_JSON,
        )
    r = await client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient"},
        headers={**FHIR_JSON, "If-None-Exist": f"family={family}"},
    )
    assert r.status_code == 412


async def test_conditional_create_with_unknown_parameter_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient"},
        headers={**FHIR_JSON, "If-None-Exist": "shoe-size=12"},
    )
    assert r.status_code == 400
    assert "shoe-size" in r.json()["issue"][0]["diagnostics"]
