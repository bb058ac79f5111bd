"""Which channels this server can send on. A channel whose settings are missing is refused
when a Subscription asks for it, and a subscription already on it goes to ``error``: retrying
cannot help until an operator sets them (and every notifier sharing a database should have the
same channel settings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from notifier.settings import Settings


@dataclass(frozen=True)
class ChannelSetup:
    missing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # channel -> settings

    def problem(self, channel: str) -> str | None:
        """Why ``channel`` cannot be used here, naming the settings to set; None when it can."""
        names = self.missing.get(channel)
        if not names:
            return None
        return f"the {channel} channel is not configured on this server (set {', '.join(names)})"


def channel_setup(settings: Settings) -> ChannelSetup:
    needed = {
        "email": {"NOTIFIER_SMTP_HOST": settings.smtp_host},
        "sms": {
            "NOTIFIER_SMS_API_URL": settings.sms_api_url,
            "NOTIFIER_SMS_ACCOUNT_SID": settings.sms_account_sid,
            "NOTIFIER_SMS_AUTH_TOKEN": settings.sms_auth_token,
            "NOTIFIER_SMS_FROM": settings.sms_from,
        },
    }
    missing = {
        channel: tuple(name for name, value in values.items() if not value)
        for channel, values in needed.items()
    }
    return ChannelSetup({c: names for c, names in missing.items() if names})
