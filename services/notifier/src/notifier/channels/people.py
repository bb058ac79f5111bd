"""The part email and sms share: a short message rendered from the templates in the patient's
language (for the patient audience), sent to one contact written in the endpoint.

The endpoint is checked when the Subscription is written, so it could be sent to safely: the
channel's scheme, no control character (percent-encoded or not: a CR/LF in an address becomes a
new mail header or SMTP command, one in a number a new form field), and one address or number.
The endpoint itself is never echoed: it is personal data."""

from __future__ import annotations

import re
from abc import abstractmethod
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import unquote

import httpx
from closedloop import errors, links

from notifier.channels.base import (
    ENDPOINT,
    Channel,
    ChannelDeps,
    ChannelUnusable,
    Notification,
    bad,
)
from notifier.messages.templates import Message, MessageContext, language_of, render
from notifier.subscriptions.ssrf import EndpointPolicy

__all__ = ["PeopleChannel"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
Sender = TypeVar("Sender")  # the client that talks to the provider (SMTP relay, SMS API)


def referral_id(kind: str, task: dict[str, Any] | None) -> str | None:
    """The referral Task a message is about: the Task itself, or for a follow-up (stalled,
    escalated) the referral it follows up (its ``focus``)."""
    if kind in ("referral-stalled", "referral-escalated"):
        ref = ((task or {}).get("focus") or {}).get("reference")
        if isinstance(ref, str) and ref.startswith("Task/"):
            return ref.removeprefix("Task/")
    task_id = (task or {}).get("id")
    return task_id if isinstance(task_id, str) else None


class PeopleChannel(Channel, Generic[Sender]):
    for_people = True
    scheme: ClassVar[str]  # mailto: | tel:

    def __init__(self, sender: Sender, deps: ChannelDeps) -> None:
        self.sender = sender
        self.http = deps.http
        self.referral_auth = deps.referral_auth
        self.referral_url = deps.referral_url
        self.app_url = deps.app_url
        self.link_secret = deps.link_secret
        self.link_lifetime = deps.link_lifetime

    @staticmethod
    @abstractmethod
    def contact(endpoint: str) -> str:
        """The one address or number in ``endpoint``; ValueError when there is none."""

    @abstractmethod
    async def deliver(self, notification: Notification, message: Message) -> None:
        """Send the rendered message; ValueError when the contact can never be sent to."""

    @classmethod
    def check_endpoint(cls, endpoint: str, endpoints: EndpointPolicy) -> None:
        if not endpoint.startswith(cls.scheme):
            raise bad(f"An {cls.code} channel needs a {cls.scheme} endpoint", ENDPOINT)
        if _CONTROL.search(endpoint) or _CONTROL.search(unquote(endpoint)):
            raise errors.invalid(
                f"The {cls.code} endpoint contains control characters",
                (ENDPOINT,),
                cl_code="CL-8405",
            )
        try:
            cls.contact(endpoint)
        except ValueError as exc:
            raise errors.invalid(
                f"The {cls.code} endpoint is not usable: {exc}", (ENDPOINT,), cl_code="CL-8405"
            ) from None

    async def send(self, notification: Notification) -> None:
        if notification.message is None:  # handshakes and heartbeats tell a person nothing
            return
        kind, task = notification.message
        spec = notification.spec
        language = await self._language(task) if spec.audience == "patient" else "en"
        owner = ((task or {}).get("owner") or {}).get("display")
        task_id = referral_id(kind, task)
        link = self._link(task_id, spec.audience) if self.app_url and task_id else None
        # the status page (a signed link for the patient) asks the patient-voice questions
        # once the referral is complete
        feedback = link if kind == "referral-completed" else None
        context = MessageContext(
            program=owner,
            link=link,
            subscription_id=notification.subscription_id,
            feedback=feedback,
        )
        message = render(kind, spec.audience, language, context)
        try:
            await self.deliver(notification, message)
        except ValueError as exc:  # the address or the text can never be sent
            raise ChannelUnusable(str(exc)) from None

    def _link(self, task_id: str, audience: str) -> str:
        """The web app's page for the Task: for the patient a signed, expiring link that opens
        without a sign-in (when a secret is set); for staff the plain one, behind their login."""
        assert self.app_url is not None
        if audience == "patient" and self.link_secret:
            return links.status_link(self.app_url, task_id, self.link_secret, self.link_lifetime)
        return f"{self.app_url.rstrip('/')}/referrals/{task_id}"

    async def _language(self, task: dict[str, Any] | None) -> str:
        ref = ((task or {}).get("for") or {}).get("reference")
        if not isinstance(ref, str) or not ref.startswith("Patient/"):
            return "en"
        try:
            r = await self.http.get(
                f"{self.referral_url}/{ref}", timeout=2.0, auth=self.referral_auth
            )
            return language_of(r.json()) if r.status_code == 200 else "en"
        except (httpx.HTTPError, ValueError):
            return "en"  # the message still goes out, in the fallback language
