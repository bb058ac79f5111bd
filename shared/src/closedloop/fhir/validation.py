"""Structural validation of incoming resources with the ``fhir.resources`` R4B models.

The models run on writes only (≈50-400 µs each); reads serve the stored JSON text untouched.
Pydantic's error locations become FHIRPath-like ``expression`` values (``Patient.name[0].given``)
so a client sees exactly which element is wrong.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fhir.resources import R4B
from pydantic import ValidationError

from closedloop import errors
from closedloop.errors import FhirError, Issue

MAX_JSON_DEPTH = 100
"""Deepest nesting of JSON arrays and objects accepted. Real resources stay far below (a
Questionnaire nested 40 items deep is 80 levels); deeper bodies would exhaust the recursion of
the model validation and of our own tree walks."""

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

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


def check_id(resource_id: str) -> None:
    """The FHIR id rule (http://hl7.org/fhir/R4/datatypes.html#id): 1-64 letters, digits,
    '-' and '.'; anything else is a 400 on either database (PostgreSQL would refuse a longer
    or NUL-holding id with a database error, SQLite would store it)."""
    if not _ID.fullmatch(resource_id):
        shown = resource_id if len(resource_id) <= 80 else resource_id[:80] + "..."
        raise errors.invalid(
            f"{shown!r} is not a valid id: 1-64 characters of A-Z, a-z, 0-9, '-' and '.'",
            cl_code="CL-1005",
        )


def check_json(value: Any) -> None:
    """400 for JSON nested deeper than ``MAX_JSON_DEPTH`` or holding a NUL character in a key
    or string (PostgreSQL refuses NUL in text and jsonb, so both databases refuse it here).
    Walks the tree without recursion, so any depth is safe to check."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = ((None, v) for v in node)
        else:
            if isinstance(node, str) and "\x00" in node:
                raise _nul()
            continue
        if depth > MAX_JSON_DEPTH:
            raise errors.invalid(
                f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep", cl_code="CL-1006"
            )
        for key, child in items:
            if key is not None and "\x00" in key:
                raise _nul()
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif isinstance(child, str) and "\x00" in child:
                raise _nul()


def _nul() -> FhirError:
    return errors.invalid("A string holds a NUL character (\\u0000)", cl_code="CL-1007")


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
    check_json(resource)
    if isinstance(resource.get("id"), str):
        check_id(resource["id"])
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
