"""SDOHCC Goal: what the patient and care team aim for (e.g. food security)."""

from __future__ import annotations

from typing import Any

from closedloop.errors import Issue

from referral_api.profiles.rules import claims, reference_types, required


def applies(goal: dict[str, Any]) -> bool:
    return claims(goal, "SDOHCC-Goal")


def check(goal: dict[str, Any]) -> list[Issue]:
    issues = required(goal, "Goal", "lifecycleStatus", "description", "subject")
    issues += reference_types(goal, "Goal", "subject", frozenset({"Patient"}))
    return issues
