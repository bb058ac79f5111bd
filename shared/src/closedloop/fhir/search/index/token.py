"""Rows for ``sp_token``: (system, code) pairs for exact matching, and normalised display text
for the ``:text`` modifier.

The input is whatever the FHIRPath produced: code/string/boolean primitives, Coding,
CodeableConcept, Identifier or ContactPoint. Shapes are recognised from their keys, since most
nodes carry no declared type. ``text`` uses ``index.string.normalize`` (lower-case, no accents).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_

from closedloop.fhir.search.index.kind import IndexKind, bad_value, like_escape
from closedloop.fhir.search.index.string import normalize
from closedloop.fhir.search.syntax import split_unescaped, unescape

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node
    from closedloop.fhir.search.query import Criterion

Row = tuple[str | None, str | None, str | None]

# ContactPoint.system codes; an Identifier.system is a URI and never one of these.
_CONTACT_SYSTEMS = frozenset(("phone", "fax", "email", "pager", "url", "sms", "other"))


def _s(value: object) -> str | None:
    return value if type(value) is str and value else None


def _text(value: object) -> str | None:
    if type(value) is not str or not value:
        return None
    return normalize(value) or None


def _add(seen: dict[Row, None], system: str | None, code: str | None, text: str | None) -> None:
    if system is not None or code is not None or text is not None:
        seen[(system, code, text)] = None


def _coding(seen: dict[Row, None], coding: dict[str, Any], fallback: str | None) -> None:
    _add(
        seen,
        _s(coding.get("system")),
        _s(coding.get("code")),
        _text(coding.get("display")) or fallback,
    )


def _dict(seen: dict[Row, None], value: dict[str, Any]) -> None:
    codings = value.get("coding")
    if codings is not None or ("text" in value and "value" not in value):
        # CodeableConcept: one row per coding plus a text-only row for the concept text.
        concept_text = _text(value.get("text"))
        if type(codings) is list:
            for coding in codings:
                if type(coding) is dict:
                    _coding(seen, coding, concept_text)
        if concept_text:
            _add(seen, None, None, concept_text)
    elif "value" in value:
        system = _s(value.get("system"))
        code = value.get("value")
        code = _s(code) or (str(code) if type(code) in (int, float) else None)
        if system in _CONTACT_SYSTEMS:  # ContactPoint
            _add(seen, None, code, None)
        else:  # Identifier
            kind = value.get("type")
            text = _text(kind.get("text")) if type(kind) is dict else None
            _add(seen, system, code, text)
    elif "code" in value or "system" in value or "display" in value:
        _coding(seen, value, None)


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    seen: dict[Row, None] = {}
    for value, _type in nodes:
        kind = type(value)
        if kind is str:
            if value:
                seen[(None, value, None)] = None
        elif kind is bool:
            seen[(None, "true" if value else "false", None)] = None
        elif kind is dict:
            _dict(seen, value)
        elif kind is int:
            seen[(None, str(value), None)] = None
    return [{"system": s, "code": c, "text": t} for s, c, t in seen]


def extract_of_type(nodes: list[Node]) -> list[dict[str, Any]]:
    """Rows for ``identifier:of-type=system|code|value``: one per Identifier.type coding, with
    ``code`` holding ``<type code>|<identifier value>``."""
    seen: dict[Row, None] = {}
    for node in nodes:
        value = node.value
        if type(value) is not dict or not _s(value.get("value")):
            continue
        id_type = value.get("type")
        if type(id_type) is not dict:
            continue
        for coding in id_type.get("coding") or ():
            if type(coding) is dict and _s(coding.get("code")):
                _add(seen, _s(coding.get("system")), f"{coding['code']}|{value['value']}", None)
    return [{"system": s, "code": c, "text": t} for s, c, t in seen]


class TokenIndex(IndexKind):
    """``system|code``, ``|code``, ``system|`` or ``code``; ``:text`` on the normalised
    display; ``:of-type`` on the rows of ``extract_of_type``."""

    name = "token"
    modifiers = frozenset({"not", "text", "missing", "of-type"})
    sort_column = "code"
    sort_text = True
    shape_modifiers = frozenset((None, "not"))
    extract = staticmethod(extract)

    def match(
        self, t: Any, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> ColumnElement[bool]:
        if modifier == "text":
            return t.c.text.like(f"{like_escape(normalize(unescape(value)))}%", escape="\\")
        if modifier == "of-type":
            parts = [unescape(p) for p in split_unescaped(value, "|")]
            if len(parts) != 3 or not all(parts):
                raise bad_value(f"identifier:of-type takes system|code|value, not {value!r}")
            return and_(t.c.system == parts[0], t.c.code == f"{parts[1]}|{parts[2]}")
        form, bound = self.shape(value, modifier, c, base_url)
        if form == "|c":
            return and_(t.c.system.is_(None), t.c.code == bound[0])
        if form == "s|":
            return t.c.system == bound[0]
        if form == "s|c":
            return and_(t.c.system == bound[0], t.c.code == bound[1])
        return t.c.code == bound[0]

    def shape(
        self, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> tuple[str, list[Any]]:
        """``system|code`` as ``s|c``, ``|code`` (no system) as ``|c``, ``system|`` (any code
        of it) as ``s|`` and a bare code as ``c``, with their values."""
        parts = [unescape(p) for p in split_unescaped(value, "|")]
        if len(parts) > 1:
            system, code = parts[0], "|".join(parts[1:])
            if not system:
                return "|c", [code]
            if not code:
                return "s|", [system]
            return "s|c", [system, code]
        return "c", [parts[0]]


KIND = TokenIndex()
