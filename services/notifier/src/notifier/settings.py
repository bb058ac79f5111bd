"""notifier settings, from NOTIFIER_* environment variables."""

from __future__ import annotations

from closedloop.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    database_url: str = "sqlite:///.data/notifier.db"
    port: int = 8083
    referral_url: str = "http://127.0.0.1:8081/fhir"  # referral-api FHIR base
