"""Short human messages about a referral, in the reader's language."""

__all__ = ["catalog", "templates"]
