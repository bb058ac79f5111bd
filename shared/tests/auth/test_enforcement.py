"""Authorization on the shared FHIR engine, with a token issuer on loopback, on both databases:
401 and 403 with their challenges, transactions and batches, includes, history, operations,
the public discovery documents, and before_show on both read paths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from closedloop.context import RequestContext
from closedloop.hooks import HookPoint, Hooks
from closedloop.service import create_service_app
from closedloop.settings import FhirServiceSettings
from closedloop.testing import TokenIssuer, app_client, assert_scopes_enforced, bearer

TYPES = ["Patient", "Task", "ServiceRequest", "Organization"]
AUD = "http://testserver/fhir"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
MIGRATIONS = Path(__file__).parent.parent / "fhir" / "rest" / "migrations"

shown: list[tuple[str, list[tuple[str, str, str]]]] = []


async def record(ctx: RequestContext, items: Any) -> None:
    shown.append((ctx.subject or "-", [(s.resource_type, s.resource_id, s.mode) for s in items]))


@pytest.fixture(scope="module")
async def client(database_url: str, token_issuer: TokenIssuer) -> AsyncIterator[httpx.AsyncClient]:
    hooks = Hooks()
    hooks.register(HookPoint.BEFORE_SHOW, record)
    settings = FhirServiceSettings(database_url=database_url, **token_issuer.settings(AUD))
    app = create_service_app(
        name="auth-test",
        settings=settings,
        resource_types=TYPES,
        migrations=MIGRATIONS,
        hooks=hooks,
    )
    async with app_client(app) as c:
        everything = token_issuer.token(" ".join(f"system/{t}.cruds" for t in TYPES), AUD)
        for body in (
            {"resourceType": "Patient", "id": "p1"},
            {"resourceType": "Organization", "id": "o1"},
            {
                "resourceType": "ServiceRequest",
                "id": "sr1",
                "status": "active",
                "intent": "order",
                "subject": {"reference": "Patient/p1"},
            },
            {
                "resourceType": "Task",
                "id": "t1",
                "status": "requested",
                "intent": "order",
                "focus": {"reference": "ServiceRequest/sr1"},
                "for": {"reference": "Patient/p1"},
                "owner": {"reference": "Organization/o1"},
            },
        ):
            r = await c.put(
                f"/fhir/{body['resourceType']}/{body['id']}",
                json=body,
                headers={**FHIR_JSON, **bearer(everything)},
            )
            assert r.status_code == 201, r.text
        yield c


def token(issuer: TokenIssuer, scopes: str, **kw: Any) -> dict[str, str]:
    return bearer(issuer.token(scopes, AUD, **kw))


def codes(r: httpx.Response) -> list[str]:
    return [c["code"] for i in r.json()["issue"] for c in i.get("details", {}).get("coding", [])]


class TestTable:
    async def test_every_interaction_of_every_type(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        calls = await assert_scopes_enforced(client, token_issuer, AUD, TYPES, ["validate"])
        assert calls > 300


class TestUnauthorized:
    async def test_no_token(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/fhir/Task/t1")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == f'Bearer realm="{AUD}"'  # RFC 6750 3.1
        assert r.json()["resourceType"] == "OperationOutcome"
        assert codes(r) == ["CL-1301"]

    @pytest.mark.parametrize(
        "path", ["/fhir/Task/t1", "/fhir/Task?_id=t1", "/fhir/Task/t1/_history"]
    )
    async def test_a_refused_token(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer, path: str
    ) -> None:
        expired = token_issuer.token("system/Task.rs", AUD, lifetime=-600)
        r = await client.get(path, headers=bearer(expired))
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert codes(r) == ["CL-1302"]

    async def test_a_token_for_another_server(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        other = token_issuer.token("system/Task.rs", "http://127.0.0.1:8082/fhir")
        assert (await client.get("/fhir/Task/t1", headers=bearer(other))).status_code == 401

    async def test_discovery_is_public(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        cs = (await client.get("/fhir/metadata")).json()
        security = cs["rest"][0]["security"]
        assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
        uris = security["extension"][0]
        assert uris["url"].endswith("/oauth-uris")
        assert uris["extension"][0] == {"url": "token", "valueUri": f"{token_issuer.issuer}/token"}
        r = await client.get("/fhir/.well-known/smart-configuration")
        assert r.status_code == 200
        assert r.json()["token_endpoint"] == f"{token_issuer.issuer}/token"
        assert r.json()["jwks_uri"] == token_issuer.jwks_url
        assert "client_credentials" in r.json()["grant_types_supported"]


class TestForbidden:
    async def test_names_the_missing_scope(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        r = await client.post(
            "/fhir/Task",
            json={"resourceType": "Task"},
            headers={**FHIR_JSON, **token(token_issuer, "system/Task.rs")},
        )
        assert r.status_code == 403
        assert "needs system/Task.c" in r.text
        assert codes(r) == ["CL-1303"]
        challenge = r.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge and 'scope="system/Task.c"' in challenge

    @pytest.mark.parametrize(
        "scopes",
        [
            "system/Task.read",
            "system/Task.*",
            "system/*.rs",
            "user/Task.rs",
            "system/Task.r system/Task.s",
        ],
    )
    async def test_v1_v2_and_wildcards_grant(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer, scopes: str
    ) -> None:
        headers = token(token_issuer, scopes)
        assert (await client.get("/fhir/Task/t1", headers=headers)).status_code == 200
        assert (await client.get("/fhir/Task?_id=t1", headers=headers)).status_code == 200

    @pytest.mark.parametrize(
        "scopes", ["patient/Task.rs", "system/Task.rs?status=requested", "openid"]
    )
    async def test_scopes_not_honoured_grant_nothing(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer, scopes: str
    ) -> None:
        assert (
            await client.get("/fhir/Task/t1", headers=token(token_issuer, scopes))
        ).status_code == 403

    async def test_update_that_creates_needs_c(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        headers = {**FHIR_JSON, **token(token_issuer, "system/Patient.u")}
        r = await client.put(
            "/fhir/Patient/new-one",
            json={"resourceType": "Patient", "id": "new-one"},
            headers=headers,
        )
        assert r.status_code == 403 and "needs system/Patient.c" in r.text
        r = await client.put(
            "/fhir/Patient/p1",
            json={"resourceType": "Patient", "id": "p1", "active": True},
            headers=headers,
        )
        assert r.status_code == 200, r.text

    async def test_system_history_needs_search_on_every_type(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        r = await client.get("/fhir/_history", headers=token(token_issuer, "system/Task.rs"))
        assert r.status_code == 403 and "needs system/Patient.s" in r.text
        r = await client.get("/fhir/_history", headers=token(token_issuer, "system/*.s"))
        assert r.status_code == 200

    async def test_validate_is_judged_as_a_create(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        body = {"resourceType": "Patient"}
        r = await client.post(
            "/fhir/Patient/$validate",
            json=body,
            headers={**FHIR_JSON, **token(token_issuer, "system/Patient.rs")},
        )
        assert r.status_code == 403 and "needs system/Patient.c" in r.text
        r = await client.post(
            "/fhir/Patient/$validate",
            json=body,
            headers={**FHIR_JSON, **token(token_issuer, "system/Patient.c")},
        )
        assert r.status_code == 200


class TestIncludes:
    async def test_an_included_type_must_be_readable(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        tasks_only = token(token_issuer, "system/Task.rs")
        for query in ("_include=Task:focus", "_include=Task:*", "_revinclude=ServiceRequest:*"):
            r = await client.get(f"/fhir/Task?_id=t1&{query}", headers=tasks_only)
            if "revinclude" in query:
                assert r.status_code == 403 and "needs system/ServiceRequest.r" in r.text
            else:
                assert r.status_code == 403, query
                assert "needs system/" in r.text and "included" in r.text
        with_focus = token(token_issuer, "system/Task.rs system/ServiceRequest.r")
        r = await client.get("/fhir/Task?_id=t1&_include=Task:focus", headers=with_focus)
        assert r.status_code == 200
        assert {e["resource"]["resourceType"] for e in r.json()["entry"]} == {
            "Task",
            "ServiceRequest",
        }

    async def test_a_named_type_is_refused_before_the_search(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        r = await client.get(
            "/fhir/Task?_id=none&_include=Task:owner:Organization",
            headers=token(token_issuer, "system/Task.rs"),
        )
        assert r.status_code == 403 and "needs system/Organization.r" in r.text

    async def test_no_include_no_need(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        r = await client.get(
            "/fhir/Task?_id=t1&_include=Task:owner",
            headers=token(token_issuer, "system/Task.s system/Organization.r"),
        )
        assert r.status_code == 200 and len(r.json()["entry"]) == 2


class TestBundles:
    async def test_a_transaction_fails_whole(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {"resourceType": "Patient", "id": "tx-p"},
                    "request": {"method": "PUT", "url": "Patient/tx-p"},
                },
                {
                    "resource": {"resourceType": "Organization"},
                    "request": {"method": "POST", "url": "Organization"},
                },
            ],
        }
        headers = {**FHIR_JSON, **token(token_issuer, "system/Patient.cru")}
        r = await client.post("/fhir", json=bundle, headers=headers)
        assert r.status_code == 403
        assert "Bundle.entry[1]" in r.text and "needs system/Organization.c" in r.text
        assert (await client.get("/fhir/Patient/tx-p", headers=headers)).status_code == 404

    async def test_a_batch_entry_fails_alone(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": "Patient/p1"}},
                {"request": {"method": "GET", "url": "Task/t1"}},
                {"request": {"method": "GET", "url": "Task?_id=t1&_include=Task:patient"}},
            ],
        }
        r = await client.post(
            "/fhir", json=bundle, headers={**FHIR_JSON, **token(token_issuer, "system/Patient.r")}
        )
        assert r.status_code == 200
        statuses = [e["response"]["status"] for e in r.json()["entry"]]
        assert statuses[0].startswith("200") and statuses[1].startswith("403")
        r = await client.post(
            "/fhir", json=bundle, headers={**FHIR_JSON, **token(token_issuer, "system/Task.rs")}
        )
        statuses = [e["response"]["status"] for e in r.json()["entry"]]
        assert statuses[0].startswith("403") and statuses[1].startswith("200")
        assert statuses[2].startswith("403")  # its include would show a Patient


class TestBeforeShow:
    async def test_fires_on_both_read_paths_history_and_search(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        headers = token(token_issuer, "system/*.rs", subject="watcher")
        shown.clear()
        for path in (
            "/fhir/Task/t1",  # fast path
            "/fhir/Task/t1?_pretty=true",  # full path
            "/fhir/Task/t1/_history/1",
            "/fhir/Task/t1/_history",
            "/fhir/Task?_id=t1&_include=Task:focus",
            "/fhir/Task?_id=t1&_include=Task:focus&_pretty=true",
        ):
            assert (await client.get(path, headers=headers)).status_code == 200, path
        seen = [items for who, items in shown if who == "watcher"]
        assert seen[:3] == [[("Task", "t1", "read")]] * 3
        assert seen[3] == [("Task", "t1", "history")]
        assert seen[4] == seen[5] == [("Task", "t1", "match"), ("ServiceRequest", "sr1", "include")]


class TestChains:
    @pytest.mark.parametrize(
        ("query", "needed"),
        [
            ("/fhir/Task?patient.identifier=x", "system/Patient.s"),
            ("/fhir/Task?focus:ServiceRequest.status=active", "system/ServiceRequest.s"),
            (
                "/fhir/Task?focus:ServiceRequest.subject:Patient.identifier=x",
                "system/ServiceRequest.s",
            ),
            ("/fhir/Patient?_has:Task:patient:status=requested", "system/Task.s"),
        ],
    )
    async def test_a_chain_needs_search_on_what_it_searches(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer, query: str, needed: str
    ) -> None:
        base = query.split("?")[0].rsplit("/", 1)[1]
        r = await client.get(query, headers=token(token_issuer, f"system/{base}.s"))
        assert r.status_code == 403 and f"needs {needed}" in r.text, r.text
        everything = " ".join(f"system/{t}.s" for t in TYPES)
        assert (await client.get(query, headers=token(token_issuer, everything))).status_code == 200

    async def test_a_found_chain_answers_with_its_scopes(
        self, client: httpx.AsyncClient, token_issuer: TokenIssuer
    ) -> None:
        headers = token(token_issuer, "system/Task.s system/ServiceRequest.s")
        r = await client.get("/fhir/Task?focus:ServiceRequest.status=active", headers=headers)
        assert r.status_code == 200 and [e["resource"]["id"] for e in r.json()["entry"]] == ["t1"]
