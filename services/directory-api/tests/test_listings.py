"""A token bound to an Organization writes its own listings only (both databases)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import TokenIssuer, app_client, audience_of, bearer
from directory_api.app import create_app
from directory_api.settings import Settings

AUD = audience_of("DIRECTORY_API_")
SCOPES = "user/*.cruds"


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(database_url=database_url))) as c:
        for body in (
            {"resourceType": "Organization", "id": "cbo-a", "name": "A"},
            {"resourceType": "Organization", "id": "cbo-b", "name": "B"},
            {"resourceType": "Location", "id": "site-a", "name": "A's site"},
            {"resourceType": "Location", "id": "site-b", "name": "B's site"},
            {"resourceType": "Location", "id": "site-shared", "name": "Shared"},
            {
                "resourceType": "Location",
                "id": "site-managed-b",
                "managingOrganization": {"reference": "Organization/cbo-b"},
            },
            _service("hs-a", "cbo-a", ["site-a", "site-shared"]),
            _service("hs-b", "cbo-b", ["site-b", "site-shared"]),
            {
                "resourceType": "Endpoint",
                "id": "ep-1",
                "status": "active",
                "connectionType": {"code": "hl7-fhir-rest"},
                "payloadType": [{"text": "x"}],
                "address": "https://example.org/fhir",
            },
        ):
            r = await c.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body)
            assert r.status_code in (200, 201), r.text
        yield c


def _service(sid: str, org: str, sites: list[str], name: str = "Pantry") -> dict:
    return {
        "resourceType": "HealthcareService",
        "id": sid,
        "name": name,
        "providedBy": {"reference": f"Organization/{org}"},
        "location": [{"reference": f"Location/{s}"} for s in sites],
    }


def _as(token_issuer: TokenIssuer, role: str | None, org: str | None) -> dict[str, str]:
    token = token_issuer.token(
        SCOPES, AUD, role=role, organization=f"Organization/{org}" if org else None
    )
    return bearer(token)


@pytest.fixture
def cbo_a(authority: TokenIssuer) -> dict[str, str]:
    return _as(authority, "cbo-staff", "cbo-a")


async def _put(c: httpx.AsyncClient, body: dict, headers: dict[str, str]) -> httpx.Response:
    return await c.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=headers)


async def _refused(r: httpx.Response, words: str) -> None:
    assert r.status_code == 403, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "forbidden" and words in issue["diagnostics"], issue


async def test_own_listing_changes(client: httpx.AsyncClient, cbo_a: dict[str, str]) -> None:
    r = await _put(client, _service("hs-a", "cbo-a", ["site-a", "site-shared"], "New"), cbo_a)
    assert r.status_code == 200, r.text
    r = await client.post(
        "/fhir/HealthcareService", json=_service("x", "cbo-a", ["site-a"]), headers=cbo_a
    )
    assert r.status_code == 201, r.text
    r = await _put(client, {"resourceType": "Location", "id": "site-a", "name": "A2"}, cbo_a)
    assert r.status_code == 200, r.text
    r = await _put(client, {"resourceType": "Organization", "id": "cbo-a", "name": "A2"}, cbo_a)
    assert r.status_code == 200, r.text
    new_site = {
        "resourceType": "Location",
        "managingOrganization": {"reference": "Organization/cbo-a"},
    }
    r = await client.post("/fhir/Location", json=new_site, headers=cbo_a)
    assert r.status_code == 201, r.text


async def test_others_listings_refused(client: httpx.AsyncClient, cbo_a: dict[str, str]) -> None:
    await _refused(
        await _put(client, _service("hs-b", "cbo-b", ["site-b"], "Mine now"), cbo_a),
        "provided by another Organization",
    )
    await _refused(
        await _put(client, _service("hs-b", "cbo-a", ["site-b"]), cbo_a),
        "provided by another Organization",
    )
    await _refused(
        await _put(client, _service("hs-a", "cbo-b", ["site-a"]), cbo_a),
        "providedBy must be Organization/cbo-a",
    )
    await _refused(
        await client.post(
            "/fhir/HealthcareService", json=_service("y", "cbo-b", []), headers=cbo_a
        ),
        "providedBy must be Organization/cbo-a",
    )
    await _refused(
        await _put(client, _service("hs-a", "cbo-a", ["site-a", "site-b"]), cbo_a),
        "Location/site-b is another Organization's site",
    )
    for site in ("site-b", "site-shared", "site-managed-b"):
        await _refused(
            await _put(client, {"resourceType": "Location", "id": site, "name": "x"}, cbo_a),
            f"Location/{site} is not a site of Organization/cbo-a alone",
        )
    await _refused(
        await client.post("/fhir/Location", json={"resourceType": "Location"}, headers=cbo_a),
        "managingOrganization must be Organization/cbo-a",
    )
    await _refused(
        await _put(client, {"resourceType": "Organization", "id": "cbo-b", "name": "x"}, cbo_a),
        "may change only that Organization",
    )
    await _refused(
        await client.post(
            "/fhir/Organization", json={"resourceType": "Organization"}, headers=cbo_a
        ),
        "may change only that Organization",
    )
    await _refused(await client.delete("/fhir/HealthcareService/hs-b", headers=cbo_a), "another")
    await _refused(await client.delete("/fhir/Organization/cbo-a", headers=cbo_a), "only that")
    ep = (await client.get("/fhir/Endpoint/ep-1")).json()
    await _refused(await _put(client, {**ep, "name": "x"}, cbo_a), "may not change Endpoint")
    # nothing was written
    hs_b = (await client.get("/fhir/HealthcareService/hs-b")).json()
    assert hs_b["name"] == "Pantry" and hs_b["meta"]["versionId"] == "1"


async def test_transaction_entry_refused(client: httpx.AsyncClient, cbo_a: dict[str, str]) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _service("hs-a", "cbo-a", ["site-a"], "T"),
                "request": {"method": "PUT", "url": "HealthcareService/hs-a"},
            },
            {
                "resource": _service("hs-b", "cbo-b", ["site-b"], "T"),
                "request": {"method": "PUT", "url": "HealthcareService/hs-b"},
            },
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=cbo_a)
    assert r.status_code == 403, r.text
    assert (await client.get("/fhir/HealthcareService/hs-a")).json()["name"] != "T"


async def test_unrestricted_and_nobody(client: httpx.AsyncClient, authority: TokenIssuer) -> None:
    for role in ("admin", "service"):
        r = await _put(
            client, _service("hs-b", "cbo-b", ["site-b"], role), _as(authority, role, None)
        )
        assert r.status_code == 200, r.text
    # an admin bound to an Organization is still an admin
    r = await _put(client, _service("hs-b", "cbo-b", ["site-b"]), _as(authority, "admin", "cbo-a"))
    assert r.status_code == 200, r.text
    # a backend client with neither role nor Organization: its scopes decide, as before
    r = await _put(client, _service("hs-b", "cbo-b", ["site-b"]), _as(authority, None, None))
    assert r.status_code == 200, r.text
    await _refused(
        await _put(
            client, _service("hs-a", "cbo-a", ["site-a"]), _as(authority, "cbo-staff", None)
        ),
        "names no Organization",
    )
    # a clinic's token is bound to its Organization too
    await _refused(
        await _put(
            client, _service("hs-a", "cbo-a", ["site-a"]), _as(authority, "clinician", "cbo-b")
        ),
        "provided by another Organization",
    )
