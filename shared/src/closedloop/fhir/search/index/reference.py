"""Rows for ``sp_reference``: (target_type, target_id) for references into a FHIR server, and
``target_url`` for absolute URLs, ``urn:`` identifiers and canonicals.

A relative ``Type/id`` is the common case and is matched on type+id alone; an absolute
``http(s)://base/Type/id`` keeps type+id *and* the URL so the query side can match either way.
Canonicals (``canonical``/``uri`` strings) are matched by URL only, without ``|version``.
Contained references (``#id``) resolve inside the resource and are not indexed.
``parse_reference`` is shared with the query parser.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_

from closedloop import errors
from closedloop.fhir.search.index.kind import IndexKind, bad_value
from closedloop.fhir.search.syntax import unescape

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node
    from closedloop.fhir.search.query import Criterion

_ID = r"[A-Za-z0-9\-.]{1,64}"
_REF_RE = re.compile(
    rf"(?P<base>https?://\S*?/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>{_ID})(?:/_history/{_ID})?",
    re.ASCII,
)
_BARE_ID_RE = re.compile(_ID, re.ASCII)

Parsed = tuple[str | None, str | None, str | None]


def parse_reference(text: str) -> Parsed | None:
    """``(target_type, target_id, target_url)`` for a reference string, None for ``#contained``
    or empty text.

    - ``Patient/1`` or ``Patient/1/_history/2`` → ``("Patient", "1", None)``
    - ``https://h/fhir/Patient/1/_history/2`` → ``("Patient", "1", "https://h/fhir/Patient/1")``
    - ``urn:uuid:…``, other URLs → ``(None, None, text)``
    - a bare id ``1`` (a search value) → ``(None, "1", None)``
    """
    if type(text) is not str or not text or text[0] == "#":
        return None
    m = _REF_RE.fullmatch(text)
    if m is not None:
        rtype, rid, base = m.group("type"), m.group("id"), m.group("base")
        return rtype, rid, (f"{base}{rtype}/{rid}" if base else None)
    if _BARE_ID_RE.fullmatch(text):
        return None, text, None
    return None, None, text


def reference_type(value: object) -> str | None:
    """The resource type a Reference dict points to (for ``resolve() is T``): from its
    ``reference``, falling back to its ``type`` element when the reference has no type."""
    if type(value) is not dict:
        return None
    parsed = parse_reference(value.get("reference"))  # type: ignore[arg-type]
    if parsed is not None and parsed[0] is not None:
        return parsed[0]
    declared = value.get("type")
    return declared if type(declared) is str else None


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    seen: dict[Parsed, None] = {}
    for value, _type in nodes:
        if type(value) is dict:
            parsed = parse_reference(value.get("reference"))  # type: ignore[arg-type]
            if parsed is None:
                continue
            if parsed[0] is None and parsed[1] is not None:
                # A bare id is no valid reference; use the declared ``type`` if there is one.
                declared = value.get("type")
                if type(declared) is str and declared:
                    parsed = (declared, parsed[1], None)
                else:
                    parsed = (None, None, parsed[1])
            seen[parsed] = None
        elif type(value) is str and value:
            url = value.split("|", 1)[0]
            if url and url[0] != "#":
                seen[(None, None, url)] = None
    return [{"target_type": t, "target_id": i, "target_url": u} for t, i, u in seen]


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
        raise bad_value(f"Invalid reference {value!r}: use Type/id, an id or an absolute URL")
    rtype, rid, url = parsed
    if url and rtype and rid and not value.startswith(("http://", "https://")):
        url = None
    return rtype, rid, url


class ReferenceIndex(IndexKind):
    """``Type/id``, an id (of the ``:Type`` modifier's type, if any) or an absolute URL; a
    reference to this server's own base URL counts as local."""

    name = "reference"
    modifiers = frozenset({"missing", "identifier"})
    sort_column = "target_id"
    sort_text = True
    shape_modifiers = frozenset((None,))
    extract = staticmethod(extract)

    def match(
        self, t: Any, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> ColumnElement[bool]:
        rtype, rid, url = reference_value(unescape(value), base_url, c.target_type)
        if url is not None:
            return t.c.target_url == url.split("/_history/")[0]
        conds = [t.c.target_id == rid]
        if rtype:
            conds.append(t.c.target_type == rtype)
        return and_(*conds)

    def shape(
        self, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> tuple[str, list[Any]] | None:
        try:
            rtype, rid, url = reference_value(unescape(value), base_url, c.target_type)
        except errors.FhirError:
            return None
        if url is not None:
            return "url", [url.split("/_history/")[0]]
        if rid is None:
            return None
        return ("type/id", [rid, rtype]) if rtype else ("id", [rid])


KIND = ReferenceIndex()
