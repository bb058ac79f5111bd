"""SDOHCC Condition: an SDOH problem or health concern."""

from __future__ import annotations

from typing import Any

from closedloop.errors import Issue

from referral_api.profiles.rules import claims, codings, error, reference_types, required

US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
KINDS = frozenset({"encounter-diagnosis", "problem-list-item", "health-concern"})


def applies(condition: dict[str, Any]) -> bool:
    return claims(condition, "SDOHCC-Condition")


def check(condition: dict[str, Any]) -> list[Issue]:
    issues = required(condition, "Condition", "category", "code", "subject")
    codes = {c.get("code") for cat in condition.get("category") or [] for c in codings(cat)}
    if condition.get("category"):
        if not any(
            c.get("system") == US_CORE_CATEGORY and c.get("code") == "sdoh"
            for cat in condition["category"]
            for c in codings(cat)
        ):
            issues.append(
                error(
                    "Condition.category must include us-core-category#sdoh (SDOH-Con-3)",
                    "Condition.category",
                )
            )
        if not codes & KINDS:
            issues.append(
                error(
                    "Condition.category must include encounter-diagnosis, "
                    "problem-list-item or health-concern (SDOH-Con-2)",
                    "Condition.category",
                )
            )
    issues += reference_types(condition, "Condition", "subject", frozenset({"Patient"}))
    return issues
