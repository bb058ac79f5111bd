"""Recording the authorization server's decisions on the shared audit trail.

An event says who (a client id, or the username of a person with their role, organization
and ``fhirUser``), what (the grant type, ``login``, ``external-login``, or the administrator's
change: ``client-add``...), the outcome (the HTTP status; ``0``/``4``) and, for a refusal, a
reason code from ``REASONS``. The subtypes and how they render are
``closedloop.audit.security``'s.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass

from closedloop.audit.trail import AuditTrail
from closedloop.context import RequestContext
from closedloop.db import Database

SOURCE = "auth"
# why a token request or a sign-in was refused
REASONS = frozenset(
    {
        "bad_alg",  # an assertion not signed RS384/ES384 (none, HS256...)
        "bad_signature",  # the assertion's signature does not verify with the client's key
        "unknown_key",  # the assertion names a key the client does not publish
        "wrong_aud",  # the assertion's aud is not this token URL
        "expired",  # the assertion (or the external id_token) has expired
        "exp_too_far",  # the assertion's exp is more than 5 minutes ahead
        "bad_claims",  # iss/sub/jti missing or not matching
        "replayed_jti",  # the assertion's jti was used before
        "unknown_client",
        "disabled_client",
        "bad_pkce",  # the code_verifier does not match the code's challenge
        "bad_code",  # unknown, expired, or another client's / redirect URI's code
        "code_reused",  # a code presented again (its sign-in is revoked)
        "refresh_refused",  # unknown, expired or revoked refresh token
        "refresh_reused",  # a refresh token presented again (its sign-in is revoked)
        "user_disabled",
        "bad_scope",
        "bad_login",  # wrong username or password, or a disabled account
        "throttled",
        # signing in through the external issuer
        "bad_nonce",
        "wrong_iss",
        "unknown_subject",
        "external_refused",  # the issuer answered with an error, or not at all
        "bad_state",
    }
)


@dataclass(frozen=True)
class Who:
    """The party a decision is about."""

    subject: str | None  # a client id, a username
    client_id: str | None = None
    role: str | None = None
    organization: str | None = None


def cli_operator() -> str:
    """Who ran an administrative command: the operating-system account."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


class AuthAudit:
    """Records on an ``AuditTrail`` of this database; ``enabled=False`` records nothing."""

    def __init__(self, db: Database, *, enabled: bool = True) -> None:
        self.trail = AuditTrail(db, SOURCE) if enabled else None

    def start(self) -> None:
        if self.trail is not None:
            self.trail.start()

    async def stop(self) -> None:
        if self.trail is not None:
            await self.trail.stop()

    async def flush(self) -> None:
        if self.trail is not None:
            await self.trail.flush()

    async def record(
        self,
        subtype: str,
        who: Who,
        status: int,
        *,
        reason: str | None = None,
        entities: Sequence[tuple[str, str]] = (),
        request_id: str = "-",
        action: str = "E",
    ) -> None:
        if self.trail is None:
            return
        ctx = RequestContext(
            request_id=request_id,
            subject=(who.subject or "")[:255] or None,
            client_id=(who.client_id or "")[:255] or None,
            role=who.role,
            organization=who.organization,
        )
        await self.trail.record(
            ctx, action, subtype, status, None, list(entities), request_id, reason=reason
        )

    async def change(
        self, subtype: str, entities: Sequence[tuple[str, str]], *, action: str = "U"
    ) -> None:
        """An administrator's change from the CLI, written at once (the command exits)."""
        await self.record(
            subtype, Who(cli_operator(), role="admin"), 0, entities=entities, action=action
        )
        await self.flush()
