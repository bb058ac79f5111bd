"""Closed Loop directory-api."""

__all__ = ["app", "cli", "conventions", "geo", "hsds", "resources", "search", "settings"]
