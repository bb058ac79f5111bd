"""The `auth` command as a newcomer uses it, each step a real process: register a client with a
generated key, serve, get a token, rotate the server key, disable the client."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
from auth.tables import signing_keys
from closedloop.db import create_database
from closedloop.testing import free_port, load_script, running_service
from sqlalchemy import select

A = load_script(Path(__file__).parent / "assertions.py")


def auth(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auth.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_register_serve_token_rotate_disable(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "AUTH_DATABASE_URL": database_url,
        "AUTH_ISSUER": base,
        "AUTH_KEY_REFRESH_SECONDS": "0",
        "AUTH_KEY_SECRET": "test-only-secret",
    }
    key_file = tmp_path / "dev-client.json"
    add = [
        "clients", "add", "--client-id", "dev", "--name", "Dev client",
        "--scopes", "system/Task.rs system/ServiceRequest.crs",
        "--organization", "Organization/o1", "--generate-key", str(key_file),
    ]  # fmt: skip
    out = await asyncio.to_thread(auth, env, *add)
    assert out.returncode == 0, out.stderr
    assert "registered dev" in out.stdout
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = await asyncio.to_thread(auth, env, *add[:-1], str(tmp_path / "other.json"))
    assert again.returncode != 0 and "already registered" in again.stderr
    bad = await asyncio.to_thread(
        auth, env, "clients", "add", "--client-id", "x", "--name", "X",
        "--jwks-url", "https://example.org/jwks", "--scopes", "patient/Task.r",
    )  # fmt: skip
    assert bad.returncode != 0 and "not a SMART v2 system scope" in bad.stderr
    listed = await asyncio.to_thread(auth, env, "clients", "list")
    assert listed.stdout.startswith("dev\tactive\tDev client\tOrganization/o1"), listed.stdout

    async with (
        running_service("auth", "AUTH_", database_url, extra_env=env, port=port),
        httpx.AsyncClient(base_url=base) as http,
    ):
        got = await asyncio.to_thread(
            auth, env, "token", "--client-id", "dev", "--key", str(key_file)
        )
        assert got.returncode == 0, got.stderr
        old_token = got.stdout.strip()
        old = A.verify(old_token, (await http.get("/jwks")).json())
        assert old.claims["sub"] == "dev" and old.claims["organization"] == "Organization/o1"
        assert old.claims["scope"] == "system/Task.rs system/ServiceRequest.crs"

        rotated = await asyncio.to_thread(auth, env, "keys", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        new_kid = rotated.stdout.split()[3]
        got = await asyncio.to_thread(
            auth, env, "token", "--client-id", "dev", "--key", str(key_file),
            "--scope", "system/Task.r",
        )  # fmt: skip
        assert got.returncode == 0, got.stderr
        jwks = (await http.get("/jwks")).json()
        assert A.verify(got.stdout.strip(), jwks).header["kid"] == new_kid
        assert A.verify(old_token, jwks).header["kid"] == old.header["kid"] != new_kid

        disabled = await asyncio.to_thread(auth, env, "clients", "disable", "dev")
        assert disabled.returncode == 0, disabled.stderr
        refused = await asyncio.to_thread(
            auth, env, "token", "--client-id", "dev", "--key", str(key_file)
        )
        assert refused.returncode != 0 and "invalid_client" in refused.stderr

    db = create_database(database_url, pool_size=1)
    try:
        async with db.read() as conn:
            stored = (await conn.execute(select(signing_keys.c.private_jwk))).scalars().all()
    finally:
        await db.dispose()
    # an access-token key and an id_token key, each rotated once; all encrypted at rest
    assert len(stored) == 4 and all(s.startswith("fernet:") for s in stored)


async def test_ensure_is_idempotent_and_keeps_its_key(database_url: str, tmp_path: Path) -> None:
    """`clients ensure` (make run's): the key made once (0600) in AUTH_CLIENT_KEYS_DIR, the
    client registered once with its role; a lost key is an error, never a silent new client."""
    env = {"AUTH_DATABASE_URL": database_url, "AUTH_CLIENT_KEYS_DIR": str(tmp_path / "keys")}
    ensure = [
        "clients", "ensure", "--client-id", "svc", "--name", "A service",
        "--role", "service", "--scopes", "system/Patient.r",
    ]  # fmt: skip
    first = await asyncio.to_thread(auth, env, *ensure)
    assert first.returncode == 0 and "registered svc" in first.stdout, first.stderr
    key_file = tmp_path / "keys" / "svc.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    kept = key_file.read_text()
    again = await asyncio.to_thread(auth, env, *ensure)
    assert again.returncode == 0 and "already registered" in again.stdout, again.stderr
    assert key_file.read_text() == kept
    listed = await asyncio.to_thread(auth, env, "clients", "list")
    rows = [line for line in listed.stdout.splitlines() if line.startswith("svc\t")]
    assert rows == ["svc\tactive\tA service\t-\tservice\tinline JWKS\tsystem/Patient.r"], rows
    # an upgrade grants more and adds a redirect URI: the next ensure brings them, same key
    upgraded = [*ensure[:-1], "system/Patient.r system/Task.rs"]
    upgraded += ["--redirect-uri", "http://127.0.0.1:8080/auth/callback"]
    newer = await asyncio.to_thread(auth, env, *upgraded)
    assert newer.returncode == 0 and "svc updated" in newer.stdout, newer.stderr
    assert key_file.read_text() == kept
    listed = await asyncio.to_thread(auth, env, "clients", "list")
    rows = [line for line in listed.stdout.splitlines() if line.startswith("svc\t")]
    assert rows[0].endswith(
        "\tsystem/Patient.r system/Task.rs\thttp://127.0.0.1:8080/auth/callback"
    ), rows
    same = await asyncio.to_thread(auth, env, *upgraded)
    assert "already registered" in same.stdout, same.stderr
    wrong = await asyncio.to_thread(auth, env, *ensure[:-1], "system/Nonsense.zz")
    assert wrong.returncode != 0 and wrong.stderr.strip(), wrong.stdout
    key_file.unlink()
    lost = await asyncio.to_thread(auth, env, *ensure)
    assert lost.returncode != 0 and "registered with other keys" in lost.stderr
