"""Builds a service's FastAPI app around the shared FHIR engine.

A service passes its settings, the resource types it serves and its migrations folder; this
module adds what every service has: JSON request logs with request ids, OperationOutcome error
handlers (no error ever escapes to the server), guards against hostile URLs and slow bodies,
``/healthz`` (the process is up) and ``/readyz`` (its database answers), ``/metrics``
(Prometheus) and a trace span per request (``closedloop.observability``), and migrations applied
at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

from closedloop import auth
from closedloop.audit import search as audit_search
from closedloop.audit.trail import AuditTrail
from closedloop.db import Database, create_database, upgrade_to_head
from closedloop.edge import cors, ratelimit
from closedloop.fhir.operations import OPERATIONS
from closedloop.fhir.rest.dispatch import fhir_routes, route_template
from closedloop.fhir.rest.fast import FhirFastPath
from closedloop.fhir.rest.guards import BodyDeadline, ContainErrors, RequestGuard
from closedloop.fhir.rest.handlers import add_exception_handlers
from closedloop.fhir.rest.openapi.docs import add_docs_routes
from closedloop.fhir.search.definitions import SearchParam
from closedloop.fhir.search.engine import Planner
from closedloop.fhir.server import LOOPBACK_HOSTS, FhirConfig, FhirServer, Operation
from closedloop.health import add_health_routes
from closedloop.hooks import Hooks
from closedloop.logs import RequestLogMiddleware, quiet_url_loggers
from closedloop.observability import install as install_observability
from closedloop.settings import FhirServiceSettings, ServiceSettings

log = logging.getLogger("closedloop.service")

Startup = Callable[[FastAPI, FhirServer], Awaitable[None]]

_ANY_ADDRESS = {"", "0.0.0.0", "::"}


# FastAPI's own OpenTelemetry spans would record every query string (url.query: searches
# carry names, birth dates, MRNs) and exception messages: the server span is
# ``closedloop.observability.tracing.ServerSpans``' instead (method, route template, status)
NO_FASTAPI_TELEMETRY: dict[str, Any] = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


class ServiceApp(FastAPI):
    """FastAPI with ``ContainErrors`` outside Starlette's own error middleware (which re-raises
    every unexpected error to the server, and uvicorn then drops the connection), and without
    FastAPI's native telemetry (``NO_FASTAPI_TELEMETRY``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("telemetry", NO_FASTAPI_TELEMETRY)
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> Any:
        return ContainErrors(super().build_middleware_stack())


def trusted_hosts(settings: ServiceSettings) -> frozenset[str]:
    """Loopback names, the bind address unless it is a wildcard, and ``TRUSTED_HOSTS``."""
    listed = {h.strip().lower() for h in settings.trusted_hosts.split(",") if h.strip()}
    own = set() if settings.host in _ANY_ADDRESS else {settings.host.lower().strip("[]")}
    return LOOPBACK_HOSTS | own | listed


def default_base_url(settings: ServiceSettings) -> str:
    """The base of links for a request whose Host is not trusted: the bind address (loopback
    for a wildcard bind; set PUBLIC_BASE_URL behind a proxy)."""
    host = "127.0.0.1" if settings.host in _ANY_ADDRESS else settings.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/fhir"


def auth_config(settings: ServiceSettings) -> auth.AuthConfig | None:
    """The authorization settings when tokens are to be checked (None: every request is
    served anonymously, as before authorization existed)."""
    if not isinstance(settings, FhirServiceSettings) or not settings.auth_enabled:
        return None
    issuer = settings.auth_issuer.rstrip("/")
    audience = settings.auth_audience or settings.public_base_url or default_base_url(settings)
    return auth.AuthConfig(
        issuer=issuer,
        audience=audience.rstrip("/"),
        jwks_url=settings.auth_jwks_url or f"{issuer}/jwks",
        token_url=settings.auth_token_url or f"{issuer}/token",
        jwks_cache_seconds=settings.auth_jwks_cache_seconds,
        jwks_timeout=settings.auth_jwks_timeout,
        leeway_seconds=settings.auth_leeway_seconds,
    )


def fhir_server(
    db: Database, config: FhirConfig, hooks: Hooks | None, checks: auth.AuthConfig | None
) -> FhirServer:
    """The FHIR engine for one start of the app. Its hooks are built anew each time: the
    authorization policy first (nothing else runs for a refused request), then the service's
    own listeners."""
    live = Hooks()
    policy = auth.install(live, config.resource_types, checks) if checks else None
    if hooks is not None:
        live.include(hooks)
    verifier = auth.token_verifier(checks) if checks else None
    server = FhirServer(db, config, live, authenticator=verifier)
    if policy is not None:
        policy.read_chains_with(server.search.parse)
    return server


def create_service_app(
    *,
    name: str,
    settings: ServiceSettings,
    resource_types: list[str],
    migrations: Path,
    hooks: Hooks | None = None,
    routers: list[APIRouter] | None = None,
    on_startup: list[Startup] | None = None,
    on_shutdown: list[Startup] | None = None,
    search_params: list[SearchParam] | None = None,
    internal_types: list[str] | None = None,
    read_only_types: list[str] | None = None,
    operations: dict[str, Operation] | None = None,
    capability_extensions: dict[str, list[dict[str, Any]]] | None = None,
    value_resolvers: dict[str, Callable[[str], str]] | None = None,
    planners: list[Planner] | None = None,
    derived_indexes: list[Callable[[Any], Awaitable[None]]] | None = None,
) -> FastAPI:
    """``search_params`` adds to (or replaces, by code) the standard R4 search parameters."""
    checks = auth_config(settings)
    smart = auth.smart_configuration(checks) if checks else None
    config = FhirConfig(
        resource_types=resource_types,
        extra_search_params=list(search_params or []),
        internal_types=list(internal_types or []),
        read_only_types=list(read_only_types or []),
        operations={**OPERATIONS, **(operations or {})},
        capability_extensions=dict(capability_extensions or {}),
        value_resolvers=dict(value_resolvers or {}),
        planners=list(planners or []),
        derived_indexes=list(derived_indexes or []),
        max_body_bytes=settings.max_body_bytes,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
        max_search_values=settings.max_search_values,
        max_search_parameters=settings.max_search_parameters,
        search_timeout_ms=settings.statement_timeout_ms,
        public_base_url=settings.public_base_url,
        trusted_hosts=trusted_hosts(settings),
        default_base_url=default_base_url(settings),
        software_name=f"Closed Loop {name}",
        smart_configuration=smart,
        security=auth.capability_security(smart) if smart else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = create_database(settings.database_url)
        await upgrade_to_head(db, migrations)
        server = fhir_server(db, config, hooks, checks)
        ratelimit.install(server.hooks, settings.rate_limit_per_second, settings.rate_limit_burst)
        if settings.audit_enabled:
            server.audit = AuditTrail(db, name)
            server.audit.install(server.hooks)
            server.audit.start()
        app.state.fhir = server
        app.state.db = db
        for start in on_startup or []:
            await start(app, server)
        log.info("started", extra={"service": name, "database": db.engine.dialect.name})
        try:
            yield
        finally:
            for stop in on_shutdown or []:
                await stop(app, server)
            if server.audit is not None:
                await server.audit.stop()  # what is buffered is written before the pool closes
            await db.dispose()

    quiet_url_loggers()
    app = ServiceApp(
        title=f"Closed Loop {name}",
        lifespan=lifespan,
        # the FHIR API's own OpenAPI document is /fhir/openapi.json, shown at /docs
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.auth_config = checks  # what tokens it takes (None: none needed)
    _add_request_stack(app, name, settings)
    add_health_routes(app, name)
    add_docs_routes(app, f"Closed Loop {name}")

    for extra in routers or []:
        app.include_router(extra)
    app.include_router(audit_search.router)
    app.router.routes.extend(fhir_routes())
    return app


def _add_request_stack(app: FastAPI, name: str, settings: ServiceSettings) -> None:
    """The error handlers and the middleware every request passes, innermost first: the
    metrics and the trace span outside the request log (its lines carry the trace id)."""
    add_exception_handlers(app)
    app.add_middleware(FhirFastPath)  # inside the request log: it sees the request id
    app.add_middleware(
        BodyDeadline, read_timeout=settings.body_read_timeout, total_timeout=settings.body_timeout
    )
    app.add_middleware(RequestGuard)
    app.add_middleware(RequestLogMiddleware)
    install_observability(
        app, name, metrics_enabled=settings.metrics_enabled, templater=route_template
    )
    cors.install(app, settings.cors_origins)  # outermost: a preflight needs nothing else
