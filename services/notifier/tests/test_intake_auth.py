"""``POST /events`` takes events only from referral-api (its access token, or the shared
secret), on both databases: a forged event is refused before it is recorded and never reaches a
subscriber; another client's token is refused; without a configured secret nor checked tokens
every event is refused (fail closed) and start-up says why."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import Receiver, TokenIssuer, app_client, audience_of, bearer
from notifier.app import create_app
from notifier.settings import Settings

from .test_subscriptions import EVENTS_TOKEN, FHIR_JSON, params, subscribe, task_event


def settings(database_url: str, **extra: object) -> Settings:
    return Settings(
        database_url=database_url,
        allow_loopback_endpoints=True,
        retry_initial_seconds=0.05,
        delivery_poll_seconds=0.05,
        referral_url="http://referrals.test/fhir",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings(database_url, events_token=EVENTS_TOKEN))) as c:
        yield c


def diagnostics(r: httpx.Response) -> str:
    assert r.json()["resourceType"] == "OperationOutcome"
    return str(r.json()["issue"][0]["diagnostics"])


class TestSender:
    @pytest.mark.parametrize(
        "authorization",
        [
            None,
            "Bearer wrong-secret",
            f"Bearer {EVENTS_TOKEN}x",
            f"Basic {EVENTS_TOKEN}",
            f"{EVENTS_TOKEN}",
            "Bearer ",
        ],
    )
    async def test_refused_without_the_secret(
        self, client: httpx.AsyncClient, authorization: str | None
    ) -> None:
        headers = {"Authorization": authorization} if authorization is not None else {}
        event = task_event(f"t-{uuid.uuid4().hex[:8]}", "requested", 1, interaction="create")
        r = await client.post("/events", json=event, headers=headers)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert diagnostics(r).startswith("CL-8413")
        assert "NOTIFIER_EVENTS_TOKEN" in diagnostics(r)
        # not recorded: the same event with the secret is new, not a duplicate
        ok = await client.post(
            "/events", json=event, headers={"Authorization": f"bearer {EVENTS_TOKEN}"}
        )
        assert ok.status_code == 200 and ok.json()["status"] == "accepted", ok.text

    async def test_refused_before_the_body_is_read(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/events", content=b"not json at all")
        assert r.status_code == 401  # not 400: a stranger learns nothing about the format

    async def test_a_forged_event_never_reaches_a_subscriber(
        self, client: httpx.AsyncClient
    ) -> None:
        auth = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
        async with Receiver() as rx:
            await subscribe(client, rx)
            forged = task_event(f"t-{uuid.uuid4().hex[:8]}", "completed", 1, interaction="create")
            r = await client.post("/events", json=forged, headers={"Authorization": "Bearer x"})
            assert r.status_code == 401
            real = task_event(f"t-{uuid.uuid4().hex[:8]}", "requested", 1, interaction="create")
            assert (await client.post("/events", json=real, headers=auth)).status_code == 200
            bundles = await rx.wait_for(2)
            focus = params(bundles[1])["notification-event"][0]["part"][2]["valueReference"]
            assert focus["reference"].endswith(f"Task/{real['resourceId']}")
            assert len(rx.received) == 2  # the handshake and the real event only


async def test_without_a_configured_secret_every_event_is_refused(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="notifier.intake"):
        # neither a secret nor checked tokens (authorization off)
        async with app_client(create_app(settings(database_url, auth_enabled=False))) as client:
            event = task_event(f"t-{uuid.uuid4().hex[:8]}", "requested", 1, interaction="create")
            for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
                r = await client.post("/events", json=event, headers=headers)
                assert r.status_code == 403, r.text
                assert diagnostics(r).startswith("CL-8412")
                assert "NOTIFIER_EVENTS_TOKEN" in diagnostics(r)
    warnings = [r for r in caplog.records if "NOTIFIER_EVENTS_TOKEN" in r.getMessage()]
    assert len(warnings) == 1


def events_recorded(bundle: dict) -> tuple[int, str]:
    """How many notification bundles the $events answer holds, and the subscription's event
    count."""
    status = bundle["entry"][0]["resource"]["parameter"]
    count = next(p for p in status if p["name"] == "events-since-subscription-start")
    return len(bundle["entry"]), str(count.get("valueString") or count.get("valueInteger64"))


class TestNoOtherWayIn:
    """The notifier's FHIR API cannot stand in for the intake: the mirrored Task and
    ServiceRequest are not served (not even in a batch), and ``$events`` only reads."""

    async def test_mirrored_types_are_not_writable(self, client: httpx.AsyncClient) -> None:
        task = task_event("t-spoof", "completed", 1, interaction="create")["resource"]
        fhir = {"Content-Type": "application/fhir+json"}
        assert (await client.post("/fhir/Task", json=task, headers=fhir)).status_code == 404
        assert (await client.put("/fhir/Task/t-spoof", json=task, headers=fhir)).status_code == 404
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"resource": task, "request": {"method": "PUT", "url": "Task/t-spoof"}}],
        }
        r = await client.post("/fhir", json=batch, headers=fhir)
        assert r.json()["entry"][0]["response"]["status"].startswith("404")

    async def test_events_operation_records_nothing(self, client: httpx.AsyncClient) -> None:
        async with Receiver() as rx:
            sub = await subscribe(client, rx)
            parameters = {
                "resourceType": "Parameters",
                "parameter": [{"name": "eventsSinceNumber", "valueString": "1"}],
            }
            url = f"/fhir/Subscription/{sub['id']}/$events"
            before = events_recorded((await client.get(url)).json())
            r = await client.post(url, json=parameters, headers=FHIR_JSON)
            assert r.status_code == 200, r.text
            assert events_recorded((await client.get(url)).json()) == before
            assert len(rx.received) == 1  # the handshake only


@pytest.fixture(scope="module")
async def tokens_only(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings(database_url)), anonymous=True) as c:
        yield c


class TestSenderTokens:
    """With authorization on (the default), referral-api's access token is enough: no
    shared secret needed."""

    async def test_the_referral_api_service_token_is_taken(
        self, tokens_only: httpx.AsyncClient, authority: TokenIssuer
    ) -> None:
        token = authority.token(
            "system/HealthcareService.r",
            audience_of("NOTIFIER_"),
            subject="referral-api",
            role="service",
        )
        event = task_event(f"t-{uuid.uuid4().hex[:8]}", "requested", 1, interaction="create")
        r = await tokens_only.post("/events", json=event, headers=bearer(token))
        assert r.status_code == 200, r.text

    @pytest.mark.parametrize(
        ("subject", "role", "audience", "status", "code"),
        [
            ("notifier", "service", "NOTIFIER_", 403, "CL-8414"),  # not a sender
            ("referral-api", "admin", "NOTIFIER_", 403, "CL-8414"),  # not its service role
            ("referral-api", "service", "REFERRAL_API_", 401, "CL-1302"),  # not for the notifier
        ],
    )
    async def test_other_tokens_are_refused(
        self,
        tokens_only: httpx.AsyncClient,
        authority: TokenIssuer,
        subject: str,
        role: str,
        audience: str,
        status: int,
        code: str,
    ) -> None:
        token = authority.token(
            "system/Patient.r", audience_of(audience), subject=subject, role=role
        )
        event = task_event(f"t-{uuid.uuid4().hex[:8]}", "requested", 1, interaction="create")
        r = await tokens_only.post("/events", json=event, headers=bearer(token))
        assert r.status_code == status and diagnostics(r).startswith(code), r.text
        r = await tokens_only.post("/events", json=event)  # no token, no secret configured
        assert r.status_code == 403 and diagnostics(r).startswith("CL-8412")
