"""The compiled-SQL cache per search shape (closedloop.fhir.search.compiled): a cached shape
answers exactly as the statement built per request does, whatever the values; criteria whose
SQL may depend on more than their shape never use it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from closedloop.fhir.search.compiled import Plan
from closedloop.fhir.search.definitions import SearchParam
from closedloop.service import create_service_app
from closedloop.settings import ServiceSettings
from closedloop.testing import app_client
from sqlalchemy import literal

MIGRATIONS = Path(__file__).parent.parent / "rest" / "migrations"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
calls: list[str] = []


def _always(value: str, r: Any, _resource_type: str) -> Any:
    calls.append(value)
    return r.c.pk.is_not(None) if value == "yes" else literal(False)


ANYTHING = SearchParam(
    code="anything",
    type="token",
    expression="Patient.gender",
    base=("Patient",),
    url="urn:closedloop:test:anything",
    condition=_always,
)


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


async def test_one_shape_many_values(database_url: str) -> None:
    app = create_service_app(
        name="t",
        settings=ServiceSettings(database_url=database_url),
        resource_types=["Patient"],
        migrations=MIGRATIONS,
        search_params=[ANYTHING],
    )
    async with app_client(app) as client:
        ids = {}
        for n, (system, code, family) in enumerate(
            [("urn:a", "1", "Smith"), ("urn:b", "2", "Smythe"), ("urn:a", "2", "Jones")]
        ):
            body = {
                "resourceType": "Patient",
                "identifier": [{"system": system, "value": code}],
                "name": [{"family": family}],
                "birthDate": f"199{n}-06-15",
            }
            r = await client.post("/fhir/Patient", json=body, headers=FHIR_JSON)
            ids[family] = r.json()["id"]

        async def search(query: str) -> list[str]:
            r = await client.get(f"/fhir/Patient?{query}")
            assert r.status_code == 200, r.text
            return _ids(r.json())

        # the same shapes again and again with other values: each answer is the right one (four
        # rounds: past the five executions after which a statement is prepared anew)
        for _ in range(4):
            assert await search("identifier=urn:a|1") == [ids["Smith"]]
            assert await search("identifier=urn:b|2") == [ids["Smythe"]]
            assert await search("identifier=urn:a|2") == [ids["Jones"]]
            assert await search("identifier=urn:b|1") == []
            assert await search("identifier=2") == [ids["Smythe"], ids["Jones"]]
            assert await search("identifier=urn:a|") == [ids["Smith"], ids["Jones"]]
            assert await search("identifier:not=urn:a|1") == [ids["Smythe"], ids["Jones"]]
            assert await search("family=sm&birthdate=ge1991") == [ids["Smythe"]]
            assert await search("family=jo&birthdate=ge1991") == [ids["Jones"]]
            assert await search("family=sm&birthdate=lt1991") == [ids["Smith"]]
            assert await search("family:exact=Jones,Smith") == [ids["Smith"], ids["Jones"]]
            assert await search("_lastUpdated=gt2000-01-01&identifier=1,2") == list(ids.values())
        engine = app.state.fhir.search
        plans = [p for p in engine.shapes._plans.values() if isinstance(p, Plan)]
        assert len(plans) >= 8  # the shapes above did compile (on this backend)

        # a custom condition decides per value (and may read the clock): never a cached shape
        calls.clear()
        for _ in range(3):
            assert await search("anything=yes&identifier=urn:a|1") == [ids["Smith"]]
            assert await search("anything=no&identifier=urn:a|1") == []
        assert calls == ["yes", "no"] * 3
        assert not any("anything" in repr(k) for k in engine.shapes._plans)


async def test_malformed_values_still_fail_the_same_way(database_url: str) -> None:
    app = create_service_app(
        name="t",
        settings=ServiceSettings(database_url=database_url),
        resource_types=["Patient"],
        migrations=MIGRATIONS,
    )
    async with app_client(app) as client:
        assert (await client.get("/fhir/Patient?birthdate=ge1990")).status_code == 200
        r = await client.get("/fhir/Patient?birthdate=ge19x0")
        assert r.status_code == 400
        assert "Invalid date" in r.text
