"""``make run`` (scripts/run-all.sh) on ports other than 8081-8083: it waits for the services on
the ports they listen on, prints URLs that answer, and the services reach each other there
(a referral made at referral-api is checked against directory-api and notified by the notifier,
with referral-api's access token). Authorization is on: the services call each other with the
tokens of the clients the script registered, and the token recipe the banner
prints works as printed. SQLite files go to a temporary data directory."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from closedloop.testing import Receiver, free_port

from .test_notifier_e2e import BACKPORT, FHIR, new_referral

ROOT = Path(__file__).resolve().parents[1]
PREFIXES = ("REFERRAL_API_", "DIRECTORY_API_", "NOTIFIER_", "AUTH_", "WEB_")


def banner_token(text: str, env: dict[str, str]) -> str:
    """Run the ``TOKEN=$(...)`` command the banner prints (``uv run`` as this interpreter)."""
    found = re.search(r"^\s+TOKEN=\$\((.+)\)$", text, re.MULTILINE)
    assert found, text
    words = shlex.split(found.group(1))
    assignments = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
    command = [w for w in words if w not in {f"{k}={v}" for k, v in assignments.items()}]
    assert command[:3] == ["uv", "run", "auth"], command
    out = subprocess.run(
        [sys.executable, "-m", "auth.cli", *command[3:]],
        cwd=ROOT,
        env={**env, **assignments},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def run_all(tmp_path: Path) -> Iterator[tuple[dict[str, int], list[str], dict[str, str]]]:
    ports = {
        "referral-api": free_port(),
        "directory-api": free_port(),
        "notifier": free_port(),
        "auth": free_port(),
        "web": free_port(),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    env.update(
        {
            "REFERRAL_API_PORT": str(ports["referral-api"]),
            "DIRECTORY_API_PORT": str(ports["directory-api"]),
            "NOTIFIER_PORT": str(ports["notifier"]),
            "AUTH_PORT": str(ports["auth"]),
            "WEB_PORT": str(ports["web"]),
            "DEMO_DIRECTORY": "0",
            "CLOSEDLOOP_DATA_DIR": str(tmp_path),
            "NOTIFIER_ALLOW_LOOPBACK_ENDPOINTS": "true",
            "NOTIFIER_DELIVERY_POLL_SECONDS": "0.1",
        }
    )
    proc = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "run-all.sh")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so everything it started can be ended
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:  # the banner comes once every service answered (or ~30s)
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        yield ports, lines, env
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does: the script stops its services
        try:
            proc.wait(30)
            for port in ports.values():  # stopped by the script itself, not by the kill below
                with socket.socket() as sock:
                    assert sock.connect_ex(("127.0.0.1", port)) != 0, port
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    assert list(tmp_path.glob("*.db")), "the databases go to CLOSEDLOOP_DATA_DIR"


async def test_run_all_follows_the_port_variables(
    run_all: tuple[dict[str, int], list[str], dict[str, str]],
) -> None:
    ports, lines, env = run_all
    text = "".join(lines)
    urls = dict(re.findall(r"^\s+(\S+)\s+(http://127\.0\.0\.1:\d+/fhir)", text, re.MULTILINE))
    fhir_ports = {name: port for name, port in ports.items() if name not in ("auth", "web")}
    assert urls == {name: f"http://127.0.0.1:{port}/fhir" for name, port in fhir_ports.items()}, (
        text
    )
    token_url = f"http://127.0.0.1:{ports['auth']}/token"
    assert re.search(rf"^\s+auth\s+{re.escape(token_url)}\s", text, re.MULTILINE), text
    web = f"http://127.0.0.1:{ports['web']}"
    assert re.search(rf"^\s+web\s+{re.escape(web)}\s", text, re.MULTILINE), text
    async with httpx.AsyncClient(timeout=10) as browser:  # the web app answers, its own page
        page = await browser.get(f"{web}/")
        assert page.status_code == 200 and "<html lang=" in page.text
    token = banner_token(text, env)
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=10, headers=auth) as client, Receiver() as rx:
        served = {"referral-api": "Patient", "directory-api": "Organization", "notifier": "Basic"}
        async with httpx.AsyncClient(timeout=10) as anonymous:
            for name, url in urls.items():
                assert (await anonymous.get(f"{url}/metadata")).status_code == 200
                assert (await anonymous.get(f"{url}/{served[name]}")).status_code == 401
                assert (await client.get(f"{url}/{served[name]}")).status_code == 200
        conf = await client.get(f"http://127.0.0.1:{ports['auth']}/.well-known/smart-configuration")
        assert conf.json()["token_endpoint"] == token_url
        directory, notifier = urls["directory-api"], urls["notifier"]
        cbo_id = f"cbo-{uuid.uuid4().hex[:6]}"
        r = await client.put(
            f"{directory}/Organization/{cbo_id}",
            headers=FHIR,
            json={"resourceType": "Organization", "id": cbo_id, "active": True},
        )
        assert r.status_code == 201, r.text
        sub = {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "run-all",
            "criteria": "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task",
            "_criteria": {
                "extension": [
                    {
                        "url": f"{BACKPORT}/backport-filter-criteria",
                        "valueString": f"Task?owner={directory}/Organization/{cbo_id}",
                    }
                ]
            },
            "channel": {
                "type": "rest-hook",
                "endpoint": rx.url,
                "payload": "application/fhir+json",
            },
        }
        r = await client.post(f"{notifier}/Subscription", json=sub, headers=FHIR)
        assert r.status_code == 201, r.text
        await rx.wait_for(1)  # the handshake
        # referral-api checks the owner at directory-api, then its event reaches the notifier
        await new_referral(client, urls["referral-api"], f"{directory}/Organization/{cbo_id}")
        await rx.wait_for(2, timeout=20)
