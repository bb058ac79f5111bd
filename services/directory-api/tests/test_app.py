"""directory-api boots, migrates its own database and serves its resource types (both databases)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from closedloop.testing import app_client, assert_service_basics
from directory_api.app import create_app
from directory_api.resources import RESOURCE_TYPES
from directory_api.settings import Settings


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(database_url=database_url))) as c:
        yield c


async def test_service_basics(client: httpx.AsyncClient) -> None:
    await assert_service_basics(
        client,
        RESOURCE_TYPES,
        {
            "near-postalcode": "60614|10|mi",
            "open": "now",
            "contains": "41.9|-87.6",
            "contains-postalcode": "60614",
            "place-postalcode": "60614|10|mi",
            "_content": "food pantry",
        },
    )


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIRECTORY_API_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("DIRECTORY_API_PORT", "9999")
    settings = Settings()
    assert settings.database_url == "sqlite:///elsewhere.db" and settings.port == 9999
