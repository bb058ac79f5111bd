"""Email over SMTP with a real client (aiosmtplib): a short text, optionally with the
notification Bundle attached (``text/plain;attach=application/fhir+json`` in Backport terms)."""

from __future__ import annotations

import re
from email.message import EmailMessage

import aiosmtplib

from notifier.channels import DeliveryError

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@localhost$")


def address(to: str) -> str:
    addr = to.removeprefix("mailto:").split("?")[0]
    if not _ADDRESS.match(addr):
        raise ValueError(f"not an email address: {to!r}")
    return addr


class SmtpSender:
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
        message = EmailMessage()
        message["From"] = self.from_addr
        message["To"] = address(to)
        message["Subject"] = subject
        message.set_content(text)
        if attachment is not None:
            maintype, _, subtype = attachment_type.partition("/")
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
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"SMTP delivery to {self.host}:{self.port} failed: {type(exc).__name__}"
            ) from None
