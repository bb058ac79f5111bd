"""A test service built from the shared engine alone (no service code), on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from closedloop.service import create_service_app
from closedloop.settings import ServiceSettings
from closedloop.testing import app_client

TYPES = [
    "Patient",
    "Observation",
    "Task",
    "ServiceRequest",
    "Organization",
    "Practitioner",
    "Location",
]
FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(database_url=database_url, max_body_bytes=200_000)
    app = create_service_app(
        name="engine-test",
        settings=settings,
        resource_types=TYPES,
        migrations=Path(__file__).parent / "migrations",
    )
    async with app_client(app) as c:
        yield c
