"""Closed Loop referral-api."""

__all__ = [
    "app",
    "cli",
    "outbox",
    "profiles",
    "resources",
    "rules",
    "settings",
    "targets",
    "workflow",
]
