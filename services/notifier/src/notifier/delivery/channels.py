"""Sending one notification over a subscription's channel.

- rest-hook: POST the Bundle with the channel's headers, an ``X-Closedloop-Event`` idempotency
  key (``<subscription id>:<event number>``, comma separated for several), and, when the
  subscription has a secret, ``X-Closedloop-Signature: sha256=<hex HMAC-SHA256 of the body>``.
  The endpoint passes the SSRF guard again before every send.
- email: a short message from the templates, with the Bundle attached unless the payload is
  ``empty``.
- sms: a short text with no clinical detail and no Bundle (the IG's rule).

A channel this server has no settings for, or an address that can never be sent to, raises
``ChannelUnusable``: retrying cannot help, so the subscription goes to ``error``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from closedloop.errors import FhirError

from notifier.channels import ChannelUnusable, DeliveryError
from notifier.channels.email import SmtpSender
from notifier.channels.setup import ChannelSetup
from notifier.channels.sms import SmsSender
from notifier.messages.templates import MessageContext, language_of, render
from notifier.subscriptions.spec import SubscriptionSpec
from notifier.subscriptions.ssrf import EndpointPolicy


@dataclass
class Channels:
    http: httpx.AsyncClient
    endpoints: EndpointPolicy
    referral_url: str
    app_url: str | None
    email: SmtpSender | None = None
    sms: SmsSender | None = None
    setup: ChannelSetup = field(default_factory=ChannelSetup)  # what the settings lack

    async def send(
        self,
        spec: SubscriptionSpec,
        subscription_id: str,
        bundle: dict[str, Any],
        keys: list[str],
        secret: str | None,
        people: tuple[str, dict | None] | None,
    ) -> None:
        """Raise ``DeliveryError`` when the notification did not get through."""
        if spec.channel == "rest-hook":
            await self._rest_hook(spec, bundle, keys, secret)
        elif people is not None:  # email and sms carry a human message, when one applies
            kind, task = people
            await self._people(spec, subscription_id, bundle, kind, task)

    async def _rest_hook(
        self, spec: SubscriptionSpec, bundle: dict[str, Any], keys: list[str], secret: str | None
    ) -> None:
        try:
            self.endpoints.check(spec.endpoint)
        except FhirError as exc:
            raise DeliveryError(str(exc)) from None
        body = orjson.dumps(bundle)
        headers = {"Content-Type": "application/fhir+json"}
        for line in spec.headers:
            name, _, value = line.partition(":")
            if name.strip() and value.strip():
                headers[name.strip()] = value.strip()
        if keys:
            headers["X-Closedloop-Event"] = ",".join(keys)
        if secret:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Closedloop-Signature"] = f"sha256={digest}"
        try:
            response = await self.http.post(
                spec.endpoint, content=body, headers=headers, timeout=spec.timeout_seconds
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__} posting to the endpoint") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"the endpoint answered HTTP {response.status_code}")

    async def _language(self, task: dict[str, Any] | None) -> str:
        ref = ((task or {}).get("for") or {}).get("reference")
        if not isinstance(ref, str) or not ref.startswith("Patient/"):
            return "en"
        try:
            r = await self.http.get(f"{self.referral_url}/{ref}", timeout=2.0)
            return language_of(r.json()) if r.status_code == 200 else "en"
        except (httpx.HTTPError, ValueError):
            return "en"  # the message still goes out, in the fallback language

    async def _people(
        self,
        spec: SubscriptionSpec,
        subscription_id: str,
        bundle: dict[str, Any],
        kind: str,
        task: dict[str, Any] | None,
    ) -> None:
        language = await self._language(task) if spec.audience == "patient" else "en"
        owner = ((task or {}).get("owner") or {}).get("display")
        task_id = (task or {}).get("id")
        link = (
            f"{self.app_url.rstrip('/')}/referrals/{task_id}" if self.app_url and task_id else None
        )
        message = render(
            kind,
            spec.audience,
            language,
            MessageContext(program=owner, link=link, subscription_id=subscription_id),
        )
        try:
            if spec.channel == "email":
                if self.email is None:
                    raise ChannelUnusable(self.setup.problem("email") or "email is not set up")
                attachment = orjson.dumps(bundle) if spec.payload != "empty" else None
                await self.email.send(
                    spec.endpoint, message.subject, message.text, attachment=attachment
                )
            else:
                if self.sms is None:
                    raise ChannelUnusable(self.setup.problem("sms") or "sms is not set up")
                await self.sms.send(spec.endpoint, message.sms)
        except ValueError as exc:  # the address or the text can never be sent
            raise ChannelUnusable(str(exc)) from None
