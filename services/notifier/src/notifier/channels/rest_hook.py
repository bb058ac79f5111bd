"""rest-hook: POST the notification Bundle to the subscriber's endpoint.

Each POST carries the channel's headers, an ``X-Closedloop-Event`` idempotency key
(``<subscription id>:<event number>``, comma separated for several) and, when the subscription
has a secret, ``X-Closedloop-Signature: sha256=<hex HMAC-SHA256 of the body>``. The endpoint
passes the SSRF guard when the Subscription is written and again before every send (the guarded
client checks the address it connects to as well)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import orjson
from closedloop.errors import FhirError

from notifier.channels.base import (
    ENDPOINT,
    Channel,
    ChannelDeps,
    DeliveryError,
    Notification,
    bad,
)
from notifier.settings import Settings
from notifier.subscriptions.ssrf import EndpointPolicy

__all__ = ["RestHookChannel"]

PAYLOAD_TYPES = (None, "application/fhir+json", "application/json")


class RestHookChannel(Channel):
    code = "rest-hook"
    handshake = True
    heartbeat = True
    batches = True

    def __init__(self, http: httpx.AsyncClient, endpoints: EndpointPolicy) -> None:
        self.http = http
        self.endpoints = endpoints

    @classmethod
    def check_endpoint(cls, endpoint: str, endpoints: EndpointPolicy) -> None:
        endpoints.check(endpoint, ENDPOINT)

    @classmethod
    def check_payload_type(cls, mime: Any) -> None:
        if mime not in PAYLOAD_TYPES:
            raise bad(
                f"Payload type {mime!r} is not supported: use application/fhir+json",
                "Subscription.channel.payload",
            )

    @classmethod
    def open(cls, settings: Settings, deps: ChannelDeps) -> RestHookChannel:
        return cls(deps.http, deps.endpoints)

    async def send(self, notification: Notification) -> None:
        spec = notification.spec
        try:
            self.endpoints.check(spec.endpoint)
        except FhirError as exc:
            raise DeliveryError(str(exc)) from None
        body = orjson.dumps(notification.bundle)
        headers = {"Content-Type": "application/fhir+json"}
        for line in spec.headers:
            name, _, value = line.partition(":")
            if name.strip() and value.strip():
                headers[name.strip()] = value.strip()
        if notification.keys:
            headers["X-Closedloop-Event"] = ",".join(notification.keys)
        if notification.secret:
            digest = hmac.new(notification.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Closedloop-Signature"] = f"sha256={digest}"
        try:
            response = await self.http.post(
                spec.endpoint, content=body, headers=headers, timeout=spec.timeout_seconds
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__} posting to the endpoint") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"the endpoint answered HTTP {response.status_code}")
