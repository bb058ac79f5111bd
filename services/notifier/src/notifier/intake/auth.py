"""Who may post events: only referral-api, which proves it with its access token or a shared
secret.

With the notifier's authorization on, an access token (a JWT checked as every FHIR request's
is: issuer, audience, signature, expiry) of a ``service`` client named in
``NOTIFIER_EVENT_SENDERS`` (default ``referral-api``) is taken. Otherwise, or as well, the
notifier and referral-api may share one secret from the environment (``NOTIFIER_EVENTS_TOKEN``
here, ``REFERRAL_API_EVENT_SINK_TOKEN`` there), sent as ``Authorization: Bearer <secret>`` and
compared in constant time. With neither, every event is refused (fail closed): an open intake
would let anyone forge the events that subscribers are notified of.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from closedloop import errors
from closedloop.auth.roles import SERVICE
from closedloop.context import Authenticator
from fastapi import Request
from pydantic import SecretStr

log = logging.getLogger("notifier.intake")

SETTING = "NOTIFIER_EVENTS_TOKEN"
SENDERS = "NOTIFIER_EVENT_SENDERS"


def _refused(status: int, code: str, text: str, cl_code: str) -> errors.FhirError:
    headers = {"WWW-Authenticate": 'Bearer realm="notifier-events"'} if status == 401 else {}
    return errors.FhirError(status, [errors.Issue("error", code, text, (), cl_code)], headers)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class EventSenders:
    """The configured secret and sender clients, and the check of one request against them."""

    def __init__(self, token: SecretStr | None, clients: frozenset[str] = frozenset()) -> None:
        secret = token.get_secret_value() if token is not None else ""
        self._secret = _digest(secret) if secret else None
        self._clients = clients

    def warn_if_unconfigured(self, tokens_checked: bool) -> None:
        if self._secret is None and not (tokens_checked and self._clients):
            log.warning(
                f"{SETTING} is not set and access tokens are not checked: POST /events "
                "refuses every event (referral-api sends the same value from "
                "REFERRAL_API_EVENT_SINK_TOKEN)"
            )

    async def check(self, authorization: str | None, verifier: Authenticator | None) -> None:
        """An access token (a JWT) of a sender client when tokens are checked: 401 when it
        does not verify, 403 when it is not a sender's. Otherwise the secret: 403 when none is
        configured, 401 when ``authorization`` does not carry it."""
        scheme, _, value = (authorization or "").partition(" ")
        is_jwt = scheme.lower() == "bearer" and value.strip().count(".") == 2
        if verifier is not None and self._clients and is_jwt:
            caller = await verifier(authorization)  # a FhirError 401 for a token it refuses
            if caller is None or caller.role != SERVICE or caller.client_id not in self._clients:
                raise _refused(
                    403,
                    "forbidden",
                    f"Events are taken only from the service clients in {SENDERS}",
                    "CL-8414",
                )
            return
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
    server = getattr(request.app.state, "fhir", None)
    verifier = server.authenticator if server is not None else None
    await senders.check(request.headers.get("authorization"), verifier)
