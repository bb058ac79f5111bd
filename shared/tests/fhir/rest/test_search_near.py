"""Geo search: ``near`` with great-circle distance, ``_sort=near``, the distance extension, the
chained form from a service to its location, and bad input (both databases)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from .conftest import FHIR_JSON

TAG = uuid.uuid4().hex[:8]
# Chicago: Lincoln Park (60614), the Loop, Evanston, Milwaukee, and a place with no position
PLACES = {
    "lincoln-park": (41.9214, -87.6513),
    "loop": (41.8786, -87.6251),
    "evanston": (42.0451, -87.6877),
    "milwaukee": (43.0389, -87.9065),
    "nowhere": None,
}


@pytest.fixture(scope="module")
async def places(client: httpx.AsyncClient) -> AsyncIterator[dict[str, str]]:
    ids = {}
    for name, point in PLACES.items():
        body: dict = {
            "resourceType": "Location",
            "name": f"{name} {TAG}",
            "identifier": [{"system": "urn:test", "value": TAG}],
        }
        if point:
            body["position"] = {"latitude": point[0], "longitude": point[1]}
        r = await client.post("/fhir/Location", json=body, headers=FHIR_JSON)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    yield ids


async def found(client: httpx.AsyncClient, query: str) -> list[dict]:
    r = await client.get(f"/fhir/Location?identifier=urn:test|{TAG}&{query}")
    assert r.status_code == 200, r.text
    return [e for e in r.json()["entry"] if e["search"]["mode"] == "match"]


async def test_near_within_distance(client: httpx.AsyncClient, places: dict[str, str]) -> None:
    entries = await found(client, "near=41.9214|-87.6513|10|km")
    assert {e["resource"]["id"] for e in entries} == {places["lincoln-park"], places["loop"]}
    entries = await found(client, "near=41.9214|-87.6513|15|mi")  # miles: Evanston too
    assert {e["resource"]["id"] for e in entries} == {
        places["lincoln-park"],
        places["loop"],
        places["evanston"],
    }


async def test_sort_by_distance_with_extension(
    client: httpx.AsyncClient, places: dict[str, str]
) -> None:
    entries = await found(client, "near=41.9214|-87.6513|200|km&_sort=near")
    assert [e["resource"]["id"] for e in entries] == [
        places["lincoln-park"],
        places["loop"],
        places["evanston"],
        places["milwaukee"],
    ]
    distances = [e["search"]["extension"][0]["valueDistance"]["value"] for e in entries]
    assert distances[0] == 0 and 4.5 < distances[1] < 5.5 and 13 < distances[2] < 15
    assert (
        entries[1]["search"]["extension"][0]["url"]
        == "http://hl7.org/fhir/StructureDefinition/location-distance"
    )


async def test_missing_position(client: httpx.AsyncClient, places: dict[str, str]) -> None:
    entries = await found(client, "near:missing=true")
    assert [e["resource"]["id"] for e in entries] == [places["nowhere"]]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("200|-87.6|10|km", "latitude"),
        ("41.9|-87.6|10|parsecs", "parsecs"),
        ("41.9|nope|10", "numbers"),
        ("41.9", "latitude|longitude"),
        ("41.9|-87.6|-5", "positive"),
    ],
)
async def test_bad_near(client: httpx.AsyncClient, value: str, needle: str) -> None:
    r = await client.get("/fhir/Location", params={"near": value})
    assert r.status_code == 400
    assert needle in r.json()["issue"][0]["diagnostics"]


async def test_sort_near_needs_a_point(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Location?_sort=near")
    assert r.status_code == 400
