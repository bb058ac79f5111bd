"""create, read, vread, update, patch, delete through real HTTP calls."""

from __future__ import annotations

import uuid

import httpx

from .conftest import FHIR_JSON


def patient(**extra: object) -> dict:
    return {
        "resourceType": "Patient",
        "name": [{"family": "Rivera", "given": ["Ana"]}],
        "identifier": [{"system": "urn:mrn", "value": uuid.uuid4().hex}],
        **extra,
    }


async def create(client: httpx.AsyncClient, body: dict, **headers: str) -> httpx.Response:
    return await client.post(
        f"/fhir/{body['resourceType']}", json=body, headers={**FHIR_JSON, **headers}
    )


class TestCreate:
    async def test_assigns_id_version_and_headers(self, client: httpx.AsyncClient) -> None:
        r = await create(client, patient(id="client-chosen"))
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["id"] != "client-chosen"
        assert body["meta"]["versionId"] == "1"
        assert body["meta"]["lastUpdated"]
        assert r.headers["etag"] == 'W/"1"'
        assert r.headers["location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
        assert r.headers["content-type"].startswith("application/fhir+json")

    async def test_prefer_minimal_and_outcome(self, client: httpx.AsyncClient) -> None:
        r = await create(client, patient(), Prefer="return=minimal")
        assert r.status_code == 201 and r.content == b""
        assert r.headers["location"]
        r = await create(client, patient(), Prefer="return=OperationOutcome")
        assert r.status_code == 201
        assert r.json()["resourceType"] == "OperationOutcome"

    async def test_wrong_resource_type_for_url(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/fhir/Observation", json=patient(), headers=FHIR_JSON)
        assert r.status_code == 400
        issue = r.json()["issue"][0]
        assert "resourceType" in issue["diagnostics"]
        assert issue["expression"] == ["Observation.resourceType"]

    async def test_unknown_element_is_named(self, client: httpx.AsyncClient) -> None:
        r = await create(client, patient(favouriteColour="blue"))
        assert r.status_code == 400
        assert r.json()["issue"][0]["expression"] == ["Patient.favouriteColour"]

    async def test_wrong_type_is_named(self, client: httpx.AsyncClient) -> None:
        r = await create(client, patient(active="maybe", birthDate="2020-13-45"))
        assert r.status_code == 400
        exprs = {e for i in r.json()["issue"] for e in i["expression"]}
        assert exprs == {"Patient.active", "Patient.birthDate"}

    async def test_malformed_json(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/fhir/Patient", content=b'{"resourceType": "Pat', headers=FHIR_JSON)
        assert r.status_code == 400
        assert r.json()["resourceType"] == "OperationOutcome"
        assert "JSON" in r.json()["issue"][0]["diagnostics"]

    async def test_unsupported_type(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            "/fhir/Medication", json={"resourceType": "Medication"}, headers=FHIR_JSON
        )
        assert r.status_code == 404
        assert "not supported" in r.json()["issue"][0]["diagnostics"]
        r = await client.get("/fhir/NotAType/1")
        assert r.status_code == 404

    async def test_wrong_content_type(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            "/fhir/Patient", content=b"<Patient/>", headers={"Content-Type": "text/plain"}
        )
        assert r.status_code == 415
        assert r.json()["resourceType"] == "OperationOutcome"

    async def test_body_over_limit(self, client: httpx.AsyncClient) -> None:
        big = patient(text={"status": "generated", "div": "<div>" + "x" * 300_000 + "</div>"})
        r = await create(client, big)
        assert r.status_code == 413
        assert r.json()["resourceType"] == "OperationOutcome"

    async def test_not_an_object(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/fhir/Patient", content=b"[1,2]", headers=FHIR_JSON)
        assert r.status_code == 400


class TestRead:
    async def test_read_and_vread(self, client: httpx.AsyncClient) -> None:
        created = (await create(client, patient())).json()
        r = await client.get(f"/fhir/Patient/{created['id']}")
        assert r.status_code == 200
        assert r.json() == created
        assert r.headers["etag"] == 'W/"1"'
        assert r.headers["last-modified"]
        v = await client.get(f"/fhir/Patient/{created['id']}/_history/1")
        assert v.status_code == 200 and v.json() == created
        assert (await client.get(f"/fhir/Patient/{created['id']}/_history/7")).status_code == 404

    async def test_unknown_id(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/fhir/Patient/does-not-exist")
        assert r.status_code == 404
        assert r.json()["issue"][0]["code"] == "not-found"

    async def test_format_and_pretty(self, client: httpx.AsyncClient) -> None:
        created = (await create(client, patient())).json()
        r = await client.get(f"/fhir/Patient/{created['id']}?_format=json&_pretty=true")
        assert r.status_code == 200 and "\n  " in r.text
        r = await client.get(f"/fhir/Patient/{created['id']}?_format=xml")
        assert r.status_code == 200 and r.headers["content-type"] == "application/fhir+xml"
        r = await client.get(f"/fhir/Patient/{created['id']}?_format=html")
        assert r.status_code == 400


class TestUpdate:
    async def test_update_with_if_match(self, client: httpx.AsyncClient) -> None:
        created = (await create(client, patient())).json()
        pid = created["id"]
        changed = {**created, "active": True}
        r = await client.put(
            f"/fhir/Patient/{pid}", json=changed, headers={**FHIR_JSON, "If-Match": 'W/"1"'}
        )
        assert r.status_code == 200, r.text
        assert r.json()["meta"]["versionId"] == "2" and r.json()["active"] is True
        stale = await client.put(
            f"/fhir/Patient/{pid}",
            json={**changed, "active": False},
            headers={**FHIR_JSON, "If-Match": 'W/"1"'},
        )
        assert stale.status_code == 412
        assert (await client.get(f"/fhir/Patient/{pid}")).json()["active"] is True

    async def test_id_mismatch(self, client: httpx.AsyncClient) -> None:
        created = (await create(client, patient())).json()
        r = await client.put(
            f"/fhir/Patient/{created['id']}", json={**created, "id": "other"}, headers=FHIR_JSON
        )
        assert r.status_code == 400
        assert r.json()["issue"][0]["expression"] == ["Patient.id"]

    async def test_update_creates_with_client_id(self, client: httpx.AsyncClient) -> None:
        pid = f"p-{uuid.uuid4().hex[:8]}"
        r = await client.put(f"/fhir/Patient/{pid}", json=patient(id=pid), headers=FHIR_JSON)
        assert r.status_code == 201
        assert r.json()["id"] == pid

    async def test_no_op_update_keeps_version(self, client: httpx.AsyncClient) -> None:
        created = (await create(client, patient())).json()
        r = await client.put(f"/fhir/Patient/{created['id']}", json=created, headers=FHIR_JSON)
        assert r.status_code == 200 and r.json()["meta"]["versionId"] == "1"

    async def test_failed_update_changes_nothing(self, client: httpx.AsyncClient) -> None:
        created = (await create(client, patient())).json()
        r = await client.put(
            f"/fhir/Patient/{created['id']}", json={**created, "gender": 42}, headers=FHIR_JSON
        )
        assert r.status_code == 400
        assert (await client.get(f"/fhir/Patient/{created['id']}")).json() == created

    async def test_conditional_update(self, client: httpx.AsyncClient) -> None:
        body = patient()
        ident = body["identifier"][0]["value"]
        r = await client.put(
            f"/fhir/Patient?identifier=urn:mrn|{ident}", json=body, headers=FHIR_JSON
        )
        assert r.status_code == 201
        pid = r.json()["id"]
        r = await client.put(
            f"/fhir/Patient?identifier=urn:mrn|{ident}",
            json={**body, "active": True},
            headers=FHIR_JSON,
        )
        assert r.status_code == 200 and r.json()["id"] == pid
        assert r.json()["meta"]["versionId"] == "2"

    async def test_malformed_if_match(self, client: httpx.AsyncClient) -> None:
        created = (await create(client, patient())).json()
        r = await client.put(
            f"/fhir/Patient/{created['id']}",
            json=created,
            headers={**FHIR_JSON, "If-Match": "banana"},
        )
        assert r.status_code == 400


class TestPatch:
    async def test_json_patch(self, client: httpx.AsyncClient) -> None:
        created = (await create(client, patient())).json()
        ops = [
            {"op": "add", "path": "/active", "value": True},
            {"op": "replace", "path": "/name/0/family", "value": "Reyes"},
        ]
        r = await client.patch(
            f"/fhir/Patient/{created['id']}",
            json=ops,
            headers={"Content-Type": "application/json-patch+json", "If-Match": 'W/"1"'},
        )
        assert r.status_code == 200, r.text
        assert r.json()["name"][0]["family"] == "Reyes" and r.json()["active"] is True
        assert r.json()["meta"]["versionId"] == "2"

    async def test_patch_that_breaks_the_resource(self, client: httpx.AsyncClient) -> None:
        created = (await create(client, patient())).json()
        ops = [{"op": "add", "path": "/active", "value": "not-a-boolean"}]
        r = await client.patch(
            f"/fhir/Patient/{created['id']}",
            json=ops,
            headers={"Content-Type": "application/json-patch+json"},
        )
        assert r.status_code == 400
        ops = [{"op": "remove", "path": "/nothing/here"}]
        r = await client.patch(
            f"/fhir/Patient/{created['id']}",
            json=ops,
            headers={"Content-Type": "application/json-patch+json"},
        )
        assert r.status_code == 422
        assert (await client.get(f"/fhir/Patient/{created['id']}")).json() == created

    async def test_patch_needs_patch_content_type(self, client: httpx.AsyncClient) -> None:
        created = (await create(client, patient())).json()
        r = await client.patch(f"/fhir/Patient/{created['id']}", json=[], headers=FHIR_JSON)
        assert r.status_code == 415


class TestDelete:
    async def test_delete_then_gone(self, client: httpx.AsyncClient) -> None:
        created = (await create(client, patient())).json()
        r = await client.delete(f"/fhir/Patient/{created['id']}")
        assert r.status_code == 204
        r = await client.get(f"/fhir/Patient/{created['id']}")
        assert r.status_code == 410
        assert r.json()["issue"][0]["code"] == "deleted"
        assert (await client.delete(f"/fhir/Patient/{created['id']}")).status_code == 204
        hist = (await client.get(f"/fhir/Patient/{created['id']}/_history")).json()
        assert [e["response"]["status"] for e in hist["entry"]] == ["204 No Content", "201 Created"]
        # re-creating with PUT brings it back as version 3
        r = await client.put(f"/fhir/Patient/{created['id']}", json=created, headers=FHIR_JSON)
        assert r.status_code == 201 and r.json()["meta"]["versionId"] == "3"

    async def test_delete_unknown(self, client: httpx.AsyncClient) -> None:
        assert (await client.delete("/fhir/Patient/never-was")).status_code == 404


class TestService:
    async def test_health_and_ready(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/healthz")).json()["status"] == "ok"
        assert (await client.get("/readyz")).json()["status"] == "ready"

    async def test_unknown_route_and_method(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/nowhere")
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
        r = await client.delete("/fhir/metadata")
        assert r.status_code in (404, 405) and r.json()["resourceType"] == "OperationOutcome"

    async def test_request_id_echoed(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/healthz", headers={"X-Request-ID": "abc123"})
        assert r.headers["x-request-id"] == "abc123"

    async def test_capability_statement(self, client: httpx.AsyncClient) -> None:
        cs = (await client.get("/fhir/metadata")).json()
        assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
        types = {r["type"]: r for r in cs["rest"][0]["resource"]}
        assert set(types) == {
            "Patient",
            "Observation",
            "Task",
            "ServiceRequest",
            "Organization",
            "Practitioner",
            "Location",
        }
        names = {p["name"] for p in types["Patient"]["searchParam"]}
        assert {"identifier", "name", "birthdate", "_id", "_lastUpdated"} <= names
        assert {"create", "read", "search-type"} <= {
            i["code"] for i in types["Task"]["interaction"]
        }
