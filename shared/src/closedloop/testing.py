"""pytest fixtures for every Closed Loop test suite: the same tests on SQLite and PostgreSQL.

PostgreSQL comes from ``TEST_POSTGRES_URL`` (default: the server on 127.0.0.1:5432, user
postgres). When none answers and ``CI`` is not set, a throwaway server is started with the
``pgserver`` package, so a laptop without PostgreSQL still runs the PostgreSQL tests. In CI a
missing server is an error, never a silent skip. Each test module gets its own database, made
with the service's migrations and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgres")


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _start_pgserver() -> str:
    import pgserver  # a dev dependency: PostgreSQL binaries from PyPI

    data = Path(tempfile.mkdtemp(prefix="closedloop-pg-"))
    server = pgserver.get_server(data, cleanup_mode="stop")
    return str(server.get_uri())


@pytest.fixture(scope="session")
async def postgres_admin_url() -> str:
    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    if await _answers(url):
        return url
    if os.environ.get("CI"):
        raise RuntimeError(
            f"PostgreSQL does not answer at {make_url(url).render_as_string()} "
            "and CI must not skip the PostgreSQL tests"
        )
    return _start_pgserver()


@asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    name = f"cl_test_{uuid.uuid4().hex[:12]}"
    plain = admin_url.replace("+asyncpg", "")
    conn = await asyncpg.connect(plain)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield make_url(plain).set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(plain)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@asynccontextmanager
async def database_url_for(backend: str, admin_url: str | None) -> AsyncIterator[str]:
    if backend == "postgres":
        assert admin_url is not None
        async with postgres_database(admin_url) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="closedloop-sqlite-") as tmp:
            yield f"sqlite:///{tmp}/test.db"


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
async def database_url(backend: str, postgres_admin_url: str) -> AsyncIterator[str]:
    async with database_url_for(backend, postgres_admin_url) as url:
        yield url


@asynccontextmanager
async def app_client(
    app: Any,
    base_url: str = "http://testserver",
    headers: dict[str, str] | None = None,
    *,
    anonymous: bool = False,
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to ``app`` in process, with its lifespan (migrations) run;
    ``headers`` go with every request (e.g. a service's credentials). When the app checks
    tokens from the test ``authority`` (the default, see ``authority``), every FHIR request
    without its own ``Authorization`` header carries an admin token for the app's audience,
    unless ``anonymous``; an ``Authorization`` in ``headers`` then goes with the requests
    outside ``/fhir`` only (the notifier's events secret for ``POST /events``)."""
    config = getattr(app.state, "auth_config", None)
    trusted = _AUTHORITY is not None and config is not None and config.issuer == _AUTHORITY.issuer
    auth = None
    if trusted and not anonymous:
        assert _AUTHORITY is not None and config is not None
        headers = dict(headers or {})
        other = next((headers.pop(k) for k in list(headers) if k.lower() == "authorization"), None)
        auth = AdminTokens(_AUTHORITY, config.audience, elsewhere=other)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=base_url, headers=headers, auth=auth
        ) as client:
            yield client


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessURL(str):
    """The base URL of a server a test started, with its process (to ``kill -9`` it)."""

    process: Any


@asynccontextmanager
async def running_process(
    args: list[str],
    port: int,
    env: dict[str, str] | None = None,
    name: str = "process",
    unset: frozenset[str] = frozenset(),
) -> AsyncIterator[ProcessURL]:
    """Run ``args`` (a server listening on ``port`` on loopback) until its ``/readyz``
    answers; yield its base URL; stop it afterwards (gracefully, then killed)."""
    import subprocess

    inherited = {k: v for k, v in os.environ.items() if k not in unset}
    proc = subprocess.Popen(
        args,
        env={**inherited, **(env or {})},
        stdout=subprocess.DEVNULL,
        # CLOSEDLOOP_SERVICE_LOGS=1 shows the services' logs when debugging a test
        stderr=None if os.environ.get("CLOSEDLOOP_SERVICE_LOGS") else subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                if proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"{name} exited: {err[-2000:]}")
                try:
                    if (await client.get(f"{base}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"{name} did not become ready")
        url = ProcessURL(base)
        url.process = proc
        yield url
    finally:
        proc.terminate()
        try:  # wait without blocking the loop: in-process servers may still be answering it
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()


@asynccontextmanager
async def running_service(
    module: str,
    env_prefix: str,
    database_url: str,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> AsyncIterator[ProcessURL]:
    """Start ``python -m <module>.cli serve`` as a real process on a loopback port (free, or
    ``port``) and yield its base URL once ``/readyz`` answers; stop it afterwards. It trusts
    the test ``authority`` unless ``extra_env`` names another ``AUTH_ISSUER`` for it (then
    none of the authority's settings for its prefix are passed on)."""
    import sys

    port = port or free_port()
    env = {
        f"{env_prefix}DATABASE_URL": database_url,
        f"{env_prefix}HOST": "127.0.0.1",
        f"{env_prefix}PORT": str(port),
        f"{env_prefix}LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    unset: frozenset[str] = frozenset()
    issuer = env.get(f"{env_prefix}AUTH_ISSUER")
    if _AUTHORITY is not None and issuer is not None and issuer != _AUTHORITY.issuer:
        unset = frozenset(k for k in os.environ if k.startswith(env_prefix) and k not in env)
    async with running_process(
        [sys.executable, "-m", f"{module}.cli", "serve"], port, env, module, unset
    ) as base:
        yield base


SAMPLE_VALUES = {
    "token": "x",
    "string": "x",
    "date": "ge2020-01-01",
    "number": "1",
    "quantity": "1",
    "uri": "http://example.org/x",
    "reference": "Patient/x",
    "special": "41.9|-87.6|10|km",  # near
}


async def assert_every_listed_parameter_works(
    client: httpx.AsyncClient, samples: dict[str, str] | None = None
) -> int:
    """Search with every parameter the CapabilityStatement lists (strict handling, so an
    unsupported one fails); returns how many were tried."""
    cs = (await client.get("/fhir/metadata")).json()
    tried = 0
    failures = []
    for resource in cs["rest"][0]["resource"]:
        for param in resource["searchParam"]:
            name, kind = param["name"], param["type"]
            if name in (
                "_count",
                "_sort",
                "_include",
                "_revinclude",
                "_summary",
                "_elements",
                "_total",
            ):
                continue
            value = (samples or {}).get(name) or ("x" if name == "_id" else SAMPLE_VALUES.get(kind))
            if value is None:
                failures.append(f"{resource['type']}.{name}: type {kind} listed")
                continue
            r = await client.get(
                f"/fhir/{resource['type']}",
                params={name: value},
                headers={"Prefer": "handling=strict"},
            )
            tried += 1
            if r.status_code != 200:
                failures.append(f"{resource['type']}?{name}={value}: {r.status_code} {r.text}")
    assert not failures, "\n".join(failures)
    return tried


@asynccontextmanager
async def serving(app: Any, settings: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in this process exactly as ``serve`` does (the config of
    ``closedloop.cli.server_config``: keep-alive timeout, no access log), on
    ``settings.host``/``settings.port``; yield its base URL. For tests about the server and
    its connections (keep-alive, slow clients) with an app a test builds itself."""
    import uvicorn

    from closedloop.cli import server_config

    server = uvicorn.Server(server_config(app, settings))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError("the server stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://{settings.host}:{settings.port}"
    finally:
        server.should_exit = True
        await task


class LoopbackServer:
    """A real HTTP server on a free loopback port, in this process, answering with ``_app``
    (a subclass's ASGI app). Use as ``async with Sub() as server: ... server.url``."""

    path = "/"

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{self.path}"
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        import uvicorn

        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *_: Any) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task


class Receiver(LoopbackServer):
    """A loopback server that records what is POSTed to it (JSON bodies and headers).
    ``fail_with`` makes it answer that status instead, to play a receiver that is down. Use as
    ``async with Receiver() as rx: ... rx.url``."""

    path = "/events"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[dict[str, str], Any]] = []
        self.arrivals: list[float] = []  # wall-clock time of each recorded body
        self.fail_with: int | None = None
        self.delay = 0.0  # seconds before answering: a slow receiver keeps deliveries in flight

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.fail_with or 200
        if status == 200:
            import orjson

            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            self.received.append((headers, orjson.loads(body) if body else None))
            self.arrivals.append(time.time())
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Wait until ``count`` bodies arrived; return the bodies."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.received) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"received {len(self.received)} of {count} in {timeout}s")
            await asyncio.sleep(0.02)
        return [body for _, body in self.received]


async def assert_service_basics(
    client: httpx.AsyncClient, resource_types: list[str], samples: dict[str, str] | None = None
) -> None:
    """What every service owes: ready, a CapabilityStatement listing exactly its types, a
    searchset for each type, and every listed search parameter working."""
    assert (await client.get("/readyz")).status_code == 200
    cs = (await client.get("/fhir/metadata")).json()
    assert [r["type"] for r in cs["rest"][0]["resource"]] == resource_types
    for resource_type in resource_types:
        r = await client.get(f"/fhir/{resource_type}?_count=1")
        assert r.status_code == 200, r.text
        assert r.json()["type"] == "searchset"
    assert await assert_every_listed_parameter_works(client, samples) > 0


def load_script(path: Path) -> ModuleType:
    """A script that is not in a package (``scripts/*.py``) as a module, for tests and benches."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- authorization: a token issuer for tests, and the table of interactions it must guard ----


_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class TokenIssuer(LoopbackServer):
    """An authorization server for tests: mints access tokens shaped as services/auth's (a JWT
    with ``typ`` at+jwt, ``iss``, ``aud``, ``sub``, ``client_id``, ``scope``, ``exp``,
    optionally ``organization`` and ``role``), signed with a test key, and publishes its JWKS
    at ``/jwks`` on a loopback port; its ``/token`` grants ``client_credentials`` to the
    clients ``register`` adds (for services calling each other). ``rotate()`` adds a key (the
    JWKS lists both); ``fetches`` counts JWKS requests. Use the ``token_issuer`` fixture, or
    ``async with TokenIssuer() as i``."""

    def __init__(self, alg: str = "ES384") -> None:
        super().__init__()
        self.issuer = self.url.rstrip("/")
        self.jwks_url = f"{self.issuer}/jwks"
        self.alg = alg
        self.token_url = f"{self.issuer}/token"
        self.keys: list[Any] = []
        self.fetches = 0
        self.clients: dict[str, tuple[Any, set[str], str]] = {}  # see register
        self.audiences: list[str] = []  # of the tokens /token issues
        self._jtis: set[str] = set()
        self.rotate()

    def rotate(self, alg: str | None = None) -> Any:
        from joserfc import jwk

        alg = alg or self.alg
        key: Any = (
            jwk.RSAKey.generate_key(2048, private=True)
            if alg.startswith("RS")
            else jwk.ECKey.generate_key("P-384", private=True)
        )
        key.ensure_kid()
        self.keys.append((alg, key))
        return key

    def settings(self, audience: str) -> dict[str, Any]:
        """The FHIR service settings that trust this issuer for ``audience``."""
        return {
            "auth_enabled": True,
            "auth_issuer": self.issuer,
            "auth_jwks_url": self.jwks_url,
            "auth_audience": audience,
        }

    def token(
        self,
        scopes: str,
        audience: str | list[str],
        *,
        subject: str = "test-client",
        organization: str | None = None,
        role: str | None = None,
        lifetime: int = 300,
        claims: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
        key: Any = None,
    ) -> str:
        """A signed access token; ``claims``/``header`` override what it would say (a key of
        None in ``claims`` removes that claim), ``key`` signs with another key."""
        from joserfc import jwt

        alg, current = self.keys[-1]
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            "client_id": subject,
            "scope": scopes,
        }
        if organization:
            body["organization"] = organization
        if role:
            body["role"] = role
        for name, value in (claims or {}).items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        head = {"alg": alg, "kid": current.kid, "typ": "at+jwt", **(header or {})}
        return jwt.encode(head, body, key or current, algorithms=[head["alg"]])

    def register(self, client_id: str, scopes: str, role: str, key_file: Path) -> None:
        """A backend client this issuer's ``/token`` takes assertions from: a new ES384 key
        pair, the private JWK written to ``key_file`` (as ``auth clients add
        --generate-key`` writes it), its tokens carrying ``scopes`` at most and ``role``."""
        import json

        from joserfc import jwk

        key: Any = jwk.ECKey.generate_key("P-384", private=True)
        key.ensure_kid()
        key_file.write_text(json.dumps({**key.as_dict(private=True), "alg": "ES384"}))
        self.clients[client_id] = (key, set(scopes.split()), role)

    def _grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """``client_credentials`` with a ``private_key_jwt`` assertion, checked as the auth
        service checks it (signature by the client's key, iss = sub, aud = the token URL,
        unexpired, jti used once, every scope asked for registered)."""
        import json

        from joserfc import jws, jwt
        from joserfc.errors import JoseError

        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("client_assertion_type") != _ASSERTION_TYPE:
            return 401, {"error": "invalid_client"}
        assertion = form.get("client_assertion", "")
        try:
            # the issuer names the client, whose key then checks the signature
            unverified = json.loads(jws.extract_compact(assertion.encode()).payload)
            client_id = unverified.get("iss")
            key, allowed, role = self.clients[client_id]
            claims = jwt.decode(assertion, key, algorithms=["ES384"]).claims
        except (JoseError, KeyError, ValueError):
            return 401, {"error": "invalid_client"}
        jti = str(claims.get("jti") or "")
        fresh = int(claims.get("exp", 0)) > time.time() and jti and jti not in self._jtis
        if claims.get("sub") != client_id or claims.get("aud") != self.token_url or not fresh:
            return 401, {"error": "invalid_client"}
        self._jtis.add(jti)
        wanted = form.get("scope", "").split()
        if not wanted or not set(wanted) <= allowed:
            return 400, {"error": "invalid_scope"}
        scope = " ".join(wanted)
        token = self.token(scope, self.audiences, subject=client_id, role=role)
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": scope,
        }

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import orjson

        if scope["type"] != "http":
            return
        if scope["path"] == "/jwks":
            self.fetches += 1
            keys = [{**k.as_dict(private=False), "alg": a, "use": "sig"} for a, k in self.keys]
            status, body = 200, orjson.dumps({"keys": keys})
        elif scope["path"] == "/token" and scope["method"] == "POST":
            from urllib.parse import parse_qsl

            raw = b""
            while True:
                message = await receive()
                raw += message.get("body", b"")
                if not message.get("more_body"):
                    break
            status, answer = self._grant(dict(parse_qsl(raw.decode())))
            body = orjson.dumps(answer)
        else:
            status, body = 404, b"{}"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="session")
async def token_issuer() -> AsyncIterator[TokenIssuer]:
    """An issuer no service trusts unless a test configures it (``issuer.settings``)."""
    async with TokenIssuer() as issuer:
        yield issuer


ADMIN_SCOPES = "system/*.cruds"
FHIR_PREFIXES = ("REFERRAL_API_", "DIRECTORY_API_", "NOTIFIER_")
_AUTHORITY: TokenIssuer | None = None


class AdminTokens(httpx.Auth):
    """An admin's token (role admin, ``system/*.cruds``, no organization) on every request
    to ``/fhir`` that carries no ``Authorization`` of its own; for ``audience``, or, without
    one, for every service's test audience (``audience_of``). A token is reused until a
    minute before it expires."""

    def __init__(
        self, issuer: TokenIssuer, audience: str | None = None, elsewhere: str | None = None
    ) -> None:
        self.issuer = issuer
        self.elsewhere = elsewhere  # the Authorization for paths outside /fhir, if any
        self.audience: str | list[str] = audience or [audience_of(p) for p in FHIR_PREFIXES]
        self._token = ""
        self._expires = 0.0

    def token(self) -> str:
        if time.time() > self._expires - 60:
            self._token = self.issuer.token(
                ADMIN_SCOPES, self.audience, subject="test-admin", role="admin"
            )
            self._expires = time.time() + 300
        return self._token

    def auth_flow(self, request: httpx.Request) -> Any:
        if "authorization" not in request.headers:
            if request.url.path.startswith("/fhir"):
                request.headers["Authorization"] = f"Bearer {self.token()}"
            elif self.elsewhere is not None:
                request.headers["Authorization"] = self.elsewhere
        yield request


def admin_auth() -> AdminTokens:
    """For an ``httpx`` client talking to service processes the tests started: admin tokens
    from the test ``authority``, which those processes trust (see ``authority``)."""
    assert _AUTHORITY is not None, "the authority fixture is not running"
    return AdminTokens(_AUTHORITY)


# the services that call others, with the scopes their settings ask for (CLIENT_SCOPE)
SERVICE_CLIENTS = {
    "REFERRAL_API_": ("referral-api", "system/HealthcareService.r system/Organization.r"),
    "NOTIFIER_": ("notifier", "system/Patient.r"),
}


def audience_of(prefix: str) -> str:
    """The audience a service with ``prefix`` has in tests (its ``AUTH_AUDIENCE``): fixed, so
    one token serves every process of it whatever port it got."""
    return f"https://{prefix.rstrip('_').lower().replace('_', '-')}.closedloop.test/fhir"


def authority_env(issuer: TokenIssuer, keys: Path) -> dict[str, str]:
    """The environment that makes the three FHIR services trust ``issuer`` (its JWKS, a fixed
    audience each) and gives referral-api and the notifier client credentials there, their
    private keys in ``keys``."""
    env = {}
    for prefix in FHIR_PREFIXES:
        env[f"{prefix}AUTH_ISSUER"] = issuer.issuer
        env[f"{prefix}AUTH_JWKS_URL"] = issuer.jwks_url
        env[f"{prefix}AUTH_AUDIENCE"] = audience_of(prefix)
    for prefix, (client_id, scopes) in SERVICE_CLIENTS.items():
        key_file = keys / f"{client_id}.json"
        if client_id not in issuer.clients:
            issuer.register(client_id, scopes, "service", key_file)
        env[f"{prefix}CLIENT_ID"] = client_id
        env[f"{prefix}CLIENT_KEY_FILE"] = str(key_file)
    return env


@pytest.fixture(scope="session", autouse=True)
def authority() -> Iterator[TokenIssuer]:
    """The authorization server every test's services trust by default: authorization is on
    (as it is by default in the services), and the ``REFERRAL_API_``, ``DIRECTORY_API_`` and
    ``NOTIFIER_`` settings of ``authority_env`` hold for the whole session, so in-process apps
    built from their Settings and the processes tests start check its tokens for real, and
    referral-api and the notifier get theirs from its ``/token`` to call each other. It
    serves from a thread of its own, so a test blocking its event loop does not block it.
    ``app_client`` sends its admin tokens by default; ``admin_auth()`` does for plain httpx
    clients."""
    global _AUTHORITY
    issuer = TokenIssuer()
    issuer.audiences = [audience_of(p) for p in FHIR_PREFIXES]
    with tempfile.TemporaryDirectory(prefix="closedloop-keys-") as keys, in_thread(issuer):
        env = authority_env(issuer, Path(keys))
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        _AUTHORITY = issuer
        try:
            yield issuer
        finally:
            _AUTHORITY = None
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@contextmanager
def in_thread(server: LoopbackServer) -> Iterator[LoopbackServer]:
    """Serve ``server`` from an event loop in a thread of its own until the block ends."""
    import threading

    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        try:
            async with server:
                ready.set()
                await stop.wait()
        except BaseException as exc:  # handed to the waiting thread
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    if failure:
        raise failure[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Call:
    """One HTTP request of the scope table: what it asks, and which letter it should need."""

    label: str
    method: str
    path: str
    letters: str  # the scope letters that must let it through ("" when any one of cruds may)
    body: Any = None
    content_type: str = "application/fhir+json"


def _interaction_calls(resource_type: str, code: str) -> list[Call]:
    """The requests that exercise one CapabilityStatement interaction on a type."""
    t, rid = resource_type, "scope-table-x"
    resource = {"resourceType": t, "id": rid}
    patch = [{"op": "add", "path": "/meta", "value": {}}]
    calls = {
        "read": [
            Call("read", "GET", f"/fhir/{t}/{rid}", "r"),  # the fast path
            Call("read (full path)", "GET", f"/fhir/{t}/{rid}?_pretty=true", "r"),
        ],
        "vread": [Call("vread", "GET", f"/fhir/{t}/{rid}/_history/1", "r")],
        "history-instance": [Call("history-instance", "GET", f"/fhir/{t}/{rid}/_history", "r")],
        "history-type": [Call("history-type", "GET", f"/fhir/{t}/_history", "s")],
        "search-type": [
            Call("search-type", "GET", f"/fhir/{t}?_id={rid}", "s"),
            Call("search-type (full path)", "GET", f"/fhir/{t}?_id={rid}&_pretty=true", "s"),
            Call(
                "search-type (POST _search)",
                "POST",
                f"/fhir/{t}/_search",
                "s",
                f"_id={rid}",
                "application/x-www-form-urlencoded",
            ),
        ],
        "create": [Call("create", "POST", f"/fhir/{t}", "c", {"resourceType": t})],
        # an update of a resource that does not exist creates it: that needs c as well
        "update": [
            Call("update", "PUT", f"/fhir/{t}/{rid}", "cu", resource),
            Call("conditional update", "PUT", f"/fhir/{t}?_id={rid}", "cu", resource),
        ],
        "patch": [
            Call("patch", "PATCH", f"/fhir/{t}/{rid}", "u", patch, "application/json-patch+json")
        ],
        "delete": [
            Call("delete", "DELETE", f"/fhir/{t}/{rid}", "d"),
            Call("conditional delete", "DELETE", f"/fhir/{t}?_id={rid}", "d"),
        ],
    }
    return calls.get(code, [])


def scope_table(capability: dict[str, Any], operations: list[str]) -> list[tuple[str, Call]]:
    """(resource type, call) for every interaction the CapabilityStatement (generated from
    the service's FhirConfig) lists on every type, each ``$operation`` served at type and
    instance level (GET and POST), and a batch and a transaction entry per write. Raises if
    an interaction has no request shape here, so a new one cannot go untested."""
    table: list[tuple[str, Call]] = []
    for entry in capability["rest"][0]["resource"]:
        t = entry["type"]
        for interaction in entry["interaction"]:
            calls = _interaction_calls(t, interaction["code"])
            assert calls, f"no request shape for {interaction['code']}"
            table += [(t, c) for c in calls]
        for op in operations:
            for path in (f"/fhir/{t}/${op}", f"/fhir/{t}/scope-table-x/${op}"):
                table.append((t, Call(f"${op} GET {path}", "GET", path, "")))
                table.append((t, Call(f"${op} POST {path}", "POST", path, "", {"resourceType": t})))
    return table


async def assert_scopes_enforced(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    audience: str,
    resource_types: list[str],
    operations: list[str],
    role: str | None = "admin",
) -> int:
    """The table: every interaction of every served type is 401 without a token (with a
    ``WWW-Authenticate: Bearer`` challenge), 403 naming the scope with a token granting
    everything on every *other* type, and neither with the scope its letters name. Returns
    how many calls were made. The tokens carry ``role`` (admin: no organization policy
    narrows what the scopes allow)."""
    capability = (await client.get("/fhir/metadata")).json()
    assert [r["type"] for r in capability["rest"][0]["resource"]] == resource_types
    failures: list[str] = []
    table = scope_table(capability, operations)

    def others(t: str, letters: str = "cruds") -> str:
        return " ".join(f"system/{o}.{letters}" for o in resource_types if o != t)

    async def send(call: Call, token: str | None) -> httpx.Response:
        headers = {"Content-Type": call.content_type} if call.body is not None else {}
        if token is not None:
            headers.update(bearer(token))
        content: Any = None
        if call.body is not None:
            import orjson

            content = call.body if isinstance(call.body, str) else orjson.dumps(call.body)
        return await client.request(call.method, call.path, content=content, headers=headers)

    calls = 0
    for t, call in table:
        where = f"{t} {call.label}"
        r = await send(call, None)
        calls += 1
        if r.status_code != 401 or not r.headers.get("www-authenticate", "").startswith("Bearer"):
            failures.append(f"{where} without a token: {r.status_code} {r.text[:200]}")
        r = await send(call, issuer.token(others(t), audience, role=role))
        calls += 1
        if r.status_code != 403 or f"system/{t}." not in r.text:
            failures.append(f"{where} without its scope: {r.status_code} {r.text[:200]}")
        letter_sets = [call.letters] if call.letters else list("cruds")
        passed = []
        for letters in letter_sets:
            r = await send(
                call, issuer.token(f"system/{t}.{letters} {others(t)}", audience, role=role)
            )
            calls += 1
            passed.append(r.status_code not in (401, 403))
            if call.letters and not passed[-1]:
                failures.append(
                    f"{where} with system/{t}.{letters}: {r.status_code} {r.text[:200]}"
                )
        if not any(passed):
            failures.append(f"{where}: no single scope letter lets it through")
    for t in resource_types:
        for method, letters in (("GET", "s"), ("POST", "c"), ("DELETE", "d")):
            entry: dict[str, Any] = {"request": {"method": method, "url": f"{t}?_id=x"}}
            if method == "POST":
                entry = {"resource": {"resourceType": t}, "request": {"method": "POST", "url": t}}
            for kind in ("batch", "transaction"):
                bundle = {"resourceType": "Bundle", "type": kind, "entry": [entry]}
                r = await send(Call(kind, "POST", "/fhir", "", bundle), None)
                calls += 1
                if r.status_code != 401:
                    failures.append(f"{t} {kind} {method} without a token: {r.status_code}")
                r = await send(
                    Call(kind, "POST", "/fhir", "", bundle),
                    issuer.token(others(t), audience, role=role),
                )
                calls += 1
                status = (
                    r.json()["entry"][0]["response"]["status"]
                    if kind == "batch" and r.status_code == 200
                    else str(r.status_code)
                )
                if not status.startswith("403") or f"system/{t}.{letters}" not in r.text:
                    failures.append(
                        f"{t} {kind} {method} entry without its scope: {status} {r.text[:200]}"
                    )
    assert not failures, f"{len(failures)} of {calls} calls wrong:\n" + "\n".join(failures)
    return calls
