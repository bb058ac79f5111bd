"""A real-world-messy HSDS 1.x export (fixtures/hsds/v1-messy, see its README): imported by the
``import-hsds`` CLI as a real process into each database, then searched through the FHIR API.
Each repair is checked twice: in the report (per file, with reasons) and by a search that
only finds the record because of the repair."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from closedloop.testing import app_client
from directory_api.app import create_app
from directory_api.conventions import APPROXIMATE_POSITION_EXTENSION, HSDS_REPAIR_TAG_SYSTEM
from directory_api.geo.zipcodes import centroid
from directory_api.settings import Settings

MESSY = Path(__file__).parent / "fixtures" / "hsds" / "v1-messy"


@pytest.fixture(scope="module")
def cli_import(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``directory-api import-hsds`` as a process: its printed report and its JSON report."""
    report = tmp_path_factory.mktemp("messy") / "report.json"
    env = {**os.environ, "DIRECTORY_API_DATABASE_URL": database_url}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "directory_api.cli",
            "import-hsds",
            str(MESSY / "datapackage.json"),
            "--source",
            "messy",
            "--no-progress",
            "--report",
            str(report),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return {"stdout": out.stdout, "json": json.loads(report.read_text())}


@pytest.fixture(scope="module")
async def client(database_url: str, cli_import: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(database_url=database_url))) as c:
        yield c


async def search(client: httpx.AsyncClient, rtype: str, **params: str) -> list[dict[str, Any]]:
    r = await client.get(f"/fhir/{rtype}", params={**params, "_count": "100"})
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


async def names(client: httpx.AsyncClient, **params: str) -> list[str]:
    return sorted(r["name"] for r in await search(client, "HealthcareService", **params))


def repairs(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in report["repaired"] if r["kind"] == kind]


async def test_misplaced_paths_and_plural_legacy_names_are_read(
    cli_import: dict[str, Any], client: httpx.AsyncClient
) -> None:
    report = cli_import["json"]
    assert report["format"] == "hsds-legacy-datapackage"
    moved = {r["reason"] for r in repairs(report, "datapackage-path")}
    assert "resource 'services': services.csv does not exist; read data/services.csv" in moved
    assert "resource 'locations': Locations.CSV does not exist; read data/locations.csv" in moved
    assert len(moved) == 10  # every resource of the datapackage was somewhere else
    files = report["files"]
    assert {name: f["table"] for name, f in files.items() if f["table"]} == {
        "data/Organizations.csv": "organizations",
        "data/services.csv": "services",
        "data/locations.csv": "locations",
        "data/services_at_location.csv": "service_at_location",
        "data/physical_addresses.csv": "physical_address",
        "data/regular_schedules.csv": "regular_schedule",
        "data/services_taxonomy.csv": "service_taxonomy",
        "data/taxonomy.csv": "taxonomy",
        "data/languages.csv": "languages",
        "data/phones.csv": "phones",
    }
    assert "not UTF-8; read as Windows-1252" in files["data/Organizations.csv"]["notes"]
    # the plural files' rows made it into the services: sites, addresses, categories
    hs = await search(client, "HealthcareService", name="Argyle Vietnamese Pantry")
    assert len(hs) == 1 and len(hs[0]["location"]) == 1
    assert hs[0]["category"][0]["coding"][0]["code"] == "housing-instability"  # even row
    site = (await client.get(f"/fhir/{hs[0]['location'][0]['reference']}")).json()
    assert site["address"]["postalCode"] == "60615"
    assert await names(client, **{"service-category": "housing-instability", "name": "Little"}) == [
        "Little Haiti Food Shelf"
    ]
    org = await search(client, "Organization", name="Pilsen Café Comunitario")
    assert len(org) == 1  # the Windows-1252 file decoded


async def test_missing_organization_becomes_a_flagged_stub(
    cli_import: dict[str, Any], client: httpx.AsyncClient
) -> None:
    stubs = repairs(cli_import["json"], "organization-stub")
    assert [(r["file"], r["row"]) for r in stubs] == [
        ("data/services.csv", 38),
        ("data/services.csv", 39),
        ("data/services.csv", 40),
    ]
    assert "made a stub Organization named 'Orphan Rides'" in stubs[0]["reason"]
    orgs = await search(client, "Organization", name="Orphan Meals North")
    assert len(orgs) == 1
    assert orgs[0]["meta"]["tag"][0]["system"] == HSDS_REPAIR_TAG_SYSTEM
    assert orgs[0]["meta"]["tag"][0]["code"] == "organization-stub"
    # both services of the missing organization are imported and provided by the one stub
    provided = await search(client, "HealthcareService", organization=orgs[0]["id"])
    assert sorted(s["name"] for s in provided) == ["Orphan Meals North", "Orphan Meals South"]
    assert await names(client, name="Orphan Rides") == ["Orphan Rides"]


async def test_location_without_coordinates_is_placed_at_its_zip(
    cli_import: dict[str, Any], client: httpx.AsyncClient
) -> None:
    placed = repairs(cli_import["json"], "zip-centroid")
    assert len(placed) == 6  # 5 without coordinates, 1 with 0,0
    assert repairs(cli_import["json"], "zero-coordinates")[0]["row"] == 21
    lat, lon = centroid("60640")  # type: ignore[misc]
    near = {"location.near": f"{lat}|{lon}|1|km"}
    assert await names(client, **near) == ["Messy Service 35", "Uptown Walk-in Pantry"]
    sites = await search(client, "Location", near=f"{lat}|{lon}|1|km")
    assert len(sites) == 1
    assert sites[0]["position"] == {
        "extension": [{"url": APPROXIMATE_POSITION_EXTENSION, "valueCode": "postal-code-centroid"}],
        "latitude": lat,
        "longitude": lon,
    }
    # "0,0" is read as missing, not as a point in the Gulf of Guinea
    assert await names(client, **{"location.near-postalcode": "60639|1|km"}) == [
        "Gage Park Diaper Drop"
    ]
    assert await names(client, **{"location.near": "0|0|100|km"}) == []


async def test_language_names_become_bcp47_codes(
    cli_import: dict[str, Any], client: httpx.AsyncClient
) -> None:
    assert await names(client, communication="es") == [
        "Bilingual Tenant Desk",
        "Uptown Spanish Legal Clinic",
    ]
    assert await names(client, communication="ht") == [
        "Haitian Family Desk",
        "Little Haiti Food Shelf",
    ]
    assert await names(client, communication="vi") == ["Argyle Vietnamese Pantry"]
    assert await names(client, communication="zh") == ["Chinatown Mandarin Help Line"]
    assert await names(client, communication="ase") == ["Deaf Access Center"]
    club = await search(client, "HealthcareService", name="Klingon Culture Club")
    assert club[0]["communication"] == [{"text": "Klingon"}]  # unknown: kept as text
    unknown = repairs(cli_import["json"], "language-unknown")
    assert [(r["file"], r["row"]) for r in unknown] == [("data/languages.csv", 9)]
    assert "'Klingon' is not a known language name" in unknown[0]["reason"]


@pytest.mark.parametrize(
    ("when", "name", "is_open"),
    [
        ("2026-12-07T16:45", "Uptown Spanish Legal Clinic", True),  # Mon 9:00am-5:00pm
        ("2026-12-07T08:45", "Uptown Spanish Legal Clinic", False),
        ("2026-12-07T08:45", "Bilingual Tenant Desk", True),  # Mon 8:30 A.M.-4:30 P.M.
        ("2026-12-07T16:45", "Bilingual Tenant Desk", False),
        ("2026-12-07T12:00", "Uptown Walk-in Pantry", True),  # Monday 10am-2pm
        ("2026-12-08T16:59", "Little Haiti Food Shelf", True),  # Tue 09:00 AM-05:00 PM
        ("2026-12-08T17:00", "Little Haiti Food Shelf", False),
        ("2026-12-09T11:30", "Haitian Family Desk", True),  # Wed 9am-noon
        ("2026-12-09T12:00", "Haitian Family Desk", False),
        ("2026-12-10T16:30", "Argyle Vietnamese Pantry", True),  # Thu 9 a.m.-5 p.m.
        ("2026-12-11T12:00", "Chinatown Mandarin Help Line", True),  # Fri noon-17:00:00
        ("2026-12-11T11:59", "Chinatown Mandarin Help Line", False),
        ("2026-12-12T08:15", "Deaf Access Center", True),  # Sat 0800-1630
        ("2026-12-12T16:30", "Deaf Access Center", False),
    ],
)
async def test_messy_times_are_searchable_with_open(
    client: httpx.AsyncClient, when: str, name: str, is_open: bool
) -> None:
    assert (name in await names(client, open=when)) is is_open


async def test_time_repairs_are_reported(cli_import: dict[str, Any]) -> None:
    report = cli_import["json"]
    read = {r["reason"] for r in repairs(report, "time-format")}
    for text, value in (
        ("9:00am", "09:00:00"),
        ("09:00 AM", "09:00:00"),
        ("9am", "09:00:00"),
        ("9 a.m.", "09:00:00"),
        ("noon", "12:00:00"),
        ("4:30 P.M.", "16:30:00"),
        ("0800", "08:00:00"),
    ):
        assert any(f"{text!r} read as {value}" in r for r in read), text
    unreadable = repairs(report, "time-unreadable")
    assert [(r["file"], r["row"]) for r in unreadable] == [("data/regular_schedules.csv", 9)]


def test_report_per_file_and_the_import_rate(cli_import: dict[str, Any]) -> None:
    report, text = cli_import["json"], cli_import["stdout"]
    files = report["files"]
    assert {k: files["data/services.csv"][k] for k in ("rows", "imported", "repaired")} == {
        "rows": 40,
        "imported": 39,
        "repaired": 3,
    }
    assert files["data/services.csv"]["rejected"] == 1
    assert files["data/services.csv"]["rejections"] == {"service has no name": 1}
    assert files["data/services.csv"]["repairs"] == {"organization-stub": 3}
    assert files["data/locations.csv"]["repairs"] == {"zero-coordinates": 1, "zip-centroid": 6}
    assert files["data/locations.csv"]["imported"] == 20
    assert files["data/Organizations.csv"]["unused"] == 1  # an organization with no services
    assert files["data/languages.csv"]["repairs"] == {"language-name": 39, "language-unknown": 1}
    assert report["services_read"] == 40
    print(
        f"\nmessy HSDS 1.x fixture: {report['services_imported_percent']}% of services imported,"
        f" {report['services_with_location_percent']}% with a location"
    )
    assert report["services_imported_percent"] >= 97.0
    assert report["services_with_location_percent"] >= 97.0
    assert "39 of 40 services imported (97.5%), 39 with a location (97.5%)" in text
    assert "data/services.csv" in text and "repaired 6 x zip-centroid" in text


async def test_export_keeps_what_was_repaired(
    database_url: str, cli_import: dict[str, Any]
) -> None:
    from directory_api.hsds.export import export_services

    app = create_app(Settings(database_url=database_url))
    async with app_client(app):
        services = {s["name"]: s for s in await export_services(app.state.fhir)}
    assert services["Klingon Culture Club"]["languages"] == [{"name": "Klingon"}]
    assert services["Argyle Vietnamese Pantry"]["languages"] == [
        {"code": "vi", "name": "Vietnamese"}
    ]
    assert services["Orphan Rides"]["organization"]["name"] == "Orphan Rides"
