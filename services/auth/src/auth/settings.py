"""auth settings, from AUTH_* environment variables."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from closedloop.settings import ServiceSettings
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

LOCAL_FHIR_BASES = (
    "http://127.0.0.1:8081/fhir,http://127.0.0.1:8082/fhir,http://127.0.0.1:8083/fhir"
)


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    database_url: str = "sqlite:///.data/auth.db"
    port: int = 8084
    # the public base URL of this server: the tokens' iss, and {issuer}/token is the only
    # audience a client assertion may name
    issuer: str = "http://127.0.0.1:8084"
    # the FHIR bases access tokens are for (their aud), comma-separated
    audiences: str = LOCAL_FHIR_BASES
    token_lifetime: int = Field(300, ge=10, le=300)  # seconds; SMART: SHOULD be <= 300
    signing_alg: str = Field("ES384", pattern="^(RS384|ES384)$")  # for new server keys
    # encrypts the server's private keys at rest (any long random string); unset: stored plain
    key_secret: SecretStr | None = None
    jwks_cache_seconds: int = Field(300, ge=0)  # a client's JWKS URL is fetched again after
    jwks_timeout: float = 5.0  # seconds for one JWKS URL fetch
    # how soon a key rotated by another process is used (below keys.SKEW: a retired key stays
    # published long enough for the tokens it signed meanwhile)
    key_refresh_seconds: float = Field(5.0, ge=0, le=30)

    @field_validator("issuer")
    @classmethod
    def _https_unless_loopback(cls, value: str) -> str:
        """OAuth needs TLS: plain http only on this machine (Authlib refuses anything else at
        every request; this says so at start-up instead)."""
        parts = urlsplit(value)
        host = parts.hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if (parts.scheme == "https" and host) or (parts.scheme == "http" and loopback):
            return value.rstrip("/")
        raise ValueError("AUTH_ISSUER must be an https URL (http only for localhost/127.0.0.1)")

    @property
    def token_url(self) -> str:
        return f"{self.issuer.rstrip('/')}/token"

    @property
    def audience_list(self) -> list[str]:
        return [a.strip() for a in self.audiences.split(",") if a.strip()]
