"""The channel registry: channel code -> channel class, the one place a channel is named.

The subscription checks look a Subscription's ``channel.type`` up here (an unknown code is a
400), and the delivery worker sends through the ``Channels`` opened from it at start-up. A
channel whose settings are missing is not opened: a Subscription asking for it is refused
(CL-8407, naming the settings to set) and one already on it goes to ``error``, since retrying
cannot help until an operator sets them (every notifier sharing a database should have the same
channel settings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from notifier.channels.base import Channel, ChannelDeps, ChannelUnusable, Notification
from notifier.channels.email import EmailChannel
from notifier.channels.rest_hook import RestHookChannel
from notifier.channels.sms import SmsChannel
from notifier.settings import Settings

__all__ = ["CHANNELS", "ChannelSetup", "Channels", "channel_setup", "open_channels"]

CHANNELS: dict[str, type[Channel]] = {
    "rest-hook": RestHookChannel,
    "email": EmailChannel,
    "sms": SmsChannel,
}


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
    missing = {code: cls.missing_settings(settings) for code, cls in CHANNELS.items()}
    return ChannelSetup({code: names for code, names in missing.items() if names})


@dataclass
class Channels:
    """The channels this server can send on, opened once at start-up."""

    opened: Mapping[str, Channel]
    setup: ChannelSetup = field(default_factory=ChannelSetup)  # what the settings lack

    async def send(self, notification: Notification) -> None:
        """Send through the subscription's channel; ``ChannelUnusable`` when it is not open."""
        code = notification.spec.channel
        channel = self.opened.get(code)
        if channel is None:
            raise ChannelUnusable(self.setup.problem(code) or f"{code} is not set up")
        await channel.send(notification)


def open_channels(settings: Settings, deps: ChannelDeps) -> Channels:
    setup = channel_setup(settings)
    opened = {
        code: cls.open(settings, deps)
        for code, cls in CHANNELS.items()
        if code not in setup.missing
    }
    return Channels(opened, setup)
