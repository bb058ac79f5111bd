"""`<service> migrate`: what the Compose one-shot service and the Kubernetes migration Job run
before any replica starts. Each service's command, as a real process, on a fresh PostgreSQL
database: the schema is at head afterwards, and a second run (the next rollout) changes
nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from contextlib import AsyncExitStack

import asyncpg
from closedloop.testing import postgres_database

SERVICES = [
    ("referral_api", "REFERRAL_API_"),
    ("directory_api", "DIRECTORY_API_"),
    ("notifier", "NOTIFIER_"),
    ("auth", "AUTH_"),
]


def run_migrate(module: str, prefix: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"{module}.cli", "migrate"],
        env={**os.environ, f"{prefix}DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def schema(url: str) -> tuple[list[str], list[str]]:
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "select tablename from pg_tables where schemaname = 'public' order by 1"
        )
        versions = await conn.fetch("select version_num from alembic_version")
    finally:
        await conn.close()
    return [r[0] for r in tables], [r[0] for r in versions]


async def test_migrate_brings_each_empty_database_to_head_once(postgres_admin_url: str) -> None:
    """The four services at once, as the Compose one-shot service or the Job runs them."""
    async with AsyncExitStack() as stack:
        urls = [
            await stack.enter_async_context(postgres_database(postgres_admin_url)) for _ in SERVICES
        ]

        runs = await asyncio.gather(
            *(
                asyncio.to_thread(run_migrate, module, prefix, url)
                for (module, prefix), url in zip(SERVICES, urls, strict=True)
            )
        )
        for (module, _), run in zip(SERVICES, runs, strict=True):
            assert run.returncode == 0, f"{module}: {run.stderr}"
        for (module, _), url in zip(SERVICES, urls, strict=True):
            tables, versions = await schema(url)
            assert "alembic_version" in tables, module
            assert len(tables) > 1, (module, tables)  # its own tables, not only alembic's
            assert len(versions) == 1, module

        # the next rollout: nothing to do (one service: the step is the same for all)
        before = await schema(urls[0])
        again = await asyncio.to_thread(run_migrate, *SERVICES[0], urls[0])
        assert again.returncode == 0, again.stderr
        assert await schema(urls[0]) == before


def test_migrate_fails_loudly_when_the_database_is_unreachable() -> None:
    """A migration Job that cannot reach its database must fail (so the rollout stops), not
    exit 0."""
    out = run_migrate("referral_api", "REFERRAL_API_", "postgresql://nobody@127.0.0.1:1/none")
    assert out.returncode != 0
