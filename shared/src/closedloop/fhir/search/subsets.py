"""``_elements`` and ``_summary``: the subsets of a resource a client may ask for.

A subset is marked with the SUBSETTED tag so nobody mistakes it for the whole resource.
Summary elements come from the ``fhir.resources`` model metadata (``summary_element_property``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from closedloop.fhir.validation import model_class

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_ALWAYS = ("resourceType", "id", "meta")


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    cls = model_class(resource_type)
    if cls is None:
        return frozenset(_ALWAYS)
    names = set(_ALWAYS)
    for field in cls.model_fields.values():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("summary_element_property") and field.alias:
            names.add(field.alias)
            # choice types: valueQuantity etc. share the summary flag under their own alias
    return frozenset(names)


def _tag(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    resource["meta"] = meta
    return resource


def subset(resource: dict[str, Any], elements: list[str], summary: str | None) -> dict[str, Any]:
    if summary == "data":
        return _tag({k: v for k, v in resource.items() if k != "text"})
    if summary == "text":
        keep: frozenset[str] = frozenset(("resourceType", "id", "meta", "text"))
        return _tag({k: v for k, v in resource.items() if k in keep})
    if summary == "true":
        keep = summary_elements(resource.get("resourceType", ""))
        return _tag({k: v for k, v in resource.items() if k in keep})
    if elements:
        wanted = set(elements) | set(_ALWAYS)
        return _tag({k: v for k, v in resource.items() if k in wanted or k.lstrip("_") in wanted})
    return resource
