"""Who may post events: only referral-api, which proves it with a shared secret.

Until the SMART auth service exists, the notifier and referral-api share one secret from the
environment (``NOTIFIER_EVENTS_TOKEN`` here, ``REFERRAL_API_EVENT_SINK_TOKEN`` there), sent as
``Authorization: Bearer <secret>`` and compared in constant time. Without a configured secret
every event is refused (fail closed): an open intake would let anyone forge the events that
subscribers are notified of.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from closedloop import errors
from fastapi import Request
from pydantic import SecretStr

log = logging.getLogger("notifier.intake")

SETTING = "NOTIFIER_EVENTS_TOKEN"


def _refused(status: int, code: str, text: str, cl_code: str) -> errors.FhirError:
    headers = {"WWW-Authenticate": 'Bearer realm="notifier-events"'} if status == 401 else {}
    return errors.FhirError(status, [errors.Issue("error", code, text, (), cl_code)], headers)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class EventSenders:
    """The configured secret, and the check of one request against it."""

    def __init__(self, token: SecretStr | None) -> None:
        secret = token.get_secret_value() if token is not None else ""
        self._secret = _digest(secret) if secret else None

    def warn_if_unconfigured(self) -> None:
        if self._secret is None:
            log.warning(
                f"{SETTING} is not set: POST /events refuses every event until it is "
                "(referral-api sends the same value from REFERRAL_API_EVENT_SINK_TOKEN)"
            )

    def check(self, authorization: str | None) -> None:
        """403 when no secret is configured, 401 when ``authorization`` does not carry it."""
        if self._secret is None:
            raise _refused(
                403,
                "forbidden",
                f"Events are refused: the notifier has no {SETTING} configured",
                "CL-8412",
            )
        scheme, _, token = (authorization or "").partition(" ")
        # digests of equal length, compared even for a wrong scheme: the time taken says
        # nothing about the secret, not even its length
        matches = hmac.compare_digest(_digest(token.strip()), self._secret)
        if scheme.lower() != "bearer" or not matches:
            raise _refused(
                401,
                "login",
                f"Events need Authorization: Bearer <the secret in {SETTING}>",
                "CL-8413",
            )


async def require_event_sender(request: Request) -> None:
    """FastAPI dependency of ``POST /events``; runs before the body is read."""
    senders: EventSenders = request.app.state.event_senders
    senders.check(request.headers.get("authorization"))
