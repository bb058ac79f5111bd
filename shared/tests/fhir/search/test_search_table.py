"""One table of search cases, run against SQLite and PostgreSQL side by side: both must return
exactly the expected ids, in the expected order (sorting included: text sorts by byte order on
both, whatever PostgreSQL's locale)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from closedloop.service import create_service_app
from closedloop.settings import ServiceSettings
from closedloop.testing import app_client, database_url_for

MIGRATIONS = Path(__file__).parent.parent / "rest" / "migrations"
TYPES = ["Patient", "Task", "ServiceRequest", "Organization", "Observation"]
FHIR_JSON = {"Content-Type": "application/fhir+json"}
MR = "http://terminology.hl7.org/CodeSystem/v2-0203"


def patient(
    pid: str, family: str, given: str, gender: str | None, birth: str | None, mrn: str
) -> dict:
    body: dict = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": family, "given": [given]}],
        "identifier": [
            {"system": "urn:mrn", "value": mrn, "type": {"coding": [{"system": MR, "code": "MR"}]}}
        ],
    }
    if gender:
        body["gender"] = gender
    if birth:
        body["birthDate"] = birth
    return body


RESOURCES = [
    {"resourceType": "Organization", "id": "cbo-1", "name": "Eastside Food Bank"},
    {"resourceType": "Organization", "id": "cbo-2", "name": "Westside Housing"},
    patient("p-ana", "Muñoz", "Ana", "female", "1990-05-17", "m1"),
    patient("p-bo", "bo", "Bo", "male", "1985", "m2"),
    patient("p-cy", "Çelik", "Cy", None, "1990-05", "m3"),
    patient("p-di", "Diaz", "Di", "female", None, "m4"),
    patient("p-ed", "O'Neil", "Ed", "other", "2001-12-31", "m5"),
    {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p-ana"},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/"
                        "SDOHCC-CodeSystemTemporaryCodes",
                        "code": "food-insecurity",
                    }
                ]
            }
        ],
        "performer": [{"reference": "Organization/cbo-1"}],
    },
    {
        "resourceType": "ServiceRequest",
        "id": "sr-2",
        "status": "completed",
        "intent": "order",
        "subject": {"reference": "Patient/p-bo"},
        "performer": [{"reference": "Organization/cbo-2"}],
    },
    *[
        {
            "resourceType": "Task",
            "id": tid,
            "status": status,
            "intent": "order",
            "focus": {"reference": f"ServiceRequest/{sr}"},
            "for": {"reference": f"Patient/{p}"},
            "authoredOn": authored,
            **({"owner": {"reference": f"Organization/{owner}"}} if owner else {}),
        }
        for tid, status, sr, p, owner, authored in [
            ("t-1", "requested", "sr-1", "p-ana", "cbo-1", "2026-11-01T09:00:00Z"),
            ("t-2", "accepted", "sr-1", "p-ana", "cbo-1", "2026-11-02T09:00:00Z"),
            ("t-3", "requested", "sr-1", "p-ana", None, "2026-11-03"),
            ("t-4", "completed", "sr-2", "p-bo", "cbo-2", "2026-10-15T12:30:00+02:00"),
            ("t-5", "rejected", "sr-2", "p-bo", "cbo-1", "2026-11"),
        ]
    ],
    *[
        {
            "resourceType": "Observation",
            "id": oid,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
            "subject": {"reference": "Patient/p-ana"},
            "valueQuantity": {
                "value": v,
                "unit": "cm",
                "system": "http://unitsofmeasure.org",
                "code": "cm",
            },
        }
        for oid, v in [("o-1", 150), ("o-2", 162.5), ("o-3", 175)]
    ],
]

CASES: list[tuple[str, list[str]]] = [
    # token
    ("Patient?gender=female", ["p-ana", "p-di"]),
    ("Patient?gender=female,male", ["p-ana", "p-bo", "p-di"]),
    ("Patient?gender:not=female", ["p-bo", "p-cy", "p-ed"]),
    ("Patient?gender:missing=true", ["p-cy"]),
    ("Patient?identifier=urn:mrn|m3", ["p-cy"]),
    ("Patient?identifier=urn:mrn|", ["p-ana", "p-bo", "p-cy", "p-di", "p-ed"]),
    ("Patient?identifier=|m3", []),
    (f"Patient?identifier:of-type={MR}|MR|m2", ["p-bo"]),
    ("Task?status=requested&owner:missing=true", ["t-3"]),
    # string
    ("Patient?family=mu", ["p-ana"]),
    ("Patient?family=CEL", ["p-cy"]),
    ("Patient?family:exact=bo", ["p-bo"]),
    ("Patient?family:exact=Bo", []),
    ("Patient?name:contains=ne", ["p-ed"]),
    ("Organization?name=eastside", ["cbo-1"]),
    ("Organization?name:contains=side", ["cbo-1", "cbo-2"]),
    # date, with precision
    ("Patient?birthdate=1990", ["p-ana", "p-cy"]),
    ("Patient?birthdate=1990-05", ["p-ana", "p-cy"]),
    ("Patient?birthdate=1990-05-17", ["p-ana"]),
    ("Patient?birthdate=ne1990-05-17", ["p-bo", "p-cy", "p-ed"]),
    ("Patient?birthdate=lt1990-05-17", ["p-bo", "p-cy"]),
    ("Patient?birthdate=gt1990-05-17", ["p-cy", "p-ed"]),
    # le: starts before the search range, or lies within it (1990-05 does neither)
    ("Patient?birthdate=le1990-05-01", ["p-bo"]),
    ("Patient?birthdate=ge2001-12-31", ["p-ed"]),
    ("Patient?birthdate=sa1990-12-31", ["p-ed"]),
    ("Patient?birthdate=eb1990-01-01", ["p-bo"]),
    ("Task?authored-on=2026-11", ["t-1", "t-2", "t-3", "t-5"]),
    ("Task?authored-on=lt2026-11-01T00:00:00Z", ["t-4"]),
    # t-5's "2026-11" is the whole month: it overlaps both bounds
    ("Task?authored-on=ge2026-11-02&authored-on=lt2026-11-03T00:00:00Z", ["t-2", "t-5"]),
    # quantity and number
    ("Observation?value-quantity=162.5", ["o-2"]),
    ("Observation?value-quantity=gt160|http://unitsofmeasure.org|cm", ["o-2", "o-3"]),
    ("Observation?value-quantity=le162.5||cm", ["o-1", "o-2"]),
    ("Observation?value-quantity=lt160|http://unitsofmeasure.org|kg", []),
    # reference, chains, _has
    ("Task?owner=Organization/cbo-1", ["t-1", "t-2", "t-5"]),
    ("Task?owner=cbo-2", ["t-4"]),
    ("Task?patient=p-bo", ["t-4", "t-5"]),
    ("Task?owner:Organization.name=westside", ["t-4"]),
    ("Task?focus:ServiceRequest.category=food-insecurity&status=requested", ["t-1", "t-3"]),
    ("Task?focus:ServiceRequest.subject:Patient.gender=male", ["t-4", "t-5"]),
    ("Patient?_has:Task:patient:status=completed", ["p-bo"]),
    ("Organization?_has:Task:owner:status=rejected", ["cbo-1"]),
    ("Patient?_has:ServiceRequest:subject:_has:Task:focus:status=accepted", ["p-ana"]),
    # _id, sort
    ("Patient?_id=p-di,p-ana", ["p-ana", "p-di"]),
    # strings sort by their normalised form (case and accents folded): bo, celik, diaz, munoz
    ("Patient?_sort=family", ["p-bo", "p-cy", "p-di", "p-ana", "p-ed"]),
    ("Patient?_sort=-family", ["p-ed", "p-ana", "p-di", "p-cy", "p-bo"]),
    # dates sort by the start of their range ascending, by its end descending
    ("Patient?_sort=birthdate", ["p-bo", "p-cy", "p-ana", "p-ed", "p-di"]),
    ("Patient?_sort=-birthdate", ["p-ed", "p-cy", "p-ana", "p-bo", "p-di"]),
    ("Patient?_sort=gender,-_id", ["p-di", "p-ana", "p-bo", "p-ed", "p-cy"]),
    ("Task?_sort=-authored-on&status=requested,accepted", ["t-3", "t-2", "t-1"]),
    ("Task?_sort=owner,_id", ["t-1", "t-2", "t-5", "t-4", "t-3"]),
    ("Observation?_sort=-value-quantity", ["o-3", "o-2", "o-1"]),
    ("Task?_sort=_id&_count=2", ["t-1", "t-2"]),
]


@pytest.fixture(scope="module")
async def clients(postgres_admin_url: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        out = {}
        for backend in ("sqlite", "postgres"):
            url = await stack.enter_async_context(database_url_for(backend, postgres_admin_url))
            app = create_service_app(
                name="table",
                settings=ServiceSettings(database_url=url),
                resource_types=TYPES,
                migrations=MIGRATIONS,
            )
            client = await stack.enter_async_context(app_client(app))
            for body in RESOURCES:
                r = await client.put(
                    f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=FHIR_JSON
                )
                assert r.status_code == 201, r.text
            out[backend] = client
        yield out


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_same_answer_on_both_databases(
    clients: dict[str, httpx.AsyncClient], query: str, expected: list[str]
) -> None:
    answers = {}
    for backend, client in clients.items():
        r = await client.get(f"/fhir/{query}", headers={"Prefer": "handling=strict"})
        assert r.status_code == 200, f"{backend}: {r.text}"
        answers[backend] = [e["resource"]["id"] for e in r.json()["entry"]]
    assert answers["sqlite"] == answers["postgres"] == expected, answers


@pytest.mark.parametrize(
    "query", ["Patient?_sort=family", "Task?_sort=-authored-on,_id", "Patient?_sort=-birthdate"]
)
async def test_paging_walks_the_same_order(
    clients: dict[str, httpx.AsyncClient], query: str
) -> None:
    for client in clients.values():
        whole = [e["resource"]["id"] for e in (await client.get(f"/fhir/{query}")).json()["entry"]]
        walked, url = [], f"/fhir/{query}&_count=2"
        while url:
            page = (await client.get(url)).json()
            walked += [e["resource"]["id"] for e in page["entry"]]
            nxt = [lk["url"] for lk in page["link"] if lk["relation"] == "next"]
            url = nxt[0].removeprefix("http://testserver") if nxt else ""
        assert walked == whole
