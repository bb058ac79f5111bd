"""Imported HSDS data is searchable through the real FHIR API, and export -> import into a
fresh database under another source gives the same services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from closedloop.fhir.server import FhirServer
from closedloop.testing import app_client, database_url_for
from directory_api.app import create_app
from directory_api.hsds.export import export_services
from directory_api.hsds.importer import import_path
from directory_api.settings import Settings

V3_JSON = Path(__file__).parent / "fixtures" / "hsds" / "v3-json" / "services.json"
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"


@pytest.fixture(scope="module")
async def app_and_client(database_url: str) -> AsyncIterator[tuple[FhirServer, httpx.AsyncClient]]:
    app = create_app(Settings(database_url=database_url))
    async with app_client(app) as client:
        server = app.state.fhir
        await import_path(server, V3_JSON, "chi211", "America/Chicago", progress=False)
        yield server, client


async def names(client: httpx.AsyncClient, **params: str) -> list[str]:
    r = await client.get("/fhir/HealthcareService", params={**params, "_count": "100"})
    assert r.status_code == 200, r.text
    return sorted(e["resource"]["name"] for e in r.json().get("entry", []))


async def test_search_the_imported_services(
    app_and_client: tuple[FhirServer, httpx.AsyncClient],
) -> None:
    _, client = app_and_client
    assert await names(client, **{"service-category": f"{SDOHCC}|food-insecurity"}) == [
        "Comedor Comunitario Pilsen",
        "Lincoln Park Food Pantry",
    ]
    assert await names(client, communication="pl") == ["Logan Square Medical Rides"]
    assert await names(client, **{"location.near-postalcode": "60614|3|km"}) == [
        "Lincoln Park Food Pantry",
        "Lincoln Park Overnight Shelter",
    ]
    assert await names(client, serviceProvisionCode="cost") == ["Logan Square Medical Rides"]


def summary(services: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for s in services:
        terms = sorted(
            (a["taxonomy_term"]["taxonomy_detail"]["uri"], a["taxonomy_term"]["code"])
            for a in s.get("attributes", [])
        )
        langs = sorted(lang["code"] for lang in s.get("languages", []))
        positions = sorted(
            (sal["location"].get("latitude"), sal["location"].get("longitude"))
            for sal in s.get("service_at_locations", [])
        )
        areas = sorted(a.get("extent", "") for a in s.get("service_areas", []))
        out.append((s["name"], s["organization"]["name"], terms, langs, positions, areas))
    return sorted(out)


async def test_export_round_trip(
    app_and_client: tuple[FhirServer, httpx.AsyncClient],
    backend: str,
    postgres_admin_url: str,
    tmp_path: Path,
) -> None:
    import json

    server, _ = app_and_client
    first = await export_services(server)
    assert len(first) == 6
    dump = tmp_path / "export.json"
    dump.write_text(json.dumps(first))
    async with database_url_for(backend, postgres_admin_url) as url:
        app = create_app(Settings(database_url=url))
        async with app_client(app):
            fresh = app.state.fhir
            report = await import_path(fresh, dump, "roundtrip", "America/Chicago", progress=False)
            assert report.rejected == []
            assert report.counts["HealthcareService"]["created"] == 6
            second = await export_services(fresh)
    assert summary(second) == summary(first)
    original = json.loads(V3_JSON.read_text())
    assert sorted(s["name"] for s in second) == sorted(s["name"] for s in original)
