"""Settings from environment variables: one class per service, each with its own prefix.

Secrets and URLs come only from the environment (or a ``.env`` file in development); the
defaults are safe for a laptop: SQLite files under ``.data/`` and loopback addresses.
"""

from __future__ import annotations

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
    body_read_timeout: float = 10.0  # seconds to wait for each chunk of a request body
    body_timeout: float = 60.0  # seconds for a whole request body (408 beyond)
    keep_alive_timeout: int = 5  # seconds an idle keep-alive connection stays open
    default_page_size: int = 50
    max_page_size: int = 1000
    log_level: str = "INFO"
