"""Small building blocks for profile checks: each returns the issues it finds, naming the
element (``expression``) so a client knows exactly what to fix."""

from __future__ import annotations

from typing import Any

from closedloop.errors import Issue
from closedloop.fhir.search.index.reference import parse_reference

IG = "http://hl7.org/fhir/us/sdoh-clinicalcare"
SDOHCC_CODES = f"{IG}/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
SDOH_CATEGORIES = frozenset(
    {
        "sdoh-category-unspecified",
        "food-insecurity",
        "housing-instability",
        "homelessness",
        "inadequate-housing",
        "transportation-insecurity",
        "financial-insecurity",
        "material-hardship",
        "educational-attainment",
        "employment-status",
        "veteran-status",
        "stress",
        "social-connection",
        "intimate-partner-violence",
        "elder-abuse",
        "personal-health-literacy",
        "health-insurance-coverage-status",
        "medical-cost-burden",
        "digital-literacy",
        "digital-access",
        "utility-insecurity",
        "incarceration-status",
        "language-access",
        "protective-factor",
    }
)


def profile_url(name: str) -> str:
    return f"{IG}/StructureDefinition/{name}"


def claims(resource: dict[str, Any], name: str) -> bool:
    """Does ``meta.profile`` name this SDOHCC profile (any version)?"""
    url = profile_url(name)
    return any(
        isinstance(p, str) and p.split("|")[0] == url
        for p in (resource.get("meta") or {}).get("profile") or []
    )


def error(text: str, where: str, code: str = "CL-6422") -> Issue:
    return Issue("error", "invariant", text, (where,), code)


def required(resource: dict[str, Any], rtype: str, *elements: str) -> list[Issue]:
    out = []
    for element in elements:
        present = (
            any(k.startswith(element[:-3]) and k != element[:-3] for k in resource)
            if element.endswith("[x]")
            else resource.get(element) not in (None, [], {}, "")
        )
        if not present:
            out.append(
                error(f"{rtype}.{element} is required by the SDOHCC profile", f"{rtype}.{element}")
            )
    return out


def reference_type(ref: Any) -> str | None:
    if not isinstance(ref, dict):
        return None
    parsed = parse_reference(ref.get("reference") or "")
    if parsed is not None and parsed[0]:
        return parsed[0]
    return ref.get("type") if isinstance(ref.get("type"), str) else None


def reference_types(
    resource: dict[str, Any], rtype: str, element: str, allowed: frozenset[str]
) -> list[Issue]:
    """Every reference in ``element`` (one or a list) points to an allowed type."""
    value = resource.get(element)
    refs = value if isinstance(value, list) else [value] if value is not None else []
    out = []
    for i, ref in enumerate(refs):
        target = reference_type(ref)
        if target is not None and target not in allowed:
            where = f"{rtype}.{element}" + (f"[{i}]" if isinstance(value, list) else "")
            out.append(
                error(f"{where} may refer to {', '.join(sorted(allowed))}, not {target}", where)
            )
    return out


def codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def has_coding(concept: Any, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in codings(concept))
