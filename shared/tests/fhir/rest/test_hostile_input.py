"""Hostile input through the HTTP API, on both databases: every request gets an
OperationOutcome with a 4xx where it used to get a 500 (NUL characters, over-long ids, deep
nesting), a failing batch entry fails alone, transactions refuse ambiguous or unresolvable
``fullUrl`` references, and a client's Host header never picks the base of links."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from closedloop.service import create_service_app
from closedloop.settings import ServiceSettings
from closedloop.testing import app_client

from .conftest import FHIR_JSON, TYPES

MIGRATIONS = Path(__file__).parent / "migrations"


def _explode_on_request(value: str) -> str:
    """A search value resolver that fails unexpectedly for one value (a stand-in for any bug
    or database error behind a search)."""
    if value == "explode":
        raise RuntimeError("resolver bug")
    return value


def make_app(database_url: str, **settings: Any) -> Any:
    return create_service_app(
        name="hostile-test",
        settings=ServiceSettings(database_url=database_url, **settings),
        resource_types=TYPES,
        migrations=MIGRATIONS,
        value_resolvers={"family": _explode_on_request},
    )


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_app(database_url)) as c:
        yield c


def code_of(r: httpx.Response) -> str:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    return str(body["issue"][0]["details"]["coding"][0]["code"])


def nested_extension(depth: int) -> dict[str, Any]:
    ext: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth - 1):
        ext = {"url": "http://example.org/branch", "extension": [ext]}
    return ext


async def count(client: httpx.AsyncClient, query: str) -> int:
    r = await client.get(f"/fhir/{query}&_summary=count")
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


# -- NUL characters ---------------------------------------------------------------------------


async def test_nul_in_a_body_is_refused(client: httpx.AsyncClient) -> None:
    family = f"nul-{uuid.uuid4().hex[:8]}"
    patient = {"resourceType": "Patient", "name": [{"family": family + "\u0000x"}]}
    r = await client.post("/fhir/Patient", content=orjson.dumps(patient), headers=FHIR_JSON)
    assert r.status_code == 400 and code_of(r) == "CL-1007"
    keyed = {"resourceType": "Patient", "extension": [{"url": "u", "valueString\u0000": "x"}]}
    r = await client.post("/fhir/Patient", content=orjson.dumps(keyed), headers=FHIR_JSON)
    assert r.status_code == 400 and code_of(r) == "CL-1007"
    r = await client.put(
        "/fhir/Patient/nul1",
        content=orjson.dumps({**patient, "id": "nul1"}),
        headers=FHIR_JSON,
    )
    assert r.status_code == 400 and code_of(r) == "CL-1007"
    assert await count(client, f"Patient?family={family}") == 0

    created = await client.post(
        "/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON
    )
    pid = created.json()["id"]
    ops = [{"op": "add", "path": "/gender", "value": "male\u0000"}]
    r = await client.patch(
        f"/fhir/Patient/{pid}",
        content=orjson.dumps(ops),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 400 and code_of(r) == "CL-1007"


async def test_nul_in_ids_and_search_values_is_refused(client: httpx.AsyncClient) -> None:
    for method, url in (
        ("GET", "/fhir/Patient/a%00b"),
        ("DELETE", "/fhir/Patient/a%00b"),
        ("GET", "/fhir/Patient/a%00b/_history/1"),
        ("GET", "/fhir/Patient?family=a%00b"),
        ("GET", "/fhir/Patient?family=a%00b&_pretty=true"),
        ("GET", "/fhir/Patient?_id=a%00b"),
    ):
        r = await client.request(method, url)
        assert r.status_code == 400, (url, r.text)
        assert code_of(r) == "CL-1010", url
    r = await client.put(
        "/fhir/Patient/a%00b",
        content=orjson.dumps({"resourceType": "Patient", "id": "ab"}),
        headers=FHIR_JSON,
    )
    assert r.status_code == 400 and code_of(r) == "CL-1010"
    r = await client.post(
        "/fhir/Patient/_search",
        content=b"family=a%00b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and code_of(r) == "CL-1010"
    r = await client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient"},
        headers={**FHIR_JSON, "If-None-Exist": "family=a%00b"},
    )
    assert r.status_code == 400 and code_of(r) == "CL-1010"


async def test_nul_in_a_batch_entry_url_fails_that_entry(client: httpx.AsyncClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient?family=a%00b"}},
            {"request": {"method": "GET", "url": "Patient/a%00b"}},
            {"request": {"method": "GET", "url": "Patient?_count=1"}},
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["400", "400", "200 OK"]


# -- ids --------------------------------------------------------------------------------------


async def test_ids_follow_the_fhir_id_rule(client: httpx.AsyncClient) -> None:
    long_id = "a" * 65
    r = await client.put(
        f"/fhir/Patient/{long_id}",
        json={"resourceType": "Patient", "id": long_id},
        headers=FHIR_JSON,
    )
    assert r.status_code == 400 and code_of(r) == "CL-1005"
    assert (await client.get(f"/fhir/Patient/{long_id}")).status_code == 400
    longest = "b" * 64
    r = await client.put(
        f"/fhir/Patient/{longest}",
        json={"resourceType": "Patient", "id": longest},
        headers=FHIR_JSON,
    )
    assert r.status_code == 201, r.text
    assert (await client.get(f"/fhir/Patient/{longest}")).status_code == 200
    for bad in ("a_b", "a%20b", "%C3%A9t%C3%A9"):
        r = await client.get(f"/fhir/Patient/{bad}")
        assert r.status_code == 400 and code_of(r) == "CL-1005", bad
    # conditional update creating with the body's id, and a transaction PUT, follow it too
    r = await client.put(
        "/fhir/Patient?identifier=urn:x|long-id",
        json={"resourceType": "Patient", "id": long_id},
        headers=FHIR_JSON,
    )
    assert r.status_code == 400 and code_of(r) == "CL-1005"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "id": long_id},
                "request": {"method": "PUT", "url": f"Patient/{long_id}"},
            }
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 400 and code_of(r) == "CL-1005"


# -- nesting ----------------------------------------------------------------------------------


async def test_deeply_nested_bodies_are_refused(client: httpx.AsyncClient) -> None:
    for depth in (60, 120):
        patient = {"resourceType": "Patient", "extension": [nested_extension(depth)]}
        r = await client.post("/fhir/Patient", content=orjson.dumps(patient), headers=FHIR_JSON)
        assert r.status_code == 400 and code_of(r) == "CL-1006", depth
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": patient, "request": {"method": "POST", "url": "Patient"}}],
        }
        r = await client.post("/fhir", content=orjson.dumps(bundle), headers=FHIR_JSON)
        assert r.status_code == 400 and code_of(r) == "CL-1006", depth
    # past what the JSON parser itself recurses into: still a 400
    very_deep = b'{"resourceType":"Patient","extension":' + b"[" * 3000 + b"]" * 3000 + b"}"
    r = await client.post("/fhir/Patient", content=very_deep, headers=FHIR_JSON)
    assert r.status_code == 400 and code_of(r) == "CL-1000"
    # nesting a real resource can have is fine
    ok = {"resourceType": "Patient", "extension": [nested_extension(20)]}
    r = await client.post("/fhir/Patient", content=orjson.dumps(ok), headers=FHIR_JSON)
    assert r.status_code == 201, r.text


async def test_a_patch_cannot_nest_a_resource_too_deep(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/fhir/Patient",
        content=orjson.dumps({"resourceType": "Patient", "extension": [nested_extension(45)]}),
        headers=FHIR_JSON,
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    path = "/extension/0" + "/extension/0" * 44
    ops = [{"op": "add", "path": path + "/extension", "value": [nested_extension(45)]}]
    r = await client.patch(
        f"/fhir/Patient/{pid}",
        content=orjson.dumps(ops),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 400 and code_of(r) == "CL-1006"


# -- batch and transaction --------------------------------------------------------------------


async def test_a_failing_batch_get_fails_only_its_entry(client: httpx.AsyncClient) -> None:
    bad_cursor = base64.urlsafe_b64encode(b'{"d":"next","k":["x",1]}').decode().rstrip("=")
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient?_cursor={bad_cursor}"}},
            {"request": {"method": "GET", "url": "Patient?_cursor=not-a-cursor"}},
            {"request": {"method": "GET", "url": "Patient?family=explode"}},
            {
                "resource": {"resourceType": "Patient", "gender": "other"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": "Patient?_count=1"}},
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    statuses = [e["response"]["status"] for e in entries]
    assert statuses[0].startswith("4") and statuses[1] == "400"
    assert statuses[2] == "500" and statuses[3:] == ["201 Created", "200 OK"]
    failed = entries[2]["response"]["outcome"]
    assert failed["issue"][0]["details"]["coding"][0]["code"] == "CL-0500"
    assert "resolver bug" not in r.text and "Traceback" not in r.text


def _post(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


async def test_a_transaction_refuses_duplicate_full_urls(client: httpx.AsyncClient) -> None:
    family = f"dup-{uuid.uuid4().hex[:8]}"
    urn = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _post(urn, {"resourceType": "Patient", "name": [{"family": family}]}),
            _post(urn, {"resourceType": "Patient", "name": [{"family": family}]}),
            _post(
                f"urn:uuid:{uuid.uuid4()}",
                {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
                | {"subject": {"reference": urn}},
            ),
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 400 and code_of(r) == "CL-4407"
    assert "Bundle.entry[1].fullUrl" in r.json()["issue"][0]["expression"]
    assert await count(client, f"Patient?family={family}") == 0
    bundle["type"] = "batch"
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 400 and code_of(r) == "CL-4407"


async def test_a_transaction_refuses_urn_references_to_no_entry(
    client: httpx.AsyncClient,
) -> None:
    family = f"urn-{uuid.uuid4().hex[:8]}"
    missing = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _post(
                f"urn:uuid:{uuid.uuid4()}",
                {"resourceType": "Patient", "name": [{"family": family}]},
            ),
            _post(
                f"urn:uuid:{uuid.uuid4()}",
                {"resourceType": "Observation", "status": "final", "code": {"text": family}}
                | {"subject": {"reference": missing}},
            ),
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 422 and code_of(r) == "CL-4408"
    assert missing in r.json()["issue"][0]["diagnostics"]
    assert "Bundle.entry[1].resource" in r.json()["issue"][0]["expression"]
    assert await count(client, f"Patient?family={family}") == 0
    # in a batch, entries never refer to each other: only that entry fails
    bundle["type"] = "batch"
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created", "422"]
    outcome = entries[1]["response"]["outcome"]
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "CL-4408"


async def test_a_transaction_takes_references_outside_the_bundle_as_they_are(
    client: httpx.AsyncClient,
) -> None:
    """The documented rule: a relative or absolute reference to a resource that is neither in
    the Bundle nor on this server is stored as is (no referential integrity: it may live on
    another server or be created later), like on a plain create."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _post(
                f"urn:uuid:{uuid.uuid4()}",
                {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
                | {
                    "subject": {"reference": "Patient/not-stored-here"},
                    "performer": [{"reference": "http://other.example/fhir/Practitioner/p"}],
                },
            )
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    stored = r.json()["entry"][0]["resource"]
    assert stored["subject"]["reference"] == "Patient/not-stored-here"


# -- Host header ------------------------------------------------------------------------------


async def _links(client: httpx.AsyncClient, host: str) -> list[str]:
    """Every link a response carries back: Location, a search's links and fullUrls (fast path
    and full path), a transaction's fullUrl, and a history's links."""
    headers = {"Host": host}
    out = []
    created = await client.post(
        "/fhir/Patient", json={"resourceType": "Patient"}, headers={**FHIR_JSON, **headers}
    )
    assert created.status_code == 201, created.text
    out.append(created.headers["location"])
    for query in ("/fhir/Patient?_count=1", "/fhir/Patient?_count=1&_pretty=true"):
        page = (await client.get(query, headers=headers)).json()
        out += [link["url"] for link in page["link"]]
        out += [e["fullUrl"] for e in page["entry"]]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_post(f"urn:uuid:{uuid.uuid4()}", {"resourceType": "Patient"})],
    }
    tx = (await client.post("/fhir", json=bundle, headers={**FHIR_JSON, **headers})).json()
    out += [e["fullUrl"] for e in tx["entry"]]
    history = (await client.get("/fhir/Patient/_history?_count=1", headers=headers)).json()
    out += [link["url"] for link in history["link"]]
    return out


async def test_an_unknown_host_never_ends_up_in_links(database_url: str) -> None:
    app = make_app(database_url, host="127.0.0.1", port=8123)
    async with app_client(app) as client:
        links = await _links(client, "evil.example")
        assert links and all(u.startswith("http://127.0.0.1:8123/fhir/") for u in links), links
        # a trusted (loopback) name keeps its own base
        links = await _links(client, "localhost:9999")
        assert all(u.startswith("http://localhost:9999/fhir/") for u in links), links


async def test_trusted_hosts_and_the_public_base(database_url: str) -> None:
    app = make_app(database_url, trusted_hosts="fhir.example.org, other.example.org")
    async with app_client(app) as client:
        links = await _links(client, "fhir.example.org")
        assert all(u.startswith("http://fhir.example.org/fhir/") for u in links), links
        links = await _links(client, "evil.example")
        assert all(u.startswith("http://127.0.0.1:8080/fhir/") for u in links), links
    app = make_app(database_url, public_base_url="https://api.example.org/fhir")
    async with app_client(app) as client:
        links = await _links(client, "evil.example")
        assert all(u.startswith("https://api.example.org/fhir/") for u in links), links
