"""Closed Loop referral-api."""
