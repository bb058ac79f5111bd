"""``_sort`` and the keyset conditions that page through a sorted result.

Each sort key is a SQL expression; a search parameter sorts by its smallest value (largest when
descending) taken from its index table, with resources lacking a value last. The resource's
surrogate pk ends every order, so the order is total and a cursor (the last row's key values)
says exactly where the next page starts. On PostgreSQL, text keys use the "C" collation so both
databases order the same way (byte order), whatever the server's locale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, or_, select

from closedloop import errors
from closedloop.fhir.search.index import kind_of
from closedloop.fhir.search.query import SearchQuery, SortKey
from closedloop.fhir.storage.tables import INDEX_TABLES, resources


@dataclass(frozen=True)
class OrderKey:
    expr: Any
    descending: bool


def _param_value(key: SortKey, resource_type: str, postgres: bool, q: SearchQuery) -> Any:
    """The key's index kind's sort value (``IndexKind.order_value``) of each resource row."""
    assert key.param is not None
    kind = kind_of(key.param)
    if kind is None:
        raise errors.invalid(f"Cannot sort {resource_type} by {key.code!r}", cl_code="CL-3404")
    t = INDEX_TABLES[kind.name].alias()
    return (
        select(kind.order_value(t, key, q, postgres))
        .where(
            t.c.res_pk == resources.c.pk,
            t.c.resource_type == resource_type,
            t.c.param == key.param.code,
        )
        .scalar_subquery()
    )


def order_keys(q: SearchQuery, postgres: bool) -> list[OrderKey]:
    r = resources.c
    keys: list[OrderKey] = []
    for key in q.sort:
        if key.code == "_id":
            keys.append(OrderKey(r.id.collate("C") if postgres else r.id, key.descending))
        elif key.code == "_lastUpdated":
            keys.append(OrderKey(r.last_updated, key.descending))
        else:
            value = _param_value(key, q.resource_type, postgres, q)
            keys.append(OrderKey(case((value.is_(None), 1), else_=0), False))  # missing last
            keys.append(OrderKey(value, key.descending))
    if not q.sort:
        keys += _rank_keys(q)
    keys.append(OrderKey(r.pk, False))
    return keys


def _ranking(q: SearchQuery) -> tuple[Any, str] | None:
    """(param, value) of the first ranking parameter (``SearchParam.rank``) of the query."""
    for c in q.criteria:
        param = c.param
        if param is not None and param.rank is not None and not c.chain and c.modifier is None:
            values = [v for v in c.values if v]
            if values:
                return param, values[0]
    return None


def _rank_keys(q: SearchQuery) -> list[OrderKey]:
    """The first ranking parameter of the query orders its matches (before the pk)."""
    ranking = _ranking(q)
    if ranking is None:
        return []
    param, value = ranking
    return [OrderKey(param.rank(value, resources, q.resource_type), False)]


def rank_describer(q: SearchQuery) -> Callable[[Any], list[dict[str, Any]]] | None:
    """The ``describe`` of the query's rank key, which ``order_keys`` puts first (no _sort)."""
    ranking = None if q.sort else _ranking(q)
    return ranking[0].describe if ranking is not None else None


def order_by(keys: list[OrderKey], reverse: bool) -> list[Any]:
    return [k.expr.desc() if k.descending != reverse else k.expr.asc() for k in keys]


def after(keys: list[OrderKey], values: tuple[Any, ...], reverse: bool) -> Any:
    """Rows strictly after ``values`` in the order (before it, when ``reverse``)."""
    alternatives = []
    for i, key in enumerate(keys):
        if values[i] is None:
            continue  # nothing sorts strictly after a missing value within its group
        descending = key.descending != reverse
        beyond = key.expr < values[i] if descending else key.expr > values[i]
        same = [
            keys[j].expr.is_(None) if values[j] is None else keys[j].expr == values[j]
            for j in range(i)
        ]
        alternatives.append(and_(*same, beyond))
    return or_(*alternatives)
