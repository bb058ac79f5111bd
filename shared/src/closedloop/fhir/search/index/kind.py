"""``IndexKind``: the one interface every typed index table module implements.

Each ``sp_<kind>`` table has a module beside this one holding everything about it, so a kind is
read (and changed) in one place::

    extract(nodes)            rows for the table, from the nodes a parameter's FHIRPath reached
    where(r, t, scope, c)     the condition on resources alias ``r`` for one criterion
      match(t, value, ...)      ...built, by default, from one condition per value on alias ``t``
    order_value(t, key, ...)  the aggregate that sorts a resource by its rows (``_sort``)
    shape(value, ...)         a value's form and bound values for the compiled-SQL cache

``closedloop.fhir.search.index`` maps search parameter types to these kinds; ``predicates``,
``ordering`` and ``compiled`` dispatch through that table. Also here: the SQL pieces several
kinds share (``any_of``, ``compare_range``, ``like_escape``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Boolean, ColumnElement, and_, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from closedloop import errors

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node
    from closedloop.fhir.search.query import Criterion, SearchQuery, SortKey

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


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def bad_value(text: str) -> errors.FhirError:
    """A search value the index cannot read: a 400 with the search-value code."""
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
    raise bad_value(f"Unknown prefix {prefix}")


def present_values(c: Criterion) -> list[str]:
    """The criterion's non-empty values; a parameter given no value at all is a 400."""
    values = [v for v in c.values if v != ""]
    if not values:
        raise bad_value(f"Parameter {c.code} has no value")
    return values


class IndexKind(ABC):
    """One ``sp_<name>`` table. Subclasses set ``name`` and ``extract`` (a plain function, so
    the writer calls it without a bound-method hop) and override what differs."""

    name: ClassVar[str]
    # the modifiers a search by this kind takes
    modifiers: ClassVar[frozenset[str]] = frozenset(("missing",))
    # can ``_sort`` order by it (``order_value``)?
    sortable: ClassVar[bool] = True
    # the column ``_sort`` orders by, its smallest value first (None: the kind cannot sort)
    sort_column: ClassVar[str | None] = None
    # ``sort_column`` holds text: PostgreSQL orders it by byte ("C"), as SQLite does
    sort_text: ClassVar[bool] = False
    # the modifiers whose SQL ``compiled.py`` may cache (``shape`` describes their values)
    shape_modifiers: ClassVar[frozenset[str | None]] = frozenset()

    @staticmethod
    @abstractmethod
    def extract(nodes: list[Node]) -> list[dict[str, Any]]:
        """Deduplicated rows (without res_pk/resource_type/param, which the caller adds) for
        the nodes a parameter's FHIRPath reached."""

    def match(
        self, t: Any, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> ColumnElement[bool]:
        """The condition on index alias ``t`` for one value (``not`` is handled by ``where``)."""
        raise errors.not_supported(f"Searching by {c.code} ({c.type}) is not supported")

    def where(self, r: Any, t: Any, scope: Any, c: Criterion, base_url: str) -> Any:
        """The condition on resources alias ``r``: some row of ``t`` within ``scope`` matches
        one of the values (none does, for ``:not``)."""
        values = present_values(c)
        modifier = None if c.modifier == "not" else c.modifier
        matches = any_of([self.match(t, v, modifier, c, base_url) for v in values])
        sub = select(t.c.res_pk).where(scope, matches)
        return r.c.pk.not_in(sub) if c.modifier == "not" else r.c.pk.in_(sub)

    def order_value(self, t: Any, key: SortKey, q: SearchQuery, postgres: bool) -> Any:
        """The aggregate over a resource's rows of ``t`` that ``_sort`` orders it by: its
        smallest value, or its largest when descending."""
        if self.sort_column is None:
            raise errors.invalid(
                f"Cannot sort {q.resource_type} by {key.code!r}", cl_code="CL-3404"
            )
        column: Any = t.c[self.sort_column]
        if postgres and self.sort_text:
            column = column.collate("C")
        return func.max(column) if key.descending else func.min(column)

    def shape(
        self, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> tuple[str, list[Any]] | None:
        """(form, bound values in the order ``match`` binds them) for the compiled-SQL cache,
        or None: this value takes the full path. Asked only for ``shape_modifiers``."""
        return None
