"""Helpers of the web app's browser tests: auth, directory-api, referral-api and web as real
processes on 127.0.0.1, wired as ``make run`` wires them (the real auth service: people sign
in through its page), driven by Playwright in Debian's chromium, each page checked with
axe-core.

Chromium is ``/usr/bin/chromium`` (``apt-get install chromium``; Playwright's own browser
download is not available here) and axe-core comes from npm (``npm ci --prefix services/web``,
as .ci/run does). Without them the browser tests are skipped on a laptop, and fail in CI."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from closedloop.http.credentials import ClientCredentials, load_private_key
from closedloop.testing import free_port, running_service

CHROMIUM = Path(os.environ.get("WEB_TEST_CHROMIUM", "/usr/bin/chromium"))
WEB_DIR = Path(__file__).resolve().parents[1]
ROOT = WEB_DIR.parents[1]
AXE = Path(os.environ.get("WEB_TEST_AXE", WEB_DIR / "node_modules/axe-core/axe.min.js"))
SHOTS = Path(os.environ.get("WEB_TEST_SCREENSHOTS", ROOT / "test-output/screenshots"))
LINK_SECRET = "browser-test-link-secret"
FHIR = {"Content-Type": "application/fhir+json"}
WEB_SCOPES = (
    "system/Task.r system/ServiceRequest.r system/Patient.r system/Procedure.r "
    "system/QuestionnaireResponse.crs system/Questionnaire.r system/HealthcareService.r "
    "system/Organization.r system/Location.rs openid fhirUser online_access user/*.cruds "
    "launch launch/patient"
)


def missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if not AXE.exists():
        return f"{AXE} is missing (npm ci --prefix services/web)"
    return None


def auth_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "auth.cli", *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


BANK_ID = "eastside-food-bank"  # the test food bank's Organization id in directory-api
CBO_USER = "rosa"  # staff of the food bank (cbo-staff)
CLINICIAN = "maria"  # a clinician of the clinic
CASE_MANAGER = "sam"  # a case manager of the clinic
CLINIC = "Organization/clinic-1"


def password_of(username: str) -> str:
    return f"pw-{username}-Secret1"


def add_user(env: dict[str, str], username: str, role: str, organization: str) -> None:
    auth_cli(
        env, "users", "add", "--username", username, "--organization", organization,
        "--role", role, stdin=password_of(username) + "\n",
    )  # fmt: skip


@dataclass
class Stack:
    auth: str
    referral: str  # FHIR base
    directory: str  # FHIR base
    web: str
    auth_env: dict[str, str]
    admin: httpx.Auth
    ehr: httpx.Auth  # the EHR simulator's token (system/launch)


@asynccontextmanager
async def running_stack() -> AsyncIterator[Stack]:
    """The four processes on SQLite files in a temporary folder (the web app keeps no data:
    the FHIR services' two databases are covered elsewhere on both backends)."""
    with tempfile.TemporaryDirectory(prefix="closedloop-web-") as tmp:
        ports = {name: free_port() for name in ("auth", "referral", "directory", "web")}
        # auth as browsers reach it (its issuer) and as the web app calls it are two names,
        # as in Compose and Kubernetes (http://auth:8084 inside, a public host outside): the
        # sign-in redirects must use the first, the code exchange works through the second
        issuer = f"http://localhost:{ports['auth']}"
        auth_inside = f"http://127.0.0.1:{ports['auth']}"
        referral_base = f"http://127.0.0.1:{ports['referral']}/fhir"
        directory_base = f"http://127.0.0.1:{ports['directory']}/fhir"
        web = f"http://127.0.0.1:{ports['web']}"
        keys = Path(tmp) / "keys"
        auth_env = {
            "AUTH_DATABASE_URL": f"sqlite:///{tmp}/auth.db",
            "AUTH_ISSUER": issuer,
            "AUTH_AUDIENCES": f"{referral_base},{directory_base}",
            "AUTH_KEY_REFRESH_SECONDS": "0",
            "AUTH_CLIENT_KEYS_DIR": str(keys),
            "AUTH_FHIR_USER_BASE": referral_base,
            # people's access tokens run out within the app's refresh margin: every page a
            # signed-in person opens goes through the refresh grant (and its rotation)
            "AUTH_TOKEN_LIFETIME": "20",
        }
        ensure = ("clients", "ensure")

        def register() -> None:  # one after the other: the first one makes the database
            auth_cli(
                auth_env, *ensure, "--client-id", "referral-api", "--name", "referral-api",
                "--role", "service", "--scopes", "system/HealthcareService.r system/Organization.r",
            )  # fmt: skip
            auth_cli(
                auth_env, *ensure, "--client-id", "web", "--name", "Closed Loop web",
                "--role", "service", "--scopes", WEB_SCOPES,
                "--redirect-uri", f"{web}/auth/callback",
            )  # fmt: skip
            auth_cli(
                auth_env, *ensure, "--client-id", "seed", "--name", "Test seeder",
                "--role", "admin", "--scopes", "system/*.cruds",
            )  # fmt: skip
            auth_cli(
                auth_env, *ensure, "--client-id", "ehr", "--name", "EHR simulator",
                "--role", "service", "--scopes", "system/launch",
            )  # fmt: skip
            add_user(auth_env, CBO_USER, "cbo-staff", f"Organization/{BANK_ID}")
            add_user(auth_env, CLINICIAN, "clinician", CLINIC)
            add_user(auth_env, CASE_MANAGER, "case-manager", CLINIC)

        async with AsyncExitStack() as processes:
            start = processes.enter_async_context
            directory = start(
                running_service(
                    "directory_api",
                    "DIRECTORY_API_",
                    f"sqlite:///{tmp}/directory.db",
                    {"DIRECTORY_API_AUTH_ISSUER": issuer},
                    port=ports["directory"],
                )
            )

            async def the_rest() -> None:  # these need the clients' keys
                await asyncio.to_thread(register)
                auth = running_service(
                    "auth", "AUTH_", auth_env["AUTH_DATABASE_URL"], auth_env, port=ports["auth"]
                )
                referral = running_service(
                    "referral_api",
                    "REFERRAL_API_",
                    f"sqlite:///{tmp}/referral.db",
                    {
                        "REFERRAL_API_AUTH_ISSUER": issuer,
                        "REFERRAL_API_DIRECTORY_URL": directory_base,
                        "REFERRAL_API_EVENT_SINK_URL": "",
                        "REFERRAL_API_CLIENT_ID": "referral-api",
                        "REFERRAL_API_CLIENT_KEY_FILE": str(keys / "referral-api.json"),
                        # small cells of the loop metrics: 1 and 2 hidden, so a test's few
                        # referrals show both figures and hidden ones
                        "REFERRAL_API_MEASURES_MIN_CELL": "3",
                    },
                    port=ports["referral"],
                )
                web_app = running_service(
                    "web",
                    "WEB_",
                    "unused",
                    {
                        "WEB_PUBLIC_URL": web,
                        "WEB_REFERRAL_URL": referral_base,
                        "WEB_DIRECTORY_URL": directory_base,
                        "WEB_AUTH_URL": auth_inside,
                        "WEB_AUTH_PUBLIC_URL": issuer,
                        "WEB_CLIENT_ID": "web",
                        "WEB_CLIENT_KEY_FILE": str(keys / "web.json"),
                        "WEB_SESSION_SECRET": "browser-test-session-secret",
                        "WEB_LINK_SECRET": LINK_SECRET,
                        "WEB_COOKIE_SECURE": "false",
                    },
                    port=ports["web"],
                )
                # one at a time: each gets the whole start-up allowance on a busy machine
                for service in (auth, referral, web_app):
                    await start(service)

            await asyncio.gather(directory, the_rest())
            key, alg = load_private_key(keys / "seed.json")
            admin = ClientCredentials(f"{issuer}/token", "seed", key, alg, "system/*.cruds")
            key, alg = load_private_key(keys / "ehr.json")
            ehr = ClientCredentials(f"{issuer}/token", "ehr", key, alg, "system/launch")
            yield Stack(issuer, referral_base, directory_base, web, auth_env, admin, ehr)


def in_thread(coro: Any) -> Any:
    """Run ``coro`` to its end on an event loop of its own, in another thread: the sync
    Playwright API holds this thread's loop while a browser test runs."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@contextmanager
def stack_in_thread() -> Iterator[Stack]:
    """``running_stack`` served from a thread of its own until the block ends."""
    ready: concurrent.futures.Future[Stack] = concurrent.futures.Future()
    stop = threading.Event()

    async def main() -> None:
        try:
            async with running_stack() as running:
                ready.set_result(running)
                while not stop.is_set():
                    await asyncio.sleep(0.1)
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=180)
    finally:
        stop.set()
        thread.join(60)


def check_axe(page: Any) -> None:
    """No serious or critical axe-core violation on the page as it stands."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})); }"
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert not bad, json.dumps(bad, indent=1)
