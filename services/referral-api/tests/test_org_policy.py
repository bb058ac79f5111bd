"""Organization-scoped access through the real HTTP API, on both databases: two clinics and two
CBOs each see only their own referrals, through search and its totals and paging, _include,
_revinclude, read, history, and batch and transaction entries; a CBO changes only its Tasks'
progress; a token without a role sees and writes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from closedloop.fhir.search.compiled import Plan
from closedloop.testing import TokenIssuer, app_client, bearer
from fastapi import FastAPI
from referral_api.app import create_app
from referral_api.settings import Settings

AUD = "http://testserver/fhir"
FHIR = {"Content-Type": "application/fhir+json"}
ALL = "system/*.cruds"
TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}


@pytest.fixture(scope="module")
async def app(database_url: str, token_issuer: TokenIssuer) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=database_url,
        event_sink_url="",
        directory_url="http://127.0.0.1:9/fhir",  # never asked: targets here are relative
        **token_issuer.settings(AUD),
    )
    yield create_app(settings)


class World:
    """Referrals from clinics A and B to CBOs X and Y: A->X twice, B->Y, A->Y; the first A->X
    request was also sent on to Y (a second Task on the same ServiceRequest)."""

    def __init__(self) -> None:
        self.tasks: dict[str, list[str]] = {"X": [], "Y": []}  # by owner
        self.requested: dict[str, list[str]] = {"A": [], "B": []}  # Tasks by requester
        self.requests: dict[str, set[str]] = {"X": set(), "Y": set()}  # ServiceRequests by CBO
        self.patients: dict[str, set[str]] = {"X": set(), "Y": set()}
        self.consents: dict[str, set[str]] = {"X": set(), "Y": set()}
        self.conditions: dict[str, set[str]] = {"X": set(), "Y": set()}
        self.patients_of_clinic: dict[str, set[str]] = {"A": set(), "B": set()}
        self.sr_of_task: dict[str, str] = {}
        self.patient_of_task: dict[str, str] = {}


def token(issuer: TokenIssuer, role: str | None, org: str | None, scopes: str = ALL) -> dict:
    return bearer(
        issuer.token(scopes, AUD, role=role, organization=f"Organization/{org}" if org else None)
    )


async def post(client: httpx.AsyncClient, auth: dict, body: dict[str, Any]) -> str:
    r = await client.post(f"/fhir/{body['resourceType']}", json=body, headers={**FHIR, **auth})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def task(
    client: httpx.AsyncClient, auth: dict, clinic: str, cbo: str, sr: str, pt: str
) -> str:
    return await post(
        client,
        auth,
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": TASK_CODE,
            "focus": {"reference": f"ServiceRequest/{sr}"},
            "for": {"reference": f"Patient/{pt}"},
            "authoredOn": "2026-12-04",
            "requester": {"reference": f"Organization/{clinic}"},
            "owner": {"reference": f"Organization/{cbo}"},
        },
    )


@pytest.fixture(scope="module")
async def world(app: FastAPI, token_issuer: TokenIssuer) -> World:
    w = World()
    admin = token(token_issuer, "admin", None)
    async with app_client(app) as client:
        first_sr = None
        for clinic, cbo in (("A", "X"), ("A", "X"), ("B", "Y"), ("A", "Y")):
            pt = await post(
                client,
                admin,
                {
                    "resourceType": "Patient",
                    "managingOrganization": {"reference": f"Organization/{clinic}"},
                },
            )
            consent = await post(
                client,
                admin,
                {
                    "resourceType": "Consent",
                    "status": "active",
                    "scope": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                "code": "patient-privacy",
                            }
                        ]
                    },
                    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                    "patient": {"reference": f"Patient/{pt}"},
                    "policyRule": {"text": "share with the CBO"},
                },
            )
            condition = await post(
                client,
                admin,
                {
                    "resourceType": "Condition",
                    "subject": {"reference": f"Patient/{pt}"},
                    "code": {"text": "food insecurity"},
                },
            )
            sr = await post(
                client,
                admin,
                {
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "code": {
                        "coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]
                    },
                    "subject": {"reference": f"Patient/{pt}"},
                    "requester": {"reference": f"Organization/{clinic}"},
                    "supportingInfo": [{"reference": f"Consent/{consent}"}],
                    "reasonReference": [{"reference": f"Condition/{condition}"}],
                },
            )
            tid = await task(client, admin, clinic, cbo, sr, pt)
            w.tasks[cbo].append(tid)
            w.requested[clinic].append(tid)
            w.sr_of_task[tid] = sr
            w.patient_of_task[tid] = pt
            w.requests[cbo].add(sr)
            w.patients[cbo].add(pt)
            w.consents[cbo].add(consent)
            w.conditions[cbo].add(condition)
            w.patients_of_clinic[clinic].add(pt)
            if first_sr is None:
                first_sr = (sr, pt, consent, condition)
                # the same request also sent on to Y: Y sees it through its own Task
                extra = await task(client, admin, "A", "Y", sr, pt)
                w.tasks["Y"].append(extra)
                w.requested["A"].append(extra)
                w.sr_of_task[extra] = sr
                w.requests["Y"].add(sr)
                w.patients["Y"].add(pt)
                w.consents["Y"].add(consent)
                w.conditions["Y"].add(condition)
    return w


async def ids(
    client: httpx.AsyncClient, auth: dict, query: str
) -> tuple[int | None, dict[str, set[str]]]:
    """(total, ids by type and search mode) of a search, following every next link."""
    found: dict[str, set[str]] = {}
    total = None
    url: str | None = f"/fhir/{query}"
    while url:
        r = await client.get(url, headers=auth)
        assert r.status_code == 200, r.text
        bundle = r.json()
        total = bundle.get("total", total)
        for e in bundle.get("entry", []):
            key = f"{e['resource']['resourceType']}:{e['search']['mode']}"
            found.setdefault(key, set()).add(e["resource"]["id"])
        url = next(
            (
                link["url"].removeprefix("http://testserver")
                for link in bundle.get("link", [])
                if link["relation"] == "next"
            ),
            None,
        )
    return total, found


@pytest.mark.parametrize("cbo", ["X", "Y"])
async def test_a_cbo_sees_its_tasks_and_what_they_reference(
    app: FastAPI, world: World, token_issuer: TokenIssuer, cbo: str
) -> None:
    auth = token(token_issuer, "cbo", cbo)
    async with app_client(app) as client:
        total, found = await ids(client, auth, "Task?_total=accurate&_count=1")
        assert total == len(world.tasks[cbo])
        assert found["Task:match"] == set(world.tasks[cbo])
        for rtype, expected in (
            ("ServiceRequest", world.requests[cbo]),
            ("Patient", world.patients[cbo]),
            ("Consent", world.consents[cbo]),
            ("Condition", world.conditions[cbo]),
        ):
            total, found = await ids(client, auth, f"{rtype}?_total=accurate&_count=1")
            assert total == len(expected), rtype
            assert found.get(f"{rtype}:match", set()) == expected, rtype
        # _include follows only to what it may see; _revinclude brings only its own Tasks
        _, found = await ids(client, auth, "Task?_include=Task:patient&_include=Task:focus")
        assert found["Patient:include"] == world.patients[cbo]
        assert found["ServiceRequest:include"] == world.requests[cbo]
        _, found = await ids(client, auth, "ServiceRequest?_revinclude=Task:focus")
        assert found["Task:include"] == set(world.tasks[cbo])
        # the other CBO's Task: not found, also its history; history across resources: 403
        other = world.tasks["Y" if cbo == "X" else "X"][0]
        mine = world.tasks[cbo][0]
        assert (await client.get(f"/fhir/Task/{other}", headers=auth)).status_code == 404
        assert (await client.get(f"/fhir/Task/{other}/_history", headers=auth)).status_code == 404
        assert (await client.get(f"/fhir/Task/{other}/_history/1", headers=auth)).status_code == 404
        assert (await client.get(f"/fhir/Task/{mine}", headers=auth)).status_code == 200
        assert (await client.get(f"/fhir/Task/{mine}/_history", headers=auth)).status_code == 200
        assert (await client.get("/fhir/Task/_history", headers=auth)).status_code == 403
        assert (await client.get("/fhir/_history", headers=auth)).status_code == 403
        # batch entries are judged one by one
        r = await client.post(
            "/fhir",
            headers={**FHIR, **auth},
            json={
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {"request": {"method": "GET", "url": f"Task/{other}"}},
                    {"request": {"method": "GET", "url": f"Task/{mine}"}},
                    {"request": {"method": "GET", "url": "Task?_total=accurate"}},
                ],
            },
        )
        assert r.status_code == 200, r.text
        entries = r.json()["entry"]
        assert entries[0]["response"]["status"].startswith("404")
        assert entries[1]["response"]["status"].startswith("200")
        assert entries[2]["resource"]["total"] == len(world.tasks[cbo])


@pytest.mark.parametrize("clinic", ["A", "B"])
async def test_a_clinic_sees_what_it_requested(
    app: FastAPI, world: World, token_issuer: TokenIssuer, clinic: str
) -> None:
    auth = token(token_issuer, "requester", clinic)
    async with app_client(app) as client:
        total, found = await ids(client, auth, "Task?_total=accurate&_count=2")
        assert total == len(world.requested[clinic])
        assert found["Task:match"] == set(world.requested[clinic])
        total, found = await ids(client, auth, "Patient?_total=accurate")
        assert found["Patient:match"] == world.patients_of_clinic[clinic]
        other = world.requested["B" if clinic == "A" else "A"][0]
        assert (await client.get(f"/fhir/Task/{other}", headers=auth)).status_code == 404
        # a transaction entry on another clinic's Task is not found either
        r = await client.post(
            "/fhir",
            headers={**FHIR, **auth},
            json={
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {"resourceType": "Task", "id": other, "status": "cancelled"},
                        "request": {"method": "PUT", "url": f"Task/{other}"},
                    }
                ],
            },
        )
        assert r.status_code == 404, r.text


async def test_a_cbo_changes_only_its_tasks_progress(
    app: FastAPI, world: World, token_issuer: TokenIssuer
) -> None:
    auth = token(token_issuer, "cbo", "X")
    async with app_client(app) as client:
        tid = world.tasks["X"][1]
        current = (await client.get(f"/fhir/Task/{tid}", headers=auth)).json()
        r = await client.put(
            f"/fhir/Task/{tid}",
            headers={**FHIR, **auth},
            json={**current, "description": "mine now"},
        )
        assert r.status_code == 403 and "description" in r.text, r.text
        r = await client.put(
            f"/fhir/Task/{tid}",
            headers={**FHIR, **auth},
            json={**current, "status": "accepted", "businessStatus": {"text": "intake booked"}},
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            "/fhir/Patient", headers={**FHIR, **auth}, json={"resourceType": "Patient"}
        )
        assert r.status_code == 403, r.text
        procedure = {
            "resourceType": "Procedure",
            "status": "completed",
            "code": {"text": "food pantry visit"},
            "subject": current["for"],
            "basedOn": [{"reference": f"ServiceRequest/{world.sr_of_task[tid]}"}],
        }
        r = await client.post("/fhir/Procedure", headers={**FHIR, **auth}, json=procedure)
        assert r.status_code == 201, r.text
        assert (
            await client.get(f"/fhir/Procedure/{r.json()['id']}", headers=auth)
        ).status_code == 200
        foreign = next(iter(world.requests["Y"] - world.requests["X"]))
        r = await client.post(
            "/fhir/Procedure",
            headers={**FHIR, **auth},
            json={**procedure, "basedOn": [{"reference": f"ServiceRequest/{foreign}"}]},
        )
        assert r.status_code == 403, r.text
        # Y does not see X's Procedure
        _, found = await ids(client, token(token_issuer, "cbo", "Y"), "Procedure")
        assert "Procedure:match" not in found


async def test_a_requester_writes_for_its_own_organization(
    app: FastAPI, world: World, token_issuer: TokenIssuer
) -> None:
    auth = token(token_issuer, "requester", "A")
    async with app_client(app) as client:
        first = world.tasks["X"][0]
        sr, pt = world.sr_of_task[first], world.patient_of_task[first]
        body = {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": TASK_CODE,
            "focus": {"reference": f"ServiceRequest/{sr}"},
            "for": {"reference": f"Patient/{pt}"},
            "authoredOn": "2026-12-04",
            "requester": {"reference": "Organization/B"},
            "owner": {"reference": "Organization/X"},
        }
        r = await client.post("/fhir/Task", headers={**FHIR, **auth}, json=body)
        assert r.status_code == 403 and "requester" in r.text, r.text
        body["requester"] = {"reference": "Organization/A"}
        r = await client.post("/fhir/Task", headers={**FHIR, **auth}, json=body)
        assert r.status_code == 201, r.text
        assert (await client.get(f"/fhir/Task/{r.json()['id']}", headers=auth)).status_code == 200


async def test_a_token_without_a_role_sees_and_writes_nothing(
    app: FastAPI, world: World, token_issuer: TokenIssuer
) -> None:
    auth = token(token_issuer, None, "A")
    async with app_client(app) as client:
        total, found = await ids(client, auth, "Task?_total=accurate")
        assert total == 0 and not found
        r = await client.post(
            "/fhir/Patient", headers={**FHIR, **auth}, json={"resourceType": "Patient"}
        )
        assert r.status_code == 403, r.text
        admin = token(token_issuer, "admin", None)
        total, _ = await ids(client, admin, "Task?_total=accurate")
        assert total is not None and total >= sum(len(t) for t in world.tasks.values())


async def test_a_requester_through_its_practitioner_role(
    app: FastAPI, world: World, token_issuer: TokenIssuer
) -> None:
    """A Task requested by one of clinic A's PractitionerRoles is A's, not B's."""
    admin = token(token_issuer, "admin", None)
    async with app_client(app) as client:
        role = await post(
            client,
            admin,
            {"resourceType": "PractitionerRole", "organization": {"reference": "Organization/A"}},
        )
        first = world.tasks["X"][0]
        sr, pt = world.sr_of_task[first], world.patient_of_task[first]
        body = {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": TASK_CODE,
            "focus": {"reference": f"ServiceRequest/{sr}"},
            "for": {"reference": f"Patient/{pt}"},
            "authoredOn": "2026-12-04",
            "requester": {"reference": f"PractitionerRole/{role}"},
            "owner": {"reference": "Organization/X"},
        }
        tid = await post(client, admin, body)
        a, b = token(token_issuer, "requester", "A"), token(token_issuer, "requester", "B")
        assert (await client.get(f"/fhir/Task/{tid}", headers=a)).status_code == 200
        assert (await client.get(f"/fhir/Task/{tid}", headers=b)).status_code == 404
        _, found = await ids(client, a, f"Task?_id={tid}")
        assert found["Task:match"] == {tid}
        r = await client.post("/fhir/Task", json=body, headers={**FHIR, **b})
        assert r.status_code == 403, r.text


async def test_parties_share_compiled_shapes_and_see_only_their_own(
    app: FastAPI, world: World, token_issuer: TokenIssuer
) -> None:
    """The same search by one CBO, then the other, then a clinic, again and again, paged one
    by one: the narrowed shape is compiled once (the organization is a bound value), and each
    party still gets exactly its own resources on every page."""
    parties = [("cbo", "X"), ("cbo", "Y"), ("requester", "A"), ("requester", "B")]
    queries = ("Task?_count=1", "Task?status=requested&_count=1&_sort=-_lastUpdated")
    async with app_client(app) as client:
        # what each may see, by the statement built per request (a total is never cached);
        # earlier tests here may have added Tasks, so the world's lists are not the whole truth
        expected = {}
        for role, org in parties:
            for query in queries:
                auth = token(token_issuer, role, org)
                _, found = await ids(client, auth, f"{query}&_total=accurate")
                expected[org, query] = found.get("Task:match", set())
        assert set(world.tasks["X"]) <= expected["X", queries[0]]
        assert not expected["X", queries[0]] & expected["Y", queries[0]]
        assert not expected["A", queries[0]] & expected["B", queries[0]]
        for _round in range(3):
            for role, org in parties:
                auth = token(token_issuer, role, org)
                for query in queries:
                    _, found = await ids(client, auth, query)
                    assert found.get("Task:match", set()) == expected[org, query], (org, query)
    engine = app.state.fhir.search
    narrowed = [
        plan
        for key, plan in engine.shapes._plans.items()
        if any(isinstance(part, tuple) and part[:1] == ("narrowed",) for part in key)
    ]
    assert narrowed and all(isinstance(plan, Plan) for plan in narrowed)
    # one compiled statement per shape and kind of party, not per organization
    assert len(narrowed) <= 2 * 2 * 2  # (first page, next pages) x queries x kinds
