"""The README's token recipe works as written, against real processes: the `auth clients
ensure` line registers the dev client and keeps its key, `auth token --client-id dev` (from
"Two commands") prints a token, and the curl examples of "Using the FHIR API" run with it,
unchanged but for the port, against referral-api trusting that auth service; without the
header the same call is refused."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from closedloop.testing import free_port, running_service

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The text of a ``##``/``###`` section, up to the next heading of any level."""
    start = README.index(f"\n{title}\n")
    following = re.search(r"\n#{2,3} ", README[start + len(title) + 2 :])
    assert following is not None
    return README[start : start + len(title) + 2 + following.start()]


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def as_run_here(script: str, referral_port: int) -> str:
    """The README's commands with ``uv run auth`` as this interpreter (uv may not be on
    PATH) and referral-api on the test's port."""
    script = script.replace("uv run auth ", f"{sys.executable} -m auth.cli ")
    return script.replace("127.0.0.1:8081", f"127.0.0.1:{referral_port}")


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readme_shows_the_header_on_every_fhir_curl() -> None:
    for title in ("## Two commands", "## Using the FHIR API"):
        for block in sh_blocks(section(title)):
            for command in re.split(r"\n(?=\S)", block):
                if "curl" in command and "/fhir" in command:
                    assert 'Authorization: Bearer $TOKEN"' in command, command


async def test_the_readme_token_recipe_against_real_processes(tmp_path: Path) -> None:
    auth_port, referral_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{auth_port}"
    env = {
        "AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/auth.db",
        "AUTH_ISSUER": issuer,
        "AUTH_AUDIENCES": f"http://127.0.0.1:{referral_port}/fhir",
        "AUTH_CLIENT_KEYS_DIR": str(tmp_path / "keys"),
        "AUTH_KEY_REFRESH_SECONDS": "0",
    }
    security = section("## Security")
    ensure = next(
        line for b in sh_blocks(security) for line in b.splitlines() if "clients ensure" in line
    )
    for _ in range(2):  # idempotent: the second run changes nothing
        out = await asyncio.to_thread(bash, as_run_here(ensure, referral_port), env)
        assert out.returncode == 0, out.stderr
    assert "already registered" in out.stdout
    two_commands = next(b for b in sh_blocks(section("## Two commands")) if "TOKEN=" in b)
    using = "\n".join(sh_blocks(section("## Using the FHIR API")))
    async with (
        running_service("auth", "AUTH_", env["AUTH_DATABASE_URL"], env, port=auth_port),
        running_service(
            "referral_api",
            "REFERRAL_API_",
            f"sqlite:///{tmp_path}/referral.db",
            {"REFERRAL_API_AUTH_ISSUER": issuer, "REFERRAL_API_EVENT_SINK_URL": ""},
            port=referral_port,
        ) as base,
    ):
        out = await asyncio.to_thread(bash, as_run_here(two_commands, referral_port), env)
        assert out.returncode == 0, out.stderr
        assert '"resourceType":"Bundle"' in out.stdout, out.stdout
        out = await asyncio.to_thread(bash, as_run_here(using, referral_port), env)
        assert out.returncode == 0, out.stderr
        assert "HTTP/1.1 201" in out.stdout, out.stdout
        assert '"active":true' in out.stdout and '"versionId":"2"' in out.stdout, out.stdout
        async with httpx.AsyncClient() as anonymous:
            r = await anonymous.get(f"{base}/fhir/Patient")
        assert r.status_code == 401
