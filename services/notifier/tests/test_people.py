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


async def _mail_to(inbox: Inbox, address: str, count: int) -> list[EmailMessage]:
    for _ in range(250):
        got = [m for m in inbox.messages if m["To"] == address]
        if len(got) >= count:
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"{len(got)} of {count} emails to {address}")


def _text(message: EmailMessage) -> str:
    parts = {p.get_content_type(): p for p in message.walk()}
    return str(parts["text/plain"].get_payload(decode=True).decode())


async def test_completion_asks_the_patient_how_it_went(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int]
) -> None:
    address = f"patient-{uuid.uuid4().hex[:6]}@mail.test"
    r = await client.post(
        "/fhir/Subscription",
        headers=FHIR_JSON,
        json=people_subscription(f"mailto:{address}", "email", "patient"),
    )
    assert r.status_code == 201, r.text
    task_id = f"t-{uuid.uuid4().hex[:8]}"
    await client.post("/events", json=owned_event(task_id, "completed", 4, "in-progress"))
    [mail] = await _mail_to(smtp[0], address, 1)
    text = _text(mail)
    # the (signed) status page asks the patient-voice questions once the referral is complete
    found = re.search(r"Tell us how it went: (\S+)", text)
    assert found, text
    assert found.group(1).startswith(f"https://app.closedloop.test/referrals/{task_id}?exp=")
    assert text.count(found.group(1)) == 1  # the status page asks: its link, once


def followup_event(task_id: str, referral: str, priority: str, previous: str | None) -> dict:
    event = task_event(
        task_id,
        "requested",
        1 if previous is None else 2,
        owner="Organization/clinic-1",
        interaction="create" if previous is None else "update",
    )
    event["resource"].update(
        code={"coding": [{"system": "urn:closedloop:CodeSystem:task-code", "code": "follow-up"}]},
        focus={"reference": f"Task/{referral}"},
        priority=priority,
    )
    if previous is not None:
        event["previous"] = {**event["resource"], "priority": previous}
    return event


async def test_follow_up_tells_the_case_manager(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int]
) -> None:
    address = f"cm-{uuid.uuid4().hex[:6]}@clinic.test"
    r = await client.post(
        "/fhir/Subscription",
        headers=FHIR_JSON,
        json=people_subscription(f"mailto:{address}", "email", "clinician"),
    )
    assert r.status_code == 201, r.text
    followup, referral = f"f-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    await client.post("/events", json=followup_event(followup, referral, "routine", None))
    await client.post("/events", json=followup_event(followup, referral, "urgent", "routine"))
    stalled, escalated = await _mail_to(smtp[0], address, 2)
    assert stalled["Subject"] == "Referral needs follow-up"  # not "New referral"
    assert escalated["Subject"] == "Urgent: referral still unanswered"
    for mail in (stalled, escalated):
        assert f"https://app.closedloop.test/referrals/{referral}" in _text(mail)


def test_feedback_link_in_both_languages() -> None:
    ctx = MessageContext(
        program="Banco",
        link="https://x.test/r/1",
        subscription_id="s1",
        feedback="https://x.test/f",
    )
    en = render("referral-completed", "patient", "en", ctx)
    es = render("referral-completed", "patient", "es", ctx)
    assert en.text.endswith("Tell us how it went: https://x.test/f")
    assert es.text.endswith("Cuéntenos cómo le fue: https://x.test/f")
    assert en.sms == "Your referral is complete. Tell us how it went: https://x.test/f"
    # only the patient is asked, only after completion
    assert "x.test/f" not in render("referral-completed", "clinician", "en", ctx).text
    assert "x.test/f" not in render("referral-accepted", "patient", "en", ctx).text


def test_the_status_page_that_asks_is_linked_once() -> None:
    """The patient's status page shows the referral and asks the questions: the completion
    email gives its link once, in the line that asks."""
    link = "https://x.test/p/signed"
    ctx = MessageContext(program="Banco", link=link, subscription_id="s1", feedback=link)
    for lang, asks in (("en", "Tell us how it went: "), ("es", "Cuéntenos cómo le fue: ")):
        text = render("referral-completed", "patient", lang, ctx).text
        assert text.count(link) == 1 and text.endswith(asks + link)
        assert "Banco" in text


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
