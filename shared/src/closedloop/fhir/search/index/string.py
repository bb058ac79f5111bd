"""Rows for ``sp_string``: a normalised form for the default starts-with/contains search, plus the
original text for ``:exact``.

Normalisation (lower-case, accents removed, whitespace collapsed) is exported as ``normalize`` so
the query side and the token ``text`` column use exactly the same rule.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement

from closedloop.fhir.search.index.kind import IndexKind, like_escape
from closedloop.fhir.search.syntax import unescape

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node
    from closedloop.fhir.search.query import Criterion

MAX_LEN = 255

# Parts of HumanName and Address that a string search matches (FHIR R4 search rules).
_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
_NAME_ONLY = frozenset(("family", "given", "prefix", "suffix"))
_ADDRESS_ONLY = frozenset(("line", "city", "district", "state", "postalCode", "country"))
# A dict carrying only these keys (plus ``text``) may be a text-only HumanName or Address.
_NEUTRAL = frozenset(("text", "use", "type", "period", "id", "extension"))


def normalize(text: str) -> str:
    """Lower-case, strip accents (NFKD minus combining marks) and collapse whitespace."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(text.lower().split())


def _parts(value: dict[str, Any], node_type: str | None) -> tuple[str, ...]:
    keys = value.keys()
    if node_type == "HumanName" or not _NAME_ONLY.isdisjoint(keys):
        return _NAME_PARTS
    if node_type == "Address" or not _ADDRESS_ONLY.isdisjoint(keys):
        return _ADDRESS_PARTS
    if node_type is None and "text" in value and _NEUTRAL.issuperset(keys):
        return ("text",)
    return ()


def _add(seen: dict[tuple[str, str], None], text: object) -> None:
    if type(text) is str and text:
        exact = text[:MAX_LEN]
        norm = normalize(text)[:MAX_LEN]
        if norm:
            seen[(norm, exact)] = None


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], None] = {}
    for value, node_type in nodes:
        if type(value) is str:
            _add(seen, value)
        elif type(value) is dict:
            for part in _parts(value, node_type):
                item = value.get(part)
                if type(item) is list:
                    for text in item:
                        _add(seen, text)
                else:
                    _add(seen, item)
    return [{"value_norm": n, "value_exact": e} for n, e in seen]


def _operand(value: str, modifier: str | None) -> tuple[str, str]:
    """(``=`` exact, ``~`` contains or ``^`` starts with; the value or LIKE pattern to bind)."""
    value = unescape(value)
    if modifier == "exact":
        return "=", value
    norm = like_escape(normalize(value))
    if modifier == "contains":
        return "~", f"%{norm}%"
    return "^", f"{norm}%"


class StringIndex(IndexKind):
    """Starts with (default) or ``:contains`` on the normalised text, ``:exact`` on the text
    as written."""

    name = "string"
    modifiers = frozenset({"exact", "contains", "missing"})
    sort_column = "value_norm"
    sort_text = True
    shape_modifiers = frozenset((None, "exact", "contains"))
    extract = staticmethod(extract)

    def match(
        self, t: Any, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> ColumnElement[bool]:
        form, operand = _operand(value, modifier)
        if form == "=":
            return t.c.value_exact == operand
        return t.c.value_norm.like(operand, escape="\\")

    def shape(
        self, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> tuple[str, list[Any]]:
        form, operand = _operand(value, modifier)
        return form, [operand]


KIND = StringIndex()
