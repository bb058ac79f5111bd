"""SQL predicates for one search criterion, per parameter type.

Every value is a bound parameter; no query text ever reaches SQL as text. Each predicate is an
``IN (SELECT res_pk FROM sp_<kind> ...)`` over one typed index table, so the planner uses that
table's (resource_type, param, value) index and the resources table is touched only for the
final page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, exists, literal, not_, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from closedloop import errors
from closedloop.fhir.instant import now_us
from closedloop.fhir.search import fulltext
from closedloop.fhir.search.areas import containing, parse_point
from closedloop.fhir.search.geo import parse_near, within
from closedloop.fhir.search.index.date import parse_date_range
from closedloop.fhir.search.index.number import precision_range
from closedloop.fhir.search.index.reference import parse_reference
from closedloop.fhir.search.index.string import normalize
from closedloop.fhir.search.query import Criterion, split_prefix, split_unescaped, unescape
from closedloop.fhir.storage.tables import INDEX_TABLES, resources

KIND_OF_TYPE = {
    "token": "token",
    "string": "string",
    "date": "date",
    "number": "number",
    "quantity": "quantity",
    "reference": "reference",
    "uri": "uri",
    "special": "coords",
}


_FLAT_OR = 32


class _Parenthesised(ColumnElement[bool]):
    """``(inner)`` as written: SQLAlchemy flattens a nested OR (and drops a ``Grouping``)."""

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [("inner", InternalTraversal.dp_clauseelement)]

    def __init__(self, inner: ColumnElement[bool]) -> None:
        self.inner = inner


@compiles(_Parenthesised)
def _parenthesised(element: _Parenthesised, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.inner, **kw)})"


def any_of(conditions: list[Any]) -> ColumnElement[bool]:
    """The OR of ``conditions``. A long list nests as a balanced tree of parenthesised halves:
    SQLite parses a flat ``a OR b OR ...`` into a tree as deep as the list and refuses one
    deeper than 1000 ("Expression tree is too large"); halves keep it logarithmic."""
    if len(conditions) <= _FLAT_OR:
        return or_(*conditions)
    half = len(conditions) // 2
    return or_(_Parenthesised(any_of(conditions[:half])), _Parenthesised(any_of(conditions[half:])))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _bad(text: str) -> errors.FhirError:
    return errors.invalid(text, cl_code="CL-3410")


def compare_range(
    prefix: str, low: Any, high: Any, s_low: Any, s_high: Any, approx: float = 0.0
) -> ColumnElement[bool]:
    """The FHIR prefix semantics over a stored range [low, high] and a search range."""
    if prefix == "eq":
        return and_(low >= s_low, high <= s_high)
    if prefix == "ne":
        return or_(low < s_low, high > s_high)
    if prefix == "gt":
        return high > s_high
    if prefix == "lt":
        return low < s_low
    if prefix == "ge":  # reaches beyond the search range, or lies within it
        return or_(high > s_high, and_(low >= s_low, high <= s_high))
    if prefix == "le":
        return or_(low < s_low, and_(low >= s_low, high <= s_high))
    if prefix == "sa":
        return low > s_high
    if prefix == "eb":
        return high < s_low
    if prefix == "ap":
        return and_(high >= s_low - approx, low <= s_high + approx)
    raise _bad(f"Unknown prefix {prefix}")


def date_condition(value: str, low: Any, high: Any) -> ColumnElement[bool]:
    prefix, text = split_prefix(value)
    rng = parse_date_range(text)
    if rng is None:
        raise _bad(
            f"Invalid date {text!r}: use a FHIR date, dateTime or instant "
            "(e.g. 2026-11-01 or 2026-11-01T00:00:00Z)"
        )
    s_low, s_high = rng
    approx = max(abs(now_us() - s_low) // 10, 86_400_000_000) if prefix == "ap" else 0
    return compare_range(prefix, low, high, s_low, s_high, approx)


def _token(t: Any, value: str, modifier: str | None) -> ColumnElement[bool]:
    if modifier == "text":
        return t.c.text.like(f"{_like_escape(normalize(unescape(value)))}%", escape="\\")
    parts = [unescape(p) for p in split_unescaped(value, "|")]
    if modifier == "of-type":
        if len(parts) != 3 or not all(parts):
            raise _bad(f"identifier:of-type takes system|code|value, not {value!r}")
        return and_(t.c.system == parts[0], t.c.code == f"{parts[1]}|{parts[2]}")
    if len(parts) > 1:
        system, code = parts[0], "|".join(parts[1:])
        if not system:
            return and_(t.c.system.is_(None), t.c.code == code)
        if not code:
            return t.c.system == system
        return and_(t.c.system == system, t.c.code == code)
    return t.c.code == parts[0]


def _string(t: Any, value: str, modifier: str | None) -> ColumnElement[bool]:
    value = unescape(value)
    if modifier == "exact":
        return t.c.value_exact == value
    norm = _like_escape(normalize(value))
    if modifier == "contains":
        return t.c.value_norm.like(f"%{norm}%", escape="\\")
    return t.c.value_norm.like(f"{norm}%", escape="\\")


def _date(t: Any, value: str, _modifier: str | None) -> ColumnElement[bool]:
    return date_condition(value, t.c.low, t.c.high)


def _number(t: Any, value: str, _modifier: str | None) -> ColumnElement[bool]:
    prefix, text = split_prefix(value)
    try:
        number, low, high = precision_range(text)
    except (ValueError, TypeError):
        raise _bad(f"Invalid number {text!r}") from None
    if prefix in ("eq", "ne"):
        cond = and_(t.c.value >= low, t.c.value < high)
        return cond if prefix == "eq" else not_(cond)
    return compare_range(prefix, t.c.value, t.c.value, number, number, abs(number) * 0.1)


def _quantity(t: Any, value: str, modifier: str | None) -> ColumnElement[bool]:
    number_part, _, rest = value.partition("|")
    system, _, code = rest.partition("|")
    cond = _number(t, number_part, modifier)
    if code:
        cond = and_(cond, t.c.code == code)
    if system:
        cond = and_(cond, t.c.system == system)
    return cond


def reference_value(
    value: str, base_url: str, target_type: str | None
) -> tuple[str | None, str | None, str | None]:
    """(type, id, url) to match: local references by type and id, foreign ones by URL."""
    if base_url and value.startswith(base_url.rstrip("/") + "/"):
        value = value[len(base_url.rstrip("/")) + 1 :]
    if "/" not in value and ":" not in value:
        return target_type, value, None
    parsed = parse_reference(value)
    if parsed is None:
        raise _bad(f"Invalid reference {value!r}: use Type/id, an id or an absolute URL")
    rtype, rid, url = parsed
    if url and rtype and rid and not value.startswith(("http://", "https://")):
        url = None
    return rtype, rid, url


def _reference_factory(
    base_url: str, target_type: str | None
) -> Callable[[Any, str, str | None], ColumnElement[bool]]:
    def build(t: Any, value: str, _modifier: str | None) -> ColumnElement[bool]:
        rtype, rid, url = reference_value(unescape(value), base_url, target_type)
        if url is not None:
            return t.c.target_url == url.split("/_history/")[0]
        conds = [t.c.target_id == rid]
        if rtype:
            conds.append(t.c.target_type == rtype)
        return and_(*conds)

    return build


def _uri(t: Any, value: str, modifier: str | None) -> ColumnElement[bool]:
    value = unescape(value)
    if modifier == "below":
        return t.c.value.like(f"{_like_escape(value)}%", escape="\\")
    if modifier == "above":  # the stored uri is the value or one of its parents
        return literal(value).like(t.c.value.concat("%"))
    return t.c.value == value


def _near(t: Any, value: str, _modifier: str | None) -> ColumnElement[bool]:
    return within(parse_near(value), t.c.latitude, t.c.longitude)  # type: ignore[no-any-return]


def _text(t: Any, value: str, _modifier: str | None) -> ColumnElement[bool]:
    return fulltext.matches(t, unescape(value))


_BUILDERS: dict[str, Callable[[Any, str, str | None], ColumnElement[bool]]] = {
    "token": _token,
    "string": _string,
    "date": _date,
    "number": _number,
    "quantity": _quantity,
    "uri": _uri,
}


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
        cond = r.c.id.in_(ids)
        return not_(cond) if c.modifier == "not" else cond
    if c.code == "_lastUpdated":
        return any_of([date_condition(v, r.c.last_updated, r.c.last_updated) for v in c.values])
    if c.param is not None and c.param.condition is not None and c.modifier is None:
        custom = [v for v in c.values if v != ""]
        if not custom:
            raise _bad(f"Parameter {c.code} has no value")
        return any_of([c.param.condition(v, r, resource_type) for v in custom])
    kind = c.param.kind if c.param is not None and c.param.kind else KIND_OF_TYPE.get(c.type)
    if kind is None or c.param is None:
        raise errors.not_supported(f"Searching by {c.code} ({c.type}) is not supported")
    t = INDEX_TABLES[kind].alias()
    code = f"{c.code}:of-type" if c.modifier == "of-type" else c.code
    scope = and_(t.c.resource_type == resource_type, t.c.param == code)
    if c.modifier == "missing":
        has = exists().where(t.c.res_pk == r.c.pk, scope)
        return not_(has) if c.values[0] == "true" else has
    if kind == "area":
        values = [v for v in c.values if v != ""]
        if not values:
            raise _bad(f"Parameter {c.code} has no value")
        return any_of([r.c.pk.in_(containing(t, scope, parse_point(v, c.code))) for v in values])
    builder = (
        _reference_factory(base_url, c.target_type)
        if c.type == "reference"
        else _near
        if kind == "coords"
        else _text
        if kind == "text"
        else _BUILDERS.get(c.type)
    )
    if builder is None:
        raise errors.not_supported(f"Searching by {c.code} ({c.type}) is not supported")
    values = [v for v in c.values if v != ""]
    if not values:
        raise _bad(f"Parameter {c.code} has no value")
    modifier = None if c.modifier == "not" else c.modifier
    matches = any_of([builder(t, v, modifier) for v in values])
    sub = select(t.c.res_pk).where(scope, matches)
    return r.c.pk.not_in(sub) if c.modifier == "not" else r.c.pk.in_(sub)


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
