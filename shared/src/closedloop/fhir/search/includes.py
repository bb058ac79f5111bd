"""``_include`` and ``_revinclude``: the resources a page's matches reference, and those that
reference them, followed with ``:iterate`` up to four levels and at most 1000 in all.

Two sources answer the same two questions (which resources do these reference, which reference
these): ``SqlIncludes`` through SQLAlchemy on a connection, and ``DriverIncludes`` on asyncpg's
own connection, with arrays for the lists (one text per variant, so asyncpg prepares each once
per connection instead of one per list length).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from closedloop import errors
from closedloop.fhir.search.definitions import SearchParamRegistry
from closedloop.fhir.search.query import SearchQuery
from closedloop.fhir.search.searchset import Row
from closedloop.fhir.storage.tables import resources, sp_reference

INCLUDE_DEPTH = 4
INCLUDE_LIMIT = 1000


class Include(NamedTuple):
    """``Type:param[:targetType][:iterate]``; ``*`` as the type or param means any."""

    source: str
    code: str | None
    target: str | None
    iterate: bool


class IncludeSource(Protocol):
    async def referenced(self, pks: list[int], code: str | None, target: str | None) -> list[Row]:
        """The live resources that the resources ``pks`` reference (by ``code``, to type
        ``target``, when given)."""

    async def referencing(
        self, keys: list[tuple[str, str]], source: str, code: str | None
    ) -> list[Row]:
        """The live resources (of type ``source`` unless ``*``, by ``code`` when given) that
        reference one of ``keys`` (type, id)."""


def parse_include(registry: SearchParamRegistry, spec: str, rev: bool) -> Include:
    iterate = False
    if spec.endswith(":iterate") or spec.endswith(":recurse"):
        spec, iterate = spec.rsplit(":", 1)[0], True
    parts = spec.split(":")
    if parts[0] == "*":
        return Include("*", None, None, iterate)
    if len(parts) < 2 or len(parts) > 3:
        raise errors.invalid(
            f"Invalid {'_revinclude' if rev else '_include'} {spec!r}: use Type:param[:targetType]",
            cl_code="CL-3440",
        )
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if code != "*":
        param = registry.get(source, code)
        if param is None or param.type != "reference":
            raise errors.invalid(
                f"{source}:{code} is not a reference search parameter", cl_code="CL-3441"
            )
    return Include(source, (None if code == "*" else code), target, iterate)


async def find_includes(
    found: IncludeSource, registry: SearchParamRegistry, q: SearchQuery, matches: list[Row]
) -> list[Row]:
    """The included resources for the page's ``matches``, each once and none of the matches."""
    seen = {(r.resource_type, r.id) for r in matches}
    out: list[Row] = []
    frontier = matches
    specs = [(parse_include(registry, s, False), False) for s in q.include]
    specs += [(parse_include(registry, s, True), True) for s in q.revinclude]
    for depth in range(INCLUDE_DEPTH):
        new: list[Row] = []
        for spec, rev in specs:
            if depth > 0 and not spec.iterate:
                continue
            for row in await _step(found, frontier, spec, rev):
                if (row.resource_type, row.id) not in seen:
                    seen.add((row.resource_type, row.id))
                    new.append(row)
        out += new
        frontier = new
        if not new or len(out) >= INCLUDE_LIMIT:
            break
    return out[:INCLUDE_LIMIT]


async def _step(found: IncludeSource, rows: list[Row], spec: Include, rev: bool) -> list[Row]:
    if rev:
        if not rows:
            return []
        keys = [(row.resource_type, row.id) for row in rows]
        return await found.referencing(keys, spec.source, spec.code)
    pks = [r.pk for r in rows if spec.source in ("*", r.resource_type)]
    if not pks:
        return []
    return await found.referenced(pks, spec.code, spec.target)


class SqlIncludes:
    """Both questions through SQLAlchemy, on the search's connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def referenced(self, pks: list[int], code: str | None, target: str | None) -> list[Row]:
        s = sp_reference.c
        ref = select(s.target_type, s.target_id).where(
            s.res_pk.in_(pks), s.target_type.is_not(None), s.target_id.is_not(None)
        )
        if code is not None:
            ref = ref.where(s.param == code)
        if target is not None:
            ref = ref.where(s.target_type == target)
        refs = {(t, i) for t, i in (await self.conn.execute(ref.distinct())).all()}
        if not refs:
            return []
        r = resources.c
        stmt = select(r.pk, r.resource_type, r.id, r.content).where(
            tuple_(r.resource_type, r.id).in_(list(refs)), r.deleted.is_(False)
        )
        return [Row(*f) for f in (await self.conn.execute(stmt)).all()]

    async def referencing(
        self, keys: list[tuple[str, str]], source: str, code: str | None
    ) -> list[Row]:
        s, r = sp_reference.c, resources.c
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
        return [Row(*f) for f in (await self.conn.execute(stmt)).all()]


class DriverIncludes:
    """Both questions on asyncpg's own connection (PostgreSQL), lists bound as arrays."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    async def referenced(self, pks: list[int], code: str | None, target: str | None) -> list[Row]:
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
        refs = {(t, i) for t, i in await self.raw.fetch(sql, *args)}
        if not refs:
            return []
        types, ids = [t for t, _ in refs], [i for _, i in refs]
        found = await self.raw.fetch(
            "SELECT pk, resource_type, id, content FROM resources"
            " WHERE (resource_type, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
            " AND deleted IS false",
            types,
            ids,
        )
        return [Row(*f) for f in found]

    async def referencing(
        self, keys: list[tuple[str, str]], source: str, code: str | None
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
        found = await self.raw.fetch(
            "SELECT pk, resource_type, id, content FROM resources"
            f" WHERE pk IN ({inner}) AND deleted IS false",
            *args,
        )
        return [Row(*f) for f in found]
