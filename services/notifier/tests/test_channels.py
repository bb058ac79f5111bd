"""The human channels against real protocols: emails go to a real local SMTP server (aiosmtpd on
127.0.0.1); only the third-party SMS API is faked (respx, on a non-routable host)."""

from __future__ import annotations

import base64
import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any, cast
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from aiosmtpd.controller import Controller
from notifier.channels import DeliveryError
from notifier.channels.email import SmtpSender, address
from notifier.channels.sms import SmsSender, phone

SMS_API = "https://sms.example.test"
SMS_URL = f"{SMS_API}/2010-04-01/Accounts/AC123/Messages.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping every envelope; refuses recipients at ``refuse.test``."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address.endswith("@refuse.test"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def last(self) -> tuple[Any, EmailMessage]:
        envelope = self.envelopes[-1]
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        return envelope, cast(EmailMessage, parsed)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def sender(port: int) -> SmtpSender:
    return SmtpSender("127.0.0.1", port, from_addr="loop@clinic.test", timeout=5.0)


async def test_email_without_attachment(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    await sender(port).send(
        "mailto:intake@foodbank.test", "New referral for Eastside", "Please review it.\nhttps://x"
    )
    envelope, message = inbox.last()
    assert envelope.mail_from == "loop@clinic.test"
    assert envelope.rcpt_tos == ["intake@foodbank.test"]
    assert message["To"] == "intake@foodbank.test"
    assert message["Subject"] == "New referral for Eastside"
    assert not message.is_multipart() and message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n").strip() == "Please review it.\nhttps://x"


async def test_email_with_attachment(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    bundle = b'{"resourceType":"Bundle","type":"subscription-notification"}'
    await sender(port).send(
        "care.team@clinic.test", "Referral accepted", "Accepted. \u00e9", attachment=bundle
    )
    envelope, message = inbox.last()
    assert envelope.rcpt_tos == ["care.team@clinic.test"]
    assert message["Subject"] == "Referral accepted" and message.is_multipart()
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content().strip() == "Accepted. \u00e9"
    attachments = list(message.iter_attachments())
    assert len(attachments) == 1
    part = cast(EmailMessage, attachments[0])
    assert part.get_content_type() == "application/fhir+json"
    assert part.get_filename() == "notification.json"
    assert part.get_payload(decode=True) == bundle


async def test_email_custom_attachment_type(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    await sender(port).send(
        "a@b.test", "s", "t", attachment=b"x", attachment_type="text/plain", attachment_name="n.txt"
    )
    _, message = inbox.last()
    part = cast(EmailMessage, next(iter(message.iter_attachments())))
    assert part.get_content_type() == "text/plain" and part.get_filename() == "n.txt"


async def test_email_connection_refused() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(DeliveryError, match=f"127.0.0.1:{port}") as info:
        await sender(port).send("a@b.test", "Secret subject", "Secret body")
    assert "Secret" not in str(info.value)


async def test_email_recipient_refused(smtp: tuple[Inbox, int]) -> None:
    _, port = smtp
    with pytest.raises(DeliveryError, match="550") as info:
        await sender(port).send("nobody@refuse.test", "Secret subject", "Secret body")
    assert "Secret" not in str(info.value)


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("mailto:a@b.test", "a@b.test"),
        ("MAILTO:first.last+tag@sub.example.org", "first.last+tag@sub.example.org"),
        ("mailto:a%40b.test", "a@b.test"),
        ("mailto:a@b.test?subject=hi", "a@b.test"),
        ("ops@localhost", "ops@localhost"),
    ],
)
def test_address_accepts(to: str, expected: str) -> None:
    assert address(to) == expected


@pytest.mark.parametrize(
    "to",
    [
        "",
        "mailto:",
        "not-an-address",
        "a@b",
        "a@@b.test",
        "a@b.test,c@d.test",
        "Name <a@b.test>",
        "a@b.test\r\nBcc: c@d.test",
        "tel:+15551234567",
    ],
)
async def test_address_refuses(to: str) -> None:
    with pytest.raises(ValueError):
        address(to)
    with pytest.raises(ValueError):
        await sender(free_port()).send(to, "s", "t")


def test_starttls_and_tls_are_exclusive() -> None:
    with pytest.raises(ValueError):
        SmtpSender("h", 1, starttls=True, use_tls=True, from_addr="a@b.test")


# --- SMS -----------------------------------------------------------------------------------


@pytest.fixture
async def sms() -> Any:
    async with httpx.AsyncClient() as client:
        yield SmsSender(SMS_API + "/", "AC123", "tok", "+15550001111", client)


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


async def test_sms_sent(sms: SmsSender) -> None:
    with respx.mock(assert_all_mocked=True) as mock:
        route = mock.post(SMS_URL).respond(201, json={"sid": "SM42", "status": "queued"})
        sid = await sms.send("tel:+1 (555) 123-4567", "Update on your referral: it was accepted.")
    assert sid == "SM42" and route.call_count == 1
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(request) == {
        "To": ["+15551234567"],
        "From": ["+15550001111"],
        "Body": ["Update on your referral: it was accepted."],
    }
    expected = base64.b64encode(b"AC123:tok").decode()
    assert request.headers["authorization"] == f"Basic {expected}"


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
async def test_sms_error_status(sms: SmsSender, status: int) -> None:
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(SMS_URL).respond(status, json={"code": 21211, "message": "Secret detail"})
        with pytest.raises(DeliveryError, match=str(status)) as info:
            await sms.send("+15551234567", "Secret body")
    assert "Secret" not in str(info.value) and "21211" not in str(info.value)


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
async def test_sms_transport_error(sms: SmsSender, error: Exception) -> None:
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(SMS_URL).mock(side_effect=error)
        with pytest.raises(DeliveryError, match="unreachable"):
            await sms.send("+15551234567", "hi")


@pytest.mark.parametrize("answer", [{"status": "queued"}, {"sid": None}, ["SM1"]])
async def test_sms_answer_without_sid(sms: SmsSender, answer: Any) -> None:
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(SMS_URL).respond(201, json=answer)
        with pytest.raises(DeliveryError, match="sid"):
            await sms.send("+15551234567", "hi")


async def test_sms_answer_not_json(sms: SmsSender) -> None:
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(SMS_URL).respond(200, text="<html>ok</html>")
        with pytest.raises(DeliveryError, match="sid"):
            await sms.send("+15551234567", "hi")


@pytest.mark.parametrize(
    "to",
    [
        "call me maybe",
        "tel:",
        "",
        "5551234567",
        "tel:555-1234",
        "+0123456789",
        "+1" + "5" * 15,
        "mailto:a@b.test",
    ],
)
async def test_sms_bad_number(sms: SmsSender, to: str) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(SMS_URL).respond(201, json={"sid": "SM1"})
        with pytest.raises(ValueError):
            await sms.send(to, "hi")
    assert route.call_count == 0


async def test_sms_text_too_long(sms: SmsSender) -> None:
    with respx.mock(assert_all_mocked=True) as mock:
        route = mock.post(SMS_URL).respond(201, json={"sid": "SM1"})
        assert await sms.send("+15551234567", "x" * 320) == "SM1"
        with pytest.raises(ValueError):
            await sms.send("+15551234567", "x" * 321)
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("tel:+15551234567", "+15551234567"),
        ("+1 555 123 4567", "+15551234567"),
        ("TEL:+44-20-7946-0958", "+442079460958"),
        ("tel:+52.55.1234.5678", "+525512345678"),
    ],
)
def test_phone_normalised(to: str, expected: str) -> None:
    assert phone(to) == expected
