"""Closed Loop referral-api."""

__all__ = [
    "access",
    "app",
    "cli",
    "followup",
    "outbox",
    "profiles",
    "resources",
    "rules",
    "settings",
    "targets",
    "voice",
    "workflow",
]
