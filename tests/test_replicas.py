"""Two replicas of each service on one PostgreSQL database, as real processes on their own ports.

What scaling out must not break: migrations when replicas start together, optimistic locking
(If-Match) across replicas, and the notification pipeline (referral-api's outbox, the notifier's
intake and delivery worker): every notification arrives, none twice, also when a notifier
replica is killed with ``kill -9`` in the middle of delivering 1,000 of them.

"Exactly once" at the receiver means what the FHIR Subscriptions framework means: each
notification carries its subscription's event number and an ``X-Closedloop-Event`` key, and a
receiver that keeps the keys it has processed sees every event exactly once. On the wire, a
replica killed after the receiver answered but before it recorded the delivery leaves that one
notification to be sent again by the other replica (no system can tell "sent" from "about to
be marked sent" across a crash); the tests count those resends and bound them by the
notifications that can be in flight at the moment of the kill. Auth is off in these processes:
they test replication, and the auth tests cover tokens.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import defaultdict
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import httpx
from closedloop.testing import Receiver, postgres_database, running_service

from ._services import referral_pipeline
from .test_followup_e2e import backdated_referral, days_ago
from .test_notifier_e2e import consent_for

FHIR = {"Content-Type": "application/fhir+json"}
TOPIC = "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
EVENTS_TOKEN = secrets.token_urlsafe(32)
NO_AUTH = {
    "REFERRAL_API_AUTH_ENABLED": "false",
    "NOTIFIER_AUTH_ENABLED": "false",
    "DIRECTORY_API_AUTH_ENABLED": "false",
}
NOTIFIER_ENV = {
    **NO_AUTH,
    "NOTIFIER_ALLOW_LOOPBACK_ENDPOINTS": "true",
    "NOTIFIER_EVENTS_TOKEN": EVENTS_TOKEN,
    "NOTIFIER_RETRY_INITIAL_SECONDS": "0.1",
    "NOTIFIER_RETRY_MAX_SECONDS": "0.5",
    "NOTIFIER_DELIVERY_POLL_SECONDS": "0.1",
    "NOTIFIER_DELIVERY_LEASE_SECONDS": "2",
}


def notifications(rx: Receiver) -> list[tuple[str, int, str]]:
    """(subscription id, event number, X-Closedloop-Event key) of every event notification
    received, in arrival order, resends included (handshakes left out)."""
    out = []
    for headers, bundle in rx.received:
        status = bundle["entry"][0]["resource"]
        params = {p["name"]: p for p in status["parameter"]}
        if params["type"]["valueCode"] != "event-notification":
            continue
        sub = params["subscription"]["valueReference"]["reference"].rsplit("/", 1)[-1]
        keys = headers["x-closedloop-event"].split(",")
        for event, key in zip(
            [p for p in status["parameter"] if p["name"] == "notification-event"],
            keys,
            strict=True,
        ):
            out.append((sub, int(event["part"][0]["valueString"]), key))
    return out


async def subscribe(client: httpx.AsyncClient, notifier: str, owner: str, endpoint: str) -> str:
    r = await client.post(
        f"{notifier}/fhir/Subscription",
        headers=FHIR,
        json={
            "resourceType": "Subscription",
            "status": "requested",
            "reason": f"inbox of {owner}",
            "criteria": TOPIC,
            "_criteria": {
                "extension": [
                    {
                        "url": f"{BACKPORT}/backport-filter-criteria",
                        "valueString": f"Task?owner={owner}",
                    }
                ]
            },
            "channel": {
                "type": "rest-hook",
                "endpoint": endpoint,
                "payload": "application/fhir+json",
            },
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def lease_holders(db: str) -> int:
    """How many notifier processes hold a subscription lease right now."""
    conn = await asyncpg.connect(db)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(DISTINCT lease_holder) FROM subscription_state"
                " WHERE lease_holder IS NOT NULL"
            )
        )
    finally:
        await conn.close()


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_two_replicas_starting_at_once_migrate_once(postgres_admin_url: str) -> None:
    """Both come up on an empty database; the schema is migrated once (an advisory lock makes
    the second wait for the first, then find nothing to do)."""
    for module, prefix in (("referral_api", "REFERRAL_API_"), ("notifier", "NOTIFIER_")):
        async with postgres_database(postgres_admin_url) as fresh, AsyncExitStack() as stack:
            contexts = [running_service(module, prefix, fresh, NOTIFIER_ENV) for _ in range(2)]
            bases = await asyncio.gather(*(stack.enter_async_context(c) for c in contexts))
            async with httpx.AsyncClient(timeout=10) as client:
                for base in bases:
                    assert (await client.get(f"{base}/readyz")).status_code == 200
            conn = await asyncpg.connect(fresh.replace("+asyncpg", ""))
            try:
                versions = await conn.fetch("SELECT version_num FROM alembic_version")
            finally:
                await conn.close()
            assert len(versions) == 1, versions


async def test_if_match_races_across_replicas_lose_no_update(postgres_admin_url: str) -> None:
    """Two replicas update one resource with the same ETag at once, twenty times: each time
    exactly one wins (200) and the other gets 412; the history holds every winner."""
    async with postgres_database(postgres_admin_url) as db, AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(
                running_service("referral_api", "REFERRAL_API_", db, NO_AUTH)
            )
            for _ in range(2)
        ]
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        created = await client.post(
            f"{replicas[0]}/fhir/Patient", headers=FHIR, json={"resourceType": "Patient"}
        )
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        rounds = 20
        for n in range(rounds):
            current = await client.get(f"{replicas[n % 2]}/fhir/Patient/{pid}")
            etag = current.headers["ETag"]

            async def put(base: str, family: str, etag: str = etag) -> httpx.Response:
                return await client.put(
                    f"{base}/fhir/Patient/{pid}",
                    headers={**FHIR, "If-Match": etag},
                    json={"resourceType": "Patient", "id": pid, "name": [{"family": family}]},
                )

            answers = await asyncio.gather(put(replicas[0], f"a{n}"), put(replicas[1], f"b{n}"))
            assert sorted(a.status_code for a in answers) == [200, 412], [a.text for a in answers]
            loser = next(a for a in answers if a.status_code == 412)
            assert loser.json()["resourceType"] == "OperationOutcome"
        final = (await client.get(f"{replicas[1]}/fhir/Patient/{pid}")).json()
        assert final["meta"]["versionId"] == str(rounds + 1)
        history = (
            await client.get(f"{replicas[0]}/fhir/Patient/{pid}/_history", params={"_count": 100})
        ).json()
        assert len(history["entry"]) == rounds + 1


async def test_referral_notifications_through_two_replicas_of_each_arrive_exactly_once(
    postgres_admin_url: str,
) -> None:
    """Two referral-api and two notifier replicas: referrals made on either replica notify
    each CBO's subscription (made on either notifier) of every change, in order, once."""
    async with AsyncExitStack() as stack:
        services = await stack.enter_async_context(
            referral_pipeline(
                postgres_admin_url,
                events_token=EVENTS_TOKEN,
                replicas=2,
                common_env=NO_AUTH,
                notifier_env=NOTIFIER_ENV,
            )
        )
        directory, referrals, notifiers = services.directory, services.referrals, services.notifiers
        rx = await stack.enter_async_context(Receiver())
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        cbos = []
        for i in range(3):
            oid = f"cbo-{i}-{uuid.uuid4().hex[:6]}"
            r = await client.put(
                f"{directory}/fhir/Organization/{oid}",
                headers=FHIR,
                json={"resourceType": "Organization", "id": oid, "active": True},
            )
            assert r.status_code in (200, 201), r.text
            cbos.append(f"{directory}/fhir/Organization/{oid}")
        subs = {
            owner: await subscribe(client, notifiers[i % 2], owner, rx.url)
            for i, owner in enumerate(cbos)
        }
        await wait_for(lambda: len(rx.received) >= len(cbos), 20, "the handshakes")
        expected: dict[str, int] = defaultdict(int)
        for n in range(24):
            base = f"{referrals[n % 2]}/fhir"
            owner = cbos[n % len(cbos)]
            patient = (
                await client.post(f"{base}/Patient", headers=FHIR, json={"resourceType": "Patient"})
            ).json()
            consent = await client.post(
                f"{base}/Consent", headers=FHIR, json=consent_for(patient["id"])
            )
            assert consent.status_code == 201, consent.text
            sr = await client.post(
                f"{base}/ServiceRequest",
                headers=FHIR,
                json={
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "code": {
                        "coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]
                    },
                    "subject": {"reference": f"Patient/{patient['id']}"},
                    "supportingInfo": [{"reference": f"Consent/{consent.json()['id']}"}],
                },
            )
            assert sr.status_code == 201, sr.text
            task = await client.post(
                f"{base}/Task",
                headers=FHIR,
                json={
                    "resourceType": "Task",
                    "status": "requested",
                    "intent": "order",
                    "code": TASK_CODE,
                    "focus": {"reference": f"ServiceRequest/{sr.json()['id']}"},
                    "for": {"reference": f"Patient/{patient['id']}"},
                    "authoredOn": "2026-12-04",
                    "requester": {"reference": "Organization/clinic"},
                    "owner": {"reference": owner},
                },
            )
            assert task.status_code == 201, task.text
            # accepted on the other replica: two notifications per referral
            other = referrals[(n + 1) % 2]
            accepted = await client.put(
                f"{other}/fhir/Task/{task.json()['id']}",
                headers=FHIR,
                json={**task.json(), "status": "accepted"},
            )
            assert accepted.status_code == 200, accepted.text
            expected[subs[owner]] += 2
        total = sum(expected.values())
        await wait_for(lambda: len(notifications(rx)) >= total, 30, f"{total} notifications")
        await asyncio.sleep(0.5)  # a duplicate would arrive now
        got = notifications(rx)
        assert len(got) == total, "a notification arrived twice"
        for sub, count in expected.items():
            assert [n for s, n, _ in got if s == sub] == list(range(1, count + 1))


async def test_killing_a_notifier_replica_mid_delivery_loses_nothing(
    postgres_admin_url: str,
) -> None:
    """1,000 notifications for four subscriptions; one notifier replica is killed (SIGKILL)
    while both are delivering. The survivor takes the dead replica's subscriptions over when
    their leases expire: every notification arrives, in order per subscription, and only the
    ones in flight at the kill are sent twice (same key, for the receiver to skip)."""
    async with AsyncExitStack() as stack:
        db = await stack.enter_async_context(postgres_database(postgres_admin_url))
        rx = await stack.enter_async_context(Receiver())
        rx.delay = 0.01  # a receiver that takes a few ms keeps deliveries in flight
        env = {**NOTIFIER_ENV, "NOTIFIER_REFERRAL_URL": "http://127.0.0.1:9/fhir"}
        doomed = await stack.enter_async_context(running_service("notifier", "NOTIFIER_", db, env))
        survivor = await stack.enter_async_context(
            running_service("notifier", "NOTIFIER_", db, env)
        )
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        owners = [f"Organization/cbo-{i}" for i in range(4)]
        subs = [await subscribe(client, survivor, owner, rx.url) for owner in owners]
        await wait_for(lambda: len(rx.received) >= len(subs), 20, "the handshakes")
        total = 1000
        events = [
            {
                "id": str(uuid.uuid4()),
                "resourceType": "Task",
                "resourceId": f"t{n}",
                "versionId": 1,
                "interaction": "create",
                "occurredAt": "2026-12-04T12:00:00Z",
                "resource": {
                    "resourceType": "Task",
                    "id": f"t{n}",
                    "meta": {"versionId": "1"},
                    "status": "requested",
                    "intent": "order",
                    "owner": {"reference": owners[n % len(owners)]},
                },
            }
            for n in range(total)
        ]
        for start in range(0, total, 100):
            r = await client.post(
                f"{doomed}/events",
                json=events[start : start + 100],
                headers={"Authorization": f"Bearer {EVENTS_TOKEN}"},
            )
            assert r.status_code == 200, r.text
        await wait_for(lambda: len(rx.received) >= 100, 30, "deliveries to be under way")
        # both replicas are working subscriptions at the moment of the kill
        assert await lease_holders(db) == 2
        doomed.process.kill()  # SIGKILL: no shutdown, its leases stay until they expire
        await asyncio.to_thread(doomed.process.wait, 10)
        before = len(notifications(rx))
        assert before < total, "the kill came too late to test anything"

        def keys() -> set[str]:
            return {key for _, _, key in notifications(rx)}

        await wait_for(lambda: len(keys()) >= total, 90, f"all {total} notifications")
        await asyncio.sleep(0.5)
        got = notifications(rx)
        assert len(keys()) == total
        resent = len(got) - total
        # at most the one notification each subscription had in flight (one per bundle here)
        assert resent <= len(subs), f"{resent} notifications sent twice"
        for sub in subs:
            first_seen: list[int] = []
            for s, n, _ in got:
                if s == sub and n not in first_seen:
                    first_seen.append(n)
            assert first_seen == list(range(1, total // len(subs) + 1))


async def test_two_replicas_sweeping_stalled_referrals_act_once(postgres_admin_url: str) -> None:
    """Two referral-api replicas sweep for stalled referrals every 0.2 s, and both are asked to
    sweep at once as well: every backdated referral gets one follow-up Task, escalated once
    (created, escalated: version 2), however the sweeps interleave."""
    env = {
        **NO_AUTH,
        "REFERRAL_API_EVENT_SINK_URL": "",
        "REFERRAL_API_FOLLOWUP_SWEEP_SECONDS": "0.2",
    }
    async with postgres_database(postgres_admin_url) as db, AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(
                running_service("referral_api", "REFERRAL_API_", db, env)
            )
            for _ in range(2)
        ]
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=20))
        clinic = f"Organization/clinic-{uuid.uuid4().hex[:6]}"
        referrals = [
            await backdated_referral(client, f"{replicas[n % 2]}/fhir", clinic, days_ago(11))
            for n in range(20)
        ]
        sweeps = await asyncio.gather(
            *(client.post(f"{replicas[n % 2]}/fhir/Task/$sweep-stalled") for n in range(6))
        )
        assert all(r.status_code == 200 for r in sweeps), [r.text for r in sweeps]

        for _ in range(200):  # the periodic sweeps finish what the asked ones left
            r = await client.get(
                f"{replicas[0]}/fhir/Task",
                params={"code": "follow-up", "owner": clinic, "priority": "urgent", "_count": 100},
            )
            if len(r.json().get("entry", [])) >= len(referrals):
                break
            await asyncio.sleep(0.1)
        assert len(r.json()["entry"]) == len(referrals)
        for referral in referrals:
            r = await client.get(
                f"{replicas[1]}/fhir/Task",
                params={"code": "follow-up", "part-of": f"Task/{referral['id']}"},
            )
            [followup] = [e["resource"] for e in r.json()["entry"]]
            assert followup["meta"]["versionId"] == "2"
