"""``referral-api measures-backfill``: rebuild the metrics' projection from the Task history
(after the migrations, which it applies first)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path

from closedloop.cli import Command
from closedloop.db import create_database, upgrade_to_head
from closedloop.logs import configure_logging
from closedloop.settings import ServiceSettings

from referral_api.measures.backfill import backfill

MIGRATIONS = Path(__file__).parent.parent / "migrations"


async def _run(database_url: str) -> int:
    db = create_database(database_url, pool_size=2)
    try:
        await upgrade_to_head(db, MIGRATIONS)
        return await backfill(db)
    finally:
        await db.dispose()


def _configure(_parser: argparse.ArgumentParser) -> None:
    return None


def _backfill(_args: argparse.Namespace, settings: ServiceSettings) -> None:
    configure_logging("referral-api", "WARNING")
    count = asyncio.run(_run(settings.database_url))
    print(f"referral_facts: {count} referral Tasks")


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command]] = {
    "measures-backfill": (_configure, _backfill)
}
