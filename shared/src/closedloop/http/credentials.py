"""A service's own access tokens for calling the other services (SMART Backend Services).

The calling service is a registered client of the ``auth`` service: it signs a client
assertion (``private_key_jwt``, RS384 or ES384) with its private key and trades it for an access
token with the ``client_credentials`` grant. The token is kept until shortly before it expires
(one token serves every call meanwhile); a 401 from a peer (keys rotated, token revoked) gets a
fresh token and the call is sent once more. ``credentials_from`` builds this from a service's
settings, or None when its authorization is off or it has no client configured: then calls go
without a token, as before authorization existed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwk, jwt

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("ES384", "RS384")


class CredentialsError(httpx.TransportError):
    """The token endpoint refused or could not be reached (never carries the key or token);
    a transport error to the caller: the peer could not be called."""


def load_private_key(path: Path) -> tuple[Any, str]:
    """A private JWK file (as ``auth clients add --generate-key`` writes it): the key and its
    algorithm (the file's ``alg``, else ES384 for EC and RS384 for RSA keys)."""
    private = json.loads(path.read_text())
    alg = private.get("alg") or ("ES384" if private.get("kty") == "EC" else "RS384")
    if alg not in ALGORITHMS:
        raise ValueError(f"{path}: alg {alg} (only {', '.join(ALGORITHMS)})")
    return jwk.import_key(private), alg


class ClientCredentials(httpx.Auth):
    """``httpx`` auth that puts ``Authorization: Bearer <token>`` on each request, getting and
    caching the token with ``client_credentials`` + ``private_key_jwt``."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        key: Any,
        alg: str,
        scope: str,
        *,
        timeout: float = 5.0,
        refresh_margin: float = 30.0,
        audience: str | None = None,
    ) -> None:
        self.token_url = token_url
        # the assertion's ``aud``: auth's token endpoint as it names itself ({issuer}/token),
        # which differs from ``token_url`` where a service calls auth by an internal address
        self.audience = audience or token_url
        self.client_id = client_id
        self.scope = scope
        self._key = key
        self._alg = alg
        self._timeout = timeout
        self._margin = refresh_margin
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0  # tokens obtained so far (for tests and logs)

    def _assertion(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.audience,
            "iat": now,
            "exp": now + 240,
            "jti": uuid.uuid4().hex,
        }
        header = {"alg": self._alg, "typ": "JWT"}
        if getattr(self._key, "kid", None):
            header["kid"] = self._key.kid
        return jwt.encode(header, claims, self._key, algorithms=[self._alg])

    async def _fetch(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self._assertion(),
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
                r = await http.post(self.token_url, data=form)
        except httpx.HTTPError as exc:
            raise CredentialsError(f"{self.token_url}: {type(exc).__name__}") from None
        if r.status_code != 200:
            error = r.json().get("error", "") if "json" in r.headers.get("content-type", "") else ""
            raise CredentialsError(f"{self.token_url} answered {r.status_code} {error}".strip())
        body = r.json()
        self._token = str(body["access_token"])
        self._expires = time.monotonic() + float(body.get("expires_in", 300))
        self.fetches += 1

    async def token(self, refused: str | None = None) -> str:
        """The cached token, or a new one when it is close to expiry or is the one a peer
        ``refused`` (concurrent callers wait for one fetch)."""
        async with self._lock:
            expired = time.monotonic() >= self._expires - self._margin
            if self._token is None or expired or self._token == refused:
                await self._fetch()
            assert self._token is not None
            return self._token

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        sent = await self.token()
        request.headers["Authorization"] = f"Bearer {sent}"
        response = yield request
        if response.status_code == 401:
            await response.aread()
            request.headers["Authorization"] = f"Bearer {await self.token(refused=sent)}"
            yield request

    def sync_auth_flow(self, request: httpx.Request) -> Any:
        raise RuntimeError("ClientCredentials works with httpx.AsyncClient only")


def credentials_from(settings: Any) -> ClientCredentials | None:
    """From a FHIR service's settings (``closedloop.settings.FhirServiceSettings``): None when
    its authorization is off or ``CLIENT_ID``/``CLIENT_KEY_FILE`` are unset."""
    if not getattr(settings, "auth_enabled", False):
        return None
    if not settings.client_id or settings.client_key_file is None:
        return None
    key, alg = load_private_key(Path(settings.client_key_file))
    issuer = settings.auth_issuer.rstrip("/")
    return ClientCredentials(
        settings.auth_token_url or f"{issuer}/token",
        settings.client_id,
        key,
        alg,
        settings.client_scope,
        audience=f"{issuer}/token",
    )
