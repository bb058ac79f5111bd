"""batch and transaction Bundles posted to the base."""

from __future__ import annotations

import uuid

import httpx

from .conftest import FHIR_JSON


def referral_transaction(mrn: str, authored: str = "2026-11-01T10:00:00Z") -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:mrn", "value": mrn}],
                },
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier=urn:mrn|{mrn}",
                },
            },
            {
                "fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222",
                "resource": {
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"},
                },
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {
                "resource": {
                    "resourceType": "Task",
                    "status": "requested",
                    "intent": "order",
                    "authoredOn": authored,
                    "focus": {"reference": "urn:uuid:22222222-2222-2222-2222-222222222222"},
                    "for": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"},
                },
                "request": {"method": "POST", "url": "Task"},
            },
        ],
    }


async def test_transaction_resolves_urn_uuids(client: httpx.AsyncClient) -> None:
    mrn = uuid.uuid4().hex
    r = await client.post("/fhir", json=referral_transaction(mrn), headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created"] * 3
    patient, sr, task = (e["resource"] for e in out["entry"])
    assert sr["subject"]["reference"] == f"Patient/{patient['id']}"
    assert task["focus"]["reference"] == f"ServiceRequest/{sr['id']}"
    assert task["for"]["reference"] == f"Patient/{patient['id']}"
    # the same bundle again: the patient is matched, not duplicated
    again = (await client.post("/fhir", json=referral_transaction(mrn), headers=FHIR_JSON)).json()
    assert again["entry"][0]["response"]["status"] == "200 OK"
    assert again["entry"][0]["resource"]["id"] == patient["id"]
    assert again["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{patient['id']}"


async def test_failed_transaction_stores_nothing(client: httpx.AsyncClient) -> None:
    mrn = uuid.uuid4().hex
    bundle = referral_transaction(mrn, authored="last tuesday")
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 400
    issue = r.json()["issue"][0]
    assert issue["diagnostics"].startswith("CL-1004: Bundle.entry[2]")
    assert issue["expression"][0].startswith("Bundle.entry[2]")
    found = (await client.get(f"/fhir/Patient?identifier=urn:mrn|{mrn}&_total=accurate")).json()
    assert found["total"] == 0
    srs = (await client.get(f"/fhir/ServiceRequest?subject.identifier={mrn}")).status_code
    assert srs in (200, 400)


async def test_transaction_with_update_delete_and_read(client: httpx.AsyncClient) -> None:
    org = (
        await client.post(
            "/fhir/Organization",
            json={"resourceType": "Organization", "name": "Old"},
            headers=FHIR_JSON,
        )
    ).json()
    gone = (
        await client.post(
            "/fhir/Organization", json={"resourceType": "Organization"}, headers=FHIR_JSON
        )
    ).json()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {**org, "name": "New"},
                "request": {
                    "method": "PUT",
                    "url": f"Organization/{org['id']}",
                    "ifMatch": 'W/"1"',
                },
            },
            {"request": {"method": "DELETE", "url": f"Organization/{gone['id']}"}},
            {"request": {"method": "GET", "url": f"Organization/{org['id']}"}},
        ],
    }
    out = (await client.post("/fhir", json=bundle, headers=FHIR_JSON)).json()
    assert [e["response"]["status"] for e in out["entry"]] == ["200 OK", "204 No Content", "200 OK"]
    assert out["entry"][2]["resource"]["name"] == "New"
    assert (await client.get(f"/fhir/Organization/{gone['id']}")).status_code == 410


async def test_transaction_if_match_conflict_rolls_back(client: httpx.AsyncClient) -> None:
    org = (
        await client.post(
            "/fhir/Organization",
            json={"resourceType": "Organization", "name": "Keep"},
            headers=FHIR_JSON,
        )
    ).json()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Organization", "name": "Should not exist"},
                "request": {"method": "POST", "url": "Organization"},
            },
            {
                "resource": {**org, "name": "Changed"},
                "request": {
                    "method": "PUT",
                    "url": f"Organization/{org['id']}",
                    "ifMatch": 'W/"9"',
                },
            },
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 412
    assert (await client.get(f"/fhir/Organization/{org['id']}")).json()["name"] == "Keep"
    found = (
        await client.get("/fhir/Organization?name:exact=Should%20not%20exist&_total=accurate")
    ).json()
    assert found["total"] == 0


async def test_batch_entries_fail_alone(client: httpx.AsyncClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {"resourceType": "Organization", "name": "Batch ok"},
                "request": {"method": "POST", "url": "Organization"},
            },
            {
                "resource": {"resourceType": "Organization", "active": "nope"},
                "request": {"method": "POST", "url": "Organization"},
            },
            {"request": {"method": "GET", "url": "Organization/does-not-exist"}},
        ],
    }
    out = (await client.post("/fhir", json=bundle, headers=FHIR_JSON)).json()
    assert out["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses[0] == "201 Created"
    assert statuses[1].startswith("400") and statuses[2].startswith("404")
    assert out["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"


async def test_bad_bundles(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "collection"}, headers=FHIR_JSON
    )
    assert r.status_code == 400
    r = await client.post("/fhir", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    assert r.status_code == 400
    r = await client.post(
        "/fhir",
        json={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "POST"}}],
        },
        headers=FHIR_JSON,
    )
    assert r.status_code == 400


async def test_entry_urls_of_another_shape_are_refused_not_cut_short(
    client: httpx.AsyncClient,
) -> None:
    """``PUT Patient/x/_history/1`` used to update ``Patient/x``; a version is for GET only."""
    pid = f"p{uuid.uuid4().hex[:8]}"
    body = {"resourceType": "Patient", "id": pid, "active": True}
    assert (await client.put(f"/fhir/Patient/{pid}", json=body, headers=FHIR_JSON)).is_success
    entries = [
        ("PUT", f"Patient/{pid}/_history/1", {**body, "active": False}),
        ("DELETE", f"Patient/{pid}/_history/1", None),
        ("GET", f"Patient/{pid}/whatever", None),
        ("GET", f"Patient/{pid}/_history/99999999999999999999999", None),
        ("GET", f"Patient/{pid}/_history/²", None),
        ("GET", f"Patient/{pid}/_history/1", None),
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": m, "url": u}, **({"resource": res} if res else {})}
            for m, u, res in entries
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert [s.split()[0] for s in statuses] == ["400"] * 5 + ["200"], statuses
    stored = (await client.get(f"/fhir/Patient/{pid}")).json()
    assert stored["active"] is True and stored["meta"]["versionId"] == "1"
