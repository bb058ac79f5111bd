"""CORS for the configured web origins only (``CORS_ORIGINS``): a browser app on one of them
may call the FHIR API with a bearer token; any other origin gets no CORS headers, so browsers
keep its scripts out. No origins configured: no CORS at all (server-to-server clients and the
server-rendered web app need none). Credentials (cookies) are never allowed: the API takes
bearer tokens."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Accept",
    "If-Match",
    "If-None-Match",
    "If-None-Exist",
    "If-Modified-Since",
    "Prefer",
    "X-Request-Id",
]
RESPONSE_HEADERS = [
    "ETag",
    "Location",
    "Content-Location",
    "Last-Modified",
    "Retry-After",
    "WWW-Authenticate",
    "X-Request-Id",
]


def origins(setting: str) -> list[str]:
    return [o.strip().rstrip("/") for o in setting.split(",") if o.strip()]


def install(app: FastAPI, setting: str) -> None:
    allowed = origins(setting)
    if not allowed:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=allowed,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=REQUEST_HEADERS,
        expose_headers=RESPONSE_HEADERS,
        allow_credentials=False,
        max_age=600,
    )
