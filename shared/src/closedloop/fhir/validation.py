"""Structural validation of incoming resources with the ``fhir.resources`` R4B models.

The models run on writes only (≈50-400 µs each); reads serve the stored JSON text untouched.
Pydantic's error locations become FHIRPath-like ``expression`` values (``Patient.name[0].given``)
so a client sees exactly which element is wrong.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir.resources import R4B
from pydantic import ValidationError

from closedloop.errors import FhirError, Issue

_MESSAGES = {
    "extra_forbidden": "Unknown element",
    "missing": "Missing required element",
}


@cache
def model_class(resource_type: str) -> Any:
    try:
        return R4B.get_fhir_model_class(resource_type)
    except (ValueError, KeyError):
        return None


def is_known_type(resource_type: str) -> bool:
    return model_class(resource_type) is not None


def _expression(resource_type: str, loc: tuple[Any, ...]) -> str:
    out = resource_type
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part.startswith("function-") and part != "__root__":
            # pydantic's names for FHIR primitive extensions ("_birthDate") and aliases
            out += "." + part
    return out


def validate_resource(resource: Any, resource_type: str) -> None:
    """Raise a 400 ``FhirError`` listing every structural problem of ``resource``."""
    if not isinstance(resource, dict):
        raise FhirError(
            400, [Issue("error", "structure", "A resource must be a JSON object", (), "CL-1001")]
        )
    actual = resource.get("resourceType")
    if actual != resource_type:
        raise FhirError(
            400,
            [
                Issue(
                    "error",
                    "invalid",
                    f"resourceType is {actual!r} but the request is for {resource_type}",
                    (f"{resource_type}.resourceType",),
                    "CL-1002",
                )
            ],
        )
    cls = model_class(resource_type)
    if cls is None:
        raise FhirError(
            400,
            [
                Issue(
                    "error",
                    "not-supported",
                    f"Unknown resource type {resource_type}",
                    (),
                    "CL-1003",
                )
            ],
        )
    try:
        cls.model_validate(resource)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_url=False, include_input=False):
            where = _expression(resource_type, tuple(err.get("loc", ())))
            kind = err.get("type", "")
            text = (
                f"{_MESSAGES[kind]} {where}"
                if kind in _MESSAGES
                else f"{where}: {err.get('msg', 'invalid value')}"
            )
            issues.append(
                Issue(
                    "error",
                    "structure" if kind == "extra_forbidden" else "invalid",
                    text,
                    (where,),
                    "CL-1004",
                )
            )
        raise FhirError(400, issues) from None
    except (ValueError, TypeError) as exc:  # model root validators raising plain errors
        raise FhirError(
            400,
            [
                Issue(
                    "error",
                    "invalid",
                    f"Invalid {resource_type}: {exc}",
                    (resource_type,),
                    "CL-1004",
                )
            ],
        ) from None
