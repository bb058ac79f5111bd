"""Subscriptions through HTTP on both databases: topics, validation (400s), the handshake,
notifications in order with consecutive event numbers, retries while the receiver is down,
$status and $events, signatures, idempotent intake."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from closedloop.testing import Receiver, app_client
from notifier.app import create_app
from notifier.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
TASK_TOPIC = "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task"
EVENTS_TOKEN = "test-events-secret"  # what referral-api would send (NOTIFIER_EVENTS_TOKEN)
EVENTS_AUTH = {"Authorization": f"Bearer {EVENTS_TOKEN}"}


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        allow_loopback_endpoints=True,
        retry_initial_seconds=0.05,
        retry_max_seconds=0.2,
        delivery_poll_seconds=0.05,
        referral_url="http://referrals.test/fhir",
        events_token=EVENTS_TOKEN,
    )
    async with app_client(create_app(settings), headers=EVENTS_AUTH) as c:
        yield c


def subscription(
    endpoint: str,
    filter_: str | None = "Task?owner=Organization/cbo-1",
    payload: str = "id-only",
    **channel: object,
) -> dict:
    sub: dict = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Referral updates",
        "criteria": TASK_TOPIC,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {
                "extension": [{"url": f"{BACKPORT}/backport-payload-content", "valueCode": payload}]
            },
            **channel,
        },
    }
    if filter_:
        sub["_criteria"] = {
            "extension": [{"url": f"{BACKPORT}/backport-filter-criteria", "valueString": filter_}]
        }
    return sub


def task_event(
    task_id: str,
    status: str,
    version: int,
    owner: str = "Organization/cbo-1",
    interaction: str = "update",
    previous: str | None = None,
) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": f"Task.{interaction}",
        "resourceType": "Task",
        "resourceId": task_id,
        "versionId": version,
        "interaction": interaction,
        "resource": {
            "resourceType": "Task",
            "id": task_id,
            "status": status,
            "intent": "order",
            "owner": {"reference": owner},
            "for": {"reference": "Patient/p1"},
        },
        "previous": {"status": previous} if previous else None,
    }


def params(bundle: dict) -> dict:
    out: dict = {}
    for p in bundle["entry"][0]["resource"]["parameter"]:
        out.setdefault(p["name"], []).append(p)
    return out


async def subscribe(client: httpx.AsyncClient, rx: Receiver, **kw: object) -> dict:
    r = await client.post("/fhir/Subscription", json=subscription(rx.url, **kw), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "requested"
    handshake = (await rx.wait_for(1))[0]
    assert params(handshake)["type"][0]["valueCode"] == "handshake"
    for _ in range(100):
        sub = (await client.get(f"/fhir/Subscription/{r.json()['id']}")).json()
        if sub["status"] == "active":
            return dict(sub)
        await asyncio.sleep(0.02)
    raise AssertionError("subscription never became active")


class TestTopics:
    async def test_published_and_discoverable(self, client: httpx.AsyncClient) -> None:
        topics = (await client.get("/fhir/Basic?code=SubscriptionTopic")).json()
        assert len(topics["entry"]) == 2
        cs = (await client.get("/fhir/metadata")).json()
        sub = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Subscription")
        assert TASK_TOPIC in {e["valueCanonical"] for e in sub["extension"]}


class TestBadSubscriptions:
    @pytest.mark.parametrize(
        ("change", "needle"),
        [
            (
                {"criteria": "http://example.org/SubscriptionTopic/Nope"},
                "Unknown subscription topic",
            ),
            (
                {
                    "_criteria": {
                        "extension": [
                            {
                                "url": f"{BACKPORT}/backport-filter-criteria",
                                "valueString": "Task?priority=urgent",
                            }
                        ]
                    }
                },
                "cannot filter by 'priority'",
            ),
            (
                {
                    "_criteria": {
                        "extension": [
                            {
                                "url": f"{BACKPORT}/backport-filter-criteria",
                                "valueString": "Task?_lastUpdated=yesterday",
                            }
                        ]
                    }
                },
                "Invalid date",
            ),
            (
                {
                    "_criteria": {
                        "extension": [
                            {
                                "url": f"{BACKPORT}/backport-filter-criteria",
                                "valueString": "Patient?name=x",
                            }
                        ]
                    }
                },
                "must read Task?",
            ),
        ],
    )
    async def test_refused(self, client: httpx.AsyncClient, change: dict, needle: str) -> None:
        body = {**subscription("http://127.0.0.1:9/hook"), **change}
        r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 400, r.text
        assert needle in r.json()["issue"][0]["diagnostics"]

    @pytest.mark.parametrize(
        ("endpoint", "needle"),
        [
            ("ftp://127.0.0.1/hook", "http(s) URL"),
            ("http://169.254.169.254/latest/meta-data", "link-local"),
            ("http://10.1.2.3/hook", "private"),
        ],
    )
    async def test_unsafe_endpoints(
        self, client: httpx.AsyncClient, endpoint: str, needle: str
    ) -> None:
        r = await client.post("/fhir/Subscription", json=subscription(endpoint), headers=FHIR_JSON)
        assert r.status_code == 400
        assert needle in r.json()["issue"][0]["diagnostics"]
        assert r.json()["issue"][0]["expression"] == ["Subscription.channel.endpoint"]

    async def test_channels_and_payloads(self, client: httpx.AsyncClient) -> None:
        body = subscription("http://127.0.0.1:9/hook", payload="everything")
        r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 400 and "Payload content" in r.text
        body = subscription("http://127.0.0.1:9/hook")
        body["channel"]["type"] = "websocket"
        r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 400 and "Channel type" in r.text
        body = subscription("http://127.0.0.1:9/hook")
        body["channel"]["type"] = "email"
        r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 400 and "mailto:" in r.text


class TestDelivery:
    async def test_notifications_in_order(self, client: httpx.AsyncClient) -> None:
        async with Receiver() as rx:
            sub = await subscribe(client, rx)
            task_id = f"t-{uuid.uuid4().hex[:8]}"
            other = f"t-{uuid.uuid4().hex[:8]}"
            events = [
                task_event(task_id, "requested", 1, interaction="create"),
                task_event(other, "requested", 1, owner="Organization/cbo-2", interaction="create"),
                task_event(task_id, "accepted", 2, previous="requested"),
                task_event(task_id, "in-progress", 3, previous="accepted"),
            ]
            for ev in events:
                r = await client.post("/events", json=ev)
                assert r.status_code == 200, r.text
            # redelivered by referral-api: recorded once
            again = await client.post("/events", json=events[2])
            assert again.json()["status"] == "duplicate"
            bundles = (await rx.wait_for(4))[1:]
            numbers = [
                params(b)["notification-event"][0]["part"][0]["valueString"] for b in bundles
            ]
            assert numbers == ["1", "2", "3"]
            focus = params(bundles[0])["notification-event"][0]["part"][2]["valueReference"]
            assert focus["reference"] == f"http://referrals.test/fhir/Task/{task_id}"
            assert bundles[1]["entry"][1] == {
                "fullUrl": f"http://referrals.test/fhir/Task/{task_id}",
                "request": {"method": "PUT", "url": f"Task/{task_id}"},
            }
            keys = [h["x-closedloop-event"] for h, _ in rx.received[1:]]
            assert keys == [f"{sub['id']}:1", f"{sub['id']}:2", f"{sub['id']}:3"]
            await asyncio.sleep(0.2)
            assert len(rx.received) == 4  # the other CBO's Task was not sent

    async def test_receiver_down_then_all_in_order(self, client: httpx.AsyncClient) -> None:
        async with Receiver() as rx:
            sub = await subscribe(client, rx, payload="full-resource")
            rx.fail_with = 503
            task_id = f"t-{uuid.uuid4().hex[:8]}"
            statuses = ["requested", "accepted", "in-progress", "completed"]
            for version, status in enumerate(statuses, 1):
                await client.post("/events", json=task_event(task_id, status, version))
            await asyncio.sleep(0.5)
            assert len(rx.received) == 1  # only the handshake
            rx.fail_with = None
            bundles = (await rx.wait_for(5))[1:]
            got = [e["resource"]["status"] for b in bundles for e in b["entry"][1:]]
            assert got == statuses
            numbers = [
                int(params(b)["notification-event"][0]["part"][0]["valueString"]) for b in bundles
            ]
            assert numbers == [1, 2, 3, 4]
            st = (await client.get(f"/fhir/Subscription/{sub['id']}/$status")).json()
            status_params = {p["name"]: p for p in st["entry"][0]["resource"]["parameter"]}
            assert status_params["events-since-subscription-start"]["valueString"] == "4"
            assert status_params["status"]["valueCode"] == "active"
            ev = (
                await client.get(
                    f"/fhir/Subscription/{sub['id']}/$events"
                    "?eventsSinceNumber=2&eventsUntilNumber=3"
                )
            ).json()
            nums = [
                p["part"][0]["valueString"]
                for p in ev["entry"][0]["resource"]["parameter"]
                if p["name"] == "notification-event"
            ]
            assert nums == ["2", "3"]
            assert params(ev)["type"][0]["valueCode"] == "query-event"

    async def test_signed_bodies(self, client: httpx.AsyncClient) -> None:
        async with Receiver() as rx:
            body = subscription(rx.url)
            body["extension"] = [
                {"url": "urn:closedloop:fhir:subscription-secret", "valueString": "s3cret"}
            ]
            r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
            assert "s3cret" not in r.text  # the secret is not stored in the resource
            await rx.wait_for(1)
            headers, bundle = rx.received[0]
            digest = hmac.new(b"s3cret", orjson.dumps(bundle), hashlib.sha256).hexdigest()
            assert headers["x-closedloop-signature"] == f"sha256={digest}"

    async def test_failed_handshake_is_error(self, client: httpx.AsyncClient) -> None:
        async with Receiver() as rx:
            rx.fail_with = 500
            r = await client.post(
                "/fhir/Subscription", json=subscription(rx.url), headers=FHIR_JSON
            )
            sid = r.json()["id"]
            for _ in range(100):
                if (await client.get(f"/fhir/Subscription/{sid}")).json()["status"] == "error":
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("no error status")
            st = (await client.get(f"/fhir/Subscription/$status?id={sid}")).json()
            assert st["total"] == 1


async def test_bad_events(client: httpx.AsyncClient) -> None:
    r = await client.post("/events", content=b"nope")
    assert r.status_code == 400
    r = await client.post("/events", json={"id": "x", "resourceType": "Patient"})
    assert r.status_code == 400
    assert "resourceType" in r.json()["issue"][0]["diagnostics"]


async def test_channel_headers_are_sent(client: httpx.AsyncClient) -> None:
    async with Receiver() as rx:
        body = subscription(rx.url, header=["Authorization: Bearer abc123", "X-Tenant: ehr-1"])
        r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 201, r.text
        await rx.wait_for(1)
        headers, _ = rx.received[0]
        assert headers["authorization"] == "Bearer abc123"
        assert headers["x-tenant"] == "ehr-1"
        assert headers["content-type"] == "application/fhir+json"


def test_allowed_hosts_policy() -> None:
    from closedloop.errors import FhirError
    from notifier.subscriptions.ssrf import EndpointPolicy

    policy = EndpointPolicy(allowed_hosts=frozenset({"127.0.0.1"}), allow_loopback=True)
    policy.check("http://127.0.0.1:9/hook")
    with pytest.raises(FhirError) as err:
        policy.check("http://localhost:9/hook")
    assert "allowed hosts" in str(err.value)
    with pytest.raises(FhirError):
        EndpointPolicy().check("http://127.0.0.1:9/hook")  # loopback refused by default
