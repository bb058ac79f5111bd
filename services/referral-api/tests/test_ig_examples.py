"""The SDOH Clinical Care IG's own example instances are accepted as they are: $validate
passes each, and each can be stored at its id (both databases); a Task example walks its state
machine to the example's status, as a Task cannot be created further along than requested."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from closedloop.testing import app_client
from referral_api.app import create_app
from referral_api.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "sdohcc"
# in an order where each resource's local references are stored first
FILES = [
    "ServiceRequest-food-pantry-application-assist.json",
    "Procedure-food-pantry-application-assistance.json",
    "Consent-information-disclosure.json",
    "Task-referral-accepted.json",
    "Task-referral-completed.json",
]
FHIR_JSON = {"Content-Type": "application/fhir+json"}
# the statuses a referral Task example passes through before its own
WALK = {"accepted": ["requested"], "completed": ["requested", "accepted"]}


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    # the IG's example ServiceRequest cites no Consent (its Consent example is another
    # patient's): stored as published, they are not a consented referral
    settings = Settings(database_url=database_url, event_sink_url="", require_consent=False)
    async with app_client(create_app(settings)) as c:
        yield c


@pytest.mark.parametrize("name", FILES)
async def test_validate_accepts_the_example(client: httpx.AsyncClient, name: str) -> None:
    body = (FIXTURES / name).read_bytes()
    rtype = orjson.loads(body)["resourceType"]
    r = await client.post(f"/fhir/{rtype}/$validate", content=body, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert all(i["severity"] in ("information", "warning") for i in r.json()["issue"])


async def test_examples_are_stored_as_they_are(client: httpx.AsyncClient) -> None:
    for name in FILES:
        body = (FIXTURES / name).read_bytes()
        example = orjson.loads(body)
        url = f"/fhir/{example['resourceType']}/{example['id']}"
        for status in WALK.get(example["status"], []) if example["resourceType"] == "Task" else []:
            earlier = {k: v for k, v in example.items() if k != "output"}
            r = await client.put(url, json={**earlier, "status": status}, headers=FHIR_JSON)
            assert r.status_code in (200, 201), f"{name} as {status}: {r.text}"
        r = await client.put(url, content=body, headers=FHIR_JSON)
        assert r.status_code in (200, 201), f"{name}: {r.text}"
        stored = (await client.get(url)).json()
        for key, value in example.items():
            if key not in ("meta",):
                assert stored[key] == value, f"{name}: {key} changed"
    # the completed example closed the loop on the example ServiceRequest
    sr = (
        await client.get(
            "/fhir/ServiceRequest/SDOHCC-ServiceRequestActiveFoodPantryApplicationAssistExample"
        )
    ).json()
    assert sr["status"] == "completed"
    found = (
        await client.get(
            "/fhir/Task?_id=SDOHCC-TaskReferralManagementOrderFulfillment"
            "CompletedExample&_include=Task:output"
        )
    ).json()
    assert {e["resource"]["resourceType"] for e in found["entry"]} == {"Task", "Procedure"}
