"""End to end on PostgreSQL: referral-api, directory-api and notifier as real processes, and a
real HTTP receiver subscribed to one CBO's Tasks. The receiver gets the handshake and every
notification in order with consecutive event numbers, including while it was down and across
a notifier restart."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from contextlib import AsyncExitStack

import httpx
from closedloop.testing import Receiver, admin_auth, free_port

from ._services import referral_pipeline

FHIR = {"Content-Type": "application/fhir+json"}
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
EVENTS_TOKEN = secrets.token_urlsafe(32)


def consent_for(patient_id: str) -> dict:
    """An active Consent of the patient to share referrals (naming no recipient: any CBO)."""
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {"text": "share referrals with community organizations"},
    }  # the notifier takes events only with this secret


def numbers(rx: Receiver) -> list[int]:
    out = []
    for _, bundle in rx.received:
        for p in bundle["entry"][0]["resource"]["parameter"]:
            if p["name"] == "notification-event":
                out.append(int(p["part"][0]["valueString"]))
    return out


async def new_referral(client: httpx.AsyncClient, base: str, owner: str) -> dict:
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
                # the patient's consent to share the referral (REFERRAL_API_REQUIRE_CONSENT)
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
            "authoredOn": "2026-11-22",
            "requester": {"reference": "Organization/clinic"},
            "owner": {"reference": owner},
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def move(
    client: httpx.AsyncClient, base: str, task: dict, status: str, **extra: object
) -> dict:
    r = await client.put(
        f"{base}/Task/{task['id']}", headers=FHIR, json={**task, "status": status, **extra}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_notifications_survive_a_down_receiver_and_a_notifier_restart(
    postgres_admin_url: str,
) -> None:
    async with AsyncExitStack() as stack:
        services = await stack.enter_async_context(
            referral_pipeline(
                postgres_admin_url,
                events_token=EVENTS_TOKEN,
                referral_env={"REFERRAL_API_EVENT_RETRY_MAX_SECONDS": "0.5"},
                notifier_env={
                    "NOTIFIER_ALLOW_LOOPBACK_ENDPOINTS": "true",
                    "NOTIFIER_RETRY_INITIAL_SECONDS": "0.1",
                    "NOTIFIER_RETRY_MAX_SECONDS": "0.5",
                    "NOTIFIER_DELIVERY_POLL_SECONDS": "0.1",
                },
            )
        )
        directory, referral, notifier = services.directory, services.referral, services.notifier
        rx = await stack.enter_async_context(Receiver())
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=10, auth=admin_auth()))
        base = f"{referral}/fhir"
        cbo_id = f"cbo-{uuid.uuid4().hex[:6]}"
        cbo = f"{directory}/fhir/Organization/{cbo_id}"
        for oid in (cbo_id, f"{cbo_id}-other"):
            await client.put(
                f"{directory}/fhir/Organization/{oid}",
                headers=FHIR,
                json={"resourceType": "Organization", "id": oid, "active": True},
            )
        task = await new_referral(client, base, cbo)
        # another CBO's referral never reaches this subscriber
        await new_referral(client, base, f"{directory}/fhir/Organization/{cbo_id}-other")
        sub = await client.post(
            f"{notifier}/fhir/Subscription",
            headers=FHIR,
            json={
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "CBO inbox",
                "criteria": "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task",
                "_criteria": {
                    "extension": [
                        {
                            "url": f"{BACKPORT}/backport-filter-criteria",
                            "valueString": f"Task?owner={cbo}"
                            "&status=accepted,in-progress,completed",
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
        # accepted, in-progress, completed: three notifications, 1, 2, 3
        task = await move(client, base, task, "accepted")
        task = await move(client, base, task, "in-progress")
        task = await move(client, base, task, "completed")
        await rx.wait_for(4, timeout=20)
        assert numbers(rx) == [1, 2, 3]
        # the receiver is down for a while: nothing is lost, order holds
        rx.fail_with = 503
        t2 = await new_referral(client, base, cbo)
        t2 = await move(client, base, t2, "accepted")
        await asyncio.sleep(1.0)
        rx.fail_with = None
        await rx.wait_for(5, timeout=20)
        assert numbers(rx) == [1, 2, 3, 4]
        # the notifier is stopped mid-stream and restarted: nothing lost, nothing twice
        t2 = await move(client, base, t2, "in-progress")
        await services.stop_notifier()
        t2 = await move(client, base, t2, "completed")  # waits in referral-api's outbox
        t3 = await new_referral(client, base, cbo)
        await services.start_notifier()
        await rx.wait_for(7, timeout=30)
        await asyncio.sleep(0.5)
        assert numbers(rx) == [1, 2, 3, 4, 5, 6]
        assert t3["status"] == "requested"


async def test_patient_email_in_spanish(postgres_admin_url: str) -> None:
    """The notifier reads the patient's language from referral-api (Patient.communication)."""
    import email as email_lib
    from email.policy import default as default_policy

    from aiosmtpd.controller import Controller

    received: list = []

    class Handler:
        async def handle_DATA(self, _server: object, _session: object, envelope: object) -> str:
            content = envelope.content  # type: ignore[attr-defined]
            received.append(email_lib.message_from_bytes(content, policy=default_policy))
            return "250 OK"

    smtp_port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        async with AsyncExitStack() as stack:
            services = await stack.enter_async_context(
                referral_pipeline(
                    postgres_admin_url,
                    events_token=EVENTS_TOKEN,
                    with_directory=False,
                    notifier_env={
                        "NOTIFIER_SMTP_HOST": "127.0.0.1",
                        "NOTIFIER_SMTP_PORT": str(smtp_port),
                        "NOTIFIER_DELIVERY_POLL_SECONDS": "0.1",
                    },
                )
            )
            referral, notifier = services.referral, services.notifier
            client = await stack.enter_async_context(
                httpx.AsyncClient(timeout=10, auth=admin_auth())
            )
            base = f"{referral}/fhir"
            sub = await client.post(
                f"{notifier}/fhir/Subscription",
                headers=FHIR,
                json={
                    "resourceType": "Subscription",
                    "status": "requested",
                    "reason": "patient",
                    "criteria": "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task",
                    "_criteria": {
                        "extension": [
                            {
                                "url": f"{BACKPORT}/backport-filter-criteria",
                                "valueString": "Task?owner=Organization/cbo-es",
                            }
                        ]
                    },
                    "extension": [
                        {"url": "urn:closedloop:fhir:subscription-audience", "valueCode": "patient"}
                    ],
                    "channel": {"type": "email", "endpoint": "mailto:ana@example.test"},
                },
            )
            assert sub.status_code == 201, sub.text
            patient = (
                await client.post(
                    f"{base}/Patient",
                    headers=FHIR,
                    json={
                        "resourceType": "Patient",
                        "communication": [
                            {
                                "preferred": True,
                                "language": {
                                    "coding": [{"system": "urn:ietf:bcp:47", "code": "es-MX"}]
                                },
                            }
                        ],
                    },
                )
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
                            "coding": [
                                {"system": "http://snomed.info/sct", "code": "467771000124109"}
                            ]
                        },
                        "subject": {"reference": f"Patient/{patient['id']}"},
                        "supportingInfo": [{"reference": f"Consent/{consent['id']}"}],
                    },
                )
            ).json()
            task = (
                await client.post(
                    f"{base}/Task",
                    headers=FHIR,
                    json={
                        "resourceType": "Task",
                        "status": "requested",
                        "intent": "order",
                        "code": TASK_CODE,
                        "focus": {"reference": f"ServiceRequest/{sr['id']}"},
                        "for": {"reference": f"Patient/{patient['id']}"},
                        "authoredOn": "2026-11-22",
                        "requester": {"reference": "Organization/clinic"},
                        "owner": {"reference": "Organization/cbo-es", "display": "Banco de Comida"},
                    },
                )
            ).json()
            await move(client, base, task, "accepted")
            for _ in range(300):
                if any(m["Subject"] == "Su remisión fue aceptada" for m in received):
                    break
                await asyncio.sleep(0.05)
            subjects = [m["Subject"] for m in received]
            assert "Su remisión fue aceptada" in subjects, subjects
            assert all(m["To"] == "ana@example.test" for m in received)
    finally:
        controller.stop()
