"""The token endpoint: SMART Backend Services assertions in, signed access tokens out; every
way an assertion can be wrong is refused with an RFC 6749 error (both databases)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth import keys
from auth.app import create_app
from auth.clients import ClientError, add_client, disable_client
from auth.settings import Settings
from closedloop.db import Database
from closedloop.testing import app_client, load_script

A = load_script(Path(__file__).parent / "assertions.py")


@dataclass
class Env:
    http: httpx.AsyncClient
    db: Database
    settings: Settings
    rs_key: Any
    es_key: Any


@pytest.fixture(scope="module")
async def env(database_url: str) -> AsyncIterator[Env]:
    settings = Settings(
        database_url=database_url,
        issuer=A.ISSUER,
        audiences=",".join(A.FHIR_BASES),
        key_refresh_seconds=0,
    )
    app = create_app(settings)
    async with app_client(app, base_url=A.ISSUER) as http:
        db = app.state.db
        rs_key, es_key = A.client_key("RS384"), A.client_key("ES384")
        await add_client(
            db,
            client_id="ehr-rs",
            name="EHR (RSA)",
            scopes="system/Task.rs system/ServiceRequest.crs",
            jwks=A.public_jwks(rs_key),
            organization="Organization/ehr-1",
        )
        await add_client(
            db,
            client_id="cbo-es",
            name="CBO (EC)",
            scopes="system/*.rs",
            jwks=A.public_jwks(es_key),
            organization="Organization/cbo-1",
            role="cbo",
        )
        yield Env(http, db, settings, rs_key, es_key)


async def post_token(env: Env, form: dict[str, str]) -> httpx.Response:
    return await env.http.post("/token", data=form)


async def test_good_assertions_get_tokens_that_verify_against_jwks(env: Env) -> None:
    for client_id, key, scope in (
        ("ehr-rs", env.rs_key, "system/Task.rs system/ServiceRequest.r"),
        ("cbo-es", env.es_key, "system/HealthcareService.rs"),
    ):
        r = await post_token(env, A.token_form(A.assertion(key, client_id), scope))
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["token_type"] == "Bearer" and body["scope"] == scope
        assert 0 < body["expires_in"] <= 300
        jwks = (await env.http.get("/jwks")).json()
        assert all("d" not in k and k.get("kid") for k in jwks["keys"])
        token = A.verify(body["access_token"], jwks)
        assert token.header["kid"] in {k["kid"] for k in jwks["keys"]}
        assert token.header["alg"] in ("RS384", "ES384")
        c = token.claims
        assert c["iss"] == A.ISSUER and c["sub"] == client_id
        assert c["aud"] == A.FHIR_BASES
        assert c["scope"] == scope and c["jti"]
        assert c["exp"] - c["iat"] <= 300 and c["exp"] > time.time()
        if client_id == "ehr-rs":  # a client acting for an organization is a requester
            assert (c["organization"], c["role"]) == ("Organization/ehr-1", "requester")
        else:
            assert (c["organization"], c["role"]) == ("Organization/cbo-1", "cbo")


async def test_client_roles_are_checked_against_their_organization(env: Env) -> None:
    jwks = A.public_jwks(A.client_key("ES384"))
    for role, organization, refusal in (
        ("cbo", None, "give --organization"),
        ("requester", None, "give --organization"),
        ("admin", "Organization/x", "drop --organization"),
        ("service", "Organization/x", "drop --organization"),
        ("superuser", None, "one of requester, cbo, service, admin"),
    ):
        with pytest.raises(ClientError, match=refusal):
            await add_client(
                env.db,
                client_id=f"bad-{role}",
                name="Bad",
                scopes="system/Task.rs",
                jwks=jwks,
                organization=organization,
                role=role,
            )
    admin = await add_client(
        env.db, client_id="ops", name="Ops", scopes="system/*.rs", jwks=jwks, role="admin"
    )
    assert admin.role == "admin" and admin.organization is None


def _refused(r: httpx.Response, error: str = "invalid_client") -> str:
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] == error, r.text
    return str(r.json().get("error_description", ""))


async def test_hostile_assertions_are_refused(env: Env) -> None:
    other = A.client_key("RS384", kid=env.rs_key.kid)  # same kid, a stranger's key
    only = "RS384 or ES384"
    cases = {  # name: (assertion, what the error description says)
        "bad signature": (A.assertion(other, "ehr-rs"), "bad_signature"),
        "wrong aud": (A.assertion(env.rs_key, "ehr-rs", aud=f"{A.ISSUER}/other"), "'aud'"),
        "expired": (A.assertion(env.rs_key, "ehr-rs", exp_in=-120), "expired"),
        "exp too far ahead": (A.assertion(env.rs_key, "ehr-rs", exp_in=600), "5 minutes"),
        "unknown client": (A.assertion(env.rs_key, "nobody"), "does not exist"),
        "iss is not sub": (
            A.assertion(env.rs_key, "ehr-rs", claims={"iss": "cbo-es"}),
            "Issuer and Subject",
        ),
        "alg none": (A.unsigned_assertion("ehr-rs", env.rs_key.kid), only),
        "HS256 with the public key": (A.hs256_with_public_key(env.rs_key, "ehr-rs"), only),
        "RS256 (not SMART's)": (A.assertion(env.rs_key, "ehr-rs", alg="RS256"), only),
        "EC key for an RSA client": (A.assertion(env.es_key, "ehr-rs"), "0 EC keys"),
        "not a JWT": ("not.a.jwt", "Invalid JWT"),
    }
    for name, (bad, why) in cases.items():
        r = await post_token(env, A.token_form(bad))
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.json()["error"] == "invalid_client", (name, r.text)
        assert why in r.json()["error_description"], (name, r.text)


async def test_a_replayed_jti_is_refused(env: Env) -> None:
    once = A.assertion(env.es_key, "cbo-es", jti="once-only")
    assert (await post_token(env, A.token_form(once))).status_code == 200
    again = A.assertion(env.es_key, "cbo-es", jti="once-only")  # re-signed, same jti
    for replay in (once, again):
        assert "used" in _refused(await post_token(env, A.token_form(replay)))


async def test_a_disabled_client_is_refused(env: Env) -> None:
    key = A.client_key("ES384")
    await add_client(
        env.db, client_id="gone", name="Gone", scopes="system/Task.r", jwks=A.public_jwks(key)
    )
    assert (
        await post_token(env, A.token_form(A.assertion(key, "gone"), "system/Task.r"))
    ).is_success
    await disable_client(env.db, "gone")
    r = await post_token(env, A.token_form(A.assertion(key, "gone"), "system/Task.r"))
    assert "disabled" in _refused(r)


async def test_scopes_beyond_the_registration_are_refused(env: Env) -> None:
    for scope in (
        "system/Task.cruds",
        "system/Patient.r",
        "system/Task.rs system/Goal.r",
        "",
        "patient/Task.r",
    ):
        r = await post_token(env, A.token_form(A.assertion(env.rs_key, "ehr-rs"), scope))
        assert r.status_code == 400, (scope, r.text)
        assert r.json()["error"] == "invalid_scope", (scope, r.text)


async def test_form_errors_are_oauth_errors(env: Env) -> None:
    r = await env.http.post("/token", json={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    form = A.token_form(A.assertion(env.rs_key, "ehr-rs"))
    r = await post_token(env, {**form, "grant_type": "password"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = await env.http.post(
        "/token",
        content="grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = await post_token(env, {"grant_type": "client_credentials", "scope": "system/Task.r"})
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"
    r = await env.http.post(
        "/token",
        content=b"a=" + b"x" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_key_rotation_keeps_old_tokens_verifiable(env: Env) -> None:
    r = await post_token(env, A.token_form(A.assertion(env.es_key, "cbo-es"), "system/Task.r"))
    old_token = r.json()["access_token"]
    old_kid = A.verify(old_token, (await env.http.get("/jwks")).json()).header["kid"]

    new_kid = await keys.rotate(env.db, "RS384", None)
    assert new_kid != old_kid

    r = await post_token(env, A.token_form(A.assertion(env.es_key, "cbo-es"), "system/Task.r"))
    jwks = (await env.http.get("/jwks")).json()
    assert {old_kid, new_kid} <= {k["kid"] for k in jwks["keys"]}
    fresh = A.verify(r.json()["access_token"], jwks)
    assert fresh.header["kid"] == new_kid and fresh.header["alg"] == "RS384"
    assert A.verify(old_token, jwks).claims["sub"] == "cbo-es"


async def test_smart_configuration(env: Env) -> None:
    r = await env.http.get("/.well-known/smart-configuration")
    assert r.status_code == 200
    conf = r.json()
    assert conf["token_endpoint"] == A.TOKEN_URL
    assert conf["jwks_uri"] == f"{A.ISSUER}/jwks"
    assert "client_credentials" in conf["grant_types_supported"]
    assert "private_key_jwt" in conf["token_endpoint_auth_methods_supported"]
    assert conf["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert {"client-confidential-asymmetric", "permission-v2"} <= set(conf["capabilities"])
    assert conf["scopes_supported"]
    assert (await env.http.get("/healthz")).status_code == 200
    assert (await env.http.get("/readyz")).status_code == 200


async def test_tokens_and_keys_stay_out_of_debug_logs(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client_assertion = A.assertion(env.es_key, "cbo-es")
    r = await post_token(env, A.token_form(client_assertion, "system/Task.r"))
    assert r.status_code == 200, r.text
    signing = await keys.current_key(env.db, None)
    assert caplog.records  # debug logging was on
    for secret in (
        r.json()["access_token"],
        client_assertion,
        signing.key.as_dict(private=True)["d"],
    ):
        assert secret not in caplog.text


async def test_a_jti_used_at_one_process_is_refused_at_another(env: Env) -> None:
    """Two app instances on one database (two processes behind a balancer): an assertion
    accepted by one is refused by the other, also when both get it at the same moment."""
    twin = create_app(env.settings)
    async with app_client(twin, base_url=A.ISSUER) as other:
        used = A.assertion(env.es_key, "cbo-es")
        assert (await post_token(env, A.token_form(used))).status_code == 200
        r = await other.post("/token", data=A.token_form(used))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"

        racing = A.token_form(A.assertion(env.es_key, "cbo-es"))
        results = await asyncio.gather(
            env.http.post("/token", data=racing), other.post("/token", data=racing)
        )
        assert sorted(r.status_code for r in results) == [200, 401]


def test_the_issuer_must_be_https_unless_loopback() -> None:
    assert Settings(issuer="https://auth.example.org/").token_url == (
        "https://auth.example.org/token"
    )
    assert Settings(issuer="http://localhost:8084").issuer == "http://localhost:8084"
    for bad in ("http://auth.example.org", "ftp://127.0.0.1", "auth.example.org"):
        with pytest.raises(ValueError, match="AUTH_ISSUER must be an https URL"):
            Settings(issuer=bad)


async def test_token_requests_are_counted_by_grant_type_and_outcome(env: Env) -> None:
    """``/metrics``: issued and refused token requests, by grant type; never a client id."""
    from prometheus_client.parser import text_string_to_metric_families

    async def counts() -> dict[tuple[str, str], float]:
        r = await env.http.get("/metrics")
        assert r.status_code == 200
        return {
            (s.labels["grant_type"], s.labels["outcome"]): s.value
            for family in text_string_to_metric_families(r.text)
            for s in family.samples
            if s.name == "auth_token_requests_total"
        }

    before = await counts()
    good = A.token_form(A.assertion(env.rs_key, "ehr-rs"), "system/Task.rs")
    assert (await post_token(env, good)).status_code == 200
    forged = A.token_form(A.assertion(env.es_key, "ehr-rs"), "system/Task.rs")  # wrong key
    assert (await post_token(env, forged)).status_code in (400, 401)
    assert (await post_token(env, {**good, "grant_type": "made-up"})).status_code == 400
    after = await counts()

    def delta(key: tuple[str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert delta(("client_credentials", "issued")) == 1
    assert delta(("client_credentials", "invalid_client")) == 1
    assert delta(("other", "unsupported_grant_type")) == 1
    text = (await env.http.get("/metrics")).text
    assert "ehr-rs" not in text and "made-up" not in text
