"""The edge of a FHIR service (closedloop.edge), on referral-api: a per-client rate limit (429
with Retry-After, other clients unaffected) and CORS for the configured web origins only."""

from __future__ import annotations

from closedloop.testing import TokenIssuer, app_client, bearer
from referral_api.app import create_app
from referral_api.settings import Settings

AUD = "http://testserver/fhir"
WEB = "https://app.example.org"


def settings(database_url: str, issuer: TokenIssuer, **extra: object) -> Settings:
    return Settings(
        database_url=database_url,
        event_sink_url="",
        **issuer.settings(AUD),
        **extra,  # type: ignore[arg-type]
    )


async def test_each_client_has_its_own_rate_limit(
    database_url: str, token_issuer: TokenIssuer
) -> None:
    app = create_app(
        settings(database_url, token_issuer, rate_limit_per_second=0.5, rate_limit_burst=3)
    )
    busy = bearer(token_issuer.token("system/*.rs", AUD, subject="busy", role="admin"))
    calm = bearer(token_issuer.token("system/*.rs", AUD, subject="calm", role="admin"))
    async with app_client(app) as client:
        for _ in range(3):
            assert (await client.get("/fhir/Task", headers=busy)).status_code == 200
        r = await client.get("/fhir/Task", headers=busy)
        assert r.status_code == 429, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
        assert r.json()["issue"][0]["code"] == "throttled"
        assert 1 <= int(r.headers["Retry-After"]) <= 2
        assert (await client.get("/fhir/Task", headers=calm)).status_code == 200
        # a new token of the same client shares its bucket
        again = bearer(token_issuer.token("system/*.rs", AUD, subject="busy", role="admin"))
        assert (await client.get("/fhir/Patient", headers=again)).status_code == 429


async def test_no_limit_by_default(database_url: str, token_issuer: TokenIssuer) -> None:
    app = create_app(settings(database_url, token_issuer))
    auth = bearer(token_issuer.token("system/*.rs", AUD, role="admin"))
    async with app_client(app) as client:
        for _ in range(60):
            assert (await client.get("/fhir/Task?_count=1", headers=auth)).status_code == 200


async def test_cors_only_for_configured_origins(
    database_url: str, token_issuer: TokenIssuer
) -> None:
    app = create_app(settings(database_url, token_issuer, cors_origins=f"{WEB}/"))
    auth = bearer(token_issuer.token("system/*.rs", AUD, role="admin"))
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    async with app_client(app) as client:
        r = await client.options("/fhir/Task", headers={"Origin": WEB, **preflight})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == WEB
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        r = await client.get("/fhir/Task", headers={"Origin": WEB, **auth})
        assert r.headers["access-control-allow-origin"] == WEB
        assert "etag" in r.headers["access-control-expose-headers"].lower()
        evil = "https://evil.example"
        r = await client.options("/fhir/Task", headers={"Origin": evil, **preflight})
        assert "access-control-allow-origin" not in r.headers
        r = await client.get("/fhir/Task", headers={"Origin": evil, **auth})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    app = create_app(settings(database_url, token_issuer))
    async with app_client(app) as client:
        r = await client.get("/fhir/Task", headers={"Origin": WEB, **auth})
        assert "access-control-allow-origin" not in r.headers
