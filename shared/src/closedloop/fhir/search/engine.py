"""Runs a parsed search against the index tables and renders the searchset Bundle.

The Bundle is assembled as text around the stored JSON of each resource: no resource is parsed
on this path unless ``_elements``/``_summary`` asks for a subset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from closedloop import errors
from closedloop.db.engine import Database, Stop, run_stoppable
from closedloop.errors import operation_outcome
from closedloop.fhir.instant import format_instant, now_us
from closedloop.fhir.search import limits, paging
from closedloop.fhir.search.compiled import UNKNOWN, Plan, Prepared, ShapeCache
from closedloop.fhir.search.definitions import SearchParamRegistry
from closedloop.fhir.search.geo import Near, distance_extension, python_distance_km
from closedloop.fhir.search.ordering import after, near_of, order_by, order_keys, rank_describer
from closedloop.fhir.search.predicates import criterion_condition
from closedloop.fhir.search.query import (
    Criterion,
    SearchQuery,
    check_size,
    parse_pairs,
    parse_query,
)
from closedloop.fhir.search.subsets import subset
from closedloop.fhir.storage.tables import resources, sp_reference
from closedloop.hooks import Shown

# A service's query planner: given (resource type, criteria, resources table), it may answer
# some criteria with its own conditions (e.g. from a denormalised table of its own) and returns
# (the criteria it left, its conditions). It must answer exactly what the criteria would.
Planner = Callable[[str, list[Criterion], Any], tuple[list[Criterion], list[Any]]]

ShowFn = Callable[[Sequence[Shown]], Awaitable[None]]
"""Called with a page's matches and includes before the Bundle is rendered (the REST layer
fires the ``before_show`` hook with it); it may raise to refuse the answer."""

_INCLUDE_DEPTH = 4
_INCLUDE_LIMIT = 1000


@dataclass
class Row:
    pk: int
    resource_type: str
    id: str
    content: str
    sort_key: tuple[Any, ...] = ()


def _with_distance(mode: str, content: str, near: Near) -> str:
    """The ``search`` element with the location-distance extension (km) for a Location."""
    position = orjson.loads(content).get("position") or {}
    try:
        km = python_distance_km(near, float(position["latitude"]), float(position["longitude"]))
    except (KeyError, TypeError, ValueError):
        return f'{{"mode":"{mode}"}}'
    return orjson.dumps({"mode": mode, "extension": [distance_extension(km)]}).decode()


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
        stmt = select(resources.c.id).where(*self._where(q, "")).limit(101)
        return list((await conn.execute(stmt)).scalars())

    # -- search ----------------------------------------------------------------------------

    def _where(self, q: SearchQuery, base_url: str) -> list[Any]:
        r = resources.c
        conds: list[Any] = [r.resource_type == q.resource_type, r.deleted.is_(False)]
        criteria, planned = self._plan(q)
        conds += planned
        conds += [criterion_condition(c, q.resource_type, base_url) for c in criteria]
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
        conn: AsyncConnection | None = None,
        show: ShowFn | None = None,
    ) -> str:
        """The searchset Bundle as text, within the engine's time limit: past it, the running
        statement is stopped on the database (``run_stoppable``) and the answer is a 503
        ``too-costly`` OperationOutcome. ``show`` sees the resources before they are rendered."""
        q = self.parse(resource_type, pairs, strict=strict)

        def arm(stop: Stop) -> Callable[[], None]:
            def expire() -> None:
                stop(limits.timed_out(self.timeout_ms))

            return asyncio.get_running_loop().call_later(self.timeout_ms / 1000, expire).cancel

        return await run_stoppable(self._search(q, pairs, base_url, conn, show), arm)

    async def _search(
        self,
        q: SearchQuery,
        pairs: list[tuple[str, str]],
        base_url: str,
        conn: Any,
        show: ShowFn | None,
    ) -> str:
        if conn is None and self.db.postgres and not self._counts(q):
            return await self._run(None, q, pairs, base_url, show)  # on the driver, below
        if conn is None:
            async with self.db.read() as c:
                return await self._run(c, q, pairs, base_url, show)
        return await self._run(conn, q, pairs, base_url, show)

    @staticmethod
    def _counts(q: SearchQuery) -> bool:
        return q.summary == "count" or q.total in ("accurate", "estimate")

    async def _run(
        self,
        conn: AsyncConnection | None,
        q: SearchQuery,
        pairs: list[tuple[str, str]],
        base_url: str,
        show: ShowFn | None = None,
    ) -> str:
        """``conn`` is None only for a search without a count on PostgreSQL: its statements
        then run on the driver's connection (``Database.driver``) where they can."""
        total: int | None = None
        if q.summary == "count" or q.total in ("accurate", "estimate"):
            assert conn is not None
            where = self._where(q, base_url)
            total = (
                await conn.execute(select(func.count()).select_from(resources).where(*where))
            ).scalar_one()
        if q.summary == "count":
            return self._bundle(q, pairs, base_url, [], [], total, None, None)
        count = self.default_count if q.count is None else q.count
        search = paging.fingerprint(q.resource_type, pairs) if q.cursor else ""
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
        backwards = cursor is not None and cursor.direction == "prev"
        fetched = await self._page(conn, q, base_url, cursor, backwards, count)
        more = len(fetched) > count
        fetched = fetched[:count]
        if backwards:
            fetched.reverse()
        rows = [Row(f[0], f[1], f[2], f[3], tuple(f[4:])) for f in fetched]
        describe = rank_describer(q)
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
        if (q.include or q.revinclude) and conn is None:
            async with self.db.driver() as raw:
                included = await self._includes(raw, q, rows)
        elif q.include or q.revinclude:
            included = await self._includes(conn, q, rows)
        if show is not None:
            await show(
                [Shown(r.resource_type, r.id, r.content, "match") for r in rows]
                + [Shown(r.resource_type, r.id, r.content, "include") for r in included]
            )
        return self._bundle(
            q, pairs, base_url, rows, included, total, next_cursor, prev_cursor, describe
        )

    async def _page(
        self,
        conn: AsyncConnection | None,
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
                q, base_url, cursor.key if cursor else None, backwards, count + 1
            )
        )
        plan = self.shapes.plan(prepared) if prepared is not None else None
        if isinstance(plan, Plan):
            assert prepared is not None
            return await self._run_plan(conn, plan, prepared)
        stmt = self._page_statement(q, base_url, cursor, backwards, count)
        if prepared is not None and plan is UNKNOWN:
            self.shapes.learn(prepared, stmt)
        if conn is None:
            async with self.db.read() as c:
                return list((await c.execute(stmt)).all())
        return list((await conn.execute(stmt)).all())

    def _planned(self, q: SearchQuery) -> bool:
        """Does a service planner answer some of the criteria? (Its SQL is its own business:
        such a search is never served from the shape cache.)"""
        return bool(self.planners) and bool(self._plan(q)[1])

    async def _run_plan(
        self, conn: AsyncConnection | None, plan: Plan, prepared: Prepared
    ) -> list[Any]:
        params = plan.params(prepared.values)
        if conn is None:  # PostgreSQL: asyncpg prepares the text once per connection
            async with self.db.driver() as raw:
                if prepared.custom_plans:
                    return await self.shapes.custom.fetch(raw, plan.sql, params)
                return list(await raw.fetch(plan.sql, *params))
        return list((await conn.exec_driver_sql(plan.sql, tuple(params))).all())

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

    # -- _include / _revinclude ------------------------------------------------------------

    def _parse_include(self, spec: str, rev: bool) -> tuple[str, str | None, str | None, bool]:
        iterate = False
        if spec.endswith(":iterate") or spec.endswith(":recurse"):
            spec, iterate = spec.rsplit(":", 1)[0], True
        parts = spec.split(":")
        if parts[0] == "*":
            return "*", None, None, iterate
        if len(parts) < 2 or len(parts) > 3:
            raise errors.invalid(
                f"Invalid {'_revinclude' if rev else '_include'} {spec!r}: "
                "use Type:param[:targetType]",
                cl_code="CL-3440",
            )
        source, code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if code != "*":
            param = self.registry.get(source, code)
            if param is None or param.type != "reference":
                raise errors.invalid(
                    f"{source}:{code} is not a reference search parameter", cl_code="CL-3441"
                )
        return source, (None if code == "*" else code), target, iterate

    async def _includes(self, conn: Any, q: SearchQuery, matches: list[Row]) -> list[Row]:
        """``conn``: an AsyncConnection, or the driver's own on PostgreSQL."""
        seen = {(r.resource_type, r.id) for r in matches}
        out: list[Row] = []
        frontier = matches
        specs = [(self._parse_include(s, False), False) for s in q.include]
        specs += [(self._parse_include(s, True), True) for s in q.revinclude]
        for depth in range(_INCLUDE_DEPTH):
            new: list[Row] = []
            for (source, code, target, iterate), rev in specs:
                if depth > 0 and not iterate:
                    continue
                found = (
                    await self._revinclude(conn, frontier, source, code)
                    if rev
                    else await self._include(conn, frontier, source, code, target)
                )
                for row in found:
                    if (row.resource_type, row.id) not in seen:
                        seen.add((row.resource_type, row.id))
                        new.append(row)
            out += new
            frontier = new
            if not new or len(out) >= _INCLUDE_LIMIT:
                break
        return out[:_INCLUDE_LIMIT]

    async def _include(
        self,
        conn: Any,
        rows: list[Row],
        source: str,
        code: str | None,
        target: str | None,
    ) -> list[Row]:
        pks = [r.pk for r in rows if source in ("*", r.resource_type)]
        if not pks:
            return []
        if not isinstance(conn, AsyncConnection):
            return await self._include_raw(conn, pks, code, target)
        s = sp_reference.c
        ref = select(s.target_type, s.target_id).where(
            s.res_pk.in_(pks), s.target_type.is_not(None), s.target_id.is_not(None)
        )
        if code is not None:
            ref = ref.where(s.param == code)
        if target is not None:
            ref = ref.where(s.target_type == target)
        refs = {(t, i) for t, i in (await conn.execute(ref.distinct())).all()}
        if not refs:
            return []
        r = resources.c
        stmt = select(r.pk, r.resource_type, r.id, r.content).where(
            tuple_(r.resource_type, r.id).in_(list(refs)), r.deleted.is_(False)
        )
        return [Row(*f) for f in (await conn.execute(stmt)).all()]

    async def _revinclude(
        self, conn: Any, rows: list[Row], source: str, code: str | None
    ) -> list[Row]:
        if not rows:
            return []
        s, r = sp_reference.c, resources.c
        keys = [(row.resource_type, row.id) for row in rows]
        if not isinstance(conn, AsyncConnection):
            return await self._revinclude_raw(conn, keys, source, code)
        stmt = select(r.pk, r.resource_type, r.id, r.content).where(
            r.pk.in_(
                select(s.res_pk).where(
                    tuple_(s.target_type, s.target_id).in_(keys),
                    *([s.resource_type == source] if source != "*" else []),
                    *([s.param == code] if code is not None else []),
                )
            ),
            r.deleted.is_(False),
        )
        return [Row(*f) for f in (await conn.execute(stmt)).all()]

    # The same two statements on asyncpg, with arrays for the lists (one text per variant, so
    # asyncpg prepares each once per connection instead of one per list length).

    async def _include_raw(
        self, raw: Any, pks: list[int], code: str | None, target: str | None
    ) -> list[Row]:
        sql = (
            "SELECT DISTINCT target_type, target_id FROM sp_reference"
            " WHERE res_pk = ANY($1::bigint[])"
            " AND target_type IS NOT NULL AND target_id IS NOT NULL"
        )
        args: list[Any] = [pks]
        if code is not None:
            args.append(code)
            sql += f" AND param = ${len(args)}"
        if target is not None:
            args.append(target)
            sql += f" AND target_type = ${len(args)}"
        refs = {(t, i) for t, i in await raw.fetch(sql, *args)}
        if not refs:
            return []
        types, ids = [t for t, _ in refs], [i for _, i in refs]
        found = await raw.fetch(
            "SELECT pk, resource_type, id, content FROM resources"
            " WHERE (resource_type, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
            " AND deleted IS false",
            types,
            ids,
        )
        return [Row(*f) for f in found]

    async def _revinclude_raw(
        self, raw: Any, keys: list[tuple[str, str]], source: str, code: str | None
    ) -> list[Row]:
        inner = (
            "SELECT s.res_pk FROM sp_reference s WHERE (s.target_type, s.target_id)"
            " IN (SELECT * FROM unnest($1::text[], $2::text[]))"
        )
        args: list[Any] = [[t for t, _ in keys], [i for _, i in keys]]
        if source != "*":
            args.append(source)
            inner += f" AND s.resource_type = ${len(args)}"
        if code is not None:
            args.append(code)
            inner += f" AND s.param = ${len(args)}"
        found = await raw.fetch(
            "SELECT pk, resource_type, id, content FROM resources"
            f" WHERE pk IN ({inner}) AND deleted IS false",
            *args,
        )
        return [Row(*f) for f in found]

    # -- rendering -------------------------------------------------------------------------

    def _bundle(
        self,
        q: SearchQuery,
        pairs: list[tuple[str, str]],
        base_url: str,
        rows: list[Row],
        included: list[Row],
        total: int | None,
        next_cursor: str | None,
        prev_cursor: str | None,
        describe: Callable[[Any], list[dict[str, Any]]] | None = None,
    ) -> str:
        kept = [(k, v) for k, v in pairs if k != "_cursor"]
        link_base = f"{base_url}/{q.resource_type}"

        def link(relation: str, extra: list[tuple[str, str]]) -> str:
            qs = urlencode(kept + extra)
            return orjson.dumps(
                {"relation": relation, "url": f"{link_base}?{qs}" if qs else link_base}
            ).decode()

        links = [link("self", [("_cursor", q.cursor)] if q.cursor else [])]
        if next_cursor:
            links.append(link("next", [("_cursor", next_cursor)]))
        if prev_cursor:
            links.append(link("previous", [("_cursor", prev_cursor)]))
        near = near_of(q)
        entries = [self._entry(base_url, row, "match", q, near, describe) for row in rows]
        entries += [self._entry(base_url, row, "include", q) for row in included]
        if q.warnings:
            entries.append(
                '{"resource":'
                + orjson.dumps(operation_outcome(q.warnings)).decode()
                + ',"search":{"mode":"outcome"}}'
            )
        head = (
            f'{{"resourceType":"Bundle","type":"searchset","timestamp":"{format_instant(now_us())}"'
        )
        if total is not None:
            head += f',"total":{total}'
        return head + ',"link":[' + ",".join(links) + '],"entry":[' + ",".join(entries) + "]}"

    def _entry(
        self,
        base_url: str,
        row: Row,
        mode: str,
        q: SearchQuery,
        near: Near | None = None,
        describe: Callable[[Any], list[dict[str, Any]]] | None = None,
    ) -> str:
        """``describe`` turns a match's rank (its first sort key) into its search extensions."""
        content = row.content
        if q.elements or q.summary in ("true", "text", "data"):
            content = orjson.dumps(subset(orjson.loads(content), q.elements, q.summary)).decode()
        full_url = orjson.dumps(f"{base_url}/{row.resource_type}/{row.id}").decode()
        search = f'{{"mode":"{mode}"}}'
        if near is not None:
            search = _with_distance(mode, row.content, near)
        elif describe is not None:
            extensions = describe(row.sort_key[0])
            search = orjson.dumps({"mode": mode, "extension": extensions}).decode()
        return f'{{"fullUrl":{full_url},"resource":{content},"search":{search}}}'
