"""scripts/generate_demo_directory.py: deterministic, real Chicago ZIPs, SDOHCC categories."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import zipcodes

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "generate_demo_directory.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_demo_directory", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load()


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
