"""Rows for ``sp_uri``: the uri/url/canonical strings themselves, matched exactly or by prefix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    seen: dict[str, None] = {}
    for value, _type in nodes:
        if type(value) is str and value:
            seen[value] = None
    return [{"value": v} for v in seen]
