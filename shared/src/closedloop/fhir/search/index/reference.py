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

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node

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
