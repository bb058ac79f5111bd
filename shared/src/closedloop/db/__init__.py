"""Async database engines for PostgreSQL (asyncpg) and SQLite (aiosqlite), and migrations."""

from closedloop.db.engine import Database, create_database, is_postgres
from closedloop.db.migrations import upgrade_to_head

__all__ = ["Database", "create_database", "is_postgres", "upgrade_to_head"]
