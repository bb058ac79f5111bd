"""A search parameter added later finds old resources once ``reindex`` has run."""

from __future__ import annotations

from pathlib import Path

from closedloop.fhir.search.definitions import SearchParam
from closedloop.fhir.storage.reindex import reindex
from closedloop.service import create_service_app
from closedloop.settings import ServiceSettings
from closedloop.testing import app_client

MIGRATIONS = Path(__file__).parent / "rest" / "migrations"
NICKNAME = SearchParam(
    code="nickname",
    type="string",
    expression="Patient.name.where(use='nickname').given",
    base=("Patient",),
    url="urn:closedloop:test:nickname",
)
FHIR_JSON = {"Content-Type": "application/fhir+json"}


async def test_new_parameter_after_reindex(database_url: str) -> None:
    settings = ServiceSettings(database_url=database_url)
    before = create_service_app(
        name="t", settings=settings, resource_types=["Patient"], migrations=MIGRATIONS
    )
    async with app_client(before) as client:
        body = {"resourceType": "Patient", "name": [{"use": "nickname", "given": ["Zaza"]}]}
        created = (await client.post("/fhir/Patient", json=body, headers=FHIR_JSON)).json()
    after = create_service_app(
        name="t",
        settings=settings,
        resource_types=["Patient"],
        migrations=MIGRATIONS,
        search_params=[NICKNAME],
    )
    async with app_client(after) as client:
        found = (await client.get("/fhir/Patient?nickname=zaz")).json()
        assert found["entry"] == []  # indexed before the parameter existed
        server = after.state.fhir
        counts = await reindex(server.db, server.repo.indexer, ["Patient"], batch_size=1)
        assert counts["Patient"] >= 1
        found = (await client.get("/fhir/Patient?nickname=zaz")).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [created["id"]]
        cs = (await client.get("/fhir/metadata")).json()
        names = {p["name"] for p in cs["rest"][0]["resource"][0]["searchParam"]}
        assert "nickname" in names
