"""The published subscription topics are read-only over the API (both databases): every write,
whether a REST interaction, conditional, PATCH or a batch/transaction entry, is refused with a
405 OperationOutcome and changes nothing; reads, searches and history still work."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from closedloop.testing import app_client
from notifier.app import create_app
from notifier.settings import Settings

from .test_subscriptions import FHIR_JSON, TASK_TOPIC, subscription

TOPIC = "sdohcc-topic-task"
PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, delivery_enabled=False)
    async with app_client(create_app(settings)) as c:
        yield c


async def topic(client: httpx.AsyncClient) -> dict:
    r = await client.get(f"/fhir/Basic/{TOPIC}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def refused(r: httpx.Response) -> None:
    assert r.status_code == 405, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "not-supported"
    assert issue["diagnostics"].startswith("CL-1408") and "read-only" in issue["diagnostics"]


def forged(body: dict) -> dict:
    out = dict(body)
    out.pop("meta", None)
    out["extension"] = [
        {
            "url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.url",
            "valueUri": "http://evil.test/SubscriptionTopic/everything",
        }
    ]
    return out


class TestRefused:
    async def test_rest_writes(self, client: httpx.AsyncClient) -> None:
        before = await topic(client)
        body = forged(before)
        refused(await client.put(f"/fhir/Basic/{TOPIC}", json=body, headers=FHIR_JSON))
        refused(
            await client.put(
                "/fhir/Basic/new-topic", json={**body, "id": "new-topic"}, headers=FHIR_JSON
            )
        )
        refused(await client.post("/fhir/Basic", json={**body, "id": None}, headers=FHIR_JSON))
        refused(
            await client.put("/fhir/Basic?code=SubscriptionTopic", json=body, headers=FHIR_JSON)
        )
        ops = [{"op": "replace", "path": "/extension/0/valueUri", "value": "http://evil.test"}]
        refused(await client.patch(f"/fhir/Basic/{TOPIC}", json=ops, headers=PATCH))
        refused(await client.delete(f"/fhir/Basic/{TOPIC}"))
        refused(await client.delete("/fhir/Basic?code=SubscriptionTopic"))
        refused(await client.delete("/fhir/Basic/not-there"))
        assert await topic(client) == before

    async def test_refused_as_allowed_header_says(self, client: httpx.AsyncClient) -> None:
        r = await client.delete(f"/fhir/Basic/{TOPIC}")
        assert r.headers["allow"] == "GET, HEAD"

    async def test_batch_entries(self, client: httpx.AsyncClient) -> None:
        before = await topic(client)
        body = forged(before)
        ops = [{"op": "remove", "path": "/extension/0"}]
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"resource": body, "request": {"method": "PUT", "url": f"Basic/{TOPIC}"}},
                {"request": {"method": "DELETE", "url": f"Basic/{TOPIC}"}},
                {"request": {"method": "DELETE", "url": "Basic?code=SubscriptionTopic"}},
                {"resource": {**body, "id": None}, "request": {"method": "POST", "url": "Basic"}},
                {
                    "resource": {
                        "resourceType": "Binary",
                        "contentType": "application/json-patch+json",
                        "data": base64.b64encode(orjson.dumps(ops)).decode(),
                    },
                    "request": {"method": "PATCH", "url": f"Basic/{TOPIC}"},
                },
                {"request": {"method": "GET", "url": f"Basic/{TOPIC}"}},
            ],
        }
        r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
        assert r.status_code == 200, r.text
        statuses = [e["response"]["status"] for e in r.json()["entry"]]
        assert [s.split()[0] for s in statuses] == ["405"] * 5 + ["200"], statuses
        assert await topic(client) == before

    async def test_a_transaction_is_refused_whole(self, client: httpx.AsyncClient) -> None:
        before = await topic(client)
        count = (await client.get("/fhir/Subscription?_summary=count")).json()["total"]
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": subscription("http://127.0.0.1:9/hook"),
                    "request": {"method": "POST", "url": "Subscription"},
                },
                {"request": {"method": "DELETE", "url": f"Basic/{TOPIC}"}},
            ],
        }
        refused(await client.post("/fhir", json=bundle, headers=FHIR_JSON))
        assert await topic(client) == before
        after = (await client.get("/fhir/Subscription?_summary=count")).json()["total"]
        assert after == count


class TestStillReadable:
    async def test_read_search_history(self, client: httpx.AsyncClient) -> None:
        assert (await topic(client))["id"] == TOPIC
        found = (await client.get("/fhir/Basic?code=SubscriptionTopic")).json()
        assert {e["resource"]["id"] for e in found["entry"]} == {
            TOPIC,
            "sdohcc-topic-servicerequest",
        }
        r = await client.post(
            "/fhir/Basic/_search",
            content=b"code=SubscriptionTopic",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200 and len(r.json()["entry"]) == 2
        assert (await client.get(f"/fhir/Basic/{TOPIC}/_history")).status_code == 200
        assert (await client.get("/fhir/Basic/_history")).status_code == 200

    async def test_capability_statement_lists_reads_only(self, client: httpx.AsyncClient) -> None:
        cs = (await client.get("/fhir/metadata")).json()
        types = {r["type"]: r for r in cs["rest"][0]["resource"]}
        basic = {i["code"] for i in types["Basic"]["interaction"]}
        assert basic == {"read", "vread", "history-instance", "history-type", "search-type"}
        assert types["Basic"]["updateCreate"] is False
        assert types["Basic"]["conditionalDelete"] == "not-supported"
        assert "create" in {i["code"] for i in types["Subscription"]["interaction"]}
        assert TASK_TOPIC in {e["valueCanonical"] for e in types["Subscription"]["extension"]}
