"""Notification channels: one module per channel type (``rest_hook``, ``email``, ``sms``), each
a ``Channel`` subclass, and one registry (``registry.CHANNELS``) that the subscription checks
and the delivery worker look a channel code up in. Adding a channel is one module and one line
in the registry; nothing else names a channel.

The package exports only the vocabulary every caller shares (what a channel is and how a send
fails); the registry and the channel classes are imported from their modules."""

from __future__ import annotations

from notifier.channels.base import Channel, ChannelUnusable, DeliveryError, Notification

__all__ = ["Channel", "ChannelUnusable", "DeliveryError", "Notification"]
