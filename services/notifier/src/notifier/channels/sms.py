"""sms: a text through a Twilio-compatible HTTP API. Texts are short and carry no clinical
detail (the templates make sure of that); no Bundle is ever sent by SMS (the IG's rule), and
the message is for the patient unless the Subscription says otherwise."""

from __future__ import annotations

import re

import httpx

from notifier.channels.base import ChannelDeps, DeliveryError, Notification
from notifier.channels.people import PeopleChannel
from notifier.messages.templates import Message
from notifier.settings import Settings

__all__ = ["MAX_TEXT", "SmsChannel", "SmsSender", "phone"]

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


class SmsChannel(PeopleChannel[SmsSender]):
    code = "sms"
    scheme = "tel:"
    settings = {
        "NOTIFIER_SMS_API_URL": "sms_api_url",
        "NOTIFIER_SMS_ACCOUNT_SID": "sms_account_sid",
        "NOTIFIER_SMS_AUTH_TOKEN": "sms_auth_token",
        "NOTIFIER_SMS_FROM": "sms_from",
    }
    carries_bundle = False
    default_audience = "patient"

    @classmethod
    def open(cls, settings: Settings, deps: ChannelDeps) -> SmsChannel:
        sender = SmsSender(
            settings.sms_api_url or "",
            settings.sms_account_sid or "",
            settings.sms_auth_token or "",
            settings.sms_from or "",
            deps.http,
        )
        return cls(sender, deps)

    @staticmethod
    def contact(endpoint: str) -> str:
        return phone(endpoint)

    async def deliver(self, notification: Notification, message: Message) -> None:
        await self.sender.send(notification.spec.endpoint, message.sms)
