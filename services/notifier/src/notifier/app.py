"""The notifier ASGI app: the shared FHIR engine mounted for this service's resource types."""

from __future__ import annotations

from pathlib import Path

from closedloop.service import create_service_app
from fastapi import FastAPI

from notifier.resources import RESOURCE_TYPES
from notifier.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        name="notifier", settings=settings, resource_types=RESOURCE_TYPES, migrations=MIGRATIONS
    )
