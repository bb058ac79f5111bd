"""Authorization on referral-api: the scope table over every type and interaction it serves
(from its FhirConfig), on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from closedloop.testing import TokenIssuer, app_client, assert_scopes_enforced, bearer
from fastapi import FastAPI
from referral_api.app import create_app
from referral_api.settings import Settings

AUD = "http://testserver/fhir"


@pytest.fixture(scope="module")
async def app(database_url: str, token_issuer: TokenIssuer) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=database_url,
        event_sink_url="",
        directory_url="http://127.0.0.1:9/fhir",  # never asked: no body names a target
        **token_issuer.settings(AUD),
    )
    yield create_app(settings)


async def test_every_interaction_of_every_type(app: FastAPI, token_issuer: TokenIssuer) -> None:
    async with app_client(app) as client:
        config = app.state.fhir.config
        calls = await assert_scopes_enforced(
            client, token_issuer, AUD, config.resource_types, sorted(app.state.fhir.operations)
        )
    assert calls > 1000


async def test_on_by_default(database_url: str) -> None:
    """Authorization is on unless REFERRAL_API_AUTH_ENABLED=false: no token, no data; the
    admin token app_client sends by default passes."""
    assert Settings().auth_enabled is True
    app = create_app(Settings(database_url=database_url, event_sink_url=""))
    async with app_client(app, anonymous=True) as c:
        assert (await c.get("/fhir/Task")).status_code == 401
        assert "security" in (await c.get("/fhir/metadata")).json()["rest"][0]
    async with app_client(app) as c:
        assert (await c.get("/fhir/Task")).status_code == 200


async def test_off_when_disabled(database_url: str) -> None:
    settings = Settings(database_url=database_url, event_sink_url="", auth_enabled=False)
    async with app_client(create_app(settings), anonymous=True) as c:
        assert (await c.get("/fhir/Task")).status_code == 200
        assert "security" not in (await c.get("/fhir/metadata")).json()["rest"][0]
        assert (await c.get("/fhir/.well-known/smart-configuration")).status_code == 404


async def test_a_token_lets_a_referral_through(app: FastAPI, token_issuer: TokenIssuer) -> None:
    token = token_issuer.token("system/Patient.cruds system/Task.rs", AUD, role="admin")
    async with app_client(app) as client:
        r = await client.post(
            "/fhir/Patient",
            json={"resourceType": "Patient", "name": [{"family": "Rivera"}]},
            headers={"Content-Type": "application/fhir+json", **bearer(token)},
        )
        assert r.status_code == 201, r.text
        assert (
            await client.get(
                r.headers["location"].split("/_history")[0].removeprefix("http://testserver"),
                headers=bearer(token),
            )
        ).status_code == 200
