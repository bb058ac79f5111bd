"""Engines and the PostgreSQL/SQLite differences that matter to the FHIR engine.

SQLite runs in WAL mode so readers never wait for the writer. Write transactions begin with
``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a read lock; a busy timeout makes
the second writer wait instead of failing. PostgreSQL runs at READ COMMITTED: correctness under
concurrency comes from unique keys and row locks, not from the isolation level.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from closedloop.db.direct import INTEGRITY_ERRORS, integrity_error
from closedloop.db.localtime import SQLITE_NAME as _MINUTE_OF_WEEK
from closedloop.db.localtime import python_minute_of_week

_WRITE = "closedloop_write"
_MATH = (
    ("sin", math.sin, 1),
    ("cos", math.cos, 1),
    ("asin", math.asin, 1),
    ("sqrt", math.sqrt, 1),
    ("pow", math.pow, 2),
    ("radians", math.radians, 1),
)
_DOLLAR_PARAM = re.compile(r"\$\d+")


T = TypeVar("T")

_INTERRUPTIBLE: ContextVar[tuple[set[Callable[[], None]], ...]] = ContextVar(
    "closedloop_interruptible", default=()
)


@contextmanager
def interruptible() -> Iterator[Callable[[], None]]:
    """A scope whose running SQLite statements (``Database.read``) the yielded function stops.

    Call it from outside the task (a timer, a watcher) just before cancelling the task: the
    statement then ends at once instead of when it is done.
    """
    scope: set[Callable[[], None]] = set()
    token = _INTERRUPTIBLE.set((*_INTERRUPTIBLE.get(), scope))

    def interrupt() -> None:
        for stop in list(scope):
            stop()

    try:
        yield interrupt
    finally:
        _INTERRUPTIBLE.reset(token)


Stop = Callable[[BaseException], None]


async def run_stoppable(work: Awaitable[T], arm: Callable[[Stop], Callable[[], None]]) -> T:
    """``await work`` in this task, stoppable from a callback (a timer, a watcher).

    ``arm(stop)`` sets up whatever may stop the work and returns how to disarm it. ``stop(error)``
    interrupts the running SQLite statement and cancels the task (asyncpg then sends
    PostgreSQL a cancel request); the cancellation then comes out of here as ``error``. A stop
    after the work ended does nothing; a cancellation from elsewhere stays a cancellation.
    """
    task = asyncio.current_task()
    assert task is not None
    stopped: list[BaseException] = []
    done = False
    with interruptible() as interrupt:

        def stop(error: BaseException) -> None:
            if done or stopped:
                return
            stopped.append(error)
            interrupt()  # SQLite's statement ends now, not when it is done
            task.cancel()

        disarm = arm(stop)
        try:
            return await work
        except asyncio.CancelledError:
            if stopped and task.uncancel() == 0:
                raise stopped[0] from None
            raise
        finally:
            done = True
            disarm()


def is_postgres(url_or_engine: str | AsyncEngine | AsyncConnection) -> bool:
    if isinstance(url_or_engine, str):
        return make_url(url_or_engine).get_backend_name() == "postgresql"
    return url_or_engine.dialect.name == "postgresql"


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite:///`` URLs and pick the async drivers."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "postgresql":
        u = u.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        raise ValueError(f"unsupported database URL scheme: {backend}")
    return u.render_as_string(hide_password=False)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite driver otherwise
        # starts transactions lazily and never with IMMEDIATE).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        try:  # geo search needs these; SQLite builds without math functions lack them
            cur.execute("SELECT sin(1), cos(1), asin(0.5), sqrt(4), pow(2, 2), radians(1)")
        except Exception:
            for name, fn, args in _MATH:
                dbapi_conn.create_function(name, args, fn, deterministic=True)
        dbapi_conn.create_function(_MINUTE_OF_WEEK, 2, python_minute_of_week, deterministic=True)
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class _DriverPool:
    """Connections taken out of the SQLAlchemy pool once and kept for ``Database.driver``.

    A checkout from SQLAlchemy's pool (and its checkin) costs about as much CPU as the read it
    serves; handing a kept connection to the next reader costs nothing. The connections stay
    counted in SQLAlchemy's pool, so the service never holds more than its ``pool_size``: at
    most ``size`` of them serve driver-level reads, the rest everything else.
    """

    def __init__(self, engine: AsyncEngine, size: int) -> None:
        self.engine = engine
        self.size = size
        self.opened = 0
        self.idle: list[Any] = []  # pool fairies
        self.waiters: deque[asyncio.Future[Any]] = deque()

    async def acquire(self) -> Any:
        if self.idle:
            return self.idle.pop()
        if self.opened < self.size:
            self.opened += 1
            try:
                return await self.engine.raw_connection()
            except BaseException:
                self.opened -= 1
                raise
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # handed over just as we were cancelled
            raise

    def release(self, fairy: Any) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(fairy)
                return
        self.idle.append(fairy)

    async def discard(self, fairy: Any) -> None:
        """A dead connection: invalidate it (the pool reconnects later) and let a waiter open
        a fresh one."""
        self.opened -= 1
        await greenlet_spawn(fairy.invalidate)
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                try:
                    self.opened += 1
                    waiter.set_result(await self.engine.raw_connection())
                except BaseException as exc:
                    self.opened -= 1
                    if not waiter.done():
                        waiter.set_exception(exc)
                return

    def close(self) -> None:
        """Give the kept connections back to SQLAlchemy's pool (before it is disposed)."""
        idle, self.idle = self.idle, []
        self.opened -= len(idle)
        for fairy in idle:
            fairy.close()


@dataclass
class Database:
    """One service's database: a read engine and a write view of the same pool."""

    engine: AsyncEngine
    url: str
    driver_connections: int = 0  # kept for Database.driver (PostgreSQL); 0: a checkout each
    _drivers: _DriverPool | None = field(default=None, init=False, repr=False)

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads. On PostgreSQL it runs in autocommit: a read needs no
        BEGIN/ROLLBACK round trips (each statement still sees one consistent snapshot).

        A read inside ``interruptible()`` can be stopped on the database too: asyncpg sends
        PostgreSQL a cancel request itself when the task is cancelled; SQLite's statement runs
        on aiosqlite's thread whatever happens to the awaiting task (and SQLAlchemy, closing
        the cancelled connection, would wait for it), so its connection registers an interrupt
        the scope's owner calls before cancelling."""
        async with self.engine.connect() as conn:
            if self.engine.dialect.name == "postgresql":
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
                return
            scopes = _INTERRUPTIBLE.get()
            if not scopes:
                yield conn
                return
            driver: Any = (await conn.get_raw_connection()).driver_connection
            interrupt = driver._conn.interrupt  # aiosqlite's sqlite3 connection: thread-safe
            for scope in scopes:
                scope.add(interrupt)
            try:
                yield conn
            finally:
                for scope in scopes:
                    scope.discard(interrupt)

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """The driver's own connection (asyncpg or aiosqlite) from the pool, for hand-written or
        pre-compiled SQL on the hottest paths: it skips SQLAlchemy's execution layer and opens
        no transaction (autocommit reads on PostgreSQL).

        On PostgreSQL the pool's raw checkout is used: a quarter of the cost of
        ``engine.connect()``. A connection the driver reports closed after an error is
        invalidated, so the pool never hands it out again.
        """
        if not self.postgres:
            async with self.engine.connect() as conn:
                yield (await conn.get_raw_connection()).driver_connection
            return
        if self.driver_connections > 0:
            if self._drivers is None:
                self._drivers = _DriverPool(self.engine, self.driver_connections)
            pool = self._drivers
            kept = await pool.acquire()
            raw_kept: Any = kept.driver_connection
            try:
                yield raw_kept
            except BaseException as exc:
                # a dead connection, or one whose query was cancelled midway: never reused
                if raw_kept.is_closed() or isinstance(exc, asyncio.CancelledError):
                    await pool.discard(kept)
                    kept = None
                raise
            finally:
                if kept is not None:
                    pool.release(kept)
            return
        fairy = await self.engine.raw_connection()
        raw: Any = fairy.driver_connection
        try:
            yield raw
        except BaseException:
            if raw.is_closed():
                await greenlet_spawn(fairy.invalidate)
            raise
        finally:
            if fairy.is_valid:
                # Checkin only awaits when the connection holds a transaction: none here.
                fairy.close()

    async def fetch_row(self, sql: str, *args: Any) -> Any:
        """One row by a hand-written query (``$1``-style parameters), straight on the driver.

        For the hottest reads only: it skips SQLAlchemy's execution layer and opens no
        transaction, halving the cost of a read by id. The SQL must be portable.
        """
        async with self.driver() as raw:
            if self.postgres:
                return await raw.fetchrow(sql, *args)
            cursor = await raw.execute(_DOLLAR_PARAM.sub("?", sql), args)
            try:
                return await cursor.fetchone()
            finally:
                await cursor.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction: committed when the block ends, rolled back if
        it raises. On SQLite the transaction takes the write lock at BEGIN.

        On PostgreSQL the driver runs BEGIN and COMMIT itself (``_driver_transaction``):
        through SQLAlchemy's asyncpg adapter each costs about three times the round trip, and
        a create is little else."""
        async with self.engine.connect() as conn:
            if self.postgres:
                async with _driver_transaction(conn):
                    yield conn
                return
            await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn

    async def ping(self) -> bool:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def dispose(self) -> None:
        if self._drivers is not None:
            self._drivers.close()
            self._drivers = None
        await self.engine.dispose()


@asynccontextmanager
async def _driver_transaction(conn: AsyncConnection) -> AsyncIterator[None]:
    """An asyncpg transaction on ``conn``'s driver connection that SQLAlchemy's statements on
    ``conn`` join: its asyncpg adapter begins a transaction of its own only when it holds none
    (``_transaction``), so it is handed this one for the block's length. Commits when the block
    ends; rolls back on any error or cancellation, and a connection that cannot roll back is
    invalidated, so the pool never hands out one left inside a transaction. A unique-key
    violation at COMMIT comes out as SQLAlchemy's ``IntegrityError``, as from a statement."""
    fairy = await conn.get_raw_connection()
    adapter: Any = fairy.dbapi_connection
    driver: Any = fairy.driver_connection
    if getattr(adapter, "_transaction", False) is not None:  # not the adapter we know
        async with conn.begin():
            yield
        return
    transaction = driver.transaction()
    await transaction.start()
    adapter._transaction = transaction
    try:
        yield
    except BaseException:
        adapter._transaction = None
        try:
            if driver.is_closed():
                await conn.invalidate()
            else:
                await transaction.rollback()
        except BaseException:
            await conn.invalidate()
        raise
    adapter._transaction = None
    try:
        await transaction.commit()
    except BaseException as exc:
        await conn.invalidate()  # whatever state the failed COMMIT left it in
        if isinstance(exc, INTEGRITY_ERRORS):
            raise integrity_error("COMMIT", exc) from exc
        raise


def create_database(url: str, pool_size: int = 20) -> Database:
    url = normalize_url(url)
    kwargs: dict[str, Any] = {}
    if is_postgres(url):
        # A fixed pool: overflow connections are opened and closed per burst, each paying a
        # new PostgreSQL session and losing its prepared statements (it halved read throughput)
        kwargs.update(pool_size=pool_size, max_overflow=0, pool_pre_ping=False)
    # hide_parameters: a database error never carries the statement's values (resource bodies,
    # PHI) into its message, and so into logs
    engine = create_async_engine(url, hide_parameters=True, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
        return Database(engine=engine, url=url)
    return Database(engine=engine, url=url, driver_connections=pool_size // 2)
