"""Search parameter definitions: the standard FHIR R4 set, loaded from the official bundle, and
a registry that answers "which parameters does type X have" for both indexing and querying.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from closedloop.fhir.search.extract import IndexExtractor

DATA_FILE = Path(__file__).parent / "data" / "search-parameters.json"
STANDARD_URL_PREFIX = "http://hl7.org/fhir/SearchParameter/"
# Parameters defined on these bases apply to every resource type.
UNIVERSAL_BASES = frozenset(("Resource", "DomainResource"))


@dataclass(frozen=True)
class SearchParam:
    code: str  # e.g. "identifier"
    type: str  # token|string|date|number|quantity|reference|uri|special|composite
    expression: str | None  # FHIRPath from the spec
    base: tuple[str, ...]  # resource types it applies to
    target: tuple[str, ...] = ()  # reference target types
    url: str = ""
    description: str = ""
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    # A service-specific predicate (the seam for parameters whose meaning is not one index
    # lookup, e.g. directory-api's ``age``): ``condition(value, resources_alias,
    # resource_type)`` returns the SQL condition for one value; values are ORed. The parameter
    # still needs a ``type`` with an index table so it is listed as supported.
    condition: Callable[[str, Any, str], Any] | None = field(default=None, compare=False)
    # The index table kind (a key of ``storage.tables.INDEX_TABLES``) when the type alone does
    # not say it, e.g. ``text`` for a full-text ``_content`` or ``area`` for ``contains``.
    kind: str | None = None
    # A service-specific row extractor over the expression's nodes, replacing the kind's own
    # (e.g. directory-api turns ``availableTime`` into minute-of-week ranges).
    extract: Callable[[list[Any]], list[dict[str, Any]]] | None = field(default=None, compare=False)
    # Relevance for a parameter that also orders what it finds when no ``_sort`` is given:
    # ``rank(value, resources_alias, resource_type)`` is a SQL expression, smallest first;
    # ``describe(rank_value)`` gives each match's ``entry.search`` extensions (why it matched).
    rank: Callable[[str, Any, str], Any] | None = field(default=None, compare=False)
    describe: Callable[[Any], list[dict[str, Any]]] | None = field(default=None, compare=False)


class SearchParamRegistry:
    """Parameters by (resource type, code). A later ``add`` for the same pair replaces the
    earlier one, so custom definitions can override standard ones. A param whose base is
    ``Resource``/``DomainResource`` applies to every type unless the type defines the code.
    """

    def __init__(self, params: Iterable[SearchParam] = ()) -> None:
        self._by_type: dict[str, dict[str, SearchParam]] = {}
        self._extractors: dict[str, IndexExtractor] = {}
        for param in params:
            self.add(param)

    def add(self, param: SearchParam) -> None:
        for base in param.base:
            self._by_type.setdefault(base, {})[param.code] = param
        if UNIVERSAL_BASES.intersection(param.base):
            self._extractors.clear()
        else:
            for base in param.base:
                self._extractors.pop(base, None)

    def defined(self, resource_type: str) -> dict[str, SearchParam]:
        """Every parameter defined for the type, supported or not (code → param)."""
        merged: dict[str, SearchParam] = {}
        for base in (*sorted(UNIVERSAL_BASES), resource_type):
            merged.update(self._by_type.get(base, {}))
        return merged

    def for_type(self, resource_type: str) -> dict[str, SearchParam]:
        """The searchable parameters of a type (code → param): those whose expression compiled
        and that have an index table (or, for ``_id``/``_lastUpdated``, a resources column)."""
        return dict(self.extractor(resource_type).supported)

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self.extractor(resource_type).supported.get(code)

    def extractor(self, resource_type: str) -> IndexExtractor:
        extractor = self._extractors.get(resource_type)
        if extractor is None:
            extractor = IndexExtractor(resource_type, self.defined(resource_type).values())
            self._extractors[resource_type] = extractor
        return extractor


@lru_cache(maxsize=1)
def _standard_entries() -> tuple[dict[str, Any], ...]:
    """The standard SearchParameter resources, parsed once per process."""
    bundle = orjson.loads(DATA_FILE.read_bytes())
    return tuple(
        resource
        for entry in bundle.get("entry", ())
        if (resource := entry.get("resource", {})).get("url", "").startswith(STANDARD_URL_PREFIX)
    )


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else ()


def load_standard(resource_types: Iterable[str]) -> list[SearchParam]:
    """The standard R4 parameters that apply to ``resource_types``, each with ``base`` narrowed
    to the requested types it applies to (``Resource``/``DomainResource`` apply to all)."""
    wanted = tuple(dict.fromkeys(resource_types))
    params: list[SearchParam] = []
    for resource in _standard_entries():
        bases = set(resource.get("base", ()))
        universal = not UNIVERSAL_BASES.isdisjoint(bases)
        applies = wanted if universal else tuple(t for t in wanted if t in bases)
        if not applies:
            continue
        params.append(
            SearchParam(
                code=resource["code"],
                type=resource["type"],
                expression=resource.get("expression"),
                base=applies,
                target=_tuple(resource.get("target")),
                url=resource["url"],
                description=resource.get("description", ""),
                modifiers=_tuple(resource.get("modifier")),
                comparators=_tuple(resource.get("comparator")),
            )
        )
    return params
