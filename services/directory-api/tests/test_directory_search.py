"""The directory a clinician searches: the three HSDS fixtures (HSDS 3 JSON, the HSDS 3 tabular
datapackage, a legacy HSDS 1.1 datapackage) imported into one database, then the searches people
run (near, ZIP, category, language, age, open now, free, full text, service areas), each with
the exact ids it must answer, on PostgreSQL and SQLite, through the real FHIR API.

The facts behind every expectation are in ``fixtures/hsds/README.md``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from closedloop.testing import app_client
from directory_api.app import create_app
from directory_api.conventions import SDOHCC_CATEGORY_SYSTEM
from directory_api.hsds.importer import import_path
from directory_api.hsds.mapping import fhir_id
from directory_api.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "hsds"
SOURCES = {
    "chi211": FIXTURES / "v3-json" / "services.json",
    "chitab": FIXTURES / "v3-tabular",
    "hplegacy": FIXTURES / "v1-datapackage",
}
# name -> (source, HSDS service id)
SERVICES = {
    "pantry": ("chi211", "svc-lp-pantry"),
    "shelter": ("chi211", "svc-lp-shelter"),
    "comedor": ("chi211", "svc-pilsen-comedor"),
    "rides": ("chi211", "svc-logan-rides"),
    "ride-line": ("chi211", "svc-il-ride-line"),
    "hp-housing": ("chi211", "svc-hp-housing"),
    "diapers": ("chitab", "t-svc-1"),
    "tenant-desk": ("chitab", "t-svc-2"),
    "youth-meals": ("chitab", "t-svc-4"),
    "senior-lunch": ("hplegacy", "v1-svc-1"),
    "tax-help": ("hplegacy", "v1-svc-2"),
}
ID = {name: fhir_id(source, "service", sid) for name, (source, sid) in SERVICES.items()}
NAME = {v: k for k, v in ID.items()}
FOOD = f"{SDOHCC_CATEGORY_SYSTEM}|food-insecurity"
# Mondays 10:00 in Chicago (CST, UTC-6)
MONDAY_10_CHICAGO = "2026-12-07T10:00:00-06:00"


class Clock:
    """The directory's clock for ``open=now``, set by each test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def client(database_url: str, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=database_url), clock=clock)
    async with app_client(app) as c:
        for source, path in SOURCES.items():
            report = await import_path(
                app.state.fhir, path, source, "America/Chicago", progress=False
            )
            assert report.counts["HealthcareService"]["created"] > 0
        yield c


async def found(client: httpx.AsyncClient, **params: str) -> list[str]:
    """The names of the services matching, sorted (each id must be one of ours)."""
    r = await client.get(
        "/fhir/HealthcareService",
        params={**params, "_count": "100"},
        headers={"Prefer": "handling=strict"},
    )
    assert r.status_code == 200, r.text
    ids = [e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"]
    assert all(i in NAME for i in ids), ids
    return sorted(NAME[i] for i in ids)


SEARCHES: list[tuple[str, dict[str, str], list[str]]] = [
    ("near", {"location.near": "41.922|-87.651|2|km"}, ["pantry", "shelter"]),
    (
        "near in miles",
        {"location.near": "41.922|-87.651|4|mi"},
        ["diapers", "pantry", "rides", "shelter", "youth-meals"],
    ),
    ("ZIP", {"location.near-postalcode": "60608|2|km"}, ["comedor", "tenant-desk"]),
    (
        "ZIP+4",
        {"location.near-postalcode": "60615-1234|1|km"},
        ["hp-housing", "senior-lunch", "tax-help"],
    ),
    ("category", {"service-category": FOOD}, ["comedor", "pantry", "senior-lunch", "youth-meals"]),
    (
        "category code only",
        {"service-category": "housing-instability"},
        ["hp-housing", "shelter", "tenant-desk"],
    ),
    ("language", {"communication": "pl"}, ["rides", "senior-lunch", "youth-meals"]),
    (
        "age",
        {"age": "65"},
        [
            "comedor",
            "diapers",
            "hp-housing",
            "pantry",
            "ride-line",
            "rides",
            "senior-lunch",
            "tax-help",
            "tenant-desk",
        ],
    ),
    ("age and category", {"age": "10", "service-category": FOOD}, ["comedor", "youth-meals"]),
    (
        "free",
        {"serviceProvisionCode": "free"},
        ["comedor", "diapers", "pantry", "ride-line", "senior-lunch", "shelter", "tenant-desk"],
    ),
    (
        "open at an instant",
        {"open": MONDAY_10_CHICAGO},
        ["diapers", "pantry", "ride-line", "rides", "shelter", "tenant-desk"],
    ),
    ("open at local time, end exclusive", {"open": "2026-12-12T12:00"}, ["comedor", "shelter"]),
    ("open at local time, start inclusive", {"open": "2026-12-12T09:00"}, ["shelter", "tax-help"]),
    ("full text, name", {"_content": "pantry"}, ["pantry"]),
    ("full text, plural and prefix", {"_content": "meal"}, ["comedor", "youth-meals"]),
    ("full text, accents and case", {"_content": "COMEDÓR comunit"}, ["comedor"]),
    ("coverage area", {"coverage-area.contains": "41.88|-87.63"}, ["ride-line"]),
    ("coverage area by ZIP", {"coverage-area.contains-postalcode": "62701"}, ["ride-line"]),
    ("coverage area outside", {"coverage-area.contains-postalcode": "53202"}, []),
    (
        "food pantry near 60614 that speaks Spanish, open, free",
        {
            "location.near-postalcode": "60614|5|km",
            "service-category": FOOD,
            "communication": "es",
            "serviceProvisionCode": "free",
            "open": MONDAY_10_CHICAGO,
        },
        ["pantry"],
    ),
]


@pytest.mark.parametrize(("what", "params", "expected"), SEARCHES, ids=[s[0] for s in SEARCHES])
async def test_searches_answer_the_expected_services(
    client: httpx.AsyncClient, what: str, params: dict[str, str], expected: list[str]
) -> None:
    assert await found(client, **params) == expected, what


async def test_open_now_follows_the_clock_and_closures(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    clock.now = datetime(2026, 12, 16, 18, 0, tzinfo=UTC)  # Wednesday 12:00 in Chicago
    lunch_open = await found(client, open="now", **{"service-category": FOOD})
    assert lunch_open == ["pantry", "senior-lunch"]
    clock.now = datetime(2026, 12, 23, 18, 0, tzinfo=UTC)  # the lunch's holiday closure
    assert await found(client, open="now", **{"service-category": FOOD}) == ["pantry"]
    clock.now = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)


async def test_location_contains_finds_the_service_area(client: httpx.AsyncClient) -> None:
    area = fhir_id("chi211", "service_area", "area-il")
    inside = await client.get("/fhir/Location", params={"contains": "39.78|-89.65"})  # Springfield
    assert [e["resource"]["id"] for e in inside.json()["entry"]] == [area]
    outside = await client.get("/fhir/Location", params={"contains": "43.04|-87.91"})  # Milwaukee
    assert outside.json()["entry"] == []


async def _post(client: httpx.AsyncClient, resource: dict) -> str:
    r = await client.post(
        f"/fhir/{resource['resourceType']}",
        json=resource,
        headers={"Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


TZ = "http://hl7.org/fhir/StructureDefinition/timezone"


async def test_overnight_hours_and_each_listings_own_time_zone(
    client: httpx.AsyncClient,
) -> None:
    night = await _post(
        client,
        {
            "resourceType": "HealthcareService",
            "name": "Night Owl Warming Center",
            "extension": [{"url": TZ, "valueCode": "America/Chicago"}],
            "availableTime": [
                {
                    "daysOfWeek": ["fri", "sun"],
                    "availableStartTime": "22:00:00",
                    "availableEndTime": "02:00:00",
                }
            ],
        },
    )
    east = await _post(
        client,
        {
            "resourceType": "HealthcareService",
            "name": "Eastern Hotline",
            "extension": [{"url": TZ, "valueCode": "America/New_York"}],
            "availableTime": [
                {
                    "daysOfWeek": ["mon"],
                    "availableStartTime": "09:00:00",
                    "availableEndTime": "10:00:00",
                }
            ],
        },
    )

    async def open_at(value: str) -> set[str]:
        r = await client.get("/fhir/HealthcareService", params={"open": value, "_count": "100"})
        assert r.status_code == 200, r.text
        return {e["resource"]["id"] for e in r.json()["entry"]} & {night, east}

    assert await open_at("2026-12-12T01:30:00-06:00") == {night}  # Saturday 01:30, from Friday
    assert await open_at("2026-12-14T01:59:00-06:00") == {night}  # Monday 01:59, from Sunday
    assert await open_at("2026-12-14T02:00:00-06:00") == set()  # closing time is exclusive
    assert await open_at("2026-12-11T21:59:00-06:00") == set()
    # 09:30 in New York is 08:30 in Chicago: the hotline is open, in its own zone
    assert await open_at("2026-12-14T14:30:00Z") == {east}
    assert await open_at("2026-12-14T15:30:00Z") == set()
    # wall-clock time is read in each listing's zone
    assert await open_at("2026-12-14T09:30") == {east}
    for rid in (night, east):
        assert (await client.delete(f"/fhir/HealthcareService/{rid}")).status_code in (200, 204)


BAD = [
    ({"open": "tomorrow"}, "CL-9420"),
    ({"open": "2026-12-07"}, "CL-9420"),
    ({"_content": "!!!"}, "CL-3460"),
    ({"coverage-area.contains": "41.9"}, "CL-3470"),
    ({"coverage-area.contains": "200|-87"}, "CL-3472"),
    ({"coverage-area.contains-postalcode": "00000"}, "CL-9400"),
    ({"location.near": "200|-87.6|10|km"}, "CL-3452"),
    ({"location.near": "41.9|-87.6|10|parsecs"}, "CL-3454"),
    ({"age": "old"}, "CL-9410"),
]


@pytest.mark.parametrize(("params", "code"), BAD, ids=[c for _, c in BAD])
async def test_bad_values_get_a_400_outcome(
    client: httpx.AsyncClient, params: dict[str, str], code: str
) -> None:
    for handling in ("lenient", "strict"):
        r = await client.get(
            "/fhir/HealthcareService", params=params, headers={"Prefer": f"handling={handling}"}
        )
        assert r.status_code == 400, r.text
        outcome = r.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert code in outcome["issue"][0]["diagnostics"]


MATCH_REASON = "urn:closedloop:fhir:match-reason"
DISTANCE = "http://hl7.org/fhir/StructureDefinition/location-distance"


def reasons(bundle: dict) -> list[tuple[str, str, float | None]]:
    out = []
    for e in bundle["entry"]:
        ext = {x["url"]: x for x in e["search"].get("extension", [])}
        km = ext[DISTANCE]["valueDistance"]["value"] if DISTANCE in ext else None
        out.append((NAME[e["resource"]["id"]], ext[MATCH_REASON]["valueCode"], km))
    return out


async def test_place_search_finds_nearby_then_coverage_area_then_virtual(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/fhir/HealthcareService", params={"place-postalcode": "60614|3|km"})
    assert r.status_code == 200, r.text
    found_ = reasons(r.json())
    assert [(n, why) for n, why, _ in found_] == [
        ("pantry", "nearby"),
        ("shelter", "nearby"),
        ("ride-line", "coverage-area"),
    ]
    assert 0 < found_[0][2] < found_[1][2] < 3  # type: ignore[operator]
    # outside the coverage area, the virtual help line is still offered, flagged
    far = await client.get("/fhir/HealthcareService", params={"place-postalcode": "53202|5|km"})
    assert reasons(far.json()) == [("ride-line", "virtual", None)]
    # with other filters, and paged one by one in the same order
    pages: list[str] = []
    url: str | None = "/fhir/HealthcareService"
    params: dict[str, str] | None = {"place": "41.9229|-87.6483|3|km", "_count": "1"}
    while url:
        page = (await client.get(url, params=params)).json()
        pages += [NAME[e["resource"]["id"]] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        params = None
    assert pages == ["pantry", "shelter", "ride-line"]
    assert await found(client, place="41.9229|-87.6483|3|km", communication="es") == [
        "pantry",
        "ride-line",
    ]
