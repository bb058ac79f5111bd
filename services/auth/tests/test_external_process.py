"""Signing in at an external issuer as an operator sets it up: the auth service a real
process configured only by AUTH_EXTERNAL_OIDC_* environment variables, the person's account
added with `auth users add --external-subject` (no password), a fake provider on a loopback
port, a browser-like client going back and forth, and the decisions read back from the
audit trail with an admin's token."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from closedloop.testing import free_port, load_script, running_service
from joserfc import jwk

A = load_script(Path(__file__).parent / "assertions.py")
P = load_script(Path(__file__).parent / "people.py")
F = load_script(Path(__file__).parent / "fake_idp.py")
SCOPE = "openid fhirUser user/Task.rs"


def auth(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auth.cli", *args],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_external_sign_in_against_a_running_server(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with F.FakeIdP(f"{base}/authorize/external/callback") as idp:
        env = {
            "AUTH_DATABASE_URL": database_url,
            "AUTH_ISSUER": base,
            "AUTH_EXTERNAL_OIDC_ISSUER": idp.url,
            "AUTH_EXTERNAL_OIDC_CLIENT_ID": F.CLIENT_ID,
            "AUTH_EXTERNAL_OIDC_CLIENT_SECRET": F.CLIENT_SECRET,
            "AUTH_EXTERNAL_OIDC_NAME": "County IdP",
            "AUTH_EXTERNAL_OIDC_CLAIM": "email",
        }
        steps = [
            ["users", "add", "--username", "rosa", "--organization", "Organization/cbo-3",
             "--role", "cbo-staff", "--external-subject", "rosa@cbo.example.org"],
            ["clients", "add", "--client-id", "web", "--name", "Web app", "--public",
             "--redirect-uri", P.REDIRECT, "--scopes", SCOPE],
            ["clients", "add", "--client-id", "auditor", "--name", "Auditor", "--role", "admin",
             "--scopes", "system/AuditEvent.rs", "--generate-key", str(tmp_path / "k.json")],
        ]  # fmt: skip
        for step in steps:
            out = await asyncio.to_thread(auth, env, *step)
            assert out.returncode == 0, out.stderr
        idp.subject, idp.email = "opaque-7", "rosa@cbo.example.org"
        async with (
            running_service("auth", "AUTH_", database_url, extra_env=env, port=port),
            httpx.AsyncClient(base_url=base) as browser,
        ):
            verifier, challenge = P.pkce()
            params = P.authorize_params("web", challenge, scope=SCOPE)
            page = await browser.get("/authorize", params=params)
            assert "Sign in with County IdP" in page.text
            r = await browser.post("/authorize/external", data=P.form_fields(page.text))
            assert r.status_code == 303 and r.headers["location"].startswith(idp.url)
            r = await browser.get(r.headers["location"])  # at the provider, and back
            assert r.status_code == 302
            r = await browser.get(r.headers["location"])
            got = P.redirect_params(r)
            assert got["state"] == params["state"]
            flow = P.Flow(verifier, params, got["code"])
            r = await browser.post("/token", data=P.code_form(flow, "web"))
            assert r.status_code == 200, r.text
            claims = A.verify(r.json()["access_token"], (await browser.get("/jwks")).json()).claims
            assert claims["role"] == "cbo-staff" and claims["organization"] == "Organization/cbo-3"

            key = json.loads((tmp_path / "k.json").read_text())
            assertion = A.assertion(jwk.import_key(key), "auditor", aud=f"{base}/token")
            r = await browser.post("/token", data=A.token_form(assertion, "system/AuditEvent.rs"))
            admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
            for _ in range(50):  # the trail is written within 0.2 s
                r = await browser.get("/fhir/AuditEvent?agent=rosa", headers=admin)
                found = [e["resource"]["subtype"][0]["code"] for e in r.json().get("entry", [])]
                if {"external-login", "authorization_code"} <= set(found):
                    break
                await asyncio.sleep(0.1)
            assert {"external-login", "authorization_code"} <= set(found), r.text
            r = await browser.get("/fhir/AuditEvent?subtype=user-add,client-add", headers=admin)
            assert len(r.json()["entry"]) == 3  # rosa, web and auditor, by the CLI
