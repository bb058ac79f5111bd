"""directory-api boots, migrates its own database and serves its resource types (both databases)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import app_client, assert_every_listed_parameter_works
from directory_api.app import create_app
from directory_api.resources import RESOURCE_TYPES
from directory_api.settings import Settings


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(database_url=database_url))) as c:
        yield c


async def test_ready_and_capabilities(client: httpx.AsyncClient) -> None:
    assert (await client.get("/readyz")).status_code == 200
    cs = (await client.get("/fhir/metadata")).json()
    assert [r["type"] for r in cs["rest"][0]["resource"]] == RESOURCE_TYPES


@pytest.mark.parametrize("resource_type", RESOURCE_TYPES)
async def test_every_type_is_served(client: httpx.AsyncClient, resource_type: str) -> None:
    r = await client.get(f"/fhir/{resource_type}?_count=1")
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "searchset"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIRECTORY_API_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("DIRECTORY_API_PORT", "9999")
    settings = Settings()
    assert settings.database_url == "sqlite:///elsewhere.db" and settings.port == 9999


async def test_every_listed_search_parameter_works(client: httpx.AsyncClient) -> None:
    samples = {"near-postalcode": "60614|10|mi"}
    assert await assert_every_listed_parameter_works(client, samples) > 0
