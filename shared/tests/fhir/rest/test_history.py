"""history at instance, type and system level, with _since and _count paging."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from .conftest import FHIR_JSON


async def test_instance_history_newest_first(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/fhir/Practitioner", json={"resourceType": "Practitioner"}, headers=FHIR_JSON
    )
    body = r.json()
    for active in (True, False):
        body = (
            await client.put(
                f"/fhir/Practitioner/{body['id']}",
                json={**body, "active": active},
                headers=FHIR_JSON,
            )
        ).json()
    hist = (await client.get(f"/fhir/Practitioner/{body['id']}/_history")).json()
    assert hist["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in hist["entry"]] == ["3", "2", "1"]
    assert hist["entry"][2]["request"]["method"] == "POST"
    assert hist["entry"][0]["request"] == {"method": "PUT", "url": f"Practitioner/{body['id']}"}


async def test_type_history_since_and_count(client: httpx.AsyncClient) -> None:
    first = (
        await client.post(
            "/fhir/Organization", json={"resourceType": "Organization"}, headers=FHIR_JSON
        )
    ).json()
    await asyncio.sleep(0.01)
    since = first["meta"]["lastUpdated"]
    ids = set()
    for i in range(3):
        org = {"resourceType": "Organization", "name": f"Org {uuid.uuid4().hex[:4]} {i}"}
        ids.add((await client.post("/fhir/Organization", json=org, headers=FHIR_JSON)).json()["id"])
    url = f"/fhir/Organization/_history?_since={since.replace('+', '%2B')}&_count=2"
    page = (await client.get(url)).json()
    assert len(page["entry"]) == 2
    nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
    rest = (await client.get(nxt.split("testserver")[1])).json()
    seen = {e["resource"]["id"] for e in page["entry"] + rest["entry"]}
    assert ids <= seen and first["id"] in seen
    bad = await client.get("/fhir/Organization/_history?_since=yesterday")
    assert bad.status_code == 400


async def test_system_history(client: httpx.AsyncClient) -> None:
    org = (
        await client.post(
            "/fhir/Organization", json={"resourceType": "Organization"}, headers=FHIR_JSON
        )
    ).json()
    hist = (await client.get("/fhir/_history?_count=1")).json()
    assert hist["entry"][0]["resource"]["id"] == org["id"]
