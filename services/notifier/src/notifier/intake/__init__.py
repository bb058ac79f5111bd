"""Where referral-api delivers its outbox events."""

__all__ = ["auth", "router"]
