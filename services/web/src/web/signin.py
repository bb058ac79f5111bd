"""People sign in through the auth service: authorization code + PKCE (S256), the code
exchanged by this app's back end with a ``private_key_jwt`` assertion (the app is a
confidential client, its key the one of its service token).

The login in flight (state, PKCE verifier, where to go next) waits in a sealed cookie for ten
minutes; the sign-in (access and refresh tokens, the person's role and Organization from the
token) in another, for ``WEB_SESSION_MAX_AGE``. An access token about to expire is refreshed
(``online_access``) on the next page; when that fails, the person signs in again."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
from closedloop.http.credentials import ASSERTION_TYPE, load_private_key
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from joserfc import jwt
from starlette.responses import Response

from web.api import ApiError, Bearer
from web.i18n import choose
from web.pages import Site, site_of
from web.security import csrf
from web.security.cookies import LOGIN, SESSION

router = APIRouter()
LOGIN_MAX_AGE = 600
REFRESH_MARGIN = 30  # seconds before expiry an access token is renewed


def _safe_next(value: str | None) -> str:
    """Only a path of this app (never ``//host`` or a URL): no open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/inbox"


def _claims(access_token: str) -> dict[str, Any]:
    """The access token's claims, read without checking: it came straight from the token
    endpoint over the back channel (the FHIR services check it on every call)."""
    try:
        payload = access_token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
    except (IndexError, ValueError):
        return {}


def _assertion(site: Site, audience: str) -> dict[str, str]:
    """The client authentication of a token request (RFC 7523 ``private_key_jwt``)."""
    settings = site.settings
    if settings.client_key_file is None:
        return {"client_id": settings.client_id}  # registered public: PKCE alone
    key, alg = load_private_key(settings.client_key_file)
    now = int(time.time())
    claims = {
        "iss": settings.client_id,
        "sub": settings.client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    }
    header = {"alg": alg, "typ": "JWT"}
    if getattr(key, "kid", None):
        header["kid"] = key.kid
    return {
        "client_id": settings.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": jwt.encode(header, claims, key, algorithms=[alg]),
    }


async def _token(site: Site, form: dict[str, str]) -> dict[str, Any]:
    token_url = f"{site.settings.auth_url.rstrip('/')}/token"
    try:
        r = await site.api.http.post(
            token_url,
            # auth names its token endpoint by its issuer: the public address
            data={**form, **_assertion(site, f"{site.settings.browser_auth_url}/token")},
            headers={"Accept": "application/json"},
        )
    except httpx.HTTPError:
        raise ApiError("api_unavailable", 503) from None
    if r.status_code != 200:
        raise ApiError("login_failed", 401)
    return dict(r.json())


def _session(tokens: dict[str, Any]) -> dict[str, Any]:
    claims = _claims(str(tokens.get("access_token") or ""))
    return {
        "access_token": tokens.get("access_token"),
        "refresh_token": tokens.get("refresh_token"),
        "expires": time.time() + float(tokens.get("expires_in") or 300),
        "role": claims.get("role"),
        "organization": claims.get("organization"),
        "fhir_user": claims.get("fhirUser"),
        "sub": claims.get("sub"),
        "patient": tokens.get("patient") or claims.get("patient"),
    }


def start_login(
    request: Request,
    *,
    next_path: str,
    authorize_url: str | None = None,
    scope: str | None = None,
    aud: str | None = None,
    extra: dict[str, str] | None = None,
) -> Response:
    """Send the browser to the authorization endpoint, the login in flight sealed in a cookie
    (what the callback checks the answer against)."""
    site = site_of(request)
    settings = site.settings
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    state = secrets.token_urlsafe(24)
    params = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": f"{settings.public_url.rstrip('/')}/auth/callback",
        "scope": scope or settings.user_scope,
        "state": state,
        "aud": aud or settings.audience,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "ui_locales": choose(request),
        **(extra or {}),
    }
    endpoint = authorize_url or f"{settings.browser_auth_url}/authorize"
    response = RedirectResponse(f"{endpoint}?{urlencode(params)}", status_code=303)
    waiting = {"state": state, "verifier": verifier, "next": _safe_next(next_path)}
    site.sealer.write(response, LOGIN, waiting, LOGIN_MAX_AGE, samesite="lax")
    return response


@router.get("/auth/login")
async def login(request: Request) -> Response:
    return start_login(request, next_path=request.query_params.get("next") or "/inbox")


@router.get("/auth/callback")
async def callback(request: Request) -> Response:
    site = site_of(request)
    waiting = site.sealer.read(request, LOGIN, LOGIN_MAX_AGE)
    q = request.query_params
    state = q.get("state") or ""
    if not waiting or not state or not secrets.compare_digest(state, str(waiting.get("state"))):
        raise ApiError("login_failed", 400)
    if q.get("error") or not q.get("code"):
        raise ApiError("login_failed", 400)
    tokens = await _token(
        site,
        {
            "grant_type": "authorization_code",
            "code": str(q.get("code")),
            "redirect_uri": f"{site.settings.public_url.rstrip('/')}/auth/callback",
            "code_verifier": str(waiting.get("verifier")),
        },
    )
    response = RedirectResponse(_safe_next(str(waiting.get("next"))), status_code=303)
    site.sealer.write(response, SESSION, _session(tokens), site.settings.session_max_age)
    site.sealer.clear(response, LOGIN)
    return response


@router.post("/auth/logout")
async def logout(request: Request) -> Response:
    site = site_of(request)
    await csrf.checked_form(request, site.secret)
    response = RedirectResponse("/", status_code=303)
    site.sealer.clear(response, SESSION)
    return response


async def person(request: Request) -> tuple[dict[str, Any], Bearer]:
    """The signed-in person and their token (refreshed when about to expire; the new
    sign-in cookie is written by ``remember``). ApiError 401 when nobody is signed in."""
    site = site_of(request)
    session = site.session(request)
    if not session or not session.get("access_token"):
        raise ApiError("signed_out", 401)
    if float(session.get("expires") or 0) - REFRESH_MARGIN < time.time():
        if not session.get("refresh_token"):
            raise ApiError("signed_out", 401)
        try:
            tokens = await _token(
                site,
                {"grant_type": "refresh_token", "refresh_token": str(session["refresh_token"])},
            )
        except ApiError:
            raise ApiError("signed_out", 401) from None
        session = _session(tokens)
        request.state.new_session = session
    return session, Bearer(str(session["access_token"]))


def remember(request: Request, response: Response) -> Response:
    """Write the refreshed sign-in, if this request refreshed it."""
    session = getattr(request.state, "new_session", None)
    if session:
        site = site_of(request)
        site.sealer.write(response, SESSION, session, site.settings.session_max_age)
    return response
