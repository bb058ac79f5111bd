"""``$status`` and ``$events`` take a Parameters body: any other body is a 400 OperationOutcome
(a JSON array, a string, a parameter that was not an object, or a NUL character were 500s)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import app_client
from notifier.app import create_app
from notifier.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}
BAD_BODIES = [
    b"[]",
    b'"x"',
    b"3",
    b'{"resourceType": "Patient"}',
    b'{"resourceType": "Parameters", "parameter": [1]}',
    b'{"resourceType": "Parameters", "parameter": {"name": "id"}}',
    b'{"resourceType": "Parameters", "parameter": [{"valueString": "x"}]}',
    b'{"resourceType": "Parameters", "parameter": [{"name": 3, "valueString": "x"}]}',
    b'{"resourceType": "Parameters", "parameter": [{"name": "id", "valueString": "a\\u0000"}]}',
    b"{not json",
]


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url, referral_url="http://referrals.test/fhir", events_token="t"
    )
    async with app_client(create_app(settings)) as c:
        yield c


@pytest.mark.parametrize("body", BAD_BODIES)
@pytest.mark.parametrize("path", ["/fhir/Subscription/$status", "/fhir/Subscription/x/$events"])
async def test_a_body_that_is_not_parameters_is_a_400(
    client: httpx.AsyncClient, path: str, body: bytes
) -> None:
    r = await client.post(path, content=body, headers=FHIR_JSON)
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "CL-8420"


async def test_parameters_body_still_works(client: httpx.AsyncClient) -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "id", "valueString": "none"}]}
    r = await client.post("/fhir/Subscription/$status", json=body, headers=FHIR_JSON)
    assert r.status_code == 200
    assert r.json()["total"] == 0
    r = await client.post(
        "/fhir/Subscription/x/$events",
        json={"parameter": [{"name": "eventsSinceNumber", "valueInteger": -1}]},
        headers=FHIR_JSON,
    )
    assert r.status_code == 400
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "CL-8421"
