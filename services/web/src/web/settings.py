"""web settings, from WEB_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEB_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    # where this app is reached from browsers (its OAuth redirect URI is <url>/auth/callback)
    public_url: str = "http://127.0.0.1:8080"
    # the other services, over HTTP only
    referral_url: str = "http://127.0.0.1:8081/fhir"
    directory_url: str = "http://127.0.0.1:8082/fhir"
    auth_url: str = "http://127.0.0.1:8084"
    # where browsers reach auth, when that is not WEB_AUTH_URL (Compose, Kubernetes: this app
    # calls http://auth:8084 while browsers sign in at auth's public address, its issuer)
    auth_public_url: str = ""
    # the audience people's sign-ins ask for: referral-api's FHIR base as auth's
    # AUTH_AUDIENCES names it (its public URL), when that is not WEB_REFERRAL_URL
    referral_audience: str = ""
    # the EHR FHIR bases a SMART EHR launch may name as iss (comma-separated); empty: only
    # referral-api's (WEB_REFERRAL_URL)
    ehr_issuers: str = ""
    # this app as a client of auth: its service token (client_credentials, private_key_jwt) for
    # the patient status page, and the same client's sign-in of people (authorization code +
    # PKCE, the code exchange signed with the same key)
    client_id: str = "web"
    client_key_file: Path | None = None
    client_scope: str = (
        "system/Task.r system/ServiceRequest.r system/Patient.r system/Procedure.r "
        "system/QuestionnaireResponse.crs system/Questionnaire.r system/HealthcareService.r "
        "system/Organization.r system/Location.rs"
    )
    # what a person's sign-in asks for (their role and Organization narrow it in referral-api)
    user_scope: str = "openid fhirUser online_access user/*.cruds"
    # signs the session and CSRF cookies (any long random string); unset: a random one per
    # process (sign-ins do not survive a restart)
    session_secret: SecretStr | None = None
    # checks the patient's status links (closedloop.links); must equal NOTIFIER_LINK_SECRET
    link_secret: SecretStr | None = None
    # a case manager's worklist puts referrals sent this many days ago with no answer on top
    stall_days: int = Field(7, ge=1)
    session_max_age: int = Field(8 * 3600, ge=60)  # seconds a sign-in lasts in this app
    cookie_secure: bool = True  # false only for plain-http development (make run)
    timeout: float = 5.0  # seconds per call to another service
    log_level: str = "INFO"
    # find help's map: tiles off by default (markers on a plain background, nothing fetched from
    # elsewhere); a URL template such as https://tile.example.org/{z}/{x}/{y}.png turns them on
    map_tile_url: str = ""
    map_tile_attribution: str = ""
    # GET /metrics (Prometheus, no token): for the cluster's scraper only, never routed publicly
    metrics_enabled: bool = True

    @property
    def browser_auth_url(self) -> str:
        """auth's address as browsers reach it (sign-in redirects, the CSP's form-action)."""
        return (self.auth_public_url or self.auth_url).rstrip("/")

    @property
    def audience(self) -> str:
        """The ``aud`` a person's sign-in asks for."""
        return self.referral_audience or self.referral_url
