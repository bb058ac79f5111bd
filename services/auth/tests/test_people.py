"""People signing in: authorization code with PKCE S256, the sign-in page (en/es, CSRF,
throttling, no user enumeration), id_token, EHR launch context and rotating refresh tokens,
through the ASGI app on both databases (test_people_process.py runs it as a real server)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth.app import create_app
from auth.clients import add_client, disable_client
from auth.settings import Settings
from auth.tables import clients, codes, refresh_tokens
from auth.users import User, add_user, disable_user
from closedloop.db import Database
from closedloop.testing import app_client, load_script
from sqlalchemy import select, update

A = load_script(Path(__file__).parent / "assertions.py")
P = load_script(Path(__file__).parent / "people.py")

APP_SCOPES = "openid fhirUser launch launch/patient offline_access user/*.rs patient/*.rs"


@dataclass
class Env:
    http: httpx.AsyncClient
    db: Database
    alice: User
    ehr_key: Any
    app_key: Any


@pytest.fixture(scope="module")
async def env(database_url: str) -> AsyncIterator[Env]:
    settings = Settings(
        database_url=database_url,
        issuer=A.ISSUER,
        audiences=",".join(A.FHIR_BASES),
        key_refresh_seconds=0,
        login_max_failures=3,
    )
    app = create_app(settings)
    async with app_client(app, base_url=A.ISSUER) as http:
        db = app.state.db
        for client_id, scopes in (("app", APP_SCOPES), ("quiet-app", "openid user/Task.rs")):
            await add_client(
                db, client_id=client_id, name=f"The {client_id}", scopes=scopes,
                redirect_uris=[P.REDIRECT, "https://app.example.org/cb"], public=True,
            )  # fmt: skip
        app_key, ehr_key = A.client_key("ES384"), A.client_key("RS384")
        await add_client(
            db, client_id="conf-app", name="Confidential app", scopes="openid user/Task.rs",
            redirect_uris=[P.REDIRECT], jwks=A.public_jwks(app_key),
        )  # fmt: skip
        await add_client(
            db, client_id="ehr", name="EHR", scopes="system/launch system/Task.rs",
            jwks=A.public_jwks(ehr_key),
        )  # fmt: skip
        alice = await add_user(
            db, username="alice", password=P.PASSWORD, organization="Organization/clinic-1",
            role="clinician", fhir_user="Practitioner/dr-1",
        )  # fmt: skip
        for name in ("bob", "carol"):
            await add_user(
                db, username=name, password=P.PASSWORD, organization="Organization/cbo-1",
                role="cbo-staff",
            )  # fmt: skip
        await disable_user(db, "bob")
        yield Env(http, db, alice, ehr_key, app_key)


async def token(env: Env, form: dict[str, Any]) -> httpx.Response:
    return await env.http.post("/token", data=form)


def alert(page: str) -> str:
    m = re.search(r'role="alert"><p>(.*?)</p>', page)
    assert m, page[:2000]
    return m.group(1)


async def test_code_flow_with_pkce_gives_verifiable_tokens(env: Env) -> None:
    flow = await P.get_code(env.http, "app", "alice", nonce="n-0S6_WzA2Mj")
    r = await token(env, P.code_form(flow, "app"))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "openid fhirUser user/Task.rs"
    assert "refresh_token" not in body  # no offline_access asked
    assert "patient" not in body
    jwks = (await env.http.get("/jwks")).json()
    access = A.verify(body["access_token"], jwks).claims
    assert access["sub"] == env.alice.user_id and access["client_id"] == "app"
    assert access["organization"] == "Organization/clinic-1" and access["role"] == "clinician"
    assert access["fhirUser"] == "Practitioner/dr-1" and access["aud"] == A.FHIR_BASES
    assert access["scope"] == body["scope"] and access["exp"] - access["iat"] <= 300
    id_token = P.verify_id_token(body["id_token"], jwks)
    assert id_token.header["alg"] == "RS256"  # OpenID Connect's default
    assert id_token.header["kid"] in {k["kid"] for k in jwks["keys"]}
    claims = id_token.claims
    assert claims["iss"] == A.ISSUER and claims["aud"] == "app"
    assert claims["sub"] == env.alice.user_id and claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["fhirUser"] == "http://127.0.0.1:8081/fhir/Practitioner/dr-1"
    assert claims["exp"] > time.time() and claims["auth_time"] <= time.time()


async def test_a_confidential_app_signs_its_token_request(env: Env) -> None:
    flow = await P.get_code(env.http, "conf-app", "alice", scope="user/Task.rs")
    form = {
        **P.code_form(flow, "conf-app"),
        "client_assertion_type": A.ASSERTION_TYPE,
        "client_assertion": A.assertion(env.app_key, "conf-app"),
    }
    r = await token(env, form)
    assert r.status_code == 200, r.text
    assert "id_token" not in r.json()  # openid not asked
    flow = await P.get_code(env.http, "conf-app", "alice", scope="user/Task.rs")
    r = await token(env, P.code_form(flow, "conf-app"))  # no assertion: not a public client
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_pkce_is_required_and_s256_only(env: Env) -> None:
    verifier, challenge = P.pkce()
    base = P.authorize_params("app", challenge)
    for name, params in {
        "no code_challenge": {k: v for k, v in base.items() if k != "code_challenge"},
        "no method": {k: v for k, v in base.items() if k != "code_challenge_method"},
        "plain": {**base, "code_challenge_method": "plain", "code_challenge": verifier},
        "bad challenge": {**base, "code_challenge": "short"},
    }.items():
        r = await env.http.get("/authorize", params=params)
        got = P.redirect_params(r)
        assert got["error"] == "invalid_request" and "code" not in got, (name, got)
        assert got["state"] == base["state"]
    # posting the form with the challenge taken out is refused too
    page = await env.http.get("/authorize", params=base)
    form = {**P.form_fields(page.text), "username": "alice", "password": P.PASSWORD}
    del form["code_challenge"]
    got = P.redirect_params(await env.http.post("/authorize", data=form))
    assert got["error"] == "invalid_request" and "code" not in got


async def test_the_verifier_must_match(env: Env) -> None:
    flow = await P.get_code(env.http, "app", "alice")
    other, _ = P.pkce()
    r = await token(env, P.code_form(flow, "app", code_verifier=other))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    flow = await P.get_code(env.http, "app", "alice")
    form = P.code_form(flow, "app")
    del form["code_verifier"]
    r = await token(env, form)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text


async def test_a_code_is_single_use_bound_and_short_lived(env: Env) -> None:
    flow = await P.get_code(env.http, "app", "alice", scope="openid offline_access user/Task.r")
    r = await token(env, P.code_form(flow, "app", redirect_uri="https://app.example.org/cb"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"  # other redirect_uri
    r = await token(env, P.code_form(flow, "quiet-app"))  # another client
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    first = await token(env, P.code_form(flow, "app"))
    assert first.status_code == 200, first.text
    refresh = first.json()["refresh_token"]
    replay = await token(env, P.code_form(flow, "app"))
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # the replay revoked what the code had given
    r = await token(
        env, {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "app"}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text

    flow = await P.get_code(env.http, "app", "alice")
    async with env.db.write() as conn:  # a minute later
        await conn.execute(update(codes).values(expires_at=time.time() - 1))
    r = await token(env, P.code_form(flow, "app"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    async with env.db.read() as conn:  # only hashes are stored
        stored = (await conn.execute(select(codes.c.code_hash))).scalars().all()
    assert flow.code not in stored and all(re.fullmatch("[0-9a-f]{64}", h) for h in stored)


async def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_sign_in(env: Env) -> None:
    flow = await P.get_code(env.http, "app", "alice", scope="openid offline_access user/Task.rs")
    first = (await token(env, P.code_form(flow, "app"))).json()
    form = {"grant_type": "refresh_token", "client_id": "app"}
    r = await token(env, {**form, "refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    claims = A.verify(second["access_token"], (await env.http.get("/jwks")).json()).claims
    assert (
        claims["sub"] == env.alice.user_id
        and claims["scope"] == "openid offline_access user/Task.rs"
    )
    r = await token(env, {**form, "refresh_token": second["refresh_token"], "scope": "user/Task.r"})
    assert r.status_code == 200 and r.json()["scope"] == "user/Task.r", r.text
    third = r.json()
    r = await token(env, {**form, "refresh_token": first["refresh_token"]})  # reused
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = await token(env, {**form, "refresh_token": third["refresh_token"]})  # its family too
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    async with env.db.read() as conn:
        stored = (await conn.execute(select(refresh_tokens.c.token_hash))).scalars().all()
    assert first["refresh_token"] not in stored

    r = await token(env, {**form, "refresh_token": "made-up"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    flow = await P.get_code(env.http, "quiet-app", "alice", scope="openid user/Task.rs")
    assert "refresh_token" not in (await token(env, P.code_form(flow, "quiet-app"))).json()


async def test_a_disabled_user_cannot_refresh(env: Env) -> None:
    await add_user(
        env.db, username="dave", password=P.PASSWORD, organization="Organization/cbo-1",
        role="case-manager",
    )  # fmt: skip
    flow = await P.get_code(env.http, "app", "dave", scope="offline_access user/Task.rs")
    body = (await token(env, P.code_form(flow, "app"))).json()
    await disable_user(env.db, "dave")
    r = await token(
        env,
        {"grant_type": "refresh_token", "client_id": "app", "refresh_token": body["refresh_token"]},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_a_bad_client_or_redirect_uri_gets_a_page_never_a_redirect(env: Env) -> None:
    _, challenge = P.pkce()
    good = P.authorize_params("app", challenge)
    await add_client(
        env.db, client_id="gone-app", name="Gone", scopes="user/Task.r",
        redirect_uris=[P.REDIRECT], public=True,
    )  # fmt: skip
    await disable_client(env.db, "gone-app")
    for params in (
        {**good, "redirect_uri": "http://127.0.0.1:9999/callback/evil"},
        {**good, "redirect_uri": "https://evil.example.org/cb"},
        {k: v for k, v in good.items() if k != "redirect_uri"},
        {**good, "client_id": "nobody"},
        {**good, "client_id": "gone-app"},
        {**good, "client_id": "ehr"},  # a backend client: no redirect URIs
    ):
        r = await env.http.get("/authorize", params=params)
        assert r.status_code == 400 and "location" not in r.headers, params
        assert r.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in r.text and P.has_no_code(r)
    r = await env.http.get("/authorize", params=[*good.items(), ("scope", "user/Task.r")])
    assert r.status_code == 400 and "location" not in r.headers  # a repeated parameter
    flow = await P.get_code(env.http, "app", "alice")
    await disable_client(env.db, "app")
    try:
        r = await token(env, P.code_form(flow, "app"))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    finally:
        async with env.db.write() as conn:
            await conn.execute(
                update(clients).where(clients.c.client_id == "app").values(disabled=False)
            )


async def test_other_request_errors_go_back_to_the_app(env: Env) -> None:
    _, challenge = P.pkce()
    good = P.authorize_params("quiet-app", challenge)
    for params, error in (
        ({**good, "response_type": "token"}, "unsupported_response_type"),
        ({**good, "aud": "http://127.0.0.1:9/fhir"}, "invalid_request"),
        ({k: v for k, v in good.items() if k != "aud"}, "invalid_request"),
        ({**good, "scope": "user/Patient.cruds"}, "invalid_scope"),  # beyond the registration
        ({**good, "scope": "system/Task.rs"}, "invalid_scope"),
        ({**good, "scope": "openid offline_access"}, "invalid_scope"),
        ({**good, "prompt": "none"}, "login_required"),
        ({**good, "scope": "launch user/Task.rs"}, "invalid_scope"),
    ):
        got = P.redirect_params(await env.http.get("/authorize", params=params))
        assert got["error"] == error and got["state"] == good["state"], (params, got)
    got = P.redirect_params(
        await env.http.get(
            "/authorize", params={**good, "client_id": "app", "scope": "launch user/Task.r"}
        )
    )
    assert got["error"] == "invalid_request" and "launch" in got["error_description"]


async def test_wrong_password_unknown_user_and_disabled_user_look_the_same(env: Env) -> None:
    _, challenge = P.pkce()
    params = P.authorize_params("app", challenge)
    answers = [
        await P.sign_in(env.http, params, "alice", "not the password"),
        await P.sign_in(env.http, params, "nobody-here", P.PASSWORD),
        await P.sign_in(env.http, params, "bob", P.PASSWORD),  # disabled
    ]
    assert {r.status_code for r in answers} == {401}
    assert len({alert(r.text) for r in answers}) == 1
    for r in answers:
        assert "location" not in r.headers and 'aria-invalid="true"' in r.text


async def test_repeated_failures_are_throttled(env: Env) -> None:
    _, challenge = P.pkce()
    params = P.authorize_params("app", challenge)
    for _ in range(3):
        assert (await P.sign_in(env.http, params, "carol", "wrong password!")).status_code == 401
    r = await P.sign_in(env.http, params, "carol", P.PASSWORD)  # right, but too late
    assert r.status_code == 429 and "location" not in r.headers
    assert "Too many" in alert(r.text)


async def test_the_form_needs_its_csrf_cookie(env: Env) -> None:
    _, challenge = P.pkce()
    page = await env.http.get("/authorize", params=P.authorize_params("app", challenge))
    assert "httponly" in page.headers["set-cookie"].lower()
    assert "samesite=strict" in page.headers["set-cookie"].lower()
    form = {**P.form_fields(page.text), "username": "alice", "password": P.PASSWORD}
    async with httpx.AsyncClient(
        transport=env.http._transport, base_url=A.ISSUER
    ) as stranger:  # another browser: no cookie
        r = await stranger.post("/authorize", data=form)
    assert r.status_code == 400 and "location" not in r.headers
    r = await env.http.post("/authorize", data={**form, "csrf": "forged"})
    assert r.status_code == 400 and "location" not in r.headers


async def test_the_sign_in_page_speaks_spanish_and_is_labelled(env: Env) -> None:
    _, challenge = P.pkce()
    params = P.authorize_params("app", challenge)
    en = await env.http.get("/authorize", params=params)
    assert P.page_lang(en.text) == "en" and ">Password</label>" in en.text
    for r in (
        await env.http.get(
            "/authorize", params=params, headers={"Accept-Language": "es-MX,en;q=0.5"}
        ),
        await env.http.get("/authorize", params={**params, "ui_locales": "es"}),
        await env.http.get("/authorize", params={**params, "lang": "es"}),
    ):
        assert r.status_code == 200 and P.page_lang(r.text) == "es"
        assert '<label for="password">Contraseña</label>' in r.text
        assert '<label for="username">Nombre de usuario</label>' in r.text
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    r = await env.http.get(
        "/authorize", params=params, headers={"Accept-Language": "fr, es;q=0.8, en;q=0.9"}
    )
    assert P.page_lang(r.text) == "en"  # English outranks Spanish there
    r = await P.sign_in(env.http, {**params, "ui_locales": "es"}, "alice", "nope nope nope")
    assert P.page_lang(r.text) == "es" and "contraseña no son correctos" in alert(r.text)
    r = await env.http.get("/authorize", params={**params, "client_id": "nobody", "lang": "es"})
    assert P.page_lang(r.text) == "es" and "no está registrada" in r.text


async def test_ehr_launch_puts_the_patient_in_context(env: Env) -> None:
    r = await token(env, A.token_form(A.assertion(env.ehr_key, "ehr"), "system/launch"))
    assert r.status_code == 200, r.text
    ehr_token = r.json()["access_token"]
    r = await env.http.post(
        "/launch", json={"patient": "p-1"}, headers={"Authorization": f"Bearer {ehr_token}"}
    )
    assert r.status_code == 201, r.text
    launch = r.json()["launch"]
    flow = await P.get_code(
        env.http, "app", "alice", scope="launch openid patient/*.rs", launch=launch
    )
    r = await token(env, P.code_form(flow, "app"))
    assert r.status_code == 200, r.text
    assert r.json()["patient"] == "p-1"
    claims = A.verify(r.json()["access_token"], (await env.http.get("/jwks")).json()).claims
    assert claims["patient"] == "p-1"

    _, challenge = P.pkce()
    got = P.redirect_params(
        await env.http.get(
            "/authorize",
            params=P.authorize_params(
                "app", challenge, scope="launch user/Task.r", launch="forged"
            ),
        )
    )
    assert got["error"] == "invalid_request"

    r = await env.http.post("/launch", json={"patient": "p-1"})
    assert r.status_code == 401 and "www-authenticate" in r.headers
    r = await token(env, A.token_form(A.assertion(env.ehr_key, "ehr"), "system/Task.rs"))
    without = r.json()["access_token"]
    r = await env.http.post(
        "/launch", json={"patient": "p-1"}, headers={"Authorization": f"Bearer {without}"}
    )
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"
    for bad in ({"patient": "no spaces allowed"}, {"practitioner": "x"}, [], {}):
        r = await env.http.post(
            "/launch", json=bad, headers={"Authorization": f"Bearer {ehr_token}"}
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", bad


async def test_discovery_says_what_people_can_do(env: Env) -> None:
    conf = (await env.http.get("/.well-known/smart-configuration")).json()
    assert conf["authorization_endpoint"] == f"{A.ISSUER}/authorize"
    assert conf["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token", "client_credentials"} == set(
        conf["grant_types_supported"]
    )
    assert {"launch-ehr", "client-public", "sso-openid-connect", "permission-offline"} <= set(
        conf["capabilities"]
    )
    oidc = (await env.http.get("/.well-known/openid-configuration")).json()
    assert oidc["issuer"] == A.ISSUER and oidc["jwks_uri"] == f"{A.ISSUER}/jwks"
    assert oidc["id_token_signing_alg_values_supported"] == ["RS256"]
