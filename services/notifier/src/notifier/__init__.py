"""Closed Loop notifier."""

__all__ = [
    "app",
    "channels",
    "cli",
    "delivery",
    "intake",
    "messages",
    "operations",
    "resources",
    "settings",
    "subscriptions",
    "topics",
]
