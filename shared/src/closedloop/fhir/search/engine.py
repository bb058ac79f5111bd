"""The search engine: parse a search, plan its SQL conditions and run it, page by page.

Its parts live beside it: ``predicates``/``ordering`` build the SQL (through the index kinds),
``compiled`` caches it per search shape, ``execution`` says where statements run,
``includes`` follows ``_include``/``_revinclude`` and ``searchset`` renders the Bundle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from closedloop import errors
from closedloop.db.engine import Database, Stop, run_stoppable
from closedloop.fhir.search import limits, narrowing, paging
from closedloop.fhir.search.compiled import UNKNOWN, Plan, ShapeCache
from closedloop.fhir.search.definitions import SearchParamRegistry
from closedloop.fhir.search.execution import ConnectionExecutor, Executor, PooledExecutor
from closedloop.fhir.search.includes import find_includes
from closedloop.fhir.search.ordering import after, order_by, order_keys, rank_describer
from closedloop.fhir.search.predicates import criterion_condition
from closedloop.fhir.search.query import (
    Criterion,
    SearchQuery,
    check_size,
    parse_pairs,
    parse_query,
)
from closedloop.fhir.search.searchset import Page, Row, render
from closedloop.fhir.storage.tables import resources
from closedloop.hooks import Shown

# A service's query planner: given (resource type, criteria, resources table), it may answer
# some criteria with its own conditions (e.g. from a denormalised table of its own) and returns
# (the criteria it left, its conditions). It must answer exactly what the criteria would.
Planner = Callable[[str, list[Criterion], Any], tuple[list[Criterion], list[Any]]]


ShowFn = Callable[[Sequence[Shown]], Awaitable[None]]
"""Called with a page's matches and includes before the Bundle is rendered (the REST layer
fires the ``before_show`` hook with it); it may raise to refuse the answer."""


def _counts(q: SearchQuery) -> bool:
    """Does the search report a total (so it counts its matches)?"""
    return q.summary == "count" or q.total in ("accurate", "estimate")


def _value_type(expr: Any) -> type | None:
    """The Python type of a sort key's values (None when its SQL type does not say)."""
    try:
        python_type = expr.type.python_type
    except NotImplementedError:
        return None
    return python_type if python_type in (int, float, str) else None


class SearchEngine:
    def __init__(
        self,
        db: Database,
        registry: SearchParamRegistry,
        *,
        default_count: int = 50,
        max_count: int = 1000,
        max_values: int = limits.DEFAULT_MAX_VALUES,
        max_parameters: int = limits.DEFAULT_MAX_PARAMETERS,
        timeout_ms: int = limits.DEFAULT_TIMEOUT_MS,
        value_resolvers: dict[str, Callable[[str], str]] | None = None,
        planners: list[Planner] | None = None,
    ) -> None:
        self.db = db
        self.planners = list(planners or [])
        self.registry = registry
        self.default_count = default_count
        self.max_count = max_count
        self.max_values = max_values
        self.max_parameters = max_parameters
        self.timeout_ms = timeout_ms
        self.value_resolvers = dict(value_resolvers or {})
        self.shapes = ShapeCache(db.engine.dialect)
        self.pooled = PooledExecutor(db, self.shapes.custom)

    def parse(
        self, resource_type: str, pairs: list[tuple[str, str]], *, strict: bool = False
    ) -> SearchQuery:
        check_size(pairs, self.max_values, self.max_parameters)
        q = parse_query(
            resource_type,
            pairs,
            self.registry.for_type,
            strict=strict,
            max_count=self.max_count,
        )
        if self.value_resolvers:
            for criterion in q.criteria:
                self._resolve(criterion)
        return q

    def _resolve(self, c: Criterion) -> None:
        """Apply a service's value resolver (e.g. ZIP code -> coordinates), also in chains."""
        resolver = self.value_resolvers.get(c.code)
        if resolver is not None and c.modifier is None:
            c.values = [resolver(v) for v in c.values]
        for _type, inner in c.chain:
            self._resolve(inner)
        if c.has is not None:
            self._resolve(c.has[2])

    def check(self, resource_type: str, pairs: list[tuple[str, str]]) -> SearchQuery:
        """Parse strictly and build the SQL conditions without running them: raises the same
        400 a search would (unknown parameter, malformed value)."""
        q = self.parse(resource_type, pairs, strict=True)
        self._where(q, "")
        return q

    # -- the conditional-interaction matcher ------------------------------------------------

    async def match_ids(
        self, conn: AsyncConnection, resource_type: str, criteria: str
    ) -> list[str]:
        """Ids matching ``criteria`` (strict: an unknown parameter is an error, never 'all')."""
        q = self.parse(resource_type, parse_pairs(criteria.lstrip("?")), strict=True)
        if not q.criteria:
            raise errors.invalid(
                "Conditional criteria must contain at least one search parameter", cl_code="CL-3430"
            )
        # a page of 100 (and one more, which says "more than 100"), served like any search
        # page: by the shape's compiled SQL when it has one (the notifier matches every event
        # against each subscription's filters this way)
        rows = await self._page(ConnectionExecutor(conn), q, "", None, False, 100)
        return [str(row[2]) for row in rows]

    # -- search ----------------------------------------------------------------------------

    def _where(self, q: SearchQuery, base_url: str) -> list[Any]:
        r = resources.c
        conds: list[Any] = [r.resource_type == q.resource_type, r.deleted.is_(False)]
        criteria, planned = self._plan(q)
        conds += planned
        conds += [criterion_condition(c, q.resource_type, base_url) for c in criteria]
        narrowed = narrowing.current(q.resource_type)
        if narrowed is not None:
            conds += narrowed
        return conds

    def _plan(self, q: SearchQuery) -> tuple[list[Criterion], list[Any]]:
        """(criteria left, conditions) after the service's planners, once per query."""
        if q.planned is None:
            criteria, conds = q.criteria, []
            for planner in self.planners:
                criteria, planned = planner(q.resource_type, criteria, resources)
                conds += planned
            q.planned = (criteria, conds)
        return q.planned

    async def search(
        self,
        resource_type: str,
        pairs: list[tuple[str, str]],
        *,
        base_url: str,
        strict: bool = False,
        show: ShowFn | None = None,
    ) -> str:
        """The searchset Bundle as text, on the engine's own connections (``_on_own_connections``),
        within its time limit (see ``search_with``). ``show`` sees the resources before they are
        rendered."""
        q = self.parse(resource_type, pairs, strict=strict)
        return await self._stoppable(self._on_own_connections(q, pairs, base_url, show))

    async def search_with(
        self,
        executor: Executor,
        resource_type: str,
        pairs: list[tuple[str, str]],
        *,
        base_url: str,
        strict: bool = False,
        show: ShowFn | None = None,
    ) -> str:
        """The searchset Bundle as text, its statements run by ``executor`` (e.g. a
        ``ConnectionExecutor`` on a transaction's connection), within the engine's time limit:
        past it, the running statement is stopped on the database (``run_stoppable``) and the
        answer is a 503 ``too-costly`` OperationOutcome."""
        q = self.parse(resource_type, pairs, strict=strict)
        return await self._stoppable(self._run(executor, q, pairs, base_url, show))

    async def _stoppable(self, search: Coroutine[Any, Any, str]) -> str:
        def arm(stop: Stop) -> Callable[[], None]:
            def expire() -> None:
                stop(limits.timed_out(self.timeout_ms))

            return asyncio.get_running_loop().call_later(self.timeout_ms / 1000, expire).cancel

        return await run_stoppable(search, arm)

    async def _on_own_connections(
        self, q: SearchQuery, pairs: list[tuple[str, str]], base_url: str, show: ShowFn | None
    ) -> str:
        """On PostgreSQL a search without a count borrows a connection per statement (mostly
        the driver's own, ``PooledExecutor``); otherwise one read connection serves it all,
        so a total and its page agree."""
        if self.db.postgres and not _counts(q):
            return await self._run(self.pooled, q, pairs, base_url, show)
        async with self.db.read() as conn:
            return await self._run(ConnectionExecutor(conn), q, pairs, base_url, show)

    async def _run(
        self,
        executor: Executor,
        q: SearchQuery,
        pairs: list[tuple[str, str]],
        base_url: str,
        show: ShowFn | None = None,
    ) -> str:
        total: int | None = None
        if _counts(q):
            where = self._where(q, base_url)
            total = await executor.scalar(select(func.count()).select_from(resources).where(*where))
        if q.summary == "count":
            return render(q, pairs, base_url, Page([], [], total, None, None))
        count = self.default_count if q.count is None else q.count
        search = paging.fingerprint(q.resource_type, pairs) if q.cursor else ""
        cursor = self._cursor(q, base_url, search)
        backwards = cursor is not None and cursor.direction == "prev"
        fetched = await self._page(executor, q, base_url, cursor, backwards, count)
        more = len(fetched) > count
        fetched = fetched[:count]
        if backwards:
            fetched.reverse()
        rows = [Row(f[0], f[1], f[2], f[3], tuple(f[4:])) for f in fetched]
        has_next = more if not backwards else True
        has_prev = (cursor is not None and not backwards) or (backwards and more)
        if rows and has_next and not search:
            search = paging.fingerprint(q.resource_type, pairs)
        next_cursor = (
            paging.encode(paging.Cursor("next", rows[-1].sort_key, search))
            if rows and has_next
            else None
        )
        prev_cursor = (
            paging.encode(paging.Cursor("prev", rows[0].sort_key, search))
            if rows and has_prev
            else None
        )
        included: list[Row] = []
        if q.include or q.revinclude:
            async with executor.includes() as source:
                included = await find_includes(source, self.registry, q, rows)
            if included and narrowing.active():
                included = await self._visible(executor, included)
        if show is not None:
            await show(
                [Shown(r.resource_type, r.id, r.content, "match") for r in rows]
                + [Shown(r.resource_type, r.id, r.content, "include") for r in included]
            )
        page = Page(rows, included, total, next_cursor, prev_cursor, rank_describer(q))
        return render(q, pairs, base_url, page)

    async def _visible(self, executor: Executor, rows: list[Row]) -> list[Row]:
        """The included rows the caller may see (the search's own matches are narrowed in
        their SQL; included ones are found by reference, then checked here in SQL)."""
        r = resources.c
        keep: set[int] = set()
        for resource_type in {row.resource_type for row in rows}:
            conds = narrowing.current(resource_type)
            pks = [row.pk for row in rows if row.resource_type == resource_type]
            if conds is None:
                keep.update(pks)
                continue
            found = await executor.rows(select(r.pk).where(r.pk.in_(pks), *conds))
            keep.update(int(f[0]) for f in found)
        return [row for row in rows if row.pk in keep]

    def _cursor(self, q: SearchQuery, base_url: str, search: str) -> paging.Cursor | None:
        """The query's ``_cursor``, checked against the search and its order keys."""
        try:
            cursor = paging.decode(q.cursor) if q.cursor else None
            if cursor is not None:
                keys = order_keys(q, self.db.postgres)
                paging.check(cursor, search, [_value_type(k.expr) for k in keys])
        except errors.FhirError:
            # the errors a search reports before a bad cursor: its criteria's, its sort's
            self._where(q, base_url)
            order_keys(q, self.db.postgres)
            raise
        return cursor

    async def _page(
        self,
        executor: Executor,
        q: SearchQuery,
        base_url: str,
        cursor: paging.Cursor | None,
        backwards: bool,
        count: int,
    ) -> list[Any]:
        """The matching rows of one page (plus one, which says whether a next page exists):
        by the shape's compiled SQL when it has one (``compiled.py``), else built here."""
        prepared = (
            None
            if self._planned(q)
            else self.shapes.prepare(
                q,
                base_url,
                cursor.key if cursor else None,
                backwards,
                count + 1,
                narrowing.current(q.resource_type),
            )
        )
        plan = self.shapes.plan(prepared) if prepared is not None else None
        if isinstance(plan, Plan):
            assert prepared is not None
            return await executor.plan_rows(plan, prepared)
        stmt = self._page_statement(q, base_url, cursor, backwards, count)
        if prepared is not None and plan is UNKNOWN:
            self.shapes.learn(prepared, stmt)
        return await executor.rows(stmt)

    def _planned(self, q: SearchQuery) -> bool:
        """Does a service planner answer some of the criteria? (Its SQL is its own business:
        such a search is never served from the shape cache.)"""
        return bool(self.planners) and bool(self._plan(q)[1])

    def _page_statement(
        self,
        q: SearchQuery,
        base_url: str,
        cursor: paging.Cursor | None,
        backwards: bool,
        count: int,
    ) -> Select[Any]:
        where = self._where(q, base_url)
        keys = order_keys(q, self.db.postgres)
        stmt: Select[Any] = select(
            resources.c.pk,
            resources.c.resource_type,
            resources.c.id,
            resources.c.content,
            *[k.expr for k in keys],
        ).where(*where)
        if cursor is not None:
            if len(cursor.key) != len(keys):
                raise errors.invalid("The paging cursor does not fit this query", cl_code="CL-3420")
            stmt = stmt.where(after(keys, cursor.key, reverse=backwards))
        return stmt.order_by(*order_by(keys, reverse=backwards)).limit(count + 1)
