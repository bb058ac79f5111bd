"""Closed Loop directory-api."""
