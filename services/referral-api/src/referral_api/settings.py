"""referral-api settings, from REFERRAL_API_* environment variables."""

from __future__ import annotations

from closedloop.settings import FhirServiceSettings
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict


class Settings(FhirServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REFERRAL_API_", extra="ignore")

    database_url: str = "sqlite:///.data/referral-api.db"
    port: int = 8081
    directory_url: str = "http://127.0.0.1:8082/fhir"  # directory-api FHIR base
    directory_timeout: float = 2.0  # seconds per call to the directory (one retry)
    # Where the outbox dispatcher POSTs referral events ("" turns delivery off; events wait)
    event_sink_url: str = "http://127.0.0.1:8083/events"
    event_sink_timeout: float = 5.0
    # the secret the sink expects (Authorization: Bearer ...): the notifier's NOTIFIER_EVENTS_TOKEN
    event_sink_token: SecretStr | None = None
    event_retry_max_seconds: float = 30.0  # cap of the backoff between delivery attempts
    # its token for the directory checks of referral targets
    client_scope: str = "system/HealthcareService.r system/Organization.r"
