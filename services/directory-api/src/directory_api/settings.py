"""directory-api settings, from DIRECTORY_API_* environment variables."""

from __future__ import annotations

from closedloop.settings import FhirServiceSettings
from pydantic_settings import SettingsConfigDict


class Settings(FhirServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DIRECTORY_API_", extra="ignore")

    database_url: str = "sqlite:///.data/directory-api.db"
    port: int = 8082
    # IANA zone for imported HSDS schedules that name none (import-hsds --timezone overrides)
    default_timezone: str = "America/Chicago"
