"""The auth service's app: ``GET|POST /authorize`` (people sign in), ``POST /token``,
``POST /launch`` (an EHR registers a launch), ``GET /jwks``, the discovery documents
(``/.well-known/smart-configuration``, ``/.well-known/openid-configuration``), ``/healthz``,
``/readyz``; signing in at a trusted external OpenID Connect issuer when one is configured
(``POST /authorize/external``, ``GET /authorize/external/callback``); the audit trail of its
decisions (``GET /fhir/AuditEvent``, for admins); migrations and a first signing key at
start-up.

Not a FHIR server, so it takes from ``closedloop`` only the plumbing that fits: the database,
migrations, JSON request logs, the error containment and the slow-body guard.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from authlib.oauth2.rfc6749 import InvalidRequestError
from closedloop import errors
from closedloop.db import create_database, upgrade_to_head
from closedloop.fhir.rest.guards import BodyDeadline
from closedloop.fhir.rest.handlers import error_response as fhir_error_response
from closedloop.health import add_health_routes
from closedloop.logs import RequestLogMiddleware, quiet_url_loggers
from closedloop.observability import install as install_observability
from closedloop.service import ServiceApp
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from auth.audit import router as audit_router
from auth.audit.decisions import AuthAudit
from auth.authorize import AuthorizeEndpoint
from auth.external.login import ExternalLogin
from auth.external.provider import ExternalIssuer
from auth.keys import ID_TOKEN_ALG, ensure_key, published_keys
from auth.launches import register_launch
from auth.login_page import choose_language, error_page
from auth.scopes import PEOPLE_ONLY
from auth.server import MAX_FORM_BYTES, TokenEndpoint, error_response
from auth.settings import Settings
from auth.token_metrics import TokenMetrics

log = logging.getLogger("auth.app")
MIGRATIONS = Path(__file__).parent / "migrations"
FORM = "application/x-www-form-urlencoded"


def smart_configuration(settings: Settings) -> dict[str, object]:
    """SMART App Launch 2.x discovery: only what this server does."""
    issuer = settings.issuer.rstrip("/")
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": settings.token_url,
        "jwks_uri": f"{issuer}/jwks",
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": [
            "system/*.cruds",
            "user/*.cruds",
            "patient/*.cruds",
            *PEOPLE_ONLY,
        ],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALG],
        "capabilities": [
            "launch-ehr",
            "launch-standalone",
            "client-public",
            "client-confidential-asymmetric",
            "context-ehr-patient",
            "context-ehr-encounter",
            "sso-openid-connect",
            "permission-offline",
            "permission-online",
            "permission-patient",
            "permission-user",
            "permission-v2",
        ],
    }


def openid_configuration(settings: Settings) -> dict[str, object]:
    """OpenID Connect discovery, for the id_token (sso-openid-connect)."""
    issuer = settings.issuer.rstrip("/")
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": settings.token_url,
        "jwks_uri": f"{issuer}/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALG],
        "scopes_supported": ["openid", "fhirUser"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "code_challenge_methods_supported": ["S256"],
        "ui_locales_supported": ["en", "es"],
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    secret = settings.key_secret.get_secret_value() if settings.key_secret else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = create_database(settings.database_url)
        await upgrade_to_head(db, MIGRATIONS)
        await ensure_key(db, settings.signing_alg, secret)
        audit = AuthAudit(db, enabled=settings.audit_enabled)
        app.state.db = db
        app.state.audit = audit
        app.state.audit_access = audit_router.AuditAccess(settings, db, audit)
        app.state.token = TokenEndpoint(settings, db, audit)
        app.state.authorize = AuthorizeEndpoint(settings, db, audit)
        app.state.external = (
            ExternalLogin(settings, db, app.state.authorize, audit, ExternalIssuer(settings))
            if settings.external_oidc
            else None
        )
        audit.start()
        log.info("started", extra={"service": "auth", "database": db.engine.dialect.name})
        try:
            yield
        finally:
            await audit.stop()  # what is buffered is written before the pool closes
            await db.dispose()

    quiet_url_loggers()
    logging.getLogger("authlib").setLevel(logging.WARNING)  # its debug lines print tokens
    app = ServiceApp(title="Closed Loop auth", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(
        BodyDeadline, read_timeout=settings.body_read_timeout, total_timeout=settings.body_timeout
    )
    app.add_middleware(RequestLogMiddleware)
    # GET /metrics and a trace span per request, outside the request log (its lines carry
    # the trace id)
    metrics = install_observability(app, "auth", metrics_enabled=settings.metrics_enabled)
    tokens = TokenMetrics(metrics)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": "invalid_request", "error_description": str(exc.detail)},
            status_code=exc.status_code,
        )

    @app.exception_handler(errors.FhirError)
    async def fhir_error(request: Request, exc: errors.FhirError) -> Response:
        return fhir_error_response(exc, request)  # the audit trail's endpoints are FHIR

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)  # messages of data-bearing errors withheld
        return JSONResponse({"error": "server_error"}, status_code=500)

    add_health_routes(app, "auth")
    app.include_router(audit_router.router)

    @app.get("/.well-known/smart-configuration")
    async def discovery() -> JSONResponse:
        return JSONResponse(smart_configuration(settings))

    @app.get("/.well-known/openid-configuration")
    async def openid_discovery() -> JSONResponse:
        return JSONResponse(openid_configuration(settings))

    @app.get("/authorize")
    async def authorize(request: Request) -> Response:
        endpoint: AuthorizeEndpoint = app.state.authorize
        return await endpoint.show(request)

    @app.post("/authorize")
    async def sign_in(request: Request) -> Response:
        endpoint: AuthorizeEndpoint = app.state.authorize
        return await endpoint.sign_in(request)

    @app.post("/authorize/external")
    async def sign_in_elsewhere(request: Request) -> Response:
        external: ExternalLogin | None = app.state.external
        if external is None:
            return not_configured(request)
        return await external.start(request)

    @app.get("/authorize/external/callback")
    async def back_from_elsewhere(request: Request) -> Response:
        external: ExternalLogin | None = app.state.external
        if external is None:
            return not_configured(request)
        return await external.callback(request)

    def not_configured(request: Request) -> Response:
        lang = choose_language(None, request.headers.get("accept-language"))
        return error_page(lang, "bad_request", "no external issuer is configured here", 404)

    @app.post("/launch")
    async def launch(request: Request) -> Response:
        return await register_launch(request, settings, app.state.db)

    @app.get("/jwks")
    async def jwks() -> JSONResponse:
        keys = await published_keys(app.state.db, settings.token_lifetime)
        return JSONResponse({"keys": keys}, headers={"Cache-Control": "max-age=60"})

    @app.post("/token")
    async def token(request: Request) -> Response:
        form = bytearray()
        response = await token_response(request, form)
        tokens.record(bytes(form), response)
        return response

    async def token_response(request: Request, body: bytearray) -> Response:
        """The token endpoint's answer; ``body`` gets the form as read (for the metrics)."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != FORM:
            return error_response(InvalidRequestError(description=f"send the form as {FORM}"))
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return error_response(InvalidRequestError(description="the form is too large"))
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        endpoint: TokenEndpoint = app.state.token
        request_id = getattr(request.state, "request_id", "-")
        return await endpoint.respond(settings.token_url, headers, bytes(body), request_id)

    return app
