"""End to end: the auth service and referral-api as real processes. A backend client is
registered and gets its token with the `auth` CLI, exactly as the README shows; referral-api,
with REFERRAL_API_AUTH_ENABLED, takes that token, refuses requests without one (401), and
refuses what its scopes do not cover (403); after `auth keys rotate`, tokens signed with the
new key are taken too (referral-api fetches the JWKS again when it meets the new kid)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from closedloop.testing import free_port, running_service
from joserfc import jwk, jwt

FHIR = {"Content-Type": "application/fhir+json"}


def auth_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "auth.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def token_for(issuer: str, client_id: str, key_file: Path) -> str:
    """POST /token with a client assertion signed by the client's key (what `auth token`
    does, without starting another process)."""
    private = json.loads(key_file.read_text())
    key = jwk.import_key(private)
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{issuer}/token",
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
    }
    header = {"alg": private.get("alg", "ES384"), "kid": key.kid, "typ": "JWT"}
    assertion = jwt.encode(header, claims, key, algorithms=[header["alg"]])
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{issuer}/token",
            data={
                "grant_type": "client_credentials",
                "scope": "system/Patient.rs",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def test_a_token_from_the_auth_service_is_accepted_by_referral_api() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        auth_port, referral_port = free_port(), free_port()
        issuer = f"http://127.0.0.1:{auth_port}"
        fhir_base = f"http://127.0.0.1:{referral_port}/fhir"
        auth_env = {
            "AUTH_DATABASE_URL": f"sqlite:///{tmp}/auth.db",
            "AUTH_ISSUER": issuer,
            "AUTH_AUDIENCES": fhir_base,
            "AUTH_KEY_REFRESH_SECONDS": "0",
        }
        key = Path(tmp) / "ehr-key.json"
        auth_cli(
            auth_env,
            "clients",
            "add",
            "--client-id",
            "ehr-e2e",
            "--name",
            "EHR",
            "--scopes",
            "system/Patient.cruds system/Task.rs",
            "--organization",
            "Organization/ehr-1",
            "--generate-key",
            str(key),
        )
        async with running_service(
            "auth", "AUTH_", auth_env["AUTH_DATABASE_URL"], auth_env, port=auth_port
        ):
            referral_env = {
                "REFERRAL_API_AUTH_ENABLED": "true",
                "REFERRAL_API_AUTH_ISSUER": issuer,
                "REFERRAL_API_EVENT_SINK_URL": "",
            }
            async with running_service(
                "referral_api",
                "REFERRAL_API_",
                f"sqlite:///{tmp}/referral.db",
                referral_env,
                port=referral_port,
            ) as base:
                token = await asyncio.to_thread(
                    auth_cli, auth_env, "token", "--client-id", "ehr-e2e", "--key", str(key)
                )
                auth = {"Authorization": f"Bearer {token}"}
                async with httpx.AsyncClient(base_url=base) as http:
                    # the client is a requester for Organization/ehr-1: it sees the Patients
                    # that Organization manages (see README, Security)
                    r = await http.post(
                        "/fhir/Patient",
                        json={
                            "resourceType": "Patient",
                            "managingOrganization": {"reference": "Organization/ehr-1"},
                        },
                        headers={**FHIR, **auth},
                    )
                    assert r.status_code == 201, r.text
                    patient = r.headers["location"].split("/_history")[0]
                    assert (await http.get(patient, headers=auth)).status_code == 200
                    r = await http.get(patient)
                    assert r.status_code == 401
                    assert r.headers["www-authenticate"] == f'Bearer realm="{fhir_base}"'
                    r = await http.post(
                        "/fhir/Task", json={"resourceType": "Task"}, headers={**FHIR, **auth}
                    )
                    assert r.status_code == 403 and "needs system/Task.c" in r.text
                    smart = (await http.get("/fhir/.well-known/smart-configuration")).json()
                    assert smart["token_endpoint"] == f"{issuer}/token"
                    assert smart["jwks_uri"] == f"{issuer}/jwks"

                    # a key rotation: the next token names a kid referral-api has not seen
                    await asyncio.to_thread(auth_cli, auth_env, "keys", "rotate")
                    await asyncio.sleep(1.1)  # past the JWKS cache's refetch floor
                    rotated = await token_for(issuer, "ehr-e2e", key)
                    assert rotated.split(".")[0] != token.split(".")[0]  # another kid
                    r = await http.get(patient, headers={"Authorization": f"Bearer {rotated}"})
                    assert r.status_code == 200, r.text
                    assert (await http.get(patient, headers=auth)).status_code == 200  # old key
