"""email: a short message from the templates over SMTP with a real client (aiosmtplib), with
the notification Bundle attached unless the payload is ``empty``
(``text/plain;attach=application/fhir+json`` in Backport terms)."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import unquote

import aiosmtplib
import orjson

from notifier.channels.base import ChannelDeps, DeliveryError, Notification
from notifier.channels.people import PeopleChannel
from notifier.messages.templates import Message
from notifier.settings import Settings

__all__ = ["EmailChannel", "SmtpSender", "address"]

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# one plain address: no display name, no list, nothing that could smuggle a header or recipient
_ADDRESS = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}(?:\.{_LABEL})+|localhost)$")


def address(to: str) -> str:
    """``mailto:a@b.test`` or ``a@b.test`` -> ``a@b.test``; anything else -> ValueError (the
    address itself is not echoed: it is personal data)."""
    addr = to.strip()
    if addr[:7].lower() == "mailto:":
        addr = unquote(addr[7:].split("?", 1)[0])
    if len(addr) > 254 or not _ADDRESS.match(addr):
        raise ValueError("the email endpoint is not a single email address")
    return addr


class SmtpSender:
    """Sends through one configured SMTP relay; each send is its own connection (notifications
    are rare and a long-lived connection would only go stale)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_tls: bool = False,
        from_addr: str,
        timeout: float = 10.0,
    ) -> None:
        if starttls and use_tls:
            raise ValueError("choose STARTTLS or implicit TLS, not both")
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.starttls, self.use_tls = starttls, use_tls
        self.from_addr = from_addr
        self.timeout = timeout

    async def send(
        self,
        to: str,
        subject: str,
        text: str,
        *,
        attachment: bytes | None = None,
        attachment_type: str = "application/fhir+json",
        attachment_name: str = "notification.json",
    ) -> None:
        """Deliver to the relay or raise DeliveryError (which never quotes the message)."""
        maintype, _, subtype = attachment_type.partition("/")
        if attachment is not None and not (maintype and subtype):
            raise ValueError(f"not a media type: {attachment_type!r}")
        message = EmailMessage()
        message["From"] = self.from_addr
        message["To"] = address(to)
        message["Subject"] = subject
        message.set_content(text)
        if attachment is not None:
            message.add_attachment(
                attachment, maintype=maintype, subtype=subtype, filename=attachment_name
            )
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                use_tls=self.use_tls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:  # codes only, not the addresses
            codes = ",".join(str(r.code) for r in exc.recipients)
            raise DeliveryError(
                f"SMTP delivery via {self.host}:{self.port} refused the recipient: {codes}"
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP delivery via {self.host}:{self.port} refused: {exc.code}"
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"SMTP delivery via {self.host}:{self.port} failed: {type(exc).__name__}"
            ) from None


class EmailChannel(PeopleChannel[SmtpSender]):
    code = "email"
    scheme = "mailto:"
    settings = {"NOTIFIER_SMTP_HOST": "smtp_host"}

    @classmethod
    def open(cls, settings: Settings, deps: ChannelDeps) -> EmailChannel:
        sender = SmtpSender(
            settings.smtp_host or "",
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            from_addr=settings.smtp_from,
        )
        return cls(sender, deps)

    @staticmethod
    def contact(endpoint: str) -> str:
        return address(endpoint)

    async def deliver(self, notification: Notification, message: Message) -> None:
        bundle = notification.bundle
        attachment = orjson.dumps(bundle) if notification.spec.payload != "empty" else None
        await self.sender.send(
            notification.spec.endpoint, message.subject, message.text, attachment=attachment
        )
