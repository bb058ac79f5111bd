"""Search through HTTP: each parameter type, modifiers, includes, paging, result parameters.
Every case runs on SQLite and PostgreSQL with the same data and must give the same ids."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from .conftest import FHIR_JSON

TAG = uuid.uuid4().hex[:8]  # isolates this module's data from other modules' in the same db


async def post(client: httpx.AsyncClient, body: dict) -> dict:
    r = await client.post(f"/fhir/{body['resourceType']}", json=body, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
async def data(client: httpx.AsyncClient) -> AsyncIterator[dict[str, dict]]:
    org = await post(client, {"resourceType": "Organization", "name": f"Food Bank {TAG}"})
    ana = await post(
        client,
        {
            "resourceType": "Patient",
            "gender": "female",
            "birthDate": "1990-05-17",
            "name": [{"family": f"Muñoz{TAG}", "given": ["Ana"]}],
            "identifier": [{"system": "urn:mrn", "value": f"A-{TAG}"}],
            "telecom": [{"system": "email", "value": f"ana{TAG}@example.org"}],
        },
    )
    bo = await post(
        client,
        {
            "resourceType": "Patient",
            "gender": "male",
            "birthDate": "1985",
            "name": [{"family": f"Bo{TAG}", "given": ["Bo"]}],
            "identifier": [{"system": "urn:other", "value": f"B-{TAG}"}],
        },
    )
    sr = await post(
        client,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{ana['id']}"},
            "performer": [{"reference": f"Organization/{org['id']}"}],
        },
    )
    tasks = {}
    for name, status, owner in [
        ("t1", "requested", org),
        ("t2", "accepted", org),
        ("t3", "requested", None),
    ]:
        body = {
            "resourceType": "Task",
            "status": status,
            "intent": "order",
            "focus": {"reference": f"ServiceRequest/{sr['id']}"},
            "for": {"reference": f"Patient/{ana['id']}"},
            "businessStatus": {"text": TAG},
            "authoredOn": f"2026-11-0{len(tasks) + 1}T10:00:00Z",
        }
        if owner:
            body["owner"] = {"reference": f"Organization/{owner['id']}"}
        tasks[name] = await post(client, body)
    yield {"org": org, "ana": ana, "bo": bo, "sr": sr, **tasks}


async def ids(client: httpx.AsyncClient, query: str, **headers: str) -> list[str]:
    r = await client.get(f"/fhir/{query}", headers=headers)
    assert r.status_code == 200, r.text
    return [
        e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"
    ]


class TestParameterTypes:
    async def test_token(self, client: httpx.AsyncClient, data: dict) -> None:
        assert await ids(client, f"Patient?identifier=urn:mrn|A-{TAG}") == [data["ana"]["id"]]
        assert await ids(client, f"Patient?identifier=A-{TAG}") == [data["ana"]["id"]]
        assert await ids(client, f"Patient?identifier=urn:other|A-{TAG}") == []
        assert await ids(client, f"Patient?email=ana{TAG}@example.org") == [data["ana"]["id"]]
        both = await ids(client, f"Patient?identifier=A-{TAG},B-{TAG}")
        assert both == [data["ana"]["id"], data["bo"]["id"]]

    async def test_token_not_and_missing(self, client: httpx.AsyncClient, data: dict) -> None:
        owned = f"Task?_id={data['t1']['id']},{data['t2']['id']},{data['t3']['id']}"
        assert await ids(client, f"{owned}&status:not=requested") == [data["t2"]["id"]]
        assert await ids(client, f"{owned}&owner:missing=true") == [data["t3"]["id"]]
        assert await ids(client, f"{owned}&owner:missing=false") == [
            data["t1"]["id"],
            data["t2"]["id"],
        ]

    async def test_string(self, client: httpx.AsyncClient, data: dict) -> None:
        ana = [data["ana"]["id"]]
        assert await ids(client, f"Patient?family=munoz{TAG}") == ana  # accents, case
        assert await ids(client, "Patient?family=MUÑ") != []
        assert await ids(client, f"Patient?family:exact=Muñoz{TAG}") == ana
        assert await ids(client, f"Patient?family:exact=muñoz{TAG}") == []
        assert await ids(client, f"Patient?name:contains=oz{TAG}") == ana

    async def test_date(self, client: httpx.AsyncClient, data: dict) -> None:
        ana, bo = data["ana"]["id"], data["bo"]["id"]
        scope = f"Patient?identifier=A-{TAG},B-{TAG}"
        assert await ids(client, f"{scope}&birthdate=1990-05-17") == [ana]
        assert await ids(client, f"{scope}&birthdate=1990") == [ana]
        assert await ids(client, f"{scope}&birthdate=gt1989") == [ana]
        assert await ids(client, f"{scope}&birthdate=lt1986-01-01") == [bo]
        assert await ids(client, f"{scope}&birthdate=ge1985-06-01&birthdate=le1990-12-31") == [
            ana,
            bo,
        ]

    async def test_reference(self, client: httpx.AsyncClient, data: dict) -> None:
        t1, t2 = data["t1"]["id"], data["t2"]["id"]
        org = data["org"]["id"]
        assert await ids(client, f"Task?owner=Organization/{org}") == [t1, t2]
        assert await ids(client, f"Task?owner={org}") == [t1, t2]
        assert await ids(client, f"Task?owner:Organization={org}&status=accepted") == [t2]
        absolute = f"http://testserver/fhir/Organization/{org}"
        assert await ids(client, f"Task?owner={absolute}") == [t1, t2]
        assert await ids(client, f"Task?patient=Patient/{data['ana']['id']}&status=requested") == [
            t1,
            data["t3"]["id"],
        ]

    async def test_last_updated_and_id(self, client: httpx.AsyncClient, data: dict) -> None:
        since = data["t2"]["meta"]["lastUpdated"].replace("+", "%2B")
        scope = f"_id={data['t1']['id']},{data['t2']['id']},{data['t3']['id']}"
        assert await ids(client, f"Task?{scope}&_lastUpdated=ge{since}") == [
            data["t2"]["id"],
            data["t3"]["id"],
        ]
        assert await ids(client, f"Task?{scope}&_lastUpdated=gt{since}") == [data["t3"]["id"]]


class TestResultParameters:
    async def test_include_and_revinclude(self, client: httpx.AsyncClient, data: dict) -> None:
        r = (
            await client.get(
                f"/fhir/Task?_id={data['t1']['id']}&_include=Task:focus&_include=Task:owner"
            )
        ).json()
        modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in r["entry"]}
        assert modes == {
            ("Task", "match"),
            ("ServiceRequest", "include"),
            ("Organization", "include"),
        }
        r = (
            await client.get(f"/fhir/ServiceRequest?_id={data['sr']['id']}&_revinclude=Task:focus")
        ).json()
        assert sorted(
            e["resource"]["id"] for e in r["entry"] if e["search"]["mode"] == "include"
        ) == sorted(data[t]["id"] for t in ("t1", "t2", "t3"))
        r = (
            await client.get(
                f"/fhir/Task?_id={data['t1']['id']}&_include=Task:focus"
                "&_include:iterate=ServiceRequest:subject"
            )
        ).json()
        assert "Patient" in {e["resource"]["resourceType"] for e in r["entry"]}

    async def test_paging_is_stable(self, client: httpx.AsyncClient, data: dict) -> None:
        query = f"/fhir/Task?focus=ServiceRequest/{data['sr']['id']}&_count=2"
        page1 = (await client.get(query)).json()
        assert len(page1["entry"]) == 2
        nxt = next(lk["url"] for lk in page1["link"] if lk["relation"] == "next")
        # a new matching Task created between pages does not shift the next page
        await post(
            client,
            {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "focus": {"reference": f"ServiceRequest/{data['sr']['id']}"},
            },
        )
        page2 = (await client.get(nxt.removeprefix("http://testserver"))).json()
        first = [e["resource"]["id"] for e in page1["entry"]]
        second = [e["resource"]["id"] for e in page2["entry"]]
        assert first == [data["t1"]["id"], data["t2"]["id"]]
        assert second[0] == data["t3"]["id"] and not set(first) & set(second)
        prev = next(lk["url"] for lk in page2["link"] if lk["relation"] == "previous")
        back = (await client.get(prev.removeprefix("http://testserver"))).json()
        assert [e["resource"]["id"] for e in back["entry"]] == first

    async def test_sort_total_summary_elements(self, client: httpx.AsyncClient, data: dict) -> None:
        scope = f"Task?_id={data['t1']['id']},{data['t2']['id']},{data['t3']['id']}"
        assert await ids(client, f"{scope}&_sort=-_lastUpdated") == [
            data["t3"]["id"],
            data["t2"]["id"],
            data["t1"]["id"],
        ]
        r = (await client.get(f"/fhir/{scope}&_summary=count")).json()
        assert r["total"] == 3 and r["entry"] == []
        r = (await client.get(f"/fhir/{scope}")).json()
        assert "total" not in r
        r = (await client.get(f"/fhir/{scope}&_total=accurate&_elements=status")).json()
        assert r["total"] == 3
        res = r["entry"][0]["resource"]
        assert set(res) == {"resourceType", "id", "meta", "status"}
        assert res["meta"]["tag"][0]["code"] == "SUBSETTED"

    async def test_count_zero_is_summary_count(self, client: httpx.AsyncClient, data: dict) -> None:
        """``_count=0`` answers the total and no entries (R4: as ``_summary=count``), on the
        fast path (plain GET) and the full one (``_pretty``, POST ``_search``)."""
        scope = f"_id={data['t1']['id']},{data['t2']['id']},{data['t3']['id']}"
        for r in [
            await client.get(f"/fhir/Task?{scope}&_count=0"),
            await client.get(f"/fhir/Task?{scope}&_count=0&_pretty=true"),
            await client.post(
                "/fhir/Task/_search",
                content=f"{scope}&_count=0",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
        ]:
            assert r.status_code == 200, r.text
            assert r.json()["total"] == 3 and not r.json().get("entry")
            assert not [lk for lk in r.json()["link"] if lk["relation"] == "next"]

    async def test_post_search(self, client: httpx.AsyncClient, data: dict) -> None:
        r = await client.post(
            "/fhir/Patient/_search",
            content=f"identifier=A-{TAG}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [data["ana"]["id"]]


class TestBadSearches:
    async def test_unknown_parameter_warns_or_fails(
        self, client: httpx.AsyncClient, data: dict
    ) -> None:
        r = (await client.get(f"/fhir/Patient?identifier=A-{TAG}&shoe-size=12")).json()
        outcome = [e for e in r["entry"] if e["search"]["mode"] == "outcome"]
        assert "shoe-size" in outcome[0]["resource"]["issue"][0]["diagnostics"]
        r = await client.get(
            f"/fhir/Patient?identifier=A-{TAG}&shoe-size=12", headers={"Prefer": "handling=strict"}
        )
        assert r.status_code == 400

    @pytest.mark.parametrize(
        "query",
        [
            "Patient?birthdate=yesterday",
            "Patient?_count=many",
            "Task?owner:missing=perhaps",
            "Patient?_sort=shoe",
            "Task?_include=Task:status",
            "Patient?_cursor=%%%",
            "Patient?_summary=everything",
        ],
    )
    async def test_invalid_values_are_400(self, client: httpx.AsyncClient, query: str) -> None:
        r = await client.get(f"/fhir/{query}")
        assert r.status_code == 400, r.text
        assert r.json()["resourceType"] == "OperationOutcome"

    async def test_injection_is_just_a_value(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/fhir/Patient?family=x'%20OR%201=1--")
        assert r.status_code == 200 and r.json()["entry"] == []


class TestChainingAndHas:
    async def test_chain(self, client: httpx.AsyncClient, data: dict) -> None:
        t = [data[k]["id"] for k in ("t1", "t2", "t3")]
        assert await ids(client, f"Task?patient.identifier=A-{TAG}") == t
        assert await ids(client, f"Task?subject:Patient.identifier=A-{TAG}") == t  # Task.for
        assert await ids(client, "Task?focus:ServiceRequest.status=active&status=accepted") == [
            t[1]
        ]
        assert await ids(client, f"Task?owner:Organization.name=Food%20Bank%20{TAG}") == t[:2]
        assert await ids(client, f"Task?focus:ServiceRequest.subject:Patient.family=Bo{TAG}") == []
        # (a fourth Task on the same ServiceRequest comes from the paging test)
        deep = await ids(client, f"Task?focus:ServiceRequest.subject:Patient.family=Muñoz{TAG}")
        assert deep[:3] == t

    async def test_has(self, client: httpx.AsyncClient, data: dict) -> None:
        ana = data["ana"]["id"]
        assert await ids(client, f"Patient?_has:Task:patient:status=accepted&_id={ana}") == [ana]
        assert await ids(client, f"Patient?_has:Task:patient:status=cancelled&_id={ana}") == []
        orgs = await ids(client, f"Organization?_has:Task:owner:status=requested&name={TAG}")
        assert orgs == []  # name is a prefix search: "Food Bank <tag>" does not start with TAG
        orgs = await ids(
            client, f"Organization?_has:Task:owner:status=requested&name:contains={TAG}"
        )
        assert orgs == [data["org"]["id"]]
        nested = f"Patient?_has:ServiceRequest:subject:_has:Task:focus:status=accepted&_id={ana}"
        assert await ids(client, nested) == [ana]

    async def test_bad_chains(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/fhir/Task?status.name=x")
        assert r.status_code == 400
        r = await client.get("/fhir/Task?patient.shoe=x", headers={"Prefer": "handling=strict"})
        assert r.status_code == 400
        r = await client.get("/fhir/Patient?_has:Task=x")
        assert r.status_code == 400


class TestSortByParameters:
    async def test_sort_by_string_and_date_with_paging(
        self, client: httpx.AsyncClient, data: dict
    ) -> None:
        scope = f"Patient?identifier=A-{TAG},B-{TAG}"
        ana, bo = data["ana"]["id"], data["bo"]["id"]
        assert await ids(client, f"{scope}&_sort=family") == [bo, ana]
        assert await ids(client, f"{scope}&_sort=-family") == [ana, bo]
        assert await ids(client, f"{scope}&_sort=birthdate") == [bo, ana]
        assert await ids(client, f"{scope}&_sort=-birthdate,_id") == [ana, bo]
        page = (await client.get(f"/fhir/{scope}&_sort=-family&_count=1")).json()
        assert [e["resource"]["id"] for e in page["entry"]] == [ana]
        nxt = next(lk["url"] for lk in page["link"] if lk["relation"] == "next")
        page2 = (await client.get(nxt.removeprefix("http://testserver"))).json()
        assert [e["resource"]["id"] for e in page2["entry"]] == [bo]

    async def test_missing_values_sort_last(self, client: httpx.AsyncClient, data: dict) -> None:
        t = [data[k]["id"] for k in ("t1", "t2", "t3")]
        scope = f"Task?_id={','.join(t)}"
        assert await ids(client, f"{scope}&_sort=owner,-_lastUpdated") == [t[1], t[0], t[2]]
        page = (await client.get(f"/fhir/{scope}&_sort=owner,-_lastUpdated&_count=2")).json()
        nxt = next(lk["url"] for lk in page["link"] if lk["relation"] == "next")
        page2 = (await client.get(nxt.removeprefix("http://testserver"))).json()
        assert [e["resource"]["id"] for e in page2["entry"]] == [t[2]]
        prev = next(lk["url"] for lk in page2["link"] if lk["relation"] == "previous")
        back = (await client.get(prev.removeprefix("http://testserver"))).json()
        assert [e["resource"]["id"] for e in back["entry"]] == [t[1], t[0]]


async def test_identifier_of_type(client: httpx.AsyncClient) -> None:
    mr = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
    p = await post(
        client,
        {
            "resourceType": "Patient",
            "identifier": [{"type": mr, "system": "urn:x", "value": f"OT-{TAG}"}],
        },
    )
    system = "http://terminology.hl7.org/CodeSystem/v2-0203"
    assert await ids(client, f"Patient?identifier:of-type={system}|MR|OT-{TAG}") == [p["id"]]
    assert await ids(client, f"Patient?identifier:of-type={system}|SS|OT-{TAG}") == []
    r = await client.get(f"/fhir/Patient?identifier:of-type=MR|OT-{TAG}")
    assert r.status_code == 400


class TestWildcardsAndSummaries:
    async def test_include_and_revinclude_star(self, client: httpx.AsyncClient, data: dict) -> None:
        r = (await client.get(f"/fhir/Task?_id={data['t1']['id']}&_include=*")).json()
        kinds = {
            e["resource"]["resourceType"] for e in r["entry"] if e["search"]["mode"] == "include"
        }
        assert kinds == {"ServiceRequest", "Organization", "Patient"}
        r = (await client.get(f"/fhir/Task?_id={data['t1']['id']}&_include=Task:*")).json()
        assert len([e for e in r["entry"] if e["search"]["mode"] == "include"]) == 3
        r = await client.get(f"/fhir/Organization?_id={data['org']['id']}&_revinclude=*")
        assert r.status_code == 200
        kinds = {e["resource"]["resourceType"] for e in r.json()["entry"]}
        assert {"Organization", "Task", "ServiceRequest"} <= kinds

    async def test_summary_modes(self, client: httpx.AsyncClient, data: dict) -> None:
        pid = data["ana"]["id"]
        full = (await client.get(f"/fhir/Patient?_id={pid}")).json()["entry"][0]["resource"]
        summary = (await client.get(f"/fhir/Patient?_id={pid}&_summary=true")).json()
        res = summary["entry"][0]["resource"]
        assert (
            "name" in res and "identifier" in res and res["meta"]["tag"][0]["code"] == "SUBSETTED"
        )
        assert "name" in full
        data_only = (await client.get(f"/fhir/Patient?_id={pid}&_summary=data")).json()
        assert "text" not in data_only["entry"][0]["resource"]
        text_only = (await client.get(f"/fhir/Patient?_id={pid}&_summary=text")).json()
        assert set(text_only["entry"][0]["resource"]) <= {"resourceType", "id", "meta", "text"}

    async def test_token_text_modifier(self, client: httpx.AsyncClient, data: dict) -> None:
        sr = await post(
            client,
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "subject": {"reference": "Patient/x"},
                "code": {"text": f"Food pantry help {TAG}"},
            },
        )
        assert await ids(client, "ServiceRequest?code:text=food%20pantry") != []
        assert sr["id"] in await ids(client, "ServiceRequest?code:text=FOOD%20pantry&_count=1000")
