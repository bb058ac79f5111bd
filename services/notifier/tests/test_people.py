"""Email and SMS for people: a real local SMTP server (aiosmtpd) receives the emails; only the
third-party SMS API is faked (respx). Messages are short, carry no clinical detail by SMS, and
no Bundle by SMS."""

from __future__ import annotations

import asyncio
import email
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import Message as EmailMessage
from typing import Any

import httpx
import pytest
import respx
from aiosmtpd.controller import Controller
from closedloop import links
from closedloop.testing import app_client, free_port
from notifier.app import create_app
from notifier.channels.sms import phone
from notifier.messages.templates import MessageContext, language_of, render
from notifier.settings import Settings

from .test_subscriptions import EVENTS_AUTH, EVENTS_TOKEN, FHIR_JSON, subscription, task_event

SMS_API = "https://sms.example.test"
LINK_SECRET = "notifier-and-web-link-secret"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture(scope="module")
async def client(database_url: str, smtp: tuple[Inbox, int]) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp[1],
        smtp_from="loop@clinic.test",
        sms_api_url=SMS_API,
        sms_account_sid="AC123",
        sms_auth_token="tok",
        sms_from="+15550001111",
        delivery_poll_seconds=0.05,
        retry_initial_seconds=0.05,
        referral_url=f"http://127.0.0.1:{free_port()}/fhir",
        app_url="https://app.closedloop.test",
        link_secret=LINK_SECRET,
        events_token=EVENTS_TOKEN,
    )
    async with app_client(create_app(settings), headers=EVENTS_AUTH) as c:
        yield c


def people_subscription(endpoint: str, channel: str, audience: str) -> dict:
    body = subscription("http://unused.invalid/hook", filter_=None)
    body["channel"]["type"] = channel
    body["channel"]["endpoint"] = endpoint
    body["extension"] = [
        {"url": "urn:closedloop:fhir:subscription-audience", "valueCode": audience}
    ]
    return body


def owned_event(task_id: str, status: str, version: int, previous: str | None) -> dict:
    event = task_event(
        task_id,
        status,
        version,
        previous=previous,
        interaction="create" if previous is None else "update",
    )
    event["resource"]["owner"]["display"] = "Eastside Food Bank"
    return event


async def test_cbo_inbox_email(client: httpx.AsyncClient, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    before = len(inbox.messages)
    r = await client.post(
        "/fhir/Subscription",
        headers=FHIR_JSON,
        json=people_subscription("mailto:intake@foodbank.test", "email", "cbo"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active"  # no handshake for email
    task_id = f"t-{uuid.uuid4().hex[:8]}"
    await client.post("/events", json=owned_event(task_id, "requested", 1, None))
    await client.post("/events", json=owned_event(task_id, "requested", 2, "requested"))
    await client.post("/events", json=owned_event(task_id, "accepted", 3, "requested"))
    for _ in range(200):
        if len(inbox.messages) >= before + 2:
            break
        await asyncio.sleep(0.02)
    first, second = inbox.messages[before : before + 2]
    assert first["To"] == "intake@foodbank.test"
    assert first["Subject"] == "New referral for Eastside Food Bank"
    parts = {p.get_content_type(): p for p in first.walk()}
    assert "application/fhir+json" in parts
    assert f"https://app.closedloop.test/referrals/{task_id}" in str(parts["text/plain"])
    assert second["Subject"] == "Referral accepted"
    await asyncio.sleep(0.2)
    assert len(inbox.messages) == before + 2  # the no-change update told nobody anything


async def test_patient_sms(client: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="127.0.0.1").pass_through()
        route = mock.post(f"{SMS_API}/2010-04-01/Accounts/AC123/Messages.json").mock(
            return_value=httpx.Response(201, json={"sid": "SM1"})
        )
        r = await client.post(
            "/fhir/Subscription",
            headers=FHIR_JSON,
            json=people_subscription("tel:+1 (555) 123-4567", "sms", "patient"),
        )
        assert r.status_code == 201, r.text
        task_id = f"t-{uuid.uuid4().hex[:8]}"
        await client.post("/events", json=owned_event(task_id, "accepted", 2, "requested"))
        for _ in range(200):
            if route.called:
                break
            await asyncio.sleep(0.02)
        request = route.calls.last.request
        form = dict(httpx.QueryParams(request.content.decode()))
        assert form["To"] == "+15551234567" and form["From"] == "+15550001111"
        assert "accepted" in form["Body"] and len(form["Body"]) <= 160
        # the patient's link is signed as the web app checks it (closedloop.links)
        found = re.search(
            r"https://app\.closedloop\.test/referrals/(\S+)\?exp=(\d+)&sig=(\S+)", form["Body"]
        )
        assert found and found.group(1) == task_id, form["Body"]
        assert links.check(task_id, found.group(2), found.group(3), LINK_SECRET) == "ok"
        assert int(found.group(2)) > time.time() + 29 * 86400  # 30 days by default
        assert "Food" not in form["Body"] and "{" not in form["Body"]  # no detail, no Bundle
        assert request.headers["authorization"].startswith("Basic ")


def test_spanish_and_fallback() -> None:
    ctx = MessageContext(program="Banco de Comida", link="https://x.test/r/1", subscription_id="s1")
    assert (
        render("referral-accepted", "patient", "es-MX", ctx).subject == "Su remisión fue aceptada"
    )
    assert render("referral-accepted", "patient", "fr", ctx).subject == "Your referral was accepted"
    spanish = {
        "communication": [
            {"language": {"coding": [{"code": "en"}]}},
            {"preferred": True, "language": {"text": "Spanish"}},
        ]
    }
    assert language_of(spanish) == "es"
    assert language_of(None) == "en"
    for kind in ("referral-new", "referral-accepted", "referral-declined", "referral-completed"):
        for audience in ("cbo", "patient", "clinician"):
            for lang in ("en", "es"):
                sms = render(kind, audience, lang, ctx).sms
                assert len(sms) <= 160 and "Banco" not in sms
    with pytest.raises(ValueError):
        phone("call me maybe")
