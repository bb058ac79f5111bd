"""Settings from environment variables: one class per service, each with its own prefix.

Secrets and URLs come only from the environment (or a ``.env`` file in development); the
defaults are safe for a laptop: SQLite files under ``.data/`` and loopback addresses.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = "sqlite:///.data/service.db"
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str | None = (
        None  # the FHIR base clients see; derived from the request if unset
    )
    # Host names (comma-separated) whose requests may get links on their own base when
    # PUBLIC_BASE_URL is unset; others get links on http://HOST:PORT (``FhirServer.base_url``)
    trusted_hosts: str = ""
    max_body_bytes: int = 5 * 1024 * 1024
    # per verified client, per replica: requests per second (0: no limit) and burst size
    rate_limit_per_second: float = Field(0.0, ge=0)
    rate_limit_burst: int = Field(50, ge=1)
    # keep the audit trail (closedloop.audit): every read, search, write and refusal
    audit_enabled: bool = True
    # web origins (comma-separated, e.g. https://app.example.org) browsers may call from
    cors_origins: str = ""
    body_read_timeout: float = 10.0  # seconds to wait for each chunk of a request body
    body_timeout: float = 60.0  # seconds for a whole request body (408 beyond)
    keep_alive_timeout: int = 5  # seconds an idle keep-alive connection stays open
    default_page_size: int = 50
    max_page_size: int = 1000
    # one search: parameters plus comma-separated values, and parameters alone (each is one
    # more join for the database to plan); more is refused with a 400
    max_search_values: int = Field(400, ge=1, le=5000)  # SQLite binds at most 32766 values
    max_search_parameters: int = Field(64, ge=1)
    # a search running longer is cancelled on the database and answered with a 503
    statement_timeout_ms: int = Field(10_000, ge=1)
    log_level: str = "INFO"
    # GET /metrics (Prometheus), without a token: meant for the cluster's scraper only (it
    # holds counts by route template, never ids or patient data; see README "Observability")
    metrics_enabled: bool = True


class FhirServiceSettings(ServiceSettings):
    """A FHIR service's settings: the common ones plus authorization (``closedloop.auth``).

    With ``AUTH_ENABLED`` (the default) every FHIR interaction needs a bearer access token
    from the auth service (``AUTH_ISSUER``), checked against its keys (``AUTH_JWKS_URL``) and this
    service's audience (``AUTH_AUDIENCE``: its public FHIR base unless set)."""

    auth_enabled: bool = True
    auth_issuer: str = "http://127.0.0.1:8084"
    auth_jwks_url: str | None = None  # default {issuer}/jwks
    auth_token_url: str | None = None  # default {issuer}/token (advertised, never called)
    auth_audience: str | None = None  # default PUBLIC_BASE_URL, else http://HOST:PORT/fhir
    auth_jwks_cache_seconds: float = Field(300.0, ge=0)
    auth_jwks_timeout: float = Field(5.0, gt=0)
    auth_leeway_seconds: float = Field(30.0, ge=0, le=300)  # clock skew on exp and nbf
    # this service as a client of the auth service, for its calls to the other services
    # (closedloop.http.credentials): unset, it calls them without a token
    client_id: str | None = None
    client_key_file: Path | None = None  # its private JWK (RS384 or ES384)
    client_scope: str = ""  # what it asks for; each service sets what its calls need
