"""A fake external OpenID Connect provider (the third party), loaded with
closedloop.testing.load_script: a small Starlette app served on a loopback port in the test's
process, with its own signing key. It signs whoever the test says in (``subject``), checks
what a real provider checks of its relying party (client id and redirect URI, the client
secret, PKCE S256, a code used once), and can be told to misbehave (``mode``): sign with
another key, name another audience, echo another nonce, or send an expired id_token."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from closedloop.testing import LoopbackServer
from joserfc import jwk, jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "closed-loop"
CLIENT_SECRET = "idp-client-secret-for-tests"
MODES = ("ok", "bad_signature", "wrong_aud", "wrong_nonce", "expired", "wrong_iss", "alg_none")


class FakeIdP(LoopbackServer):
    path = ""

    def __init__(self, redirect_uri: str) -> None:
        super().__init__()
        self.redirect_uri = redirect_uri
        self.key = jwk.RSAKey.generate_key(2048, private=True, parameters={"kid": "idp-1"})
        self.impostor = jwk.RSAKey.generate_key(2048, private=True, parameters={"kid": "idp-1"})
        self.subject = "idp-user-1"
        self.email: str | None = None
        self.mode = "ok"
        self.codes: dict[str, dict[str, str]] = {}
        self.token_requests: list[dict[str, str]] = []
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    async def discovery(self, _: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def jwks(self, _: Request) -> Response:
        return JSONResponse({"keys": [{**self.key.as_dict(private=False), "use": "sig"}]})

    async def authorize(self, request: Request) -> Response:
        """Signs ``subject`` in at once (the provider's own sign-in page is not ours to test)."""
        q = request.query_params
        expected = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": self.redirect_uri,
            "code_challenge_method": "S256",
        }
        wrong = [k for k, v in expected.items() if q.get(k) != v]
        if wrong or not q.get("state") or not q.get("nonce") or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "wrong": wrong}, status_code=400)
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "challenge": q["code_challenge"],
            "nonce": q["nonce"],
            "redirect_uri": q["redirect_uri"],
        }
        query = urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(f"{self.redirect_uri}?{query}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_requests.append(form)
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {basic}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "why": "PKCE"}, status_code=400)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(grant["nonce"]),
            }
        )

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": "https://impostor.example.org" if self.mode == "wrong_iss" else self.url,
            "sub": self.subject,
            "aud": "someone-else" if self.mode == "wrong_aud" else CLIENT_ID,
            "iat": now - 900 if self.mode == "expired" else now,
            "exp": now - 600 if self.mode == "expired" else now + 300,
            "nonce": "another-sign-in" if self.mode == "wrong_nonce" else nonce,
        }
        if self.email:
            claims |= {"email": self.email, "email_verified": True}
        if self.mode == "alg_none":
            header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"idp-1"}').rstrip(b"=")
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
            return f"{header.decode()}.{body.decode()}."
        key = self.impostor if self.mode == "bad_signature" else self.key
        return jwt.encode({"alg": "RS256", "kid": "idp-1", "typ": "JWT"}, claims, key)
