"""Where a search's statements run: an ``Executor`` the engine is handed, never a connection
that may be None.

- ``ConnectionExecutor`` runs everything on one connection: a search inside a transaction (a
  batch or transaction entry) sees that transaction's writes, and a search with a count gets
  its total and its page from the same connection.
- ``PooledExecutor`` (PostgreSQL) borrows a connection per statement: compiled page SQL and
  ``_include``s run on the driver's own connection (``Database.driver``), which skips
  SQLAlchemy's execution layer; only a statement built for a new shape takes a full
  SQLAlchemy connection.

``SearchEngine.search`` picks one of them for a search on the engine's own connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection

from closedloop.db.engine import Database
from closedloop.fhir.search.compiled import CustomPlans, Plan, Prepared
from closedloop.fhir.search.includes import DriverIncludes, IncludeSource, SqlIncludes


class Executor(Protocol):
    async def rows(self, stmt: Select[Any]) -> list[Any]:
        """Every row of a built statement."""

    async def scalar(self, stmt: Select[Any]) -> Any:
        """The one value of a built statement (a count)."""

    async def plan_rows(self, plan: Plan, prepared: Prepared) -> list[Any]:
        """Every row of a shape's compiled SQL with this search's values."""

    def includes(self) -> AbstractAsyncContextManager[IncludeSource]:
        """The ``IncludeSource`` for the page's ``_include``s, for as long as they take."""


class ConnectionExecutor:
    """Every statement on ``conn``."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def rows(self, stmt: Select[Any]) -> list[Any]:
        return list((await self.conn.execute(stmt)).all())

    async def scalar(self, stmt: Select[Any]) -> Any:
        return (await self.conn.execute(stmt)).scalar_one()

    async def plan_rows(self, plan: Plan, prepared: Prepared) -> list[Any]:
        params = plan.params(prepared.values)
        return list((await self.conn.exec_driver_sql(plan.sql, tuple(params))).all())

    @asynccontextmanager
    async def includes(self) -> AsyncIterator[IncludeSource]:
        yield SqlIncludes(self.conn)


class PooledExecutor:
    """Each statement on a connection of its own from ``db`` (PostgreSQL)."""

    def __init__(self, db: Database, custom: CustomPlans) -> None:
        self.db = db
        self.custom = custom

    async def rows(self, stmt: Select[Any]) -> list[Any]:
        async with self.db.read() as conn:
            return list((await conn.execute(stmt)).all())

    async def scalar(self, stmt: Select[Any]) -> Any:
        async with self.db.read() as conn:
            return (await conn.execute(stmt)).scalar_one()

    async def plan_rows(self, plan: Plan, prepared: Prepared) -> list[Any]:
        params = plan.params(prepared.values)
        async with self.db.driver() as raw:  # asyncpg prepares the text once per connection
            if prepared.custom_plans:
                return await self.custom.fetch(raw, plan.sql, params)
            return list(await raw.fetch(plan.sql, *params))

    @asynccontextmanager
    async def includes(self) -> AsyncIterator[IncludeSource]:
        async with self.db.driver() as raw:
            yield DriverIncludes(raw)
