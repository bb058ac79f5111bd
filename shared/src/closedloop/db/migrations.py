"""Run a service's Alembic migrations on its own database at start-up.

Each service keeps its own ``migrations/`` folder (its own history); their ``env.py`` is the
two-line ``run_env()`` below, which reuses the connection handed over by ``upgrade_to_head``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import text

from closedloop.db.engine import Database


def _config(script_location: Path, connection: Any | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _lock_key(script_location: Path) -> int:
    """A stable 63-bit advisory-lock key per migration history (``referral_api/migrations``):
    the same in every replica, wherever the package is installed."""
    name = "/".join(script_location.resolve().parts[-2:])
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


async def upgrade_to_head(db: Database, script_location: Path) -> None:
    """Upgrade to head; replicas starting at once take turns.

    On PostgreSQL a transaction-scoped advisory lock serializes the upgrade: the first replica
    migrates, the next one waits, then finds the schema at head and does nothing. SQLite is
    single-writer by nature (the file lock serializes the ``BEGIN``)."""
    async with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(script_location)}
            )
        await conn.run_sync(
            lambda sync_conn: command.upgrade(_config(script_location, sync_conn), "head")
        )


def run_env(target_metadata: Any = None) -> None:
    """Body of a service's ``migrations/env.py``."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through closedloop.db.upgrade_to_head")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
