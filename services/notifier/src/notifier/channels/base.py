"""What every notification channel is: a class that checks a Subscription's endpoint when it is
written, names the settings it cannot work without, and sends one notification.

The class attributes say how the rest of the notifier treats the channel, so the subscription
lifecycle and the delivery worker never compare channel codes:

- ``handshake``: a new subscription starts ``requested`` and is sent a handshake first;
- ``heartbeat``: it is sent heartbeats when it asks for them;
- ``batches``: one notification may carry up to ``max_count`` events;
- ``for_people``: it sends a rendered message (an event with nothing to tell a person is
  marked delivered without sending);
- ``carries_bundle``: False forces the ``empty`` payload (the IG's rule for sms);
- ``default_audience``: who the message is for when the Subscription does not say.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from closedloop import errors

from notifier.settings import Settings
from notifier.subscriptions.ssrf import EndpointPolicy

if TYPE_CHECKING:  # the spec module looks channels up in the registry
    from notifier.subscriptions.spec import SubscriptionSpec

__all__ = [
    "Channel",
    "ChannelDeps",
    "ChannelUnusable",
    "DeliveryError",
    "Notification",
    "bad",
]

ENDPOINT = "Subscription.channel.endpoint"


class DeliveryError(Exception):
    """A notification did not get through; the text says why, never what the message said."""


class ChannelUnusable(DeliveryError):
    """Retrying cannot help (the channel is not configured, the address can never be sent
    to): the subscription goes to ``error`` instead of backing off."""


def bad(text: str, where: str) -> errors.FhirError:
    """A Subscription the server cannot honour: 400 naming the element (CL-8400)."""
    return errors.invalid(text, (where,), cl_code="CL-8400")


@dataclass(frozen=True)
class ChannelDeps:
    """What the channels share, built once at start-up: the guarded HTTP client, the SSRF
    policy, the URLs a message links to or looks the patient up at, and the credentials for
    that look-up."""

    http: httpx.AsyncClient
    endpoints: EndpointPolicy
    referral_url: str
    app_url: str | None
    # the notifier's own credentials, sent to referral-api only (never to a subscriber)
    referral_auth: httpx.Auth | None = None
    # signs the patient's status links (closedloop.links), good for link_lifetime seconds
    link_secret: str | None = None
    link_lifetime: float = 30 * 86400.0


@dataclass(frozen=True)
class Notification:
    """One send: the Bundle, its idempotency keys (``<subscription id>:<event number>``), the
    subscription's signing secret, and for people the message kind with the Task it is about
    (None for a handshake or a heartbeat, which carry no message)."""

    spec: SubscriptionSpec
    subscription_id: str
    bundle: dict[str, Any]
    keys: list[str]
    secret: str | None
    message: tuple[str, dict[str, Any] | None] | None


class Channel(ABC):
    code: ClassVar[str]
    # environment variable -> the Settings attribute it sets; all must be set to use the channel
    settings: ClassVar[Mapping[str, str]] = {}
    handshake: ClassVar[bool] = False
    heartbeat: ClassVar[bool] = False
    batches: ClassVar[bool] = False
    for_people: ClassVar[bool] = False
    carries_bundle: ClassVar[bool] = True
    default_audience: ClassVar[str] = "cbo"

    @classmethod
    def missing_settings(cls, settings: Settings) -> tuple[str, ...]:
        """The environment variables this server lacks for the channel (CL-8407 names them)."""
        return tuple(env for env, attr in cls.settings.items() if not getattr(settings, attr))

    @classmethod
    @abstractmethod
    def check_endpoint(cls, endpoint: str, endpoints: EndpointPolicy) -> None:
        """Refuse (400 naming ``Subscription.channel.endpoint``) an endpoint this channel
        must not or cannot send to; called whenever a client writes a Subscription."""

    @classmethod
    def check_payload_type(cls, mime: Any) -> None:
        """Refuse a ``channel.payload`` media type the channel cannot send; any by default."""
        return None

    @classmethod
    @abstractmethod
    def open(cls, settings: Settings, deps: ChannelDeps) -> Channel:
        """The channel ready to send; called only when ``missing_settings`` is empty."""

    @abstractmethod
    async def send(self, notification: Notification) -> None:
        """Raise ``DeliveryError`` when the notification did not get through, or
        ``ChannelUnusable`` when it never can."""
