"""SDOHCC ServiceRequest: what the patient needs (always applies in referral-api)."""

from __future__ import annotations

from typing import Any

from closedloop.errors import Issue

from referral_api.profiles.rules import (
    SDOH_CATEGORIES,
    SDOHCC_CODES,
    codings,
    error,
    reference_types,
    required,
)

SUBJECT = frozenset({"Patient", "Group", "Location"})
PERFORMER = frozenset(
    {
        "HealthcareService",
        "Device",
        "RelatedPerson",
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "CareTeam",
    }
)
REQUESTER = frozenset(
    {"RelatedPerson", "Device", "PractitionerRole", "Practitioner", "Patient", "Organization"}
)
REASON = frozenset({"Condition", "Observation", "DiagnosticReport", "DocumentReference"})


def applies(resource: dict[str, Any]) -> bool:
    return True


def check(sr: dict[str, Any]) -> list[Issue]:
    issues = required(sr, "ServiceRequest", "status", "intent", "code", "subject")
    for i, category in enumerate(sr.get("category") or []):
        for coding in codings(category):
            if coding.get("system") == SDOHCC_CODES and coding.get("code") not in SDOH_CATEGORIES:
                issues.append(
                    error(
                        f"ServiceRequest.category[{i}] code {coding.get('code')!r} is not an SDOH "
                        "category (SDOHCC-ValueSetSDOHCategory)",
                        f"ServiceRequest.category[{i}]",
                    )
                )
    issues += reference_types(sr, "ServiceRequest", "subject", SUBJECT)
    issues += reference_types(sr, "ServiceRequest", "performer", PERFORMER)
    issues += reference_types(sr, "ServiceRequest", "requester", REQUESTER)
    issues += reference_types(sr, "ServiceRequest", "reasonReference", REASON)
    return issues
