"""SMS through a Twilio-compatible HTTP API. Texts are short and carry no clinical detail (the
templates make sure of that); no Bundle is ever sent by SMS."""

from __future__ import annotations

import re

import httpx

from notifier.channels import DeliveryError

_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
MAX_TEXT = 320


def phone(to: str) -> str:
    number = re.sub(r"[\s().-]", "", to.removeprefix("tel:"))
    if not _PHONE.match(number):
        raise ValueError(f"not a phone number: {to!r}")
    return number if number.startswith("+") else f"+{number}"


class SmsSender:
    def __init__(
        self,
        api_url: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        client: httpx.AsyncClient,
    ) -> None:
        self.url = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.auth = (account_sid, auth_token)
        self.from_number = from_number
        self.client = client

    async def send(self, to: str, text: str) -> str:
        if len(text) > MAX_TEXT:
            raise ValueError(f"an SMS text may be at most {MAX_TEXT} characters")
        try:
            response = await self.client.post(
                self.url,
                data={"To": phone(to), "From": self.from_number, "Body": text},
                auth=self.auth,
                timeout=10.0,
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"SMS API unreachable: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"SMS API answered HTTP {response.status_code}")
        try:
            return str(response.json()["sid"])
        except (ValueError, KeyError):
            raise DeliveryError("SMS API answered without a message sid") from None
