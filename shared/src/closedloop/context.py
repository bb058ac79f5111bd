"""Who is calling, and with which scopes: built once per request and passed to every interaction.

The REST layer builds it: when the app has an ``Authenticator`` (``closedloop.auth`` when
authorization is on), the bearer token becomes the ``Caller`` whose facts fill the context.
Policy reads it in the hooks; storage only carries it along. ``organization`` is there so a
policy can narrow searches to what a caller's organization may see, by its ``role``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Caller:
    """What a verified access token says about its bearer."""

    subject: str  # the token's sub: a backend client's id, or a user
    client_id: str | None = None  # the OAuth client the token was issued to
    scopes: frozenset[str] = field(default_factory=frozenset)
    organization: str | None = None  # e.g. "Organization/123"
    role: str | None = None  # closedloop.auth.roles: clinician, cbo-staff, requester, cbo, admin...


class Authenticator(Protocol):
    """Turns an ``Authorization`` header (None when absent) into the caller, or None for an
    anonymous request; raises ``FhirError`` (401) for a token it refuses."""

    async def __call__(self, authorization: str | None, /) -> Caller | None: ...


@dataclass(frozen=True)
class RequestContext:
    request_id: str = "-"
    subject: str | None = None  # None: anonymous
    scopes: frozenset[str] = field(default_factory=frozenset)
    organization: str | None = None
    base_url: str = ""  # the FHIR base as the client sees it, e.g. http://127.0.0.1:8081/fhir
    client_id: str | None = None
    role: str | None = None  # the token's role claim (closedloop.auth.roles)

    @property
    def anonymous(self) -> bool:
        return self.subject is None

    @classmethod
    def for_caller(cls, caller: Caller | None, request_id: str, base_url: str) -> RequestContext:
        if caller is None:
            return cls(request_id=request_id, base_url=base_url)
        return cls(
            request_id=request_id,
            subject=caller.subject,
            scopes=caller.scopes,
            organization=caller.organization,
            base_url=base_url,
            client_id=caller.client_id,
            role=caller.role,
        )


SYSTEM = RequestContext(request_id="system", subject="system")
