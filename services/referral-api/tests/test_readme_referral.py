"""The README's one-call referral works as written: the same transaction, posted twice, makes
one Patient and two referrals, atomically."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from closedloop.testing import app_client
from referral_api.app import create_app
from referral_api.settings import Settings

README = Path(__file__).parents[3] / "README.md"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def readme_bundle() -> dict:
    text = README.read_text()
    block = text.split("<!-- referral-transaction -->", 1)[1]
    body = re.search(r"-d '(\{.*?\})'\n```", block, re.S)
    assert body is not None
    return dict(orjson.loads(body.group(1)))


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, event_sink_url="")
    async with app_client(create_app(settings)) as c:
        yield c


async def test_readme_referral_transaction(client: httpx.AsyncClient) -> None:
    bundle = readme_bundle()
    first = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert first.status_code == 200, first.text
    entries = first.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created"] * 5
    patient, consent, condition, sr, task = (e["resource"] for e in entries)
    assert sr["supportingInfo"][0]["reference"] == f"Consent/{consent['id']}"
    assert sr["reasonReference"][0]["reference"] == f"Condition/{condition['id']}"
    assert task["focus"]["reference"] == f"ServiceRequest/{sr['id']}"
    second = (await client.post("/fhir", json=bundle, headers=FHIR_JSON)).json()["entry"]
    assert second[0]["response"]["status"] == "200 OK"
    assert second[0]["resource"]["id"] == patient["id"]
    patients = (await client.get("/fhir/Patient?identifier=urn:mrn|12345&_total=accurate")).json()
    assert patients["total"] == 1
    open_tasks = (
        await client.get(
            "/fhir/Task?owner:missing=true&status=requested"
            f"&patient=Patient/{patient['id']}&_include=Task:focus"
        )
    ).json()
    assert len([e for e in open_tasks["entry"] if e["search"]["mode"] == "match"]) == 2


async def test_a_bad_entry_stores_nothing(client: httpx.AsyncClient) -> None:
    bundle = readme_bundle()
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "999-atomic"
    bundle["entry"][0]["request"]["ifNoneExist"] = "identifier=urn:mrn|999-atomic"
    del bundle["entry"][4]["resource"]["requester"]  # the Task breaks the referral profile
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[4].resource.requester"]
    found = (await client.get("/fhir/Patient?identifier=urn:mrn|999-atomic")).json()
    assert found["entry"] == []
