"""age=N on HealthcareService, through HTTP, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import app_client
from directory_api.app import create_app
from directory_api.conventions import AGE_RANGE_EXTENSION
from directory_api.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(database_url=database_url))) as c:
        yield c


def _service(sid: str, low: int | None, high: int | None, with_ext: bool = True) -> dict:
    body: dict = {"resourceType": "HealthcareService", "id": sid, "active": True}
    if with_ext:
        rng: dict = {}
        if low is not None:
            rng["low"] = {"value": low, "unit": "a", "system": "http://unitsofmeasure.org"}
        if high is not None:
            rng["high"] = {"value": high, "unit": "a", "system": "http://unitsofmeasure.org"}
        body["extension"] = [{"url": AGE_RANGE_EXTENSION, "valueRange": rng}]
    return body


async def test_age(client: httpx.AsyncClient) -> None:
    for body in (
        _service("age-youth", 12, 24),
        _service("age-adult", 18, None),
        _service("age-kids", None, 11),
        _service("age-any", None, None, with_ext=False),
        _service("age-senior", 60, 120),
    ):
        r = await client.put(f"/fhir/HealthcareService/{body['id']}", json=body, headers=FHIR_JSON)
        assert r.status_code in (200, 201), r.text

    async def ids(query: str) -> list[str]:
        r = await client.get(f"/fhir/HealthcareService?{query}&_sort=_id")
        assert r.status_code == 200, r.text
        return [e["resource"]["id"] for e in r.json()["entry"]]

    assert await ids("age=34") == ["age-adult", "age-any"]
    assert await ids("age=11") == ["age-any", "age-kids"]
    assert await ids("age=12") == ["age-any", "age-youth"]
    assert await ids("age=24") == ["age-adult", "age-any", "age-youth"]
    assert await ids("age=70") == ["age-adult", "age-any", "age-senior"]
    assert await ids("age=5,65") == ["age-adult", "age-any", "age-kids", "age-senior"]
    # beyond 64 bits, and a digit int() refuses: a 400 too, never a 500
    for bad in ("-3", "abc", "3.5", "", "9" * 30, "1001", "%C2%B2"):
        r = await client.get(f"/fhir/HealthcareService?age={bad}")
        assert r.status_code == 400, bad
        assert r.json()["resourceType"] == "OperationOutcome"
    r = await client.get("/fhir/metadata")
    hs = next(t for t in r.json()["rest"][0]["resource"] if t["type"] == "HealthcareService")
    age = next(p for p in hs["searchParam"] if p["name"] == "age")
    assert "age" in age["documentation"]
