"""``GET /fhir/AuditEvent`` and ``GET /fhir/AuditEvent/<id>`` on the authorization server: its
decisions as FHIR R4 AuditEvents (``closedloop.audit.search``: the same parameters, paging and
rendering as on the FHIR services).

For admins only, always (this service has no switch to turn authorization off): a bearer
access token this server issued, checked as a resource server checks one
(``closedloop.auth.tokens.TokenVerifier``: alg, ``typ``, ``kid``, signature, ``iss``, ``exp``),
against this server's own published keys read from its database rather than over HTTP; its
``aud`` must name one of ``AUTH_AUDIENCES`` (the tokens this server issues carry them all), its
role must be ``admin`` and its scopes must cover AuditEvent (``system/AuditEvent.rs``,
``system/*.rs``...). A refusal is an OperationOutcome (401 with ``WWW-Authenticate``, 403
naming the scope) and is itself recorded.
"""

from __future__ import annotations

import time

import orjson
from closedloop import errors
from closedloop.audit.search import read_event, search_bundle
from closedloop.auth.jwks import KeysUnavailable
from closedloop.auth.policy import forbidden
from closedloop.auth.roles import ADMIN
from closedloop.auth.scopes import rules_for
from closedloop.auth.tokens import TokenVerifier, unauthorized
from closedloop.context import RequestContext
from closedloop.db import Database
from closedloop.fhir.rest.negotiation import fhir_response, pretty
from closedloop.hooks import Interaction
from fastapi import APIRouter, Request
from fastapi.responses import Response
from joserfc import jwk
from joserfc.errors import JoseError

from auth.audit.decisions import AuthAudit
from auth.keys import published_keys
from auth.settings import Settings

router = APIRouter()


class OwnKeys:
    """This server's published public keys, from its own table, reread at most every
    ``refresh`` seconds (and at once for an unknown kid, at most once a second)."""

    def __init__(self, db: Database, token_lifetime: int, refresh: float = 5.0) -> None:
        self.db = db
        self.token_lifetime = token_lifetime
        self.refresh = refresh
        self._keys: dict[str, jwk.Key] = {}
        self._loaded = float("-inf")

    async def key(self, kid: str) -> jwk.Key | None:
        now = time.monotonic()
        stale = now - self._loaded > self.refresh
        if stale or (kid not in self._keys and now - self._loaded > 1.0):
            keys: dict[str, jwk.Key] = {}
            for data in await published_keys(self.db, self.token_lifetime):
                try:
                    keys[data["kid"]] = jwk.import_key(data)
                except (JoseError, ValueError, KeyError, TypeError):
                    continue
            self._keys, self._loaded = keys, now
        if not self._keys:
            raise KeysUnavailable("no signing keys in the database")
        return self._keys.get(kid)


class AuditAccess:
    """Who may read the trail: the verifier of admin tokens, and the refusals' recorder."""

    def __init__(self, settings: Settings, db: Database, audit: AuthAudit) -> None:
        self.base = f"{settings.issuer}/fhir"
        self.audit = audit
        self.verifier = TokenVerifier(
            OwnKeys(db, settings.token_lifetime, settings.key_refresh_seconds),
            issuer=settings.issuer,
            audience=settings.audience_list,
        )

    async def admin(self, request: Request, interaction: Interaction) -> RequestContext:
        request_id = getattr(request.state, "request_id", "-")
        ctx = None
        try:
            caller = await self.verifier(request.headers.get("authorization"))
            if caller is None:
                raise unauthorized(self.base, "an admin's access token is required", missing=True)
            ctx = RequestContext.for_caller(caller, request_id, self.base)
            letter = "s" if interaction.name == "search-type" else "r"
            if ctx.role != ADMIN:
                raise errors.forbidden("The audit trail is for admins (a token with role admin)")
            if not rules_for(ctx.scopes).allows("AuditEvent", letter):
                raise forbidden(self.base, "AuditEvent", letter, "the token's scopes")
        except errors.FhirError as exc:
            if self.audit.trail is not None and exc.status in (401, 403):
                await self.audit.trail.refused(ctx, interaction, exc.status, request_id)
            raise
        return ctx


def _access(request: Request) -> AuditAccess:
    return request.app.state.audit_access  # type: ignore[no-any-return]


@router.get("/fhir/AuditEvent", include_in_schema=False)
async def search_audit(request: Request) -> Response:
    access = _access(request)
    await access.admin(request, Interaction("search-type", "AuditEvent"))
    pairs = list(request.query_params.multi_items())
    bundle = await search_bundle(
        request.app.state.db, pairs, f"{access.base}/AuditEvent", str(request.url)
    )
    return fhir_response(orjson.dumps(bundle), indent=pretty(request))


@router.get("/fhir/AuditEvent/{event_id}", include_in_schema=False)
async def read_audit(request: Request, event_id: str) -> Response:
    access = _access(request)
    await access.admin(request, Interaction("read", "AuditEvent", event_id))
    event = await read_event(request.app.state.db, event_id)
    return fhir_response(orjson.dumps(event), indent=pretty(request))
