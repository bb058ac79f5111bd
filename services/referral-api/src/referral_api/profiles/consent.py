"""SDOHCC Consent: the patient's consent to disclose to a (non-HIPAA) CBO."""

from __future__ import annotations

from typing import Any

from closedloop.errors import Issue

from referral_api.profiles.rules import claims, error, has_coding, reference_types, required

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def applies(consent: dict[str, Any]) -> bool:
    return claims(consent, "SDOHCC-Consent")


def check(consent: dict[str, Any]) -> list[Issue]:
    issues = required(
        consent,
        "Consent",
        "status",
        "scope",
        "category",
        "patient",
        "dateTime",
        "organization",
        "source[x]",
    )
    if consent.get("category") and not any(
        has_coding(c, ACT_CODE, "IDSCL") for c in consent["category"]
    ):
        issues.append(error("Consent.category must include v3-ActCode#IDSCL", "Consent.category"))
    issues += reference_types(consent, "Consent", "patient", frozenset({"Patient"}))
    return issues
