"""The authorization server's audit trail: every token issued or refused (with the reason),
every sign-in, every administrator's change from the CLI, in its own database; searchable as
FHIR AuditEvents by an admin only; and never a secret, an assertion, a code or a token in it
(both databases)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth.app import create_app
from auth.cli import main as auth_cli
from auth.clients import add_client, disable_client
from auth.settings import Settings
from auth.users import add_user
from closedloop.audit.tables import audit_entities, audit_events
from closedloop.db import Database
from closedloop.testing import app_client, load_script
from sqlalchemy import select

A = load_script(Path(__file__).parent / "assertions.py")
P = load_script(Path(__file__).parent / "people.py")
SECURITY = "urn:closedloop:audit:security-event"


@dataclass
class Env:
    http: httpx.AsyncClient
    app: Any
    db: Database
    settings: Settings
    key: Any  # the EHR's, the admin's and the CBO's key
    sent: list[str]  # every secret, assertion, code and token a test sent or received


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
        key = A.client_key("ES384")
        for client_id, scopes, role, org in (
            ("ehr", "system/Task.rs", "requester", "Organization/ehr-1"),
            ("admin", "system/AuditEvent.rs", "admin", None),
            ("admin-no-audit", "system/Task.rs", "admin", None),
            ("cbo", "system/*.cruds", "cbo", "Organization/cbo-1"),
            ("gone", "system/Task.rs", "requester", "Organization/ehr-1"),
        ):
            await add_client(
                db, client_id=client_id, name=client_id, scopes=scopes,
                jwks=A.public_jwks(key), role=role, organization=org,
            )  # fmt: skip
        await disable_client(db, "gone")
        await add_client(
            db, client_id="app", name="App", scopes="openid fhirUser offline_access user/*.rs",
            redirect_uris=[P.REDIRECT], public=True,
        )  # fmt: skip
        await add_user(
            db, username="alice", password=P.PASSWORD, organization="Organization/clinic-1",
            role="clinician", fhir_user="Practitioner/dr-1",
        )  # fmt: skip
        yield Env(http, app, db, settings, key, [P.PASSWORD])


async def post_token(env: Env, form: dict[str, str]) -> httpx.Response:
    env.sent += [v for k, v in form.items() if k in ("client_assertion", "code", "refresh_token")]
    env.sent += [v for k, v in form.items() if k == "code_verifier"]
    r = await env.http.post("/token", data=form)
    if r.status_code == 200:
        body = r.json()
        env.sent += [body[k] for k in ("access_token", "id_token", "refresh_token") if k in body]
    return r


async def admin_token(
    env: Env, client_id: str = "admin", scope: str = "system/AuditEvent.rs"
) -> str:
    r = await post_token(env, A.token_form(A.assertion(env.key, client_id), scope))
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def events(env: Env, **params: str) -> list[dict[str, Any]]:
    """The trail as an admin searches it, after what is buffered is written."""
    await env.app.state.audit.flush()
    token = await admin_token(env)
    r = await env.http.get(
        "/fhir/AuditEvent", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    return [e["resource"] for e in r.json().get("entry", [])]


def reason(event: dict[str, Any]) -> str:
    return str(event.get("outcomeDesc", "")).split(" ")[0]


def who(event: dict[str, Any]) -> str:
    return str(event["agent"][0]["who"]["identifier"]["value"])


class TestTokenDecisions:
    async def test_an_issued_token_is_recorded_with_its_client(self, env: Env) -> None:
        r = await post_token(env, A.token_form(A.assertion(env.key, "ehr")))
        assert r.status_code == 200
        found = await events(env, agent="ehr", subtype="client_credentials", outcome="0")
        event = found[0]
        assert event["type"]["code"] == "110114"  # DICOM User Authentication
        assert event["subtype"] == [{"system": SECURITY, "code": "client_credentials"}]
        assert event["action"] == "E" and event["outcomeDesc"] == "HTTP 200"
        assert who(event) == "ehr" and event["agent"][0]["altId"] == "ehr"
        assert event["agent"][0]["type"]["text"] == "requester"
        assert event["agent"][1]["who"]["reference"] == "Organization/ehr-1"
        assert event["source"]["observer"]["display"] == "auth"
        client = event["entity"][0]["what"]["identifier"]
        assert client == {"system": "urn:closedloop:auth:client", "value": "ehr"}

    async def test_every_refusal_is_recorded_with_its_reason(self, env: Env) -> None:
        other = A.client_key("ES384", kid=env.key.kid)  # same kid, another key: bad signature
        replayed = A.assertion(env.key, "cbo", jti="once-only")
        assert (await post_token(env, A.token_form(replayed, "system/Task.rs"))).status_code == 200
        cases = {
            "bad_signature": ("ehr", A.assertion(other, "ehr")),
            "wrong_aud": ("ehr", A.assertion(env.key, "ehr", aud="https://elsewhere/token")),
            "expired": ("ehr", A.assertion(env.key, "ehr", exp_in=-300)),
            "exp_too_far": ("ehr", A.assertion(env.key, "ehr", exp_in=3600)),
            "replayed_jti": ("cbo", replayed),
            "unknown_client": ("nobody", A.assertion(env.key, "nobody")),
            "disabled_client": ("gone", A.assertion(env.key, "gone")),
            "bad_alg": ("ehr", A.unsigned_assertion("ehr", env.key.kid)),
            "unknown_key": ("ehr", A.assertion(env.key, "ehr", kid="not-a-key")),
        }
        for expected, (client_id, assertion) in cases.items():
            r = await post_token(env, A.token_form(assertion))
            assert r.status_code in (400, 401), (expected, r.text)
            found = await events(env, agent=client_id, outcome="4", _count="1")
            assert found and reason(found[0]) == expected, (expected, found)
            assert found[0]["outcome"] == "4" and str(r.status_code) in found[0]["outcomeDesc"]
        r = await post_token(env, A.token_form(A.hs256_with_public_key(env.key, "ehr")))
        assert r.status_code == 401
        assert reason((await events(env, agent="ehr", outcome="4", _count="1"))[0]) == "bad_alg"
        r = await post_token(env, A.token_form(A.assertion(env.key, "ehr"), "system/Patient.cruds"))
        assert r.status_code == 400
        assert reason((await events(env, agent="ehr", outcome="4", _count="1"))[0]) == "bad_scope"


class TestPeople:
    async def test_sign_ins_codes_and_refreshes_are_recorded(self, env: Env) -> None:
        # a wrong password names the account; a made-up username is not written down
        _, challenge = P.pkce()
        params = P.authorize_params(
            "app", challenge, scope="openid fhirUser offline_access user/Task.rs"
        )
        assert (await P.sign_in(env.http, params, "alice", "wrong password!")).status_code == 401
        assert (await P.sign_in(env.http, params, "hunter2-typo", "x" * 12)).status_code == 401
        failed = await events(env, subtype="login", outcome="4", _count="2")
        assert [who(e) for e in failed] == ["unknown-user", "alice"]
        assert {reason(e) for e in failed} == {"bad_login"}
        flow = await P.get_code(
            env.http, "app", "alice", scope="openid fhirUser offline_access user/Task.rs"
        )
        login = (await events(env, subtype="login", outcome="0", _count="1"))[0]
        assert who(login) == "alice" and login["agent"][0]["altId"] == "app"
        assert login["agent"][0]["type"]["text"] == "clinician"
        assert {"reference": "Practitioner/dr-1"} in [e["what"] for e in login["entity"]]
        # a wrong verifier, the code, a refresh, a made-up refresh, then the code again
        bad = {**P.code_form(flow, "app"), "code_verifier": P.pkce()[0]}
        assert (await post_token(env, bad)).status_code == 400
        good = await post_token(env, P.code_form(flow, "app"))
        assert good.status_code == 200, good.text
        refresh = {"grant_type": "refresh_token", "client_id": "app"}
        r = await post_token(env, {**refresh, "refresh_token": good.json()["refresh_token"]})
        assert r.status_code == 200, r.text
        assert (await post_token(env, {**refresh, "refresh_token": "made-up"})).status_code == 400
        found = await events(env, subtype="refresh_token", _count="2")
        assert [(e["outcome"], reason(e)) for e in found] == [
            ("4", "refresh_refused"), ("0", "HTTP"),
        ]  # fmt: skip
        assert who(found[1]) == "alice" and who(found[0]) == "app"
        assert (await post_token(env, P.code_form(flow, "app"))).status_code == 400
        found = await events(env, subtype="authorization_code", _count="3")
        assert [(e["outcome"], reason(e)) for e in found] == [
            ("4", "code_reused"), ("0", "HTTP"), ("4", "bad_pkce"),
        ]  # fmt: skip
        assert {who(e) for e in found} == {"alice"}


class TestSearch:
    async def test_only_an_admin_with_an_audit_scope_reads_the_trail(self, env: Env) -> None:
        r = await env.http.get("/fhir/AuditEvent")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["resourceType"] == "OperationOutcome"
        r = await env.http.get("/fhir/AuditEvent", headers={"Authorization": "Bearer nonsense"})
        assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"]
        for client_id, scope in (("cbo", "system/*.rs"), ("admin-no-audit", "system/Task.rs")):
            token = await admin_token(env, client_id, scope)
            r = await env.http.get("/fhir/AuditEvent", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 403, (client_id, r.text)
            assert r.json()["issue"][0]["code"] == "forbidden"
        refused = await events(env, subtype="search-type", outcome="4", _count="4")
        assert [e["outcomeDesc"] for e in refused] == [
            "HTTP 403",
            "HTTP 403",
            "HTTP 401",
            "HTTP 401",
        ]
        assert who(refused[0]) == "admin-no-audit"

    async def test_parameters_paging_read_and_errors(self, env: Env) -> None:
        await post_token(env, A.token_form(A.assertion(env.key, "ehr")))
        await post_token(env, A.token_form(A.assertion(env.key, "ehr")))
        token = await admin_token(env)
        auth = {"Authorization": f"Bearer {token}"}
        await env.app.state.audit.flush()
        r = await env.http.get("/fhir/AuditEvent?agent=ehr&outcome=0&_count=1", headers=auth)
        bundle = r.json()
        assert len(bundle["entry"]) == 1
        after = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
        assert after.startswith(f"{A.ISSUER}/fhir/AuditEvent?")
        second = (await env.http.get(after, headers=auth)).json()["entry"][0]
        assert second["resource"]["id"] != bundle["entry"][0]["resource"]["id"]
        event_id = bundle["entry"][0]["resource"]["id"]
        r = await env.http.get(f"/fhir/AuditEvent/{event_id}", headers=auth)
        assert r.status_code == 200 and r.json()["id"] == event_id
        r = await env.http.get("/fhir/AuditEvent/nope", headers=auth)
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
        r = await env.http.get("/fhir/AuditEvent?agnet=ehr", headers=auth)
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
        r = await env.http.get("/fhir/AuditEvent/x")
        assert r.status_code == 401


class TestAdministration:
    async def test_cli_changes_are_recorded(
        self, env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("AUTH_DATABASE_URL", env.settings.database_url)
        monkeypatch.setenv("AUTH_ISSUER", A.ISSUER)
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps(A.public_jwks(A.client_key("ES384"))))
        for argv in (
            ["clients", "add", "--client-id", "cli-made", "--name", "From the CLI",
             "--jwks", str(jwks), "--scopes", "system/Task.rs"],
            ["clients", "disable", "cli-made"],
            ["keys", "rotate"],
        ):  # fmt: skip
            await asyncio.to_thread(auth_cli, argv)
        found = await events(env, action="C,U", _count="3")
        assert [e["subtype"][0]["code"] for e in found] == [
            "keys-rotate", "client-disable", "client-add",
        ]  # fmt: skip
        assert [e["action"] for e in found] == ["U", "U", "C"]
        assert {who(e) for e in found} <= {
            "cli",
            *(f"cli:{n}" for n in [__import__("getpass").getuser()]),
        }
        assert found[0]["type"]["code"] == "110113" and found[1]["type"]["code"] == "110137"
        target = found[2]["entity"][0]["what"]["identifier"]
        assert target == {"system": "urn:closedloop:auth:client", "value": "cli-made"}
        assert "outcomeDesc" not in found[0]


async def test_no_secret_assertion_code_or_token_is_ever_stored(env: Env) -> None:
    """Runs last in this module: everything the tests above sent and got is checked."""
    await env.app.state.audit.flush()
    async with env.db.read() as conn:
        rows = [*(await conn.execute(select(audit_events))).all()]
        rows += [*(await conn.execute(select(audit_entities))).all()]
    stored = "\n".join(str(v) for row in rows for v in row)
    assert len(env.sent) > 20 and len(rows) > 20
    for secret in env.sent:
        assert secret not in stored
        for piece in secret.split("."):  # not a JWT's header, claims or signature either
            assert len(piece) < 16 or piece not in stored
