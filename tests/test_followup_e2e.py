"""End to end on PostgreSQL: a referral the CBO leaves unanswered gets a follow-up Task for the
requesting organization, and the organization's rest-hook subscription on the IG's Task topic
is notified of each step (raised, escalated, closed by the CBO's answer) through referral-api's
outbox and the notifier, once each. referral-api and the notifier run as real processes; the
referrals are backdated by their ``lastModified`` (a system that syncs late), so the sweep
runs at the real time."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import httpx
from closedloop.testing import Receiver, admin_auth

from ._services import referral_pipeline
from .test_notifier_e2e import BACKPORT, FHIR, TASK_CODE, consent_for, numbers

EVENTS_TOKEN = secrets.token_urlsafe(32)
TOPIC = "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task"


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def backdated_referral(
    client: httpx.AsyncClient, base: str, requester: str, sent: str
) -> dict:
    patient = (
        await client.post(f"{base}/Patient", json={"resourceType": "Patient"}, headers=FHIR)
    ).json()
    consent = (
        await client.post(f"{base}/Consent", json=consent_for(patient["id"]), headers=FHIR)
    ).json()
    sr = (
        await client.post(
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
                "supportingInfo": [{"reference": f"Consent/{consent['id']}"}],
            },
        )
    ).json()
    r = await client.post(
        f"{base}/Task",
        headers=FHIR,
        json={
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": TASK_CODE,
            "focus": {"reference": f"ServiceRequest/{sr['id']}"},
            "for": {"reference": f"Patient/{patient['id']}"},
            "authoredOn": sent,
            "lastModified": sent,
            "requester": {"reference": requester},
            "owner": {"reference": "Organization/cbo-e2e"},
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_the_requesting_organization_is_notified_of_its_follow_ups(
    postgres_admin_url: str,
) -> None:
    async with AsyncExitStack() as stack:
        services = await stack.enter_async_context(
            referral_pipeline(
                postgres_admin_url,
                events_token=EVENTS_TOKEN,
                with_directory=False,
                referral_env={
                    "REFERRAL_API_EVENT_RETRY_MAX_SECONDS": "0.5",
                    "REFERRAL_API_MEASURES_STALL_DAYS": "7",
                    "REFERRAL_API_ESCALATE_AFTER_DAYS": "3",
                    "REFERRAL_API_FOLLOWUP_SWEEP_SECONDS": "0",
                },
                notifier_env={
                    "NOTIFIER_ALLOW_LOOPBACK_ENDPOINTS": "true",
                    "NOTIFIER_RETRY_INITIAL_SECONDS": "0.1",
                    "NOTIFIER_RETRY_MAX_SECONDS": "0.5",
                    "NOTIFIER_DELIVERY_POLL_SECONDS": "0.1",
                },
            )
        )
        base, notifier = f"{services.referral}/fhir", services.notifier
        rx = await stack.enter_async_context(Receiver())
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=10, auth=admin_auth()))
        clinic = f"Organization/clinic-{uuid.uuid4().hex[:6]}"
        stalled = await backdated_referral(client, base, clinic, days_ago(8))
        overdue = await backdated_referral(client, base, clinic, days_ago(11))
        fresh = await backdated_referral(client, base, clinic, days_ago(6))
        sub = await client.post(
            f"{notifier}/fhir/Subscription",
            headers=FHIR,
            json={
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "the clinic's follow-up worklist",
                "criteria": TOPIC,
                "_criteria": {
                    "extension": [
                        {
                            "url": f"{BACKPORT}/backport-filter-criteria",
                            "valueString": f"Task?owner={clinic}&code=follow-up",
                        }
                    ]
                },
                "channel": {
                    "type": "rest-hook",
                    "endpoint": rx.url,
                    "payload": "application/fhir+json",
                },
            },
        )
        assert sub.status_code == 201, sub.text
        await rx.wait_for(1)  # the handshake

        r = await client.post(f"{base}/Task/$sweep-stalled")
        assert r.status_code == 200, r.text
        counts = {p["name"]: p["valueInteger"] for p in r.json()["parameter"]}
        assert counts == {"stalled": 2, "escalated": 1}
        # two follow-ups raised, one of them escalated at once (11 days > 7 + 3)
        await rx.wait_for(4, timeout=20)
        r = await client.get(
            f"{base}/Task", params={"code": "follow-up", "owner": clinic, "status": "requested"}
        )
        worklist = {e["resource"]["focus"]["reference"]: e["resource"] for e in r.json()["entry"]}
        assert set(worklist) == {f"Task/{stalled['id']}", f"Task/{overdue['id']}"}
        assert worklist[f"Task/{overdue['id']}"]["priority"] == "urgent"
        assert f"Task/{fresh['id']}" not in worklist

        # the CBO answers: its follow-up completes, and that is notified too
        r = await client.put(
            f"{base}/Task/{stalled['id']}", headers=FHIR, json={**stalled, "status": "accepted"}
        )
        assert r.status_code == 200, r.text
        await rx.wait_for(5, timeout=20)
        # a second sweep changes nothing, and nothing arrives twice
        r = await client.post(f"{base}/Task/$sweep-stalled")
        assert {p["name"]: p["valueInteger"] for p in r.json()["parameter"]} == {
            "stalled": 0,
            "escalated": 0,
        }
        await asyncio.sleep(1.0)
        assert numbers(rx) == [1, 2, 3, 4]
        followup = worklist[f"Task/{stalled['id']}"]["id"]
        r = await client.get(f"{base}/Task/{followup}")
        assert r.json()["status"] == "completed"
