"""FHIR operations (``$name``): one module per operation, registered in ``OPERATIONS``.

Each handler takes ``(request, resource_type, resource_id | None)`` and returns a Response.
"""

from __future__ import annotations

from closedloop.fhir.operations.validate import validate

OPERATIONS = {"validate": validate}

__all__ = ["OPERATIONS"]
