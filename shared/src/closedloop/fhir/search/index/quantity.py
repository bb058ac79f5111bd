"""Rows for ``sp_quantity``: (system, code, value) with the precision range of the value.

Accepted shapes: Quantity and its profiles (Age, Duration, Count, Distance, SimpleQuantity);
Money (``code`` = currency, ``system`` = ``urn:iso:std:iso:4217``, so ``5|urn:iso:std:iso:4217|EUR``
and ``5||EUR`` both match); and Range, stored as a single row whose ``low``/``high`` are the
bounds' values (an open bound is ±inf) and whose ``value`` is the midpoint when both bounds are
present, otherwise the one that is. ``code`` falls back to ``unit`` when there is no coded unit.
A Quantity ``comparator`` opens the range on that side (``<5`` → low = -inf).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_

from closedloop.fhir.search.index.kind import IndexKind
from closedloop.fhir.search.index.number import condition, number_text, precision_range

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node
    from closedloop.fhir.search.query import Criterion

CURRENCY_SYSTEM = "urn:iso:std:iso:4217"
_INF = float("inf")

Row = tuple[str | None, str | None, float, float, float]


def _s(value: object) -> str | None:
    return value if type(value) is str and value else None


def _unit(value: dict[str, Any]) -> tuple[str | None, str | None]:
    currency = _s(value.get("currency"))
    if currency is not None and "code" not in value:
        return CURRENCY_SYSTEM, currency
    return _s(value.get("system")), _s(value.get("code")) or _s(value.get("unit"))


def _quantity(value: dict[str, Any]) -> Row | None:
    text = number_text(value.get("value"))
    if text is None:
        return None
    number, low, high = precision_range(text)
    comparator = value.get("comparator")
    if comparator in ("<", "<="):
        low = -_INF
    elif comparator in (">", ">="):
        high = _INF
    system, code = _unit(value)
    return system, code, number, low, high


def _range(value: dict[str, Any]) -> Row | None:
    lo, hi = value.get("low"), value.get("high")
    lo_v = _bound(lo)
    hi_v = _bound(hi)
    if lo_v is not None and hi_v is not None:
        assert type(lo) is dict
        return (*_unit(lo), (lo_v + hi_v) / 2, lo_v, hi_v)
    if lo_v is not None:
        assert type(lo) is dict
        return (*_unit(lo), lo_v, lo_v, _INF)
    if hi_v is not None:
        assert type(hi) is dict
        return (*_unit(hi), hi_v, -_INF, hi_v)
    return None


def _bound(quantity: object) -> float | None:
    if type(quantity) is not dict:
        return None
    number = quantity.get("value")
    if number_text(number) is None:
        return None
    assert number is not None
    return float(number)


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    seen: dict[Row, None] = {}
    for value, node_type in nodes:
        if type(value) is not dict:
            continue
        if node_type == "Range" or "low" in value or "high" in value:
            row = _range(value)
        else:
            row = _quantity(value)
        if row is not None:
            seen[row] = None
    return [{"system": s, "code": c, "value": v, "low": lo, "high": hi} for s, c, v, lo, hi in seen]


class QuantityIndex(IndexKind):
    """``[prefix]number|system|code``: the number as for ``number``, the unit when given."""

    name = "quantity"
    sort_column = "value"
    extract = staticmethod(extract)

    def match(
        self, t: Any, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> ColumnElement[bool]:
        number_part, _, rest = value.partition("|")
        system, _, code = rest.partition("|")
        cond = condition(t, number_part)
        if code:
            cond = and_(cond, t.c.code == code)
        if system:
            cond = and_(cond, t.c.system == system)
        return cond


KIND = QuantityIndex()
