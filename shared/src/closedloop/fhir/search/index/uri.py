"""Rows for ``sp_uri``: the uri/url/canonical strings themselves, matched exactly or by prefix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, literal

from closedloop.fhir.search.index.kind import IndexKind, like_escape
from closedloop.fhir.search.syntax import unescape

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node
    from closedloop.fhir.search.query import Criterion


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    seen: dict[str, None] = {}
    for value, _type in nodes:
        if type(value) is str and value:
            seen[value] = None
    return [{"value": v} for v in seen]


class UriIndex(IndexKind):
    """Exact, ``:below`` (a prefix of the stored uri) or ``:above`` (the stored uri is the
    value or one of its parents)."""

    name = "uri"
    modifiers = frozenset({"missing", "below", "above"})
    sort_column = "value"
    sort_text = True
    extract = staticmethod(extract)

    def match(
        self, t: Any, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> ColumnElement[bool]:
        value = unescape(value)
        if modifier == "below":
            return t.c.value.like(f"{like_escape(value)}%", escape="\\")
        if modifier == "above":
            return literal(value).like(t.c.value.concat("%"))
        return t.c.value == value


KIND = UriIndex()
