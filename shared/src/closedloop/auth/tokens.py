"""Bearer access tokens: read from ``Authorization``, verified, turned into the ``Caller``.

A token is a JWT the authorization server signed (RFC 9068 ``at+jwt``). It is accepted only
when all of these hold, else the answer is 401 with ``WWW-Authenticate: Bearer`` (RFC 6750):

- header ``alg`` is RS384 or ES384 (never ``none``, never HS*: an HMAC "signed" with the
  server's public key is refused before any key is looked at), ``typ`` is ``at+jwt``, ``kid``
  names a key the server publishes at its JWKS URL (``jwks.JwksCache``), and the signature
  verifies with that key;
- ``iss`` is the configured issuer, ``aud`` (a string or a list) contains this server's
  audience (its FHIR base), ``exp`` is in the future and ``nbf`` (if any) in the past, each
  within ``leeway`` seconds of clock skew, and ``sub`` is a non-empty string.

Verified tokens are remembered until they expire (signature checks cost more than the rest
of a read), keyed by the whole token text.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from joserfc import jwk, jws, jwt
from joserfc.errors import JoseError

from closedloop import errors
from closedloop.auth.jwks import JwksCache, KeysUnavailable
from closedloop.context import Caller

log = logging.getLogger("closedloop.auth")

ALGORITHMS = ("RS384", "ES384")  # SMART Backend Services' two; what services/auth signs with
TOKEN_TYPES = ("at+jwt", "application/at+jwt")
_CACHE_LIMIT = 4096
_MAX_TOKEN = 16 * 1024


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")


def challenge(
    realm: str, error: str | None = None, description: str | None = None, **more: str
) -> str:
    """A ``WWW-Authenticate: Bearer`` value (RFC 6750 section 3)."""
    parts = [f'realm="{_quoted(realm)}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{_quoted(description)}"')
    parts += [f'{k}="{_quoted(v)}"' for k, v in more.items()]
    return "Bearer " + ", ".join(parts)


def unauthorized(realm: str, description: str, *, missing: bool = False) -> errors.FhirError:
    """401: no token (no error code, as RFC 6750 3.1 asks) or a token refused."""
    header = challenge(realm) if missing else challenge(realm, "invalid_token", description)
    return errors.FhirError(
        401,
        [errors.Issue("error", "login", description, (), "CL-1301" if missing else "CL-1302")],
        {"WWW-Authenticate": header},
    )


class KeySource(Protocol):
    """Where the issuer's public keys come from: its JWKS URL (``JwksCache``), or, inside the
    authorization server itself, its own key table. Raises ``KeysUnavailable`` when none."""

    async def key(self, kid: str) -> jwk.Key | None: ...


class TokenVerifier:
    """The ``Authenticator`` of a resource server: ``await verifier(authorization_header)``.
    ``audience``: what ``aud`` must contain (any one of them, when several are given)."""

    def __init__(
        self,
        keys: KeySource | JwksCache,
        *,
        issuer: str,
        audience: str | Sequence[str],
        leeway: float = 30.0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer.rstrip("/")
        wanted = [audience] if isinstance(audience, str) else list(audience)
        self.audiences = frozenset(a.rstrip("/") for a in wanted)
        self.audience = wanted[0].rstrip("/")
        self.leeway = leeway
        self._verified: dict[str, tuple[Caller, float]] = {}

    @property
    def realm(self) -> str:
        return self.audience

    async def __call__(self, authorization: str | None, /) -> Caller | None:
        if authorization is None:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized(self.realm, "Authorization must be 'Bearer <access token>'")
        now = time.time()
        known = self._verified.get(token)
        if known is not None and known[1] + self.leeway > now:
            return known[0]
        caller, expires = await self._verify(token, now)
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[token] = (caller, expires)
        return caller

    async def _verify(self, token: str, now: float) -> tuple[Caller, float]:
        if len(token) > _MAX_TOKEN:
            raise unauthorized(self.realm, "the access token is too long")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError, TypeError):
            raise unauthorized(self.realm, "the access token is not a signed JWT") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise unauthorized(self.realm, f"the access token's alg must be one of {ALGORITHMS}")
        if str(header.get("typ", "")).lower() not in TOKEN_TYPES:
            raise unauthorized(self.realm, "the token is not an access token (typ at+jwt)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise unauthorized(self.realm, "the access token names no key (kid)")
        try:
            key = await self.keys.key(kid)
        except KeysUnavailable:
            log.warning("no signing keys from the authorization server")
            raise errors.FhirError(
                503,
                [
                    errors.Issue(
                        "error",
                        "transient",
                        "access tokens cannot be checked now: the authorization server's keys "
                        "are unavailable",
                        (),
                        "CL-1304",
                    )
                ],
                {"Retry-After": "10"},
            ) from None
        if key is None:
            raise unauthorized(self.realm, "the access token was signed by an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=[alg]).claims
        except (JoseError, ValueError, TypeError, json.JSONDecodeError):
            raise unauthorized(self.realm, "the access token's signature does not verify") from None
        return self._caller(claims, now)

    def _caller(self, claims: dict[str, Any], now: float) -> tuple[Caller, float]:
        if claims.get("iss") != self.issuer:
            raise unauthorized(self.realm, "the access token is from another issuer")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if not self.audiences & {a.rstrip("/") for a in audiences if isinstance(a, str)}:
            raise unauthorized(self.realm, "the access token is not for this server (aud)")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool) or exp + self.leeway <= now:
            raise unauthorized(self.realm, "the access token has expired")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, int | float) or nbf - self.leeway > now):
            raise unauthorized(self.realm, "the access token is not valid yet (nbf)")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise unauthorized(self.realm, "the access token has no subject")
        scope = claims.get("scope")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        client_id = claims.get("client_id")
        organization = claims.get("organization")
        role = claims.get("role")
        caller = Caller(
            subject=sub,
            client_id=client_id if isinstance(client_id, str) else None,
            scopes=scopes,
            organization=organization if isinstance(organization, str) else None,
            role=role if isinstance(role, str) else None,
        )
        return caller, float(exp)
