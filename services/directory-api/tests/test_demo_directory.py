"""scripts/generate_demo_directory.py: deterministic, real Chicago ZIPs, SDOHCC categories."""

from __future__ import annotations

import json
from pathlib import Path

import zipcodes
from closedloop.testing import load_script

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "generate_demo_directory.py"


gen = load_script(SCRIPT)


def test_deterministic_for_a_seed_and_count_honoured(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    gen.main(["--seed", "7", "--count", "50", "--output", str(a)])
    gen.main(["--seed", "7", "--count", "50", "--output", str(b)])
    assert a.read_bytes() == b.read_bytes()
    data = json.loads(a.read_text())
    assert len(data) == 50
    assert len({s["id"] for s in data}) == 50
    assert gen.generate(8, 50) != data


def test_real_chicago_zips_coordinates_and_sdohcc_codes() -> None:
    south, west, north, east = gen.CHICAGO_BBOX
    services = gen.generate(1, 400)
    assert any(
        s["service_at_locations"][0]["location"]["location_type"] == "virtual" for s in services
    )
    for s in services:
        assert s["status"] == "active"
        for sal in s["service_at_locations"]:
            loc = sal["location"]
            if loc["location_type"] == "virtual":
                assert s["service_areas"][0]["extent_type"] == "geojson"
                continue
            assert south < loc["latitude"] < north and west < loc["longitude"] < east
            for addr in loc["addresses"]:
                found = zipcodes.matching(addr["postal_code"])
                assert found and found[0]["city"].upper() == "CHICAGO"
                assert addr["postal_code"].startswith("606")
        for attr in s["attributes"]:
            term = attr["taxonomy_term"]
            assert term["code"] in gen.CATEGORIES
            assert term["taxonomy"]["uri"] == gen.SDOHCC_SYSTEM


async def test_the_demo_imports_and_is_searchable_by_category(
    database_url: str, tmp_path: Path
) -> None:
    """What ``make run`` loads: every generated service imports, with its SDOHCC category."""
    from closedloop.testing import app_client
    from directory_api.app import create_app
    from directory_api.hsds.importer import import_path
    from directory_api.settings import Settings

    path = tmp_path / "demo.json"
    gen.main(["--seed", "3", "--count", "40", "--output", str(path)])
    services = json.loads(path.read_text())
    app = create_app(Settings(database_url=database_url))
    async with app_client(app) as client:
        report = await import_path(app.state.fhir, path, "demo", "America/Chicago", progress=False)
        assert not report.rejected
        code = services[0]["attributes"][0]["taxonomy_term"]["code"]
        want = sum(
            any(a["taxonomy_term"]["code"] == code for a in s.get("attributes", []))
            for s in services
        )
        r = await client.get(
            "/fhir/HealthcareService", params={"service-category": code, "_summary": "count"}
        )
        assert r.json()["total"] == want > 0


def test_metro_area_spreads_services_over_real_metro_zips_on_land() -> None:
    """--area metro (bench/directory.py): real ZIPs of the metro counties, never in the lake,
    and spread out; the default (the demo) stays on the city's ZIPs."""
    services = gen.generate(1, 400, "metro")
    zips, lats = set(), []
    for s in services:
        loc = s["service_at_locations"][0]["location"]
        if loc["location_type"] == "virtual":
            continue
        assert gen.on_land(loc["latitude"], loc["longitude"])
        assert 41.1 < loc["latitude"] < 42.6 and -88.9 < loc["longitude"] < -87.52
        addr = loc["addresses"][0]
        found = zipcodes.matching(addr["postal_code"])
        assert found and found[0]["county"] in gen.METRO_COUNTIES
        assert addr["city"] == found[0]["city"].title()
        zips.add(addr["postal_code"])
        lats.append(loc["latitude"])
    assert len(zips) > 150 and max(lats) - min(lats) > 1.0
    assert gen.generate(1, 50) == gen.generate(1, 50, "chicago")
    assert not gen.on_land(41.88, -87.60)  # Lake Michigan off the Loop
    assert gen.on_land(41.88, -87.63)
