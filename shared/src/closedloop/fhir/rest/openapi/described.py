"""What a ``$operation`` handler says about itself, for the OpenAPI document.

An operation is registered by name only (``FhirConfig.operations``), and one handler may serve
type and instance level, GET and POST. ``@described(...)`` puts an ``OperationDescription`` on
the handler, so the document lists exactly the paths, methods, parameters and answers the
handler serves, next to the code that serves them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTE = "__fhir_operation__"


@dataclass(frozen=True)
class OperationParameter:
    """One query (or Parameters) parameter of an operation."""

    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class OperationDescription:
    summary: str
    # the types it is defined on; empty: every type the service serves (and may write)
    resource_types: tuple[str, ...] = ()
    type_level: bool = True
    instance_level: bool = True
    methods: tuple[str, ...] = ("POST",)
    parameters: tuple[OperationParameter, ...] = ()
    # POST body: "resource" (the resource, or Parameters with a resource; JSON or XML),
    # "parameters" (a Parameters resource, JSON), or None
    body: str | None = "parameters"
    body_required: bool = False
    response: str = "OperationOutcome"  # a component schema name
    errors: tuple[int, ...] = (400, 404)  # error statuses it answers besides the common ones
    writes_only: bool = False  # offered only on types clients may write
    definition: str | None = None  # the OperationDefinition canonical


def described(description: OperationDescription) -> Callable[[F], F]:
    def mark(handler: F) -> F:
        setattr(handler, ATTRIBUTE, description)
        return handler

    return mark


def description_of(handler: Callable[..., Any]) -> OperationDescription | None:
    found = getattr(handler, ATTRIBUTE, None)
    return found if isinstance(found, OperationDescription) else None
