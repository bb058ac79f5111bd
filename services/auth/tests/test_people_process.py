"""The authorization code flow with PKCE through a real HTTP round trip, set up the way an
operator does it: `auth users add` (password on stdin), `auth clients add --public
--redirect-uri`, `auth launch`, then the server as its own process and a browser-like client
signing in, the app redeeming the code and refreshing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
from closedloop.testing import free_port, load_script, running_service

A = load_script(Path(__file__).parent / "assertions.py")
P = load_script(Path(__file__).parent / "people.py")


def auth(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auth.cli", *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_code_flow_against_a_running_server(database_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"AUTH_DATABASE_URL": database_url, "AUTH_ISSUER": base}
    add_user = [
        "users", "add", "--username", "maria", "--organization", "Organization/clinic-9",
        "--role", "case-manager", "--fhir-user", "Practitioner/maria",
    ]  # fmt: skip
    out = await asyncio.to_thread(auth, env, *add_user, stdin=P.PASSWORD + "\n")
    assert out.returncode == 0, out.stderr
    assert P.PASSWORD not in out.stdout + out.stderr
    short = await asyncio.to_thread(
        auth, env, *add_user[:3], "other", *add_user[4:], stdin="short\n"
    )
    assert short.returncode != 0 and "12-1024 characters" in short.stderr
    add_app = [
        "clients", "add", "--client-id", "smart-app", "--name", "SMART app", "--public",
        "--redirect-uri", P.REDIRECT,
        "--scopes", "openid fhirUser launch offline_access patient/*.rs user/Task.rs",
    ]  # fmt: skip
    out = await asyncio.to_thread(auth, env, *add_app)
    assert out.returncode == 0, out.stderr
    listed = await asyncio.to_thread(auth, env, "clients", "list")
    assert "smart-app\tactive\tSMART app\t-\t-\tpublic\t" in listed.stdout
    assert listed.stdout.rstrip().endswith(P.REDIRECT)
    users = await asyncio.to_thread(auth, env, "users", "list")
    assert users.stdout.startswith("maria\tactive\tcase-manager\tOrganization/clinic-9\t")
    launch = await asyncio.to_thread(auth, env, "launch", "--patient", "pat-7")
    assert launch.returncode == 0, launch.stderr

    async with (
        running_service("auth", "AUTH_", database_url, extra_env=env, port=port),
        httpx.AsyncClient(base_url=base) as browser,
        httpx.AsyncClient(base_url=base) as app,
    ):
        flow = await P.get_code(
            browser, "smart-app", "maria",
            scope="launch openid fhirUser offline_access patient/*.rs",
            launch=launch.stdout.strip(), nonce="abc",
            aud=P.FHIR_BASE,
        )  # fmt: skip
        r = await app.post("/token", data=P.code_form(flow, "smart-app"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["patient"] == "pat-7" and body["refresh_token"]
        jwks = (await app.get("/jwks")).json()
        claims = P.verify_id_token(body["id_token"], jwks).claims
        assert claims["aud"] == "smart-app" and claims["nonce"] == "abc"
        assert claims["fhirUser"].endswith("/Practitioner/maria") and claims["iss"] == base
        access = A.verify(body["access_token"], jwks).claims
        assert access["organization"] == "Organization/clinic-9" and access["patient"] == "pat-7"

        form = {"grant_type": "refresh_token", "client_id": "smart-app"}
        r = await app.post("/token", data={**form, "refresh_token": body["refresh_token"]})
        assert r.status_code == 200, r.text
        assert r.json()["patient"] == "pat-7"
        rotated = r.json()["refresh_token"]
        again = await app.post("/token", data={**form, "refresh_token": body["refresh_token"]})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

        replay = await app.post("/token", data=P.code_form(flow, "smart-app"))
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        r = await app.post("/token", data={**form, "refresh_token": rotated})
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"  # revoked with it

        disabled = await asyncio.to_thread(auth, env, "users", "disable", "maria")
        assert disabled.returncode == 0, disabled.stderr
        _, challenge = P.pkce()
        r = await P.sign_in(browser, P.authorize_params("smart-app", challenge), "maria")
        assert r.status_code == 401 and "location" not in r.headers
