"""Rows for ``sp_number``: the value plus the range its written precision implies.

FHIR number search without a comparator matches when the target lies within the precision of
the searched value ("100" means 99.5 ≤ x < 100.5), so both ends are stored. The precision comes
from the digits as written: for a JSON number that is Python's shortest ``repr``, so a trailing
zero in the original text (``1.50``) is lost and the value counts as ``1.5``.
``precision_range`` is shared with the query parser.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, not_

from closedloop.fhir.search.index.kind import IndexKind, bad_value, compare_range
from closedloop.fhir.search.syntax import split_prefix

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node
    from closedloop.fhir.search.query import Criterion


def precision_range(text: str) -> tuple[float, float, float]:
    """``(value, low, high)`` for a decimal literal: ``"100"`` → (100, 99.5, 100.5),
    ``"1.5"`` → (1.5, 1.45, 1.55), ``"1e2"`` → (100, 50, 150). Raises ValueError if invalid."""
    try:
        number = Decimal(text.strip())
        if not number.is_finite():
            raise ValueError(f"not a finite number: {text!r}")
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)  # finite decimals have an int exponent
        half = Decimal(5).scaleb(exponent - 1)
        return float(number), float(number - half), float(number + half)
    except ArithmeticError:  # decimal.InvalidOperation: syntax, or exponent out of range
        raise ValueError(f"not a number: {text!r}") from None


def number_text(value: object) -> str | None:
    """The written form of a JSON number (not bool, not NaN/inf), else None."""
    if type(value) is int:
        return str(value)
    if type(value) is float and math.isfinite(value):
        return repr(value)
    return None


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    seen: dict[tuple[float, float, float], None] = {}
    for value, _type in nodes:
        text = number_text(value) if type(value) is not str else value
        if text is None:
            continue
        try:
            seen[precision_range(text)] = None
        except ValueError:
            continue
    return [{"value": v, "low": lo, "high": hi} for v, lo, hi in seen]


def condition(t: Any, value: str) -> ColumnElement[bool]:
    """``[prefix]number`` against ``t.c.value``: ``eq``/``ne`` within the written precision,
    the other prefixes against the value itself (``ap``: within 10%)."""
    prefix, text = split_prefix(value)
    try:
        number, low, high = precision_range(text)
    except (ValueError, TypeError):
        raise bad_value(f"Invalid number {text!r}") from None
    if prefix in ("eq", "ne"):
        cond = and_(t.c.value >= low, t.c.value < high)
        return cond if prefix == "eq" else not_(cond)
    return compare_range(prefix, t.c.value, t.c.value, number, number, abs(number) * 0.1)


class NumberIndex(IndexKind):
    name = "number"
    sort_column = "value"
    extract = staticmethod(extract)

    def match(
        self, t: Any, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> ColumnElement[bool]:
        return condition(t, value)


KIND = NumberIndex()
