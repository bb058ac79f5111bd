"""referral-api settings, from REFERRAL_API_* environment variables."""

from __future__ import annotations

from closedloop.settings import FhirServiceSettings
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from referral_api.followup.settings import FollowupSettings
from referral_api.measures.settings import MeasureSettings, parse_stall_days


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
    # share a referral with a CBO only when its ServiceRequest cites the patient's Consent
    require_consent: bool = True
    # loop metrics: a referral is stalled after this many days without the CBO's answer...
    measures_stall_days: int = Field(7, ge=1)
    # ...or, per category code, "food-insecurity=3,housing-instability=14"
    measures_stall_days_by_category: str = ""
    # counts under this are suppressed (and every figure derived from so small a group)
    measures_min_cell: int = Field(11, ge=1)
    # follow-up: a stalled referral (the stall limits above) still unanswered this many days
    # later is escalated
    escalate_after_days: int = Field(3, ge=1)
    # seconds between the periodic follow-up sweeps (0: none; POST Task/$sweep-stalled still)
    followup_sweep_seconds: float = Field(900.0, ge=0)

    @field_validator("measures_stall_days_by_category")
    @classmethod
    def _stall_days(cls, value: str) -> str:
        parse_stall_days(value)
        return value

    def measures(self) -> MeasureSettings:
        return MeasureSettings(
            self.measures_stall_days,
            parse_stall_days(self.measures_stall_days_by_category),
            self.measures_min_cell,
        )

    def followup(self) -> FollowupSettings:
        return FollowupSettings(
            self.measures_stall_days,
            parse_stall_days(self.measures_stall_days_by_category),
            self.escalate_after_days,
            self.followup_sweep_seconds,
        )
