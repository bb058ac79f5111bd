"""Client keys from a JWKS URL served by a real loopback server: fetched, cached, refetched once
when an assertion names a kid the cached set lacks (a client rotating its key)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth.app import create_app
from auth.clients import add_client
from auth.settings import Settings
from closedloop.settings import ServiceSettings
from closedloop.testing import app_client, free_port, load_script, serving
from joserfc import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

A = load_script(Path(__file__).parent / "assertions.py")


@dataclass
class JwksHost:
    """What the client publishes, and how often it was asked."""

    jwks: dict[str, Any] = field(default_factory=dict)
    fetches: int = 0


@dataclass
class Env:
    http: httpx.AsyncClient
    host: JwksHost
    url: str


@pytest.fixture(scope="module")
async def env(database_url: str) -> AsyncIterator[Env]:
    host = JwksHost()

    async def jwks(_: Request) -> JSONResponse:
        host.fetches += 1
        return JSONResponse(host.jwks)

    async def broken(_: Request) -> JSONResponse:
        return JSONResponse({"error": "down"}, status_code=500)

    publisher = Starlette(routes=[Route("/jwks.json", jwks), Route("/broken", broken)])
    async with serving(publisher, ServiceSettings(host="127.0.0.1", port=free_port())) as base:
        settings = Settings(database_url=database_url, issuer=A.ISSUER, jwks_cache_seconds=300)
        app = create_app(settings)
        async with app_client(app, base_url=A.ISSUER) as http:
            await add_client(
                app.state.db,
                client_id="remote",
                name="Remote",
                scopes="system/Task.rs",
                jwks_url=f"{base}/jwks.json",
            )
            await add_client(
                app.state.db,
                client_id="broken",
                name="Broken",
                scopes="system/Task.rs",
                jwks_url=f"{base}/broken",
            )
            yield Env(http, host, f"{base}/jwks.json")


async def test_keys_come_from_the_url_cached_and_refetched_for_a_new_kid(env: Env) -> None:
    first = A.client_key("ES384", kid="first")
    env.host.jwks = A.public_jwks(first)
    for _ in range(2):
        r = await env.http.post("/token", data=A.token_form(A.assertion(first, "remote")))
        assert r.status_code == 200, r.text
    assert env.host.fetches == 1  # the second request used the cache

    second = A.client_key("RS384", kid="second")  # the client rotates its key
    env.host.jwks = A.public_jwks(second)
    r = await env.http.post("/token", data=A.token_form(A.assertion(second, "remote")))
    assert r.status_code == 200, r.text
    assert env.host.fetches == 2

    stranger = A.client_key("ES384", kid="nowhere")
    r = await env.http.post("/token", data=A.token_form(A.assertion(stranger, "remote")))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert env.host.fetches == 3  # one refetch for the unknown kid, no more


async def test_a_foreign_jku_and_an_unreachable_jwks_are_refused(env: Env) -> None:
    key = A.client_key("ES384", kid="k")
    env.host.jwks = A.public_jwks(key)
    now = int(time.time())
    foreign = jwt.encode(
        {"alg": "ES384", "kid": "k", "jku": "http://127.0.0.1:9/evil.json"},
        {"iss": "remote", "sub": "remote", "aud": A.TOKEN_URL, "exp": now + 60, "jti": "j1"},
        key,
        algorithms=["ES384"],
    )
    r = await env.http.post("/token", data=A.token_form(foreign))
    assert r.status_code == 401 and "jku" in r.json()["error_description"]

    r = await env.http.post("/token", data=A.token_form(A.assertion(key, "broken")))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert "500" in r.json()["error_description"]
