"""Subscriptions (R5 Backport IG 1.1.0 on R4): what a Subscription asks for, whether we can do
it, and its delivery state."""

__all__ = [
    "addresses",
    "guarded_http",
    "lifecycle",
    "matching",
    "ownership",
    "spec",
    "ssrf",
    "status",
    "tables",
]
