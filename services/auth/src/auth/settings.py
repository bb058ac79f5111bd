"""auth settings, from AUTH_* environment variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from closedloop.auth.roles import USER_ROLES
from closedloop.settings import ServiceSettings
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

LOCAL_FHIR_BASES = (
    "http://127.0.0.1:8081/fhir,http://127.0.0.1:8082/fhir,http://127.0.0.1:8083/fhir"
)


def secure_url(value: str, name: str) -> str:
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
    raise ValueError(f"{name} must be an https URL (http only for localhost/127.0.0.1)")


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
    # the FHIR base of the users' fhirUser resources (the id_token's fhirUser is an absolute
    # URL there; access tokens carry the relative reference)
    fhir_user_base: str = "http://127.0.0.1:8081/fhir"
    # people signing in (authorization code + PKCE)
    code_lifetime: int = Field(60, ge=5, le=60)  # seconds an authorization code is good for
    # how long a sign-in can be refreshed: offline_access, online_access (no session here:
    # online_access is the shorter lifetime); rotation does not extend it
    refresh_lifetime: int = Field(30 * 86400, ge=60)
    online_refresh_lifetime: int = Field(8 * 3600, ge=60)
    launch_lifetime: int = Field(600, ge=10, le=3600)  # seconds an EHR launch id is good for
    # failed logins allowed per username, and per client address, within login_window seconds
    login_max_failures: int = Field(5, ge=1)
    login_max_failures_per_address: int = Field(20, ge=1)
    login_window: int = Field(900, ge=1)
    # development: where `auth clients ensure` keeps the private keys it makes and `auth token`
    # looks for them (`make run` keeps the services' and the dev client's here)
    client_keys_dir: Path = Path(".data/keys")
    # people may also sign in at one trusted external OpenID Connect issuer (unset: they do
    # not): its issuer URL (discovery at {issuer}/.well-known/openid-configuration), the
    # client id and secret this server is registered there with, the name on the button, the
    # id_token claim that names the local user (sub, or email: then email_verified must be
    # true) and what to ask for
    external_oidc_issuer: str | None = None
    external_oidc_client_id: str | None = None
    external_oidc_client_secret: SecretStr | None = None
    external_oidc_name: str | None = None  # default: the issuer's host
    external_oidc_claim: str = Field("sub", pattern="^(sub|email)$")
    external_oidc_scopes: str = "openid email"
    external_oidc_timeout: float = 10.0  # seconds for one call to the issuer
    external_oidc_login_lifetime: int = Field(600, ge=30, le=3600)  # seconds to come back
    # an external subject with no local account: refused, unless both are set (then a user
    # with this organization and role is made for it on first sign-in)
    external_oidc_provision_organization: str | None = None
    external_oidc_provision_role: str | None = None

    @field_validator("issuer")
    @classmethod
    def _https_unless_loopback(cls, value: str) -> str:
        return secure_url(value, "AUTH_ISSUER")

    @field_validator("external_oidc_issuer")
    @classmethod
    def _external_https_unless_loopback(cls, value: str | None) -> str | None:
        return secure_url(value, "AUTH_EXTERNAL_OIDC_ISSUER") if value else None

    @model_validator(mode="after")
    def _external_complete(self) -> Settings:
        """A half-configured external issuer is refused at start-up, not at the first sign-in."""
        if self.external_oidc_issuer and not self.external_oidc_client_id:
            raise ValueError("AUTH_EXTERNAL_OIDC_ISSUER needs AUTH_EXTERNAL_OIDC_CLIENT_ID")
        provision = (self.external_oidc_provision_organization, self.external_oidc_provision_role)
        if any(provision) and not all(provision):
            raise ValueError(
                "set both AUTH_EXTERNAL_OIDC_PROVISION_ORGANIZATION and _PROVISION_ROLE, or neither"
            )
        if self.external_oidc_provision_role not in (None, *USER_ROLES):
            raise ValueError(f"AUTH_EXTERNAL_OIDC_PROVISION_ROLE is one of {', '.join(USER_ROLES)}")
        return self

    @property
    def external_oidc(self) -> bool:
        return bool(self.external_oidc_issuer)

    @property
    def external_oidc_display_name(self) -> str | None:
        """What the sign-in page's button names (None: no external issuer)."""
        if not self.external_oidc_issuer:
            return None
        return self.external_oidc_name or urlsplit(self.external_oidc_issuer).netloc

    @property
    def token_url(self) -> str:
        return f"{self.issuer.rstrip('/')}/token"

    @property
    def audience_list(self) -> list[str]:
        return [a.strip() for a in self.audiences.split(",") if a.strip()]
