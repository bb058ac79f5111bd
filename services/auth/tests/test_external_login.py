"""Signing in at a trusted external OpenID Connect issuer: a real fake provider on a loopback
port (the third party), a real HTTP round trip to it with state, nonce and PKCE, its id_token
checked, the subject mapped to a local account (with its organization and role), and the
app's SMART authorization carried on to our own tokens; every way it can go wrong refused
with a page and recorded (both databases)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from auth.app import create_app
from auth.cli import main as auth_cli
from auth.clients import add_client
from auth.settings import Settings
from auth.users import User, add_user, disable_user, get_user_by_external_subject
from closedloop.audit.tables import audit_events
from closedloop.testing import app_client, load_script
from sqlalchemy import select

A = load_script(Path(__file__).parent / "assertions.py")
P = load_script(Path(__file__).parent / "people.py")
F = load_script(Path(__file__).parent / "fake_idp.py")
CALLBACK = f"{A.ISSUER}/authorize/external/callback"
SCOPE = "openid fhirUser user/Task.rs"


@dataclass
class Env:
    http: httpx.AsyncClient  # the browser, at the auth service
    app: Any
    idp: Any
    maria: User
    settings: Settings
    admin_key: Any  # of an admin client, to read the audit trail


@pytest.fixture(scope="module")
async def env(database_url: str) -> AsyncIterator[Env]:
    async with F.FakeIdP(CALLBACK) as idp:
        settings = Settings(
            database_url=database_url,
            issuer=A.ISSUER,
            audiences=",".join(A.FHIR_BASES),
            key_refresh_seconds=0,
            external_oidc_issuer=idp.url,
            external_oidc_client_id=F.CLIENT_ID,
            external_oidc_client_secret=F.CLIENT_SECRET,
            external_oidc_name="Fake IdP",
        )
        app = create_app(settings)
        async with app_client(app, base_url=A.ISSUER) as http:
            db = app.state.db
            await add_client(
                db, client_id="app", name="The app", scopes=SCOPE,
                redirect_uris=[P.REDIRECT], public=True,
            )  # fmt: skip
            maria = await add_user(
                db, username="maria", password=None, organization="Organization/clinic-1",
                role="clinician", fhir_user="Practitioner/maria", external_subject="idp-user-1",
            )  # fmt: skip
            admin_key = A.client_key("ES384")
            await add_client(
                db, client_id="admin", name="Admin", scopes="system/AuditEvent.rs",
                jwks=A.public_jwks(admin_key), role="admin",
            )  # fmt: skip
            yield Env(http, app, idp, maria, settings, admin_key)


async def off_to_the_issuer(env: Env, http: httpx.AsyncClient | None = None) -> tuple[P.Flow, str]:
    """The app's authorization request, the sign-in page, its "Sign in with" button, and the
    issuer signing the person in: returns the app's PKCE and the callback URL it sent back."""
    http = http or env.http
    verifier, challenge = P.pkce()
    params = P.authorize_params("app", challenge, scope=SCOPE, nonce="app-nonce")
    page = await http.get("/authorize", params=params)
    assert page.status_code == 200 and "Sign in with Fake IdP" in page.text
    r = await http.post("/authorize/external", data=P.form_fields(page.text))
    assert r.status_code == 303, r.text
    to_issuer = r.headers["location"]
    assert to_issuer.startswith(f"{env.idp.url}/authorize?")
    async with httpx.AsyncClient() as browser:  # a real HTTP round trip to the third party
        back = await browser.get(to_issuer)
    assert back.status_code == 302, back.text
    assert back.headers["location"].startswith(CALLBACK + "?")
    return P.Flow(verifier, params, ""), back.headers["location"]


async def come_back(env: Env, callback: str) -> httpx.Response:
    parts = urlsplit(callback)
    return await env.http.get(f"{parts.path}?{parts.query}")


async def last_event(env: Env) -> dict[str, Any]:
    await env.app.state.audit.flush()
    r = await env.http.post(
        "/token", data=A.token_form(A.assertion(env.admin_key, "admin"), "system/AuditEvent.rs")
    )
    token = r.json()["access_token"]
    r = await env.http.get(
        "/fhir/AuditEvent?subtype=external-login&_count=1",
        headers={"Authorization": f"Bearer {token}"},
    )
    return dict(r.json()["entry"][0]["resource"])


def alert(page: str) -> str:
    m = re.search(r'role="alert"><p>(.*?)</p>', page)
    assert m, page[:2000]
    return m.group(1)


async def test_a_person_signs_in_at_the_issuer_and_the_app_gets_our_tokens(env: Env) -> None:
    env.idp.mode, env.idp.subject = "ok", "idp-user-1"
    flow, callback = await off_to_the_issuer(env)
    r = await come_back(env, callback)
    got = P.redirect_params(r)
    assert got["state"] == flow.params["state"] and "error" not in got, got
    # the issuer got our PKCE verifier and our client secret (Basic), and nothing else of ours
    sent = env.idp.token_requests[-1]
    assert sent["grant_type"] == "authorization_code" and len(sent["code_verifier"]) >= 43
    assert "client_secret" not in sent and sent["redirect_uri"] == CALLBACK
    token = await env.http.post("/token", data=P.code_form(flow._replace(code=got["code"]), "app"))
    assert token.status_code == 200, token.text
    body = token.json()
    jwks = (await env.http.get("/jwks")).json()
    access = A.verify(body["access_token"], jwks).claims
    assert access["sub"] == env.maria.user_id and access["iss"] == A.ISSUER
    assert access["organization"] == "Organization/clinic-1" and access["role"] == "clinician"
    assert access["fhirUser"] == "Practitioner/maria" and access["scope"] == SCOPE
    id_token = P.verify_id_token(body["id_token"], jwks).claims
    assert id_token["iss"] == A.ISSUER and id_token["nonce"] == "app-nonce"  # ours, not theirs
    event = await last_event(env)
    assert event["outcome"] == "0" and event["agent"][0]["who"]["identifier"]["value"] == "maria"
    # the state is spent: the same callback again is refused
    again = await come_back(env, callback)
    assert again.status_code == 400 and "expired" in alert(again.text)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("bad_signature", "bad_signature"),
        ("wrong_aud", "wrong_aud"),
        ("wrong_nonce", "bad_nonce"),
        ("expired", "expired"),
        ("wrong_iss", "wrong_iss"),
        ("alg_none", "bad_alg"),
    ],
)
async def test_an_id_token_that_fails_a_check_is_refused(env: Env, mode: str, reason: str) -> None:
    env.idp.mode, env.idp.subject = mode, "idp-user-1"
    try:
        _, callback = await off_to_the_issuer(env)
        r = await come_back(env, callback)
    finally:
        env.idp.mode = "ok"
    assert r.status_code == 401, r.text
    assert "could not be trusted" in alert(r.text) and P.has_no_code(r)
    event = await last_event(env)
    assert event["outcome"] == "4" and event["outcomeDesc"].startswith(reason), event


async def test_an_unknown_subject_is_refused_with_a_clear_page(env: Env) -> None:
    env.idp.subject = "stranger-42"
    try:
        _, callback = await off_to_the_issuer(env)
        r = await come_back(env, callback)
    finally:
        env.idp.subject = "idp-user-1"
    assert r.status_code == 403 and P.has_no_code(r)
    assert "not linked to an account here" in alert(r.text)
    assert "stranger-42" not in r.text
    event = await last_event(env)
    assert event["outcomeDesc"].startswith("unknown_subject")
    assert event["agent"][0]["who"]["identifier"]["value"] == "external:stranger-42"


async def test_the_callback_only_works_in_the_browser_that_started_it(env: Env) -> None:
    _, callback = await off_to_the_issuer(env)
    parts = urlsplit(callback)
    async with app_client(env.app, base_url=A.ISSUER) as other_browser:
        r = await other_browser.get(f"{parts.path}?{parts.query}")
    assert r.status_code == 400 and P.has_no_code(r)
    r = await env.http.get("/authorize/external/callback?code=x&state=made-up")
    assert r.status_code == 400
    assert (await last_event(env))["outcomeDesc"].startswith("bad_state")


async def test_a_user_added_from_the_cli_signs_in_and_a_disabled_one_does_not(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_DATABASE_URL", env.settings.database_url)
    argv = [
        "users", "add", "--username", "nora", "--organization", "Organization/cbo-1",
        "--role", "cbo-staff", "--external-subject", "idp-nora",
    ]  # fmt: skip
    await asyncio.to_thread(auth_cli, argv)  # no password asked
    env.idp.subject = "idp-nora"
    try:
        flow, callback = await off_to_the_issuer(env)
        got = P.redirect_params(await come_back(env, callback))
        r = await env.http.post("/token", data=P.code_form(flow._replace(code=got["code"]), "app"))
        claims = A.verify(r.json()["access_token"], (await env.http.get("/jwks")).json()).claims
        assert claims["role"] == "cbo-staff" and claims["organization"] == "Organization/cbo-1"
        # a password sign-in as nora is impossible: she has none here
        _, challenge = P.pkce()
        params = P.authorize_params("app", challenge, scope=SCOPE)
        assert (await P.sign_in(env.http, params, "nora", "x" * 20)).status_code == 401
        await disable_user(env.app.state.db, "nora")
        _, callback = await off_to_the_issuer(env)
        r = await come_back(env, callback)
        assert r.status_code == 403 and "disabled" in alert(r.text)
    finally:
        env.idp.subject = "idp-user-1"


async def test_without_an_issuer_configured_there_is_no_button(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url, issuer=A.ISSUER))
    async with app_client(app, base_url=A.ISSUER) as http:
        await add_client(
            app.state.db, client_id="plain-app", name="The app", scopes=SCOPE,
            redirect_uris=[P.REDIRECT], public=True,
        )  # fmt: skip
        params = P.authorize_params("plain-app", P.pkce()[1], scope=SCOPE)
        params["aud"] = "http://127.0.0.1:8081/fhir"
        page = await http.get("/authorize", params=params)
        assert page.status_code == 200 and "/authorize/external" not in page.text
        r = await http.post("/authorize/external", data=P.form_fields(page.text))
        assert r.status_code == 404


async def test_provisioning_when_configured_makes_the_account(env: Env) -> None:
    settings = env.settings.model_copy(
        update={
            "external_oidc_provision_organization": "Organization/cbo-9",
            "external_oidc_provision_role": "cbo-staff",
        }
    )
    app = create_app(settings)
    env.idp.subject = "newcomer@cbo9.example.org"
    try:
        async with app_client(app, base_url=A.ISSUER) as http:
            flow, callback = await off_to_the_issuer(env, http)
            parts = urlsplit(callback)
            got = P.redirect_params(await http.get(f"{parts.path}?{parts.query}"))
            r = await http.post("/token", data=P.code_form(flow._replace(code=got["code"]), "app"))
            claims = A.verify(r.json()["access_token"], (await http.get("/jwks")).json()).claims
            await app.state.audit.flush()
    finally:
        env.idp.subject = "idp-user-1"
    assert claims["role"] == "cbo-staff" and claims["organization"] == "Organization/cbo-9"
    user = await get_user_by_external_subject(env.app.state.db, "newcomer@cbo9.example.org")
    assert user is not None and user.username == "newcomer@cbo9.example.org"
    assert claims["sub"] == user.user_id
    async with env.app.state.db.read() as conn:
        made = (
            await conn.execute(select(audit_events).where(audit_events.c.subtype == "user-add"))
        ).all()
    assert any(row.agent_subject == "external-provisioning" for row in made)
