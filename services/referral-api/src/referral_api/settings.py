"""referral-api settings, from REFERRAL_API_* environment variables."""

from __future__ import annotations

from closedloop.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REFERRAL_API_", extra="ignore")

    database_url: str = "sqlite:///.data/referral-api.db"
    port: int = 8081
    directory_url: str = "http://127.0.0.1:8082/fhir"  # directory-api FHIR base
    notifier_url: str = "http://127.0.0.1:8083"  # notifier base URL
