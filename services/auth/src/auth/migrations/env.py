"""Alembic environment: runs on the connection handed over at start-up."""

from closedloop.db.migrations import run_env

run_env()
