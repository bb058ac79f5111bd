"""Closed Loop notifier."""
