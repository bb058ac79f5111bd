"""The web app: FastAPI serving Jinja2 pages (htmx for small in-page updates, vendored under
/static), a client of referral-api, directory-api and auth over HTTP only.

Errors never show a stack trace: API refusals become a readable page (``web.api.ApiError``),
a CSRF mismatch a 403 page, anything unexpected a 500 page with the request id (the log has
the rest, without patient data)."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
from closedloop.http.credentials import ClientCredentials, load_private_key
from closedloop.observability import install as install_observability
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.responses import Response

from web import home, i18n, signin, worklist
from web.api import Api, ApiError
from web.clinician import pages as clinician
from web.inbox import capacity, listing
from web.inbox import pages as inbox
from web.measures import pages as measures
from web.pages import HERE, Site, new_secret, site_of
from web.patient import status
from web.referrals import Referrals
from web.security.cookies import Sealer
from web.security.csrf import CsrfError
from web.settings import Settings

log = logging.getLogger("web")


def tile_origin(template: str) -> str:
    """The origin of a tile URL template (``https://{s}.tile.example.org/{z}/{x}/{y}.png`` ->
    ``https://*.tile.example.org``), for the CSP; empty when no tiles are set."""
    parts = urlsplit(template.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    host = re.sub(r"\{[^}]*\}", "*", parts.netloc)
    return f"{parts.scheme}://{host}"


SECURITY_HEADERS = {
    # scripts and styles from this app only (htmx is vendored), no framing, no referrer
    # leaking a signed link to another site
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self' {auth}; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def credentials_of(settings: Settings) -> httpx.Auth | None:
    """The app's own token (client_credentials + private_key_jwt), when its key is set."""
    if settings.client_key_file is None:
        return None
    key, alg = load_private_key(Path(settings.client_key_file))
    return ClientCredentials(
        f"{settings.auth_url.rstrip('/')}/token",
        settings.client_id,
        key,
        alg,
        settings.client_scope,
        timeout=settings.timeout,
        audience=f"{settings.browser_auth_url}/token",
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    secret = settings.session_secret.get_secret_value() if settings.session_secret else new_secret()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout),
            headers={"Accept": "application/fhir+json", "User-Agent": "closed-loop-web"},
            follow_redirects=False,
        )
        api = Api(http)
        app.state.site = Site(
            settings=settings,
            secret=secret,
            sealer=Sealer(secret, settings.cookie_secure),
            api=api,
            referrals=Referrals(api, settings.referral_url, settings.directory_url),
            templates=Jinja2Templates(directory=str(HERE / "templates")),
            credentials=credentials_of(settings),
        )
        try:
            yield
        finally:
            await http.aclose()

    app = FastAPI(
        title="Closed Loop web", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    # Leaflet for find help's map, from the npm package (services/web/node_modules): served by
    # the app itself; without it the results are the list alone
    leaflet = HERE.parent.parent / "node_modules" / "leaflet" / "dist"
    app.state.map_available = leaflet.is_dir()
    if app.state.map_available:
        app.mount("/static/leaflet", StaticFiles(directory=str(leaflet)), name="leaflet")
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(home.router)
    app.include_router(status.router)
    app.include_router(measures.router)
    app.include_router(signin.router)
    app.include_router(inbox.router)
    app.include_router(capacity.router)
    app.include_router(listing.router)
    app.include_router(clinician.router)
    app.include_router(worklist.router)

    csp = SECURITY_HEADERS["Content-Security-Policy"].format(auth=settings.browser_auth_url)
    tiles = tile_origin(settings.map_tile_url)
    if tiles:  # the configured map tiles are images from that origin
        csp = csp.replace("img-src 'self' data:", f"img-src 'self' data: {tiles}")

    @app.middleware("http")
    async def headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        request.state.request_id = uuid.uuid4().hex[:16]
        response: Response = await call_next(request)
        signin.remember(request, response)  # a sign-in refreshed while serving the page
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers["Content-Security-Policy"] = csp
        response.headers["X-Request-Id"] = request.state.request_id
        return response

    def error_page(request: Request, title: str, text: str, code: int, **extra: str) -> Response:
        site = site_of(request)
        return site.render(
            request,
            "error.html",
            {"title_key": title, "text_key": text, "extra": extra},
            status=code,
        )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        if exc.status == 401 and request.url.path.startswith(("/inbox", "/clinician", "/worklist")):
            if request.method == "GET":  # to the sign-in, then back here
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/auth/login?{urlencode({'next': here})}", status_code=303)
            return site_of(request).render(
                request,
                "error.html",
                {"title_key": "signed_out", "text_key": "signed_out", "extra": {}, "sign_in": True},
                status=401,
            )
        return error_page(request, "error_title", exc.key, exc.status, detail=exc.detail)

    @app.exception_handler(CsrfError)
    async def csrf_error(request: Request, _exc: CsrfError) -> Response:
        return error_page(request, "csrf_title", "csrf", 403)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return error_page(request, "not_found_title", "not_found", 404)
        return error_page(request, "error_title", "error_generic", exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "")
        log.error("unexpected error", extra={"request_id": request_id, "error": type(exc).__name__})
        try:
            return error_page(request, "error_title", "error_generic", 500, request_id=request_id)
        except Exception:  # the error page itself failed: plain words still
            return JSONResponse({"error": "internal error", "request_id": request_id}, 500)

    # GET /metrics (request rate and latency by route template, never a task id or a link) and
    # a trace span per request, like the other services; the ingress does not route /metrics
    install_observability(app, "web", metrics_enabled=settings.metrics_enabled)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "web"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        return JSONResponse({"status": "ready", "service": "web"})

    app.state.languages = i18n.LANGUAGES
    return app
