"""SDOHCC Procedure: the service that was delivered (what closes the loop)."""

from __future__ import annotations

from typing import Any

from closedloop.errors import Issue

from referral_api.profiles.rules import claims, error, reference_types, required


def applies(procedure: dict[str, Any]) -> bool:
    return claims(procedure, "SDOHCC-Procedure")


def check(procedure: dict[str, Any]) -> list[Issue]:
    issues = required(procedure, "Procedure", "status", "code", "subject")
    if procedure.get("status") in ("completed", "in-progress") and not any(
        k.startswith("performed") for k in procedure
    ):
        issues.append(
            error(
                "Procedure.performed[x] is required when the procedure is completed or in progress",
                "Procedure.performed[x]",
            )
        )
    issues += reference_types(procedure, "Procedure", "subject", frozenset({"Patient"}))
    issues += reference_types(
        procedure, "Procedure", "basedOn", frozenset({"ServiceRequest", "CarePlan"})
    )
    return issues
