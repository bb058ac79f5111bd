"""Where referral-api delivers its outbox events."""
