"""SMS through a Twilio-compatible HTTP API. Texts are short and carry no clinical detail (the
templates make sure of that); no Bundle is ever sent by SMS."""

from __future__ import annotations

import re

import httpx

from notifier.channels import DeliveryError

_E164 = re.compile(r"^\+[1-9][0-9]{5,14}$")
_SEPARATORS = re.compile(r"[\s().-]")
MAX_TEXT = 320  # two SMS segments at most; templates aim for one (160)


def phone(to: str) -> str:
    """``tel:+1 (555) 123-4567`` -> ``+15551234567``. A number without its country code is
    refused rather than guessed: a wrong guess texts a stranger."""
    number = to.strip()
    if number[:4].lower() == "tel:":
        number = number[4:]
    number = _SEPARATORS.sub("", number)
    if not _E164.match(number):
        raise ValueError("the sms endpoint is not an international (+country) phone number")
    return number


class SmsSender:
    """Posts one message per call to ``/2010-04-01/Accounts/{sid}/Messages.json``."""

    def __init__(
        self,
        api_url: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        client: httpx.AsyncClient,
    ) -> None:
        self.url = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.auth = httpx.BasicAuth(account_sid, auth_token)
        self.from_number = from_number
        self.client = client

    async def send(self, to: str, text: str) -> str:
        """Return the provider's message sid, or raise DeliveryError (status only, no body)."""
        if len(text) > MAX_TEXT:
            raise ValueError(f"an SMS text may be at most {MAX_TEXT} characters")
        number = phone(to)
        try:
            response = await self.client.post(
                self.url,
                data={"To": number, "From": self.from_number, "Body": text},
                auth=self.auth,
                timeout=10.0,
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"SMS API unreachable: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"SMS API answered HTTP {response.status_code}")
        try:
            sid = response.json()["sid"]
        except (ValueError, KeyError, TypeError):
            sid = None
        if not isinstance(sid, str) or not sid:
            raise DeliveryError(
                f"SMS API answered HTTP {response.status_code} without a message sid"
            )
        return sid
