"""The SQL condition for one search criterion: dispatch to its index kind, plus what no one
kind answers (``_id``, ``_lastUpdated``, ``:missing``, chains, ``_has``, custom conditions).

Every value is a bound parameter; no query text ever reaches SQL as text. Each predicate is an
``IN (SELECT res_pk FROM sp_<kind> ...)`` over one typed index table, so the planner uses that
table's (resource_type, param, value) index and the resources table is touched only for the
final page. The per-kind conditions live in ``index/<kind>.py``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, not_, or_, select

from closedloop import errors
from closedloop.fhir.search.index import date as date_index
from closedloop.fhir.search.index import kind_of
from closedloop.fhir.search.index.kind import any_of, present_values
from closedloop.fhir.search.query import Criterion
from closedloop.fhir.search.syntax import unescape
from closedloop.fhir.storage.tables import INDEX_TABLES, resources


def criterion_condition(
    c: Criterion, resource_type: str, base_url: str = "", r: Any = resources
) -> ColumnElement[bool]:
    """The WHERE condition on the resources table (or alias) ``r`` for one criterion; its
    values are ORed. Index tables are aliased per use so nested chains never correlate by
    accident."""
    if c.has is not None:
        return _has_condition(c, resource_type, base_url, r)
    if c.chain:
        return _chain_condition(c, resource_type, base_url, r)
    if c.code == "_id":
        ids = [unescape(v) for v in c.values if v]
        # one id (a conditional match, a subscription's focus) binds one value, which the
        # compiled-shape cache can describe; an IN list expands per length
        cond = r.c.id == ids[0] if len(ids) == 1 else r.c.id.in_(ids)
        return not_(cond) if c.modifier == "not" else cond
    if c.code == "_lastUpdated":
        return any_of(
            [date_index.condition(v, r.c.last_updated, r.c.last_updated) for v in c.values]
        )
    if c.param is not None and c.param.condition is not None and c.modifier is None:
        return any_of([c.param.condition(v, r, resource_type) for v in present_values(c)])
    kind = kind_of(c.param) if c.param is not None else None
    if kind is None:
        raise errors.not_supported(f"Searching by {c.code} ({c.type}) is not supported")
    t = INDEX_TABLES[kind.name].alias()
    code = f"{c.code}:of-type" if c.modifier == "of-type" else c.code
    scope = and_(t.c.resource_type == resource_type, t.c.param == code)
    if c.modifier == "missing":
        has = exists().where(t.c.res_pk == r.c.pk, scope)
        return not_(has) if c.values[0] == "true" else has
    return kind.where(r, t, scope, c, base_url)


def _chain_condition(c: Criterion, resource_type: str, base_url: str, r: Any) -> Any:
    """``subject:Patient.name=x``: my reference points at a resource meeting the inner test."""
    ref = INDEX_TABLES["reference"].alias()
    target = resources.alias()
    inner = or_(
        *(
            and_(target.c.resource_type == t, criterion_condition(sub, t, base_url, target))
            for t, sub in c.chain
        )
    )
    sub = (
        select(ref.c.res_pk)
        .join(
            target,
            and_(target.c.resource_type == ref.c.target_type, target.c.id == ref.c.target_id),
        )
        .where(
            ref.c.resource_type == resource_type,
            ref.c.param == c.code,
            target.c.deleted.is_(False),
            inner,
        )
    )
    return r.c.pk.in_(sub)


def _has_condition(c: Criterion, resource_type: str, base_url: str, r: Any) -> Any:
    """``_has:Task:focus:status=x``: some Task whose ``focus`` is me meets the inner test."""
    assert c.has is not None
    source_type, ref_code, inner = c.has
    ref = INDEX_TABLES["reference"].alias()
    source = resources.alias()
    sub = (
        select(ref.c.target_id)
        .join(source, source.c.pk == ref.c.res_pk)
        .where(
            ref.c.resource_type == source_type,
            ref.c.param == ref_code,
            ref.c.target_type == resource_type,
            source.c.deleted.is_(False),
            criterion_condition(inner, source_type, base_url, source),
        )
    )
    return r.c.id.in_(sub)
