"""The service-sites planner (``search/sites.py``) answers ``location.near`` (+
``service-category``) exactly as the generic chained search does, on both databases, also after
Locations move or go and services change category.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from closedloop.fhir.server import FhirServer
from closedloop.testing import app_client, load_script
from directory_api.app import create_app
from directory_api.hsds.importer import import_path
from directory_api.search import sites
from directory_api.settings import Settings

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "generate_demo_directory.py"


gen = load_script(SCRIPT)

SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
POINTS = [(41.8781, -87.6298), (41.9229, -87.6483), (41.75, -87.6), (42.0, -87.8), (41.5, -88.5)]
QUERIES: list[dict[str, str]] = []
for lat, lon in POINTS:
    for km in ("1", "5", "15"):
        near = f"{lat}|{lon}|{km}|km"
        QUERIES += [
            {"location.near": near},
            {"location.near": near, "service-category": "food-insecurity"},
            {"location.near": near, "service-category": f"{SDOHCC}|housing-instability"},
            {"location.near": near, "service-category": "food-insecurity,employment-status"},
            {"location.near": near, "service-category": "|food-insecurity"},
            {"location.near": near, "service-category:not": "food-insecurity"},
        ]
QUERIES += [{"location.near-postalcode": "60614|3|mi", "service-category": "food-insecurity"}]


@pytest.fixture(scope="module")
async def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    path = tmp_path_factory.mktemp("demo") / "demo.json"
    path.write_text(json.dumps(gen.generate(11, 200)))
    application = create_app(Settings(database_url=database_url))
    async with app_client(application) as client:
        await import_path(application.state.fhir, path, "demo", "America/Chicago", progress=False)
        yield application, client


async def ids(server: FhirServer, params: dict[str, str], planned: bool) -> list[str]:
    saved = server.search.planners
    server.search.planners = saved if planned else []
    try:
        text = await server.search.search(
            "HealthcareService", [*params.items(), ("_count", "500")], base_url="http://x/fhir"
        )
    finally:
        server.search.planners = saved
    return [e["resource"]["id"] for e in json.loads(text)["entry"]]


async def assert_same(server: FhirServer) -> int:
    matched = 0
    for params in QUERIES:
        expected = await ids(server, params, planned=False)
        assert await ids(server, params, planned=True) == expected, params
        matched += len(expected)
    return matched


async def test_planner_answers_what_the_chain_answers(app: tuple[Any, httpx.AsyncClient]) -> None:
    application, client = app
    server: FhirServer = application.state.fhir
    assert server.search.planners == [sites.planner]
    for params, planned in (
        ({"location.near": "41.9|-87.6|5|km"}, True),
        ({"location.near-postalcode": "60614|3|mi", "service-category": "food-insecurity"}, True),
        ({"location.near:missing": "true"}, False),
        ({"location.address-postalcode": "60614"}, False),
    ):
        q = server.search.parse("HealthcareService", list(params.items()))
        sql = " ".join(str(cond) for cond in server.search._where(q, ""))
        assert ("directory_service_sites" in sql) is planned, params
    assert await assert_same(server) > 100  # the queries do find services

    # a Location moves far away, another is deleted, a service changes category
    r = await client.get("/fhir/Location", params={"near": "41.8781|-87.6298|5|km"})
    locations = [e["resource"] for e in r.json()["entry"]]
    assert len(locations) >= 2
    moved = {**locations[0], "position": {"latitude": 41.5, "longitude": -88.5}}
    put = await client.put(
        f"/fhir/Location/{moved['id']}",
        json=moved,
        headers={"Content-Type": "application/fhir+json"},
    )
    assert put.status_code == 200, put.text
    assert (await client.delete(f"/fhir/Location/{locations[1]['id']}")).status_code in (200, 204)
    r = await client.get(
        "/fhir/HealthcareService",
        params={"location.near": "41.8781|-87.6298|15|km", "service-category": "food-insecurity"},
    )
    service = r.json()["entry"][0]["resource"]
    service["category"] = [{"coding": [{"system": SDOHCC, "code": "housing-instability"}]}]
    put = await client.put(
        f"/fhir/HealthcareService/{service['id']}",
        json=service,
        headers={"Content-Type": "application/fhir+json"},
    )
    assert put.status_code == 200, put.text
    assert await assert_same(server) > 100


async def test_the_migration_fill_matches_the_hooks(app: tuple[Any, httpx.AsyncClient]) -> None:
    application, _ = app
    server: FhirServer = application.state.fhir
    async with server.db.read() as conn:
        kept = (await conn.execute(sites.service_sites.select())).all()
        rebuilt = (await conn.execute(sites.rows_of(None))).all()
    assert kept and sorted(map(tuple, kept), key=repr) == sorted(map(tuple, rebuilt), key=repr)


async def test_reindex_rebuilds_the_sites(
    app: tuple[Any, httpx.AsyncClient], database_url: str
) -> None:
    from closedloop.cli import _reindex

    application, _ = app
    server: FhirServer = application.state.fhir
    async with server.db.write() as conn:
        before = (await conn.execute(sites.service_sites.select())).all()
        await conn.execute(sites.service_sites.delete())
    assert before
    await _reindex(Settings(database_url=database_url), create_app, ["HealthcareService"])
    async with server.db.read() as conn:
        after = (await conn.execute(sites.service_sites.select())).all()
    assert sorted(map(tuple, after), key=repr) == sorted(map(tuple, before), key=repr)
