"""``POST /launch``: an EHR registers the context it launches an app in and gets the opaque
``launch`` id to hand the app (SMART EHR launch). The caller is a backend client with the
``system/launch`` scope, proving it with an access token from this server."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from closedloop.db import Database
from joserfc import jwk, jwt
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import JSONResponse

from auth import grants
from auth.clients import get_client
from auth.keys import published_keys
from auth.scopes import LAUNCH_API
from auth.settings import Settings

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # a FHIR logical id
CONTEXT_KEYS = ("patient", "encounter")
MAX_BODY = 8 * 1024


def _error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def check_context(body: Any) -> dict[str, str]:
    if not isinstance(body, dict) or not body or set(body) - set(CONTEXT_KEYS):
        raise ValueError(f"send a JSON object with {' and/or '.join(CONTEXT_KEYS)}")
    for key, value in body.items():
        if not isinstance(value, str) or not _ID.match(value):
            raise ValueError(f"{key} is a FHIR id (1-64 letters, digits, - or .)")
    return dict(body)


async def register_launch(request: Request, settings: Settings, db: Database) -> JSONResponse:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _error(401, "invalid_token", "send an access token from this server")
    keys = jwk.KeySet.import_key_set({"keys": await published_keys(db, settings.token_lifetime)})
    try:
        claims = jwt.decode(token.strip(), keys, algorithms=["RS384", "ES384"]).claims
    except (JoseError, ValueError):
        return _error(401, "invalid_token", "the token is not signed by this server")
    if claims.get("iss") != settings.issuer or not isinstance(claims.get("exp"), int | float):
        return _error(401, "invalid_token", "the token is not from this server")
    if claims["exp"] < time.time():
        return _error(401, "invalid_token", "the token has expired")
    client_id = claims.get("client_id")
    client = await get_client(db, client_id) if isinstance(client_id, str) else None
    if client is None or client.disabled or claims.get("sub") != client_id:
        return _error(401, "invalid_token", "the token is not a backend client's")
    if LAUNCH_API not in str(claims.get("scope", "")).split():
        return _error(403, "insufficient_scope", f"the token needs {LAUNCH_API}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return _error(400, "invalid_request", "the body is too large")
    try:
        context = check_context(json.loads(body))
    except json.JSONDecodeError:
        return _error(400, "invalid_request", "the body is not JSON")
    except ValueError as exc:
        return _error(400, "invalid_request", str(exc))
    launch = await grants.create_launch(db, context, client.client_id, settings.launch_lifetime)
    return JSONResponse(
        {"launch": launch, "expires_in": settings.launch_lifetime},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )
