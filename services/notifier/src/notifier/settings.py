"""notifier settings, from NOTIFIER_* environment variables."""

from __future__ import annotations

from closedloop.settings import FhirServiceSettings
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict


class Settings(FhirServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    database_url: str = "sqlite:///.data/notifier.db"
    port: int = 8083
    referral_url: str = "http://127.0.0.1:8081/fhir"  # referral-api FHIR base (focus URLs)
    app_url: str | None = None  # the web app, for links in emails and texts
    # signs the patient's links to the web app's status page (closedloop.links); must equal
    # WEB_LINK_SECRET. Unset: patients get the plain link, which asks for a sign-in
    link_secret: SecretStr | None = None
    link_lifetime_days: float = Field(30.0, gt=0)  # how long a patient's link works
    # its token for reading a patient's language from referral-api
    client_scope: str = "system/Patient.r"
    # the shared secret referral-api sends with its events (Authorization: Bearer ...); unset:
    # POST /events refuses everything
    events_token: SecretStr | None = None
    # the service clients (comma-separated ids, role service) whose access tokens may post
    # events, when authorization is on
    event_senders: str = "referral-api"
    # delivery
    max_event_age_hours: float = 24.0  # retry this long, then the subscription goes to error
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    delivery_poll_seconds: float = 0.5
    # a replica works a subscription under a lease this long (renewed while it works); a
    # replica that dies mid-delivery leaves its subscriptions to the others once it expires
    delivery_lease_seconds: float = Field(30.0, gt=0)
    delivery_enabled: bool = True
    # SSRF guard for rest-hook endpoints
    allowed_hosts: str = ""  # comma-separated; empty: any host with a public address
    allow_loopback_endpoints: bool = False
    allow_private_endpoints: bool = False
    # email (SMTP)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = "closed-loop@localhost"
    # sms (Twilio-compatible API)
    sms_api_url: str | None = None
    sms_account_sid: str | None = None
    sms_auth_token: str | None = None
    sms_from: str | None = None
