"""``Database.driver`` on PostgreSQL: the connections it keeps stay within its share of the
pool, a waiter cancelled in line loses nothing, and a dead connection is replaced."""

from __future__ import annotations

import asyncio

import pytest
from closedloop.db import create_database


async def test_driver_connections_are_shared_and_recovered(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the kept driver connections are PostgreSQL's")
    db = create_database(database_url, pool_size=4)
    assert db.driver_connections == 2
    try:
        busy = 0
        most = 0

        async def read(n: int) -> int:
            nonlocal busy, most
            async with db.driver() as raw:
                busy += 1
                most = max(most, busy)
                await asyncio.sleep(0.01)
                value = await raw.fetchval("SELECT $1::int", n)
                busy -= 1
                return int(value)

        assert await asyncio.gather(*(read(n) for n in range(20))) == list(range(20))
        assert most <= 2
        assert db._drivers is not None and db._drivers.opened <= 2

        # a waiter cancelled in line: the connections still go round
        holders = [asyncio.create_task(read(n)) for n in range(2)]
        await asyncio.sleep(0)
        waiter = asyncio.create_task(read(99))
        await asyncio.sleep(0)
        waiter.cancel()
        assert await asyncio.gather(*holders) == [0, 1]
        assert await asyncio.gather(*(read(n) for n in range(5))) == list(range(5))

        # a connection closed under us is dropped, and the next reads get a live one
        with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
            async with db.driver() as raw:
                await raw.close()
                await raw.fetchval("SELECT 1")
        assert await asyncio.gather(*(read(n) for n in range(5))) == list(range(5))
        assert db._drivers.opened <= 2
        # the rest of the pool still serves SQLAlchemy
        assert await db.ping()
    finally:
        await db.dispose()
