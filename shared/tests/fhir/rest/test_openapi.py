"""``/fhir/openapi.json`` is generated from what the service serves, and ``/docs`` shows it
with Swagger UI served by the service itself (no CDN)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import schemathesis
from closedloop.service import create_service_app
from closedloop.settings import ServiceSettings
from closedloop.testing import app_client

from .conftest import TYPES

MIGRATIONS = Path(__file__).parent / "migrations"
_INTERACTIONS = {
    "/Patient": {"get", "post", "put", "delete"},
    "/Patient/_search": {"post"},
    "/Patient/_history": {"get"},
    "/Patient/{id}": {"get", "put", "patch", "delete"},
    "/Patient/{id}/_history": {"get"},
    "/Patient/{id}/_history/{vid}": {"get"},
    "/Patient/$validate": {"post"},
    "/Patient/{id}/$validate": {"post"},
}


async def test_document_lists_what_is_served(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    schemathesis.openapi.from_dict(doc).validate()  # a valid OpenAPI 3.0 document
    assert doc["openapi"] == "3.0.3"
    assert doc["servers"] == [{"url": "http://testserver/fhir"}]
    paths = doc["paths"]
    for path, methods in _INTERACTIONS.items():
        assert set(paths[path]) == methods, path
    for system in ("/", "/metadata", "/_history", "/openapi.json"):
        assert system in paths
    assert {p.split("/")[1] for p in paths if p.count("/") == 1 and p[1:2].isupper()} == set(TYPES)
    schemas = doc["components"]["schemas"]
    assert schemas["Patient"]["properties"]["resourceType"]["enum"] == ["Patient"]
    assert schemas["Patient"]["required"] == ["resourceType", "id", "meta"]


async def test_search_parameters_are_the_capability_statements(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/fhir/openapi.json")).json()
    cs = (await client.get("/fhir/metadata")).json()
    for resource in cs["rest"][0]["resource"]:
        listed = {p["name"] for p in resource["searchParam"]}
        search = doc["paths"][f"/{resource['type']}"]["get"]["parameters"]
        documented = {p["name"] for p in search if "name" in p and p["in"] == "query"}
        assert documented == listed, resource["type"]
        form = doc["paths"][f"/{resource['type']}/_search"]["post"]["requestBody"]
        fields = form["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
        assert set(fields) == listed


async def test_operations_are_the_capability_statements(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/fhir/openapi.json")).json()
    cs = (await client.get("/fhir/metadata")).json()
    for resource in cs["rest"][0]["resource"]:
        listed = {op["name"] for op in resource.get("operation", [])}
        assert listed == {"validate"}, resource["type"]
        documented = {
            path.rsplit("$", 1)[1]
            for path in doc["paths"]
            if path.startswith(f"/{resource['type']}/") and "$" in path
        }
        assert documented == listed
    validate = cs["rest"][0]["resource"][0]["operation"][0]
    assert validate["definition"] == "http://hl7.org/fhir/OperationDefinition/Resource-validate"


async def test_errors_are_operation_outcomes_with_real_codes(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/fhir/openapi.json")).json()
    read = doc["paths"]["/Patient/{id}"]["get"]["responses"]
    assert {"200", "304", "404", "410"} <= set(read)
    assert read["404"] == {"$ref": "#/components/responses/E404"}
    outcome = doc["components"]["responses"]["E404"]["content"]["application/fhir+json"]
    assert outcome["schema"] == {"$ref": "#/components/schemas/OperationOutcome"}
    r = await client.get("/fhir/Patient/not-there")
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"


async def test_read_only_types_get_read_interactions_only(database_url: str) -> None:
    settings = ServiceSettings(database_url=database_url)
    app = create_service_app(
        name="read-only-test",
        settings=settings,
        resource_types=["Patient", "Organization"],
        read_only_types=["Organization"],
        migrations=MIGRATIONS,
    )
    async with app_client(app) as client:
        paths = (await client.get("/fhir/openapi.json")).json()["paths"]
    assert set(paths["/Organization"]) == {"get"}
    assert set(paths["/Organization/{id}"]) == {"get"}
    assert "/Organization/$validate" not in paths
    assert set(paths["/Patient/{id}"]) == {"get", "put", "patch", "delete"}


async def test_fastapi_schema_is_gone(client: httpx.AsyncClient) -> None:
    """FastAPI's own document knew nothing of the FHIR routes; only the FHIR one is served."""
    r = await client.get("/openapi.json")
    assert r.status_code == 404


async def test_docs_load_only_local_assets(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "://" not in page  # no CDN, no other host
    assert "<script>" not in page  # no inline script
    refs = re.findall(r'(?:src|href|data-spec)="([^"]+)"', page)
    assert "/fhir/openapi.json" in refs
    assets = [ref for ref in refs if ref != "/fhir/openapi.json"]
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in assets)
    assert any(ref.endswith("swagger-ui.css") for ref in assets)
    for ref in assets:
        assert ref.startswith("/docs/assets/"), ref
        asset = await client.get(ref)
        assert asset.status_code == 200, ref
        assert asset.content, ref
        kind = asset.headers["content-type"]
        if ref.endswith(".js"):
            assert "javascript" in kind, ref
        elif ref.endswith(".css"):
            assert kind.startswith("text/css"), ref
    init = (await client.get("/docs/assets/docs-init.js")).text
    assert "SwaggerUIBundle" in init and "://" not in init
    # only what the page uses: not the bundle's demo page (it loads a document from the web)
    for other in ("index.html", "swagger-initializer.js", "..%2F__init__.py"):
        r = await client.get(f"/docs/assets/{other}")
        assert r.status_code == 404, other
        assert r.json()["resourceType"] == "OperationOutcome"
