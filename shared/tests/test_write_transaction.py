"""``Database.write`` and the statements ``db.direct`` sends straight to the driver, on both
databases: they commit together, roll back together (on an error and on cancellation), a
duplicate key is SQLAlchemy's ``IntegrityError`` whichever way the statement went, and no
connection goes back to the pool inside a transaction."""

from __future__ import annotations

import asyncio

import pytest
from closedloop.db import create_database
from closedloop.db.direct import fetch_value, insert_rows
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text
from sqlalchemy.exc import IntegrityError

metadata = MetaData()
items = Table(
    "write_tx_items",
    metadata,
    Column("n", Integer, primary_key=True),
    Column("label", String(20), nullable=False),
)


async def test_direct_statements_share_the_write_transaction(database_url: str) -> None:
    db = create_database(database_url, pool_size=2)
    try:
        async with db.write() as conn:
            await conn.run_sync(metadata.create_all)

        async with db.write() as conn:
            await insert_rows(conn, items, [{"n": 1, "label": "direct"}])
            await conn.execute(items.insert().values(n=2, label="sqlalchemy"))
            await insert_rows(conn, items, [{"n": 3, "label": "a"}, {"n": 4, "label": "b"}])
            assert await fetch_value(conn, "SELECT count(*) FROM write_tx_items", ()) == 4

        # an error after direct and SQLAlchemy statements: neither is kept
        with pytest.raises(RuntimeError):
            async with db.write() as conn:
                await insert_rows(conn, items, [{"n": 5, "label": "gone"}])
                await conn.execute(items.insert().values(n=6, label="gone"))
                raise RuntimeError("stop")

        # a duplicate key is IntegrityError, and the block rolls back
        with pytest.raises(IntegrityError):
            async with db.write() as conn:
                await insert_rows(conn, items, [{"n": 7, "label": "gone"}])
                await insert_rows(conn, items, [{"n": 1, "label": "again"}])
        with pytest.raises(IntegrityError):
            async with db.write() as conn:
                await fetch_value(
                    conn, "INSERT INTO write_tx_items (n, label) VALUES (2, 'x') RETURNING n", ()
                )

        # cancelled while the transaction is open: rolled back as well
        entered = asyncio.Event()

        async def slow_write() -> None:
            async with db.write() as conn:
                await insert_rows(conn, items, [{"n": 8, "label": "gone"}])
                entered.set()
                await asyncio.sleep(30)

        task = asyncio.create_task(slow_write())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async with db.read() as conn:
            rows = (await conn.execute(select(items.c.n).order_by(items.c.n))).scalars().all()
        assert rows == [1, 2, 3, 4]

        # every pooled connection comes back usable and outside any transaction
        for n in range(100, 104):
            async with db.write() as conn:
                await insert_rows(conn, items, [{"n": n, "label": "probe"}])
        async with db.write() as conn:
            await conn.execute(text("DELETE FROM write_tx_items WHERE n >= 100"))
        if db.postgres:
            for _ in range(2):
                async with db.engine.connect() as conn:
                    driver = (await conn.get_raw_connection()).driver_connection
                    assert not driver.is_in_transaction()
    finally:
        await db.dispose()
