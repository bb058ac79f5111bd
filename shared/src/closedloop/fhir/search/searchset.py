"""The searchset Bundle, assembled as text around the stored JSON of each resource.

No resource is parsed on this path unless ``_elements``/``_summary`` asks for a subset (or a
``near`` search needs a Location's position for its distance extension).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from closedloop.errors import operation_outcome
from closedloop.fhir.instant import format_instant, now_us
from closedloop.fhir.search.geo import Near, distance_extension, python_distance_km
from closedloop.fhir.search.index.coords import near_of
from closedloop.fhir.search.query import SearchQuery
from closedloop.fhir.search.subsets import subset

# ``describe`` of a ranking parameter: a match's rank (its first sort key) -> its extensions
Describer = Callable[[Any], list[dict[str, Any]]]


@dataclass
class Row:
    """One resource of the result: a match or an included resource."""

    pk: int
    resource_type: str
    id: str
    content: str
    sort_key: tuple[Any, ...] = ()


@dataclass
class Page:
    """What one searchset shows: its matches, included resources, total and paging cursors."""

    rows: list[Row]
    included: list[Row]
    total: int | None
    next_cursor: str | None
    prev_cursor: str | None
    describe: Describer | None = None


def render(q: SearchQuery, pairs: list[tuple[str, str]], base_url: str, page: Page) -> str:
    """The Bundle text; its links repeat the search (``pairs``) with the page's cursors."""
    kept = [(k, v) for k, v in pairs if k != "_cursor"]
    link_base = f"{base_url}/{q.resource_type}"

    def link(relation: str, extra: list[tuple[str, str]]) -> str:
        qs = urlencode(kept + extra)
        return orjson.dumps(
            {"relation": relation, "url": f"{link_base}?{qs}" if qs else link_base}
        ).decode()

    links = [link("self", [("_cursor", q.cursor)] if q.cursor else [])]
    if page.next_cursor:
        links.append(link("next", [("_cursor", page.next_cursor)]))
    if page.prev_cursor:
        links.append(link("previous", [("_cursor", page.prev_cursor)]))
    near = near_of(q)
    entries = [_entry(base_url, row, "match", q, near, page.describe) for row in page.rows]
    entries += [_entry(base_url, row, "include", q) for row in page.included]
    if q.warnings:
        entries.append(
            '{"resource":'
            + orjson.dumps(operation_outcome(q.warnings)).decode()
            + ',"search":{"mode":"outcome"}}'
        )
    head = f'{{"resourceType":"Bundle","type":"searchset","timestamp":"{format_instant(now_us())}"'
    if page.total is not None:
        head += f',"total":{page.total}'
    return head + ',"link":[' + ",".join(links) + '],"entry":[' + ",".join(entries) + "]}"


def _entry(
    base_url: str,
    row: Row,
    mode: str,
    q: SearchQuery,
    near: Near | None = None,
    describe: Describer | None = None,
) -> str:
    """``describe`` turns a match's rank (its first sort key) into its search extensions."""
    content = row.content
    if q.elements or q.summary in ("true", "text", "data"):
        content = orjson.dumps(subset(orjson.loads(content), q.elements, q.summary)).decode()
    full_url = orjson.dumps(f"{base_url}/{row.resource_type}/{row.id}").decode()
    search = f'{{"mode":"{mode}"}}'
    if near is not None:
        search = _with_distance(mode, row.content, near)
    elif describe is not None:
        extensions = describe(row.sort_key[0])
        search = orjson.dumps({"mode": mode, "extension": extensions}).decode()
    return f'{{"fullUrl":{full_url},"resource":{content},"search":{search}}}'


def _with_distance(mode: str, content: str, near: Near) -> str:
    """The ``search`` element with the location-distance extension (km) for a Location."""
    position = orjson.loads(content).get("position") or {}
    try:
        km = python_distance_km(near, float(position["latitude"]), float(position["longitude"]))
    except (KeyError, TypeError, ValueError):
        return f'{{"mode":"{mode}"}}'
    return orjson.dumps({"mode": mode, "extension": [distance_extension(km)]}).decode()
