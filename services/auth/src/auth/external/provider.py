"""The trusted external OpenID Connect issuer, as a relying party sees it.

Discovery (``{issuer}/.well-known/openid-configuration``) is fetched when first needed and
kept for ``DISCOVERY_TTL``; its ``issuer`` must be the configured one exactly (OpenID Connect
Discovery 1.0 section 4.3). The issuer's keys come from its ``jwks_uri`` through
``closedloop.auth.jwks.JwksCache`` (cached, refetched for an unknown ``kid``, public RSA/EC
signature keys only).

An id_token is accepted only when: its ``alg`` is an asymmetric one the issuer advertises
(never ``none``, never HS*), its ``kid`` names a key of the issuer's and the signature verifies
with it, ``iss`` is the issuer, ``aud`` contains our client id (and ``azp`` is our client id
when there are several audiences), ``exp`` is in the future, ``iat`` not in the future, and
``nonce`` is the one this sign-in sent (each within ``LEEWAY`` seconds of clock skew). A
failed check raises ``ExternalRefused`` with a reason code for the audit trail.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from closedloop.auth.jwks import JwksCache, KeysUnavailable
from joserfc import jws, jwt
from joserfc.errors import JoseError

from auth.settings import Settings

ID_TOKEN_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
DISCOVERY_TTL = 3600.0
LEEWAY = 60  # seconds of clock skew between us and the issuer
MAX_ID_TOKEN = 16 * 1024


class ExternalRefused(Exception):
    """The external sign-in cannot be trusted; ``reason`` is an audit reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class ExternalIssuer:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        assert settings.external_oidc_issuer and settings.external_oidc_client_id
        self.issuer = settings.external_oidc_issuer
        self.client_id = settings.external_oidc_client_id
        secret = settings.external_oidc_client_secret
        self.client_secret = secret.get_secret_value() if secret else None
        self.scopes = settings.external_oidc_scopes
        self.timeout = settings.external_oidc_timeout
        self.callback_url = f"{settings.issuer}/authorize/external/callback"
        self._transport = transport
        self._config: dict[str, Any] | None = None
        self._iss = self.issuer
        self._config_at = float("-inf")
        self._keys: JwksCache | None = None

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.timeout, transport=self._transport, follow_redirects=False
        )

    async def config(self) -> dict[str, Any]:
        """The issuer's discovery document (raises ``ExternalRefused`` when unusable)."""
        if self._config is not None and time.monotonic() - self._config_at < DISCOVERY_TTL:
            return self._config
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            async with self._client() as client:
                r = await client.get(url, headers={"Accept": "application/json"})
            r.raise_for_status()
            found = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ExternalRefused("external_refused", f"discovery: {type(exc).__name__}") from None
        needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(found, dict) or not all(isinstance(found.get(k), str) for k in needed):
            raise ExternalRefused("external_refused", "discovery: not an OpenID configuration")
        if found["issuer"].rstrip("/") != self.issuer:
            raise ExternalRefused("external_refused", "discovery names another issuer")
        self._iss = found["issuer"]  # exactly as the issuer spells it, trailing slash and all
        if self._keys is None or self._keys.url != found["jwks_uri"]:
            self._keys = JwksCache(
                found["jwks_uri"], timeout=self.timeout, transport=self._transport
            )
        self._config, self._config_at = found, time.monotonic()
        return found

    async def authorization_url(self, state: str, nonce: str, code_challenge: str) -> str:
        config = await self.config()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.callback_url,
            "scope": self.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        endpoint = config["authorization_endpoint"]
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

    async def exchange(self, code: str, code_verifier: str) -> str:
        """The authorization code for the issuer's id_token (client_secret_basic, or
        client_secret_post when that is all the issuer takes, or none for a public client)."""
        config = await self.config()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.callback_url,
            "code_verifier": code_verifier,
        }
        auth: tuple[str, str] | None = None
        methods = config.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if self.client_secret is None:
            form["client_id"] = self.client_id
        elif "client_secret_basic" in methods or "client_secret_post" not in methods:
            auth = (self.client_id, self.client_secret)
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        try:
            async with self._client() as client:
                r = await client.post(
                    config["token_endpoint"],
                    data=form,
                    auth=auth or httpx.USE_CLIENT_DEFAULT,
                    headers={"Accept": "application/json"},
                )
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ExternalRefused("external_refused", f"token: {type(exc).__name__}") from None
        if r.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise ExternalRefused("external_refused", f"token: {r.status_code} {error or ''}")
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise ExternalRefused("external_refused", "the token response has no id_token")
        return id_token

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The id_token's claims, once every check holds."""
        config = await self.config()
        assert self._keys is not None
        if len(id_token) > MAX_ID_TOKEN:
            raise ExternalRefused("bad_signature", "the id_token is too long")
        try:
            header = jws.extract_compact(id_token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError):
            raise ExternalRefused("bad_signature", "the id_token is not a signed JWT") from None
        advertised = config.get("id_token_signing_alg_values_supported") or ["RS256"]
        alg = header.get("alg")
        if alg not in ID_TOKEN_ALGS or alg not in advertised:
            raise ExternalRefused("bad_alg", f"the id_token's alg {alg!r} is not accepted")
        kid = header.get("kid")
        try:
            key = await self._keys.key(kid) if isinstance(kid, str) and kid else None
        except KeysUnavailable:
            raise ExternalRefused("external_refused", "the issuer's keys are unavailable") from None
        if key is None:
            raise ExternalRefused("bad_signature", "the id_token names no key of the issuer's")
        try:
            claims: dict[str, Any] = jwt.decode(id_token, key, algorithms=[alg]).claims
        except (JoseError, ValueError, TypeError, json.JSONDecodeError):
            raise ExternalRefused(
                "bad_signature", "the id_token's signature does not verify"
            ) from None
        self.check_claims(claims, nonce)
        return claims

    def check_claims(self, claims: dict[str, Any], nonce: str) -> None:
        now = time.time()
        if claims.get("iss") != self._iss:
            raise ExternalRefused("wrong_iss", "the id_token is from another issuer")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.client_id not in audiences:
            raise ExternalRefused("wrong_aud", "the id_token is not for this server (aud)")
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise ExternalRefused("wrong_aud", "the id_token's azp is not this server")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or isinstance(exp, bool) or exp + LEEWAY <= now:
            raise ExternalRefused("expired", "the id_token has expired")
        if iat is not None and (not isinstance(iat, int | float) or iat - LEEWAY > now):
            raise ExternalRefused("expired", "the id_token is issued in the future (iat)")
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise ExternalRefused("bad_nonce", "the id_token's nonce is not this sign-in's")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise ExternalRefused("bad_claims", "the id_token has no subject")
