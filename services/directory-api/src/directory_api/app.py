"""The directory-api ASGI app: the shared FHIR engine mounted for this service's resource types."""

from __future__ import annotations

from pathlib import Path

from closedloop.fhir.server import FhirServer
from closedloop.hooks import Hooks
from closedloop.service import create_service_app
from fastapi import FastAPI

from directory_api.geo.zipcodes import RESOLVERS
from directory_api.listings import ListingLimits
from directory_api.resources import RESOURCE_TYPES, search_params
from directory_api.search import sites
from directory_api.search.hours import Clock, utc_now
from directory_api.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    """``clock`` answers ``open=now`` (tests pass a fixed one)."""
    settings = settings or Settings()
    hooks = Hooks()
    sites.register(hooks)

    async def startup(_app: FastAPI, server: FhirServer) -> None:
        # a token bound to an Organization writes its own listings only (directory_api.listings)
        ListingLimits(server.db).install(server.hooks)

    return create_service_app(
        name="directory-api",
        settings=settings,
        resource_types=RESOURCE_TYPES,
        migrations=MIGRATIONS,
        hooks=hooks,
        planners=[sites.planner],
        derived_indexes=[sites.rebuild],
        search_params=search_params(settings.default_timezone, clock),
        value_resolvers=RESOLVERS,
        on_startup=[startup],
    )
