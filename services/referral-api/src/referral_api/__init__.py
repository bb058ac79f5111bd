"""Closed Loop referral-api."""

__all__ = [
    "access",
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
