"""Human channels: email over SMTP and SMS over a Twilio-compatible HTTP API."""

from __future__ import annotations


class DeliveryError(Exception):
    """A notification did not get through; the text says why, never what the message said."""


class ChannelUnusable(DeliveryError):
    """Retrying cannot help (the channel is not configured, the address can never be sent
    to): the subscription goes to ``error`` instead of backing off."""
