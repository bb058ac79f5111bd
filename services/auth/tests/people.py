"""Test helpers for people signing in (loaded with closedloop.testing.load_script): PKCE pairs,
authorization requests, reading the sign-in form, and the whole code flow as a browser and an
app would run it."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from html.parser import HTMLParser
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwk, jwt

FHIR_BASE = "http://127.0.0.1:8081/fhir"
REDIRECT = "http://127.0.0.1:9999/callback"
PASSWORD = "correct horse battery staple"


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(
    client_id: str, challenge: str, scope: str = "openid fhirUser user/Task.rs", **more: str
) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "aud": FHIR_BASE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **more,
    }


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.fields[a["name"] or ""] = a.get("value") or ""


def form_fields(page: str) -> dict[str, str]:
    parser = _Form()
    parser.feed(page)
    return parser.fields


def page_lang(page: str) -> str:
    parser = _Form()
    parser.feed(page)
    return parser.lang


def redirect_params(r: httpx.Response) -> dict[str, str]:
    assert r.status_code in (302, 303), (r.status_code, r.text[:500])
    location = r.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def sign_in(
    http: httpx.AsyncClient, params: dict[str, str], username: str, password: str = PASSWORD
) -> httpx.Response:
    """GET the form, POST it back with the credentials (the CSRF cookie rides along)."""
    page = await http.get("/authorize", params=params)
    assert page.status_code == 200, page.text[:1000]
    form = {**form_fields(page.text), "username": username, "password": password}
    return await http.post("/authorize", data=form)


class Flow(NamedTuple):
    verifier: str
    params: dict[str, str]
    code: str


async def get_code(http: httpx.AsyncClient, client_id: str, username: str, **more: str) -> Flow:
    verifier, challenge = pkce()
    params = authorize_params(client_id, challenge, **more)
    r = await sign_in(http, params, username)
    got = redirect_params(r)
    assert got["state"] == params["state"] and "error" not in got, got
    return Flow(verifier, params, got["code"])


def code_form(flow: Flow, client_id: str, **more: str) -> dict[str, Any]:
    return {
        "grant_type": "authorization_code",
        "code": flow.code,
        "redirect_uri": flow.params["redirect_uri"],
        "client_id": client_id,
        "code_verifier": flow.verifier,
        **more,
    }


def has_no_code(r: httpx.Response) -> bool:
    return "code=" not in r.headers.get("location", "") and not re.search(r"[?&]code=", r.text)


def verify_id_token(token: str, jwks: dict[str, Any]) -> jwt.Token:
    """As an OpenID Connect client does by default: RS256 against the issuer's JWKS."""
    return jwt.decode(token, jwk.KeySet.import_key_set(jwks), algorithms=["RS256"])
