"""import-hsds: each format's counts, the mapped FHIR fields, idempotent re-import, broken
rows reported, duplicates across sources, and the CLI as a real process."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from closedloop.fhir.server import FhirServer
from closedloop.testing import app_client
from directory_api.app import create_app
from directory_api.conventions import (
    AGE_RANGE_EXTENSION,
    BOUNDARY_EXTENSION,
    CAPACITY_EXTENSION,
    DELIVERY_METHOD_EXTENSION,
    SDOHCC_CATEGORY_SYSTEM,
    TIMEZONE_EXTENSION,
    VERIFIED_EXTENSION,
)
from directory_api.hsds.importer import import_path
from directory_api.hsds.report import Report
from directory_api.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "hsds"
V3_JSON = FIXTURES / "v3-json" / "services.json"
V3_TABULAR = FIXTURES / "v3-tabular"
V1 = FIXTURES / "v1-datapackage"


async def run_import(server: FhirServer, path: Path, source: str) -> Report:
    return await import_path(server, path, source, "America/Chicago", progress=False)


def counts(report: Report, rtype: str) -> dict[str, int]:
    return report.counts.get(rtype, {})


async def stored(server: FhirServer, rtype: str, source: str) -> dict[str, dict[str, Any]]:
    """The current resources of a type from one source, keyed by their source id."""
    import orjson
    from closedloop.fhir.storage.tables import resources
    from sqlalchemy import select

    out = {}
    async with server.db.read() as conn:
        rows = await conn.execute(
            select(resources.c.content).where(
                resources.c.resource_type == rtype, resources.c.content.is_not(None)
            )
        )
        for (content,) in rows:
            res = orjson.loads(content)
            if res["meta"].get("source") == f"urn:closedloop:hsds:{source}":
                out[res["identifier"][0]["value"]] = res
    return out


@pytest.fixture(scope="module")
async def server(database_url: str) -> AsyncIterator[FhirServer]:
    app = create_app(Settings(database_url=database_url))
    async with app_client(app):
        yield app.state.fhir


def ext(res: dict[str, Any], url: str) -> dict[str, Any]:
    return next(e for e in res["extension"] if e["url"] == url)


async def test_v3_json_import_maps_the_fields(server: FhirServer) -> None:
    report = await run_import(server, V3_JSON, "chi211")
    assert report.format == "hsds-3-json"
    assert counts(report, "HealthcareService") == {
        "created": 6,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }
    assert counts(report, "Location")["created"] == 6  # 5 sites + the Illinois service area
    assert counts(report, "Organization")["created"] == 4
    assert report.rejected == []
    hs = await stored(server, "HealthcareService", "chi211")
    pantry = hs["svc-lp-pantry"]
    assert pantry["availableTime"] == [
        {
            "daysOfWeek": ["mon", "tue", "wed", "thu", "fri"],
            "availableStartTime": "09:00:00",
            "availableEndTime": "17:00:00",
        }
    ]
    assert pantry["availabilityExceptions"] == "Closed weekends"
    assert [c["coding"][0]["code"] for c in pantry["communication"]] == ["en", "es"]
    assert pantry["category"][0]["coding"][0]["system"] == SDOHCC_CATEGORY_SYSTEM
    assert pantry["category"][0]["coding"][0]["code"] == "food-insecurity"
    assert ext(pantry, AGE_RANGE_EXTENSION)["valueRange"] == {
        "low": {"value": 18, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}
    }
    assert ext(pantry, TIMEZONE_EXTENSION)["valueCode"] == "America/Chicago"
    assert ext(pantry, VERIFIED_EXTENSION)["valueDate"] == "2026-10-01"
    assert ext(pantry, CAPACITY_EXTENSION)["extension"][0] == {
        "url": "capacityStatus",
        "valueCode": "capacity",
    }
    assert pantry["serviceProvisionCode"][0]["coding"][0]["code"] == "free"
    assert pantry["eligibility"] == [{"comment": "Adults 18+ living in 60614"}]
    assert pantry["meta"]["source"] == "urn:closedloop:hsds:chi211"
    assert pantry["identifier"] == [
        {"system": "urn:closedloop:hsds:chi211:service", "value": "svc-lp-pantry"}
    ]
    shelter = hs["svc-lp-shelter"]
    assert shelter["availableTime"][0]["allDay"] is True
    assert ext(shelter, CAPACITY_EXTENSION)["extension"][0]["valueCode"] == "no-capacity"
    assert ext(shelter, AGE_RANGE_EXTENSION)["valueRange"]["high"]["value"] == 64
    comedor = hs["svc-pilsen-comedor"]
    assert comedor["type"][0]["coding"][0] == {
        "system": "https://example.org/taxonomy/airs-chicago211",
        "code": "BD-5000.8300",
        "display": "Soup Kitchens",
    }
    assert [c["coding"][0]["code"] for c in comedor["communication"]] == ["es", "en"]
    assert comedor["availableTime"][0]["daysOfWeek"] == ["sat", "sun"]
    rides = hs["svc-logan-rides"]
    assert rides["serviceProvisionCode"][0]["coding"][0]["code"] == "cost"
    line = hs["svc-il-ride-line"]
    assert ext(line, DELIVERY_METHOD_EXTENSION)["extension"] == [
        {"url": "type", "valueCode": "virtual"}
    ]
    assert "location" not in line
    locations = await stored(server, "Location", "chi211")
    area = locations["area-il"]
    assert line["coverageArea"][0]["reference"] == f"Location/{area['id']}"
    boundary = ext(area, BOUNDARY_EXTENSION)["valueAttachment"]
    assert boundary["contentType"] == "application/geo+json"
    assert json.loads(base64.b64decode(boundary["data"]))["type"] == "Polygon"
    site = locations["loc-1"]
    assert site["position"] == {"latitude": 41.922, "longitude": -87.651}
    assert site["address"]["postalCode"] == "60614"
    assert ext(site, TIMEZONE_EXTENSION)["valueCode"] == "America/Chicago"
    assert site["availabilityExceptions"] == "Building hours vary on holidays"
    orgs = await stored(server, "Organization", "chi211")
    assert pantry["providedBy"]["reference"] == f"Organization/{orgs['org-lpcm']['id']}"


async def test_reimport_is_unchanged_and_not_reversioned(server: FhirServer) -> None:
    report = await run_import(server, V3_JSON, "chi211")
    for rtype in ("HealthcareService", "Location", "Organization"):
        assert counts(report, rtype)["created"] == 0
        assert counts(report, rtype)["updated"] == 0
    assert counts(report, "HealthcareService")["unchanged"] == 6
    hs = await stored(server, "HealthcareService", "chi211")
    assert {r["meta"]["versionId"] for r in hs.values()} == {"1"}


async def test_a_changed_copy_updates_in_place(server: FhirServer, tmp_path: Path) -> None:
    data = json.loads(V3_JSON.read_text())
    data[0]["name"] = "Lincoln Park Food Pantry (renamed)"
    copy = tmp_path / "services.json"
    copy.write_text(json.dumps(data))
    report = await run_import(server, copy, "chi211")
    assert counts(report, "HealthcareService") == {
        "created": 0,
        "updated": 1,
        "unchanged": 5,
        "rejected": 0,
    }
    hs = await stored(server, "HealthcareService", "chi211")
    assert len(hs) == 6
    assert hs["svc-lp-pantry"]["meta"]["versionId"] == "2"
    back = await run_import(server, V3_JSON, "chi211")  # restore for the tests after
    assert counts(back, "HealthcareService")["updated"] == 1


async def test_tabular_reports_broken_rows_and_imports_the_rest(server: FhirServer) -> None:
    report = await run_import(server, V3_TABULAR, "tab")
    assert report.format == "hsds-3-tabular"
    assert counts(report, "HealthcareService") == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
    }
    assert counts(report, "Location") == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 1}
    rejected = {(r.file, r.row, r.entity) for r in report.rejected}
    assert rejected == {
        ("services.csv", 4, "HealthcareService"),
        ("locations.csv", 4, "Location"),
    }
    reasons = " ".join(r.reason for r in report.rejected)
    assert "no name" in reasons and "out of range" in reasons
    hs = await stored(server, "HealthcareService", "tab")
    assert sorted(hs) == ["t-svc-1", "t-svc-2", "t-svc-4"]
    assert len(hs["t-svc-4"]["location"]) == 1  # the good site stays, the broken one is dropped
    assert [c["coding"][0]["code"] for c in hs["t-svc-2"]["communication"]] == ["es"]
    assert ext(hs["t-svc-1"], CAPACITY_EXTENSION)["extension"][0]["valueCode"] == "no-capacity"
    assert ext(hs["t-svc-4"], AGE_RANGE_EXTENSION)["valueRange"]["high"]["value"] == 17
    # hours and phone given for the service at its location (service_at_location_id)
    assert hs["t-svc-4"]["availableTime"] == [
        {
            "daysOfWeek": ["mon", "tue", "wed", "thu", "fri"],
            "availableStartTime": "15:00:00",
            "availableEndTime": "18:00:00",
        }
    ]
    assert [t["value"] for t in hs["t-svc-4"]["telecom"]] == ["773-555-0204"]
    office = (await stored(server, "Location", "tab"))["t-loc-2"]
    assert office["hoursOfOperation"] == [
        {
            "daysOfWeek": ["mon", "tue", "wed", "thu", "fri"],
            "openingTime": "08:00:00",
            "closingTime": "18:00:00",
        }
    ]


async def test_v1_datapackage_undoes_the_legacy_renames(server: FhirServer) -> None:
    report = await run_import(server, V1, "v1")
    assert report.format == "hsds-legacy-datapackage"
    assert counts(report, "HealthcareService")["created"] == 2
    assert counts(report, "Location")["created"] == 1
    assert counts(report, "Organization")["created"] == 1
    assert report.rejected == []
    hs = await stored(server, "HealthcareService", "v1")
    lunch = hs["v1-svc-1"]
    assert [t["daysOfWeek"] for t in lunch["availableTime"]] == [["mon"], ["tue"], ["wed"]]
    assert lunch["availabilityExceptions"] == "Closed 2026-12-23 to 2026-12-25"
    assert ext(lunch, AGE_RANGE_EXTENSION)["valueRange"]["low"]["value"] == 60
    assert [c["coding"][0]["code"] for c in lunch["communication"]] == ["en", "pl"]
    assert lunch["category"][0]["coding"][0]["code"] == "food-insecurity"
    assert lunch["serviceProvisionCode"][0]["coding"][0]["code"] == "free"
    assert hs["v1-svc-2"]["availableTime"][0]["daysOfWeek"] == ["sat"]
    loc = (await stored(server, "Location", "v1"))["v1-loc-1"]
    assert loc["address"]["postalCode"] == "60615"
    org = (await stored(server, "Organization", "v1"))["v1-org-1"]
    assert {"system": "urn:us:gov:irs", "value": "36-1234567"} in org["identifier"]


async def test_duplicates_across_sources_are_listed(server: FhirServer) -> None:
    report = await run_import(server, V3_JSON, "other211")
    names = {(d["reason"], m["name"], m["source"]) for d in report.duplicates for m in d["records"]}
    assert (
        "same name and address",
        "Lincoln Park Food Pantry",
        "urn:closedloop:hsds:chi211",
    ) in names
    assert (
        "same name and address",
        "Lincoln Park Food Pantry",
        "urn:closedloop:hsds:other211",
    ) in names
    assert any(d["reason"] == "same phone" for d in report.duplicates)


def test_cli_as_a_process(backend: str, tmp_path: Path) -> None:
    if backend != "sqlite":
        pytest.skip("the process test runs once")
    env = {**os.environ, "DIRECTORY_API_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    cmd = [sys.executable, "-m", "directory_api.cli"]
    out = subprocess.run(
        [
            *cmd,
            "import-hsds",
            str(V3_TABULAR),
            "--source",
            "cli",
            "--report",
            str(tmp_path / "r.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "services/s" in out.stdout and "Traceback" not in out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"]["HealthcareService"]["created"] == 3
    assert {r["file"] for r in report["rejected"]} == {"services.csv", "locations.csv"}
    missing = subprocess.run(
        [*cmd, "import-hsds", str(tmp_path / "nope.json"), "--source", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2
    assert "no such file" in missing.stderr and "Traceback" not in missing.stderr
    exported = tmp_path / "dump.json"
    dump = subprocess.run(
        [*cmd, "export-hsds", "--output", str(exported)], env=env, capture_output=True, timeout=120
    )
    assert dump.returncode == 0
    assert len(json.loads(exported.read_text())) == 3


async def test_invalid_fhir_and_unknown_keys_are_rejected_not_raised(
    server: FhirServer, tmp_path: Path
) -> None:
    page = {
        "contents": [
            {"id": "ok-1", "name": "Good Pantry", "languages": [{"name": "Polish"}]},
            {"id": "bad-date", "name": "Bad Date Pantry", "assured_date": "last tuesday"},
            {"id": "bad-age", "name": "Bad Age Pantry", "minimum_age": "adult"},
        ]
    }
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page))
    report = await run_import(server, path, "page")
    assert counts(report, "HealthcareService") == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 2,
    }
    reasons = {r.row: r.reason for r in report.rejected}
    assert reasons[2].startswith("bad age")
    assert "invalid FHIR" in reasons[1]
    hs = await stored(server, "HealthcareService", "page")
    assert sorted(hs) == ["ok-1"]
    assert hs["ok-1"]["communication"][0]["coding"][0]["code"] == "pl"

    lines = tmp_path / "services.ndjson"
    lines.write_text(json.dumps(page["contents"][0]) + "\n{not json\n")
    nd = await run_import(server, lines, "page")
    assert counts(nd, "HealthcareService")["unchanged"] == 1
    assert [(r.file, r.row) for r in nd.rejected] == [("services.ndjson", 2)]

    folder = tmp_path / "pkg"
    folder.mkdir()
    for f in V3_TABULAR.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    with (folder / "service_at_location.csv").open("a") as fh:
        fh.write("t-sal-9,t-svc-1,no-such-location\n")
    with (folder / "services.csv").open("a") as fh:
        fh.write("t-svc-9,no-such-org,Orphan Service,,active,,,,,\n")
    tab = await run_import(server, folder, "pkg")
    rejected = {(r.file, r.row): r.reason for r in tab.rejected}
    assert rejected[("service_at_location.csv", 6)] == "unknown location_id"
    # an unknown organization is no longer a rejection: the service gets a stub provider
    assert ("services.csv", 6) not in rejected
    repaired = {(r.file, r.row): r.kind for r in tab.repaired}
    assert repaired[("services.csv", 6)] == "organization-stub"
    assert counts(tab, "HealthcareService")["created"] == 4
    assert counts(tab, "HealthcareService")["rejected"] == 1  # no name
    assert counts(tab, "service_at_location")["rejected"] == 1
