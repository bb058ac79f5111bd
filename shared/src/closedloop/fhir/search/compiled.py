"""Compiled SQL per search *shape*: the same parameters, modifiers and value forms give the same
SQL text with different bound values.

Building a search's SQLAlchemy expression (an aliased index table per criterion), computing its
statement cache key and rendering it cost more than PostgreSQL takes to answer an indexed
search. So a search whose criteria its index kinds can describe (``IndexKind.shape``, for
their ``shape_modifiers``) is described by a *shape* (parameter codes, modifiers, one form per
value: ``code`` or ``system|code`` for a token, a prefix for a date...) and its bound values,
in the order the SQL binds them.
The first time a shape is seen, the engine builds the statement the usual way
(``predicates.criterion_condition``: the SQL always comes from there) and ``learn`` compiles
it once; it keeps the SQL text only if the statement's own bound values, in order, are exactly
the extracted ones (so a predicate whose SQL changes shape is never cached wrongly: it simply
stays uncached). Later searches of that shape run the cached text with positional binds.

A caller's narrowing (``narrowing``: what its organization may see) is part of the shape as
its SQL text, its organization one of the bound values, so every party of a kind shares one
compiled statement per shape. Narrowers give the same condition objects for the same party and
type (they build them once), so the narrowing's text is compiled once per party.

Every value is still a bound parameter. Criteria the cache does not describe take the full
path: chains, ``_has``, ``_id`` with several values (an IN list), missing/text/of-type/
identifier modifiers, number/quantity/uri/geo parameters, any parameter with a custom
``condition`` (its SQL may depend on the value or the clock) or any other non-default field,
``_sort`` by a search parameter, ``_total``/``_summary=count``. Any value the extraction cannot
read (a malformed date, a bad reference) also takes the full path, which raises the usual
error.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Select, and_
from sqlalchemy.engine import Dialect

from closedloop.fhir.search.definitions import SearchParam
from closedloop.fhir.search.index import BY_TYPE
from closedloop.fhir.search.index.date import bounds
from closedloop.fhir.search.query import Criterion, SearchQuery
from closedloop.fhir.search.syntax import unescape

_PLAIN_FIELDS = frozenset(
    {"code", "type", "expression", "base", "target", "url", "description", "modifiers"}
    | {"comparators"}
)
_SORTABLE = frozenset(("_id", "_lastUpdated"))
_MAX_SHAPES = 1000
_UNKNOWN = object()


@dataclass(frozen=True)
class Prepared:
    """A search's shape and its bound values in SQL order."""

    key: tuple[Any, ...]
    values: list[Any]
    custom_plans: bool = False  # plan each execution for its values (see CustomPlans)


@dataclass(frozen=True)
class Plan:
    """The compiled SQL of one shape, with the driver-level converter of each bind (if any)."""

    sql: str
    processors: tuple[Callable[[Any], Any] | None, ...]
    tail: tuple[Any, ...] = ()  # constants bound after the values (SQLite's ``OFFSET 0``)

    def params(self, values: list[Any]) -> list[Any]:
        values = [*values, *self.tail]
        return [v if p is None else p(v) for p, v in zip(self.processors, values, strict=True)]


def _is_default(obj: Any, f: dataclasses.Field[Any]) -> bool:
    if f.default is not dataclasses.MISSING:
        return bool(getattr(obj, f.name) == f.default)
    if f.default_factory is not dataclasses.MISSING:
        return bool(getattr(obj, f.name) == f.default_factory())
    return False


class CustomPlans:
    """Prepared statements PostgreSQL plans for each execution's values.

    After five executions of a prepared statement PostgreSQL may switch to a generic plan, made
    without the values. With two or more criteria that plan can start from the least selective
    one: ``owner=X&status=requested&_lastUpdated=gt...`` then walks every requested Task (25 ms
    instead of 0.3 ms). A statement prepared here is therefore used for five executions (all
    planned for their values: PostgreSQL's first five plans are custom) and then prepared
    anew, one parse per five searches. Single-criterion searches keep asyncpg's own cache,
    and so do narrowed ones: a party's narrowing is an equality checked on each candidate row
    (the services' access layers), which a generic plan does as well as a custom one, and
    planning it for every search cost more than running it (``bench/auth.py``); PostgreSQL's
    own choice still plans for the values when its generic plan looks worse.
    """

    EXECUTIONS = 5
    LIMIT = 64  # statements per connection

    def __init__(self) -> None:
        self._by_conn: weakref.WeakKeyDictionary[Any, dict[str, list[Any]]] = (
            weakref.WeakKeyDictionary()
        )

    async def fetch(self, raw: Any, sql: str, params: list[Any]) -> list[Any]:
        stmts = self._by_conn.get(raw)
        if stmts is None:
            stmts = self._by_conn[raw] = {}
        entry = stmts.get(sql)
        if entry is None or entry[1] >= self.EXECUTIONS:
            if len(stmts) >= self.LIMIT:
                stmts.clear()
            entry = stmts[sql] = [await raw.prepare(sql), 0]
        entry[1] += 1
        try:
            return list(await entry[0].fetch(*params))
        except BaseException:
            stmts.pop(sql, None)
            raise


class ShapeCache:
    """Compiled page statements by shape, for one engine (one dialect)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.custom = CustomPlans()
        self._plans: dict[tuple[Any, ...], Plan | None] = {}
        # id(param) -> (param, plain?): the reference keeps the id from being reused
        self._plain: dict[int, tuple[SearchParam, bool]] = {}
        # ids of a narrowing's conditions -> (them, (SQL, bound values) or None)
        self._narrowings: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}

    def _narrowing(self, conds: list[Any]) -> tuple[str, list[Any]] | None:
        """A caller's narrowing as part of a shape: its SQL text (the same for every
        organization: the organization is a bound value) and its bound values in SQL order.
        Narrowers give the same condition objects for the same party (``narrowing``), so
        this is compiled once per party and type."""
        ids = tuple(id(c) for c in conds)
        known = self._narrowings.get(ids)
        if known is None:
            compiled = and_(*conds).compile(dialect=self.dialect)
            bound = _positional_binds(compiled)
            described = None if bound is None else (compiled.string, bound)
            if len(self._narrowings) >= _MAX_SHAPES:
                self._narrowings.clear()
            known = self._narrowings[ids] = (tuple(conds), described)
        return cast("tuple[str, list[Any]] | None", known[1])

    # -- shapes and values -------------------------------------------------------------------

    def _plain_param(self, param: SearchParam) -> bool:
        """No custom condition or any other field beyond the standard definition's."""
        known = self._plain.get(id(param))
        if known is None:
            plain = all(
                f.name in _PLAIN_FIELDS or _is_default(param, f) for f in dataclasses.fields(param)
            )
            known = self._plain[id(param)] = (param, plain)
        return known[1]

    def _criterion(
        self, c: Criterion, resource_type: str, base_url: str
    ) -> tuple[tuple[Any, ...], list[Any]] | None:
        if c.chain or c.has is not None:
            return None
        if c.code == "_lastUpdated" and c.param is None:
            forms, values = [], []
            for v in c.values:
                got = bounds(v)
                if got is None:
                    return None
                forms.append(got[0])
                values += got[1]
            return ("_lastUpdated", c.modifier, tuple(forms)), values
        if c.code == "_id":
            ids = [v for v in c.values if v]
            if c.modifier is not None or len(ids) != 1:
                return None  # a list is an IN, expanded per length: not a fixed shape
            return ("_id",), [unescape(ids[0])]
        param = c.param
        if param is None or param.type != c.type or not self._plain_param(param):
            return None
        present = [v for v in c.values if v != ""]
        kind = BY_TYPE.get(c.type)
        if not present or kind is None or c.modifier not in kind.shape_modifiers:
            return None
        forms, values = [], [resource_type, c.code]  # the index table's scope comes first
        for v in present:
            got = kind.shape(v, c.modifier, c, base_url)
            if got is None:
                return None
            forms.append(got[0])
            values += got[1]
        return (c.code, c.type, c.modifier, c.target_type, tuple(forms)), values

    def prepare(
        self,
        q: SearchQuery,
        base_url: str,
        cursor_key: tuple[Any, ...] | None,
        backwards: bool,
        limit: int,
        narrowed: list[Any] | None = None,
    ) -> Prepared | None:
        """The shape and values of the page statement, or None: take the full path.
        ``narrowed``: the caller's narrowing, ANDed after the criteria (``engine._where``)."""
        if q.summary == "count" or q.total in ("accurate", "estimate"):
            return None
        if any(s.code not in _SORTABLE or s.param is not None for s in q.sort):
            return None
        key: list[Any] = [q.resource_type, tuple((s.code, s.descending) for s in q.sort)]
        values: list[Any] = [q.resource_type]
        for c in q.criteria:
            got = self._criterion(c, q.resource_type, base_url)
            if got is None:
                return None
            key.append(got[0])
            values += got[1]
        if narrowed is not None:
            described = self._narrowing(narrowed)
            if described is None:
                return None
            key.append(("narrowed", described[0]))
            values += described[1]
        if cursor_key is not None:
            if len(cursor_key) != len(q.sort) + 1 or not all(
                type(v) in (int, str) for v in cursor_key
            ):
                return None
            key.append(("cursor", len(cursor_key), backwards))
            for i in range(len(cursor_key)):  # predicates of ordering.after, in its order
                values += cursor_key[: i + 1]
        values.append(limit)
        return Prepared(tuple(key), values, custom_plans=len(q.criteria) >= 2)

    # -- plans -------------------------------------------------------------------------------

    def plan(self, prepared: Prepared) -> object:
        """The shape's plan; None when it is known not to cache; ``UNKNOWN`` before ``learn``."""
        return self._plans.get(prepared.key, _UNKNOWN)

    def learn(self, prepared: Prepared, stmt: Select[Any]) -> Plan | None:
        """Compile the statement the engine built for this search; keep it for the shape when
        its own bound values, in SQL order, are exactly the extracted ones."""
        plan: Plan | None = None
        compiled = stmt.compile(dialect=self.dialect)
        names = compiled.positiontup
        bound = _positional_binds(compiled)
        if names is not None and bound is not None:
            tail: tuple[Any, ...] = ()
            if len(bound) == len(prepared.values) + 1 and compiled.string.endswith(" OFFSET ?"):
                tail, bound = (bound[-1],), bound[:-1]  # SQLite's LIMIT ? OFFSET ? (0)
            same = (
                tail in ((), (0,))
                and len(bound) == len(prepared.values)
                and all(
                    type(a) is type(b) and a == b
                    for a, b in zip(bound, prepared.values, strict=False)
                )
            )
            plain_rows = all(
                col.type._cached_result_processor(self.dialect, None) is None
                for col in stmt.selected_columns
            )
            processors = [compiled._bind_processors.get(n) for n in names]
            if same and plain_rows and all(p is None or callable(p) for p in processors):
                plan = Plan(compiled.string, tuple(cast(Any, p) for p in processors), tail)
        if len(self._plans) >= _MAX_SHAPES:
            self._plans.clear()
        self._plans[prepared.key] = plan
        return plan


def _positional_binds(compiled: Any) -> list[Any] | None:
    """A compiled statement's bound values in SQL order; None when its text is not fixed (an
    expanding IN list is rendered per execution) or its binds are not positional."""
    names = compiled.positiontup
    if names is None or "POSTCOMPILE" in compiled.string:
        return None
    params = compiled.construct_params()
    return [params[n] for n in names]


UNKNOWN = _UNKNOWN
