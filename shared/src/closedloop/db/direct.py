"""Statements straight to asyncpg inside ``Database.write``'s transaction on PostgreSQL.

That transaction is open on the asyncpg connection from the start
(``engine._driver_transaction``), so a statement sent to the connection directly is part of it,
exactly like one sent through SQLAlchemy, minus SQLAlchemy's execution layers: for a plain
INSERT those cost several times the round trip. Used
by the hottest writes only (a create's rows, the outbox event). Anywhere else (SQLite, or a
connection whose transaction SQLAlchemy began) the same statement goes through SQLAlchemy.
A unique-key violation is SQLAlchemy's ``IntegrityError`` either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection


async def driver_in_transaction(conn: AsyncConnection) -> Any | None:
    """The asyncpg connection under ``conn`` when a transaction is open on it, else None:
    SQLAlchemy then runs the statement, as it may have to BEGIN first (its asyncpg adapter
    begins lazily, at the first statement)."""
    if conn.dialect.name != "postgresql":
        return None
    driver: Any = (await conn.get_raw_connection()).driver_connection
    return driver if driver.is_in_transaction() else None


def integrity_error(statement: str, exc: Exception) -> IntegrityError:
    return IntegrityError(statement, None, exc)


INTEGRITY_ERRORS = (asyncpg.IntegrityConstraintViolationError,)


async def fetch_value(conn: AsyncConnection, sql: str, params: Sequence[Any]) -> Any:
    """The first column of the first row of ``sql`` (``$n`` parameters)."""
    driver = await driver_in_transaction(conn)
    if driver is None:
        return (await conn.exec_driver_sql(sql, tuple(params))).scalar()
    try:
        return await driver.fetchval(sql, *params)
    except INTEGRITY_ERRORS as exc:
        raise integrity_error(sql, exc) from exc


@cache
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


async def insert_rows(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(table.insert(), rows)``; every row has the same keys (column names)."""
    if not rows:
        return
    driver = await driver_in_transaction(conn)
    if driver is None:
        await conn.execute(table.insert(), rows)
        return
    columns = tuple(rows[0])
    sql = _insert_sql(table.name, columns)
    try:
        if len(rows) == 1:
            await driver.execute(sql, *(rows[0][c] for c in columns))
        else:
            await driver.executemany(sql, [tuple(r[c] for c in columns) for r in rows])
    except INTEGRITY_ERRORS as exc:
        raise integrity_error(sql, exc) from exc
