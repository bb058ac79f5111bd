"""Fixtures shared by every test suite in the workspace (see closedloop.testing)."""

pytest_plugins = ["closedloop.testing"]
