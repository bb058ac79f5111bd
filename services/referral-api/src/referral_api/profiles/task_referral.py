"""SDOHCC Task For Referral Management: who must do what for a ServiceRequest, and where it
stands. Applies to Tasks with code ``task-code#fulfill`` (or that claim the profile)."""

from __future__ import annotations

from typing import Any

from closedloop.errors import Issue

from referral_api.profiles.rules import (
    SDOHCC_CODES,
    claims,
    codings,
    error,
    has_coding,
    reference_type,
    reference_types,
    required,
)

TASK_CODES = "http://hl7.org/fhir/CodeSystem/task-code"
STATUSES = frozenset(
    {
        "draft",
        "requested",
        "accepted",
        "rejected",
        "cancelled",
        "in-progress",
        "on-hold",
        "failed",
        "completed",
        "entered-in-error",
    }
)
REASON_REQUIRED = frozenset({"rejected", "cancelled", "on-hold", "failed"})
FOR = frozenset({"Patient", "RelatedPerson", "Group"})
REQUESTER = frozenset({"PractitionerRole", "Organization"})


def applies(task: dict[str, Any]) -> bool:
    return has_coding(task.get("code"), TASK_CODES, "fulfill") or claims(
        task, "SDOHCC-TaskForReferralManagement"
    )


def check(task: dict[str, Any]) -> list[Issue]:
    issues = required(
        task, "Task", "status", "intent", "code", "focus", "for", "authoredOn", "requester"
    )
    status = task.get("status")
    if status is not None and status not in STATUSES:
        issues.append(
            error(
                f"Task.status {status!r} is not used for referral Tasks "
                "(SDOHCC-ValueSetReferralTaskStatus)",
                "Task.status",
            )
        )
    if task.get("intent") not in (None, "order"):
        issues.append(error("Task.intent must be 'order' for a referral Task", "Task.intent"))
    if not has_coding(task.get("code"), TASK_CODES, "fulfill"):
        issues.append(error(f"Task.code must be {TASK_CODES}#fulfill", "Task.code"))
    focus = task.get("focus")
    if focus is not None and reference_type(focus) not in ("ServiceRequest", None):
        issues.append(error("Task.focus must refer to a ServiceRequest", "Task.focus"))
    issues += reference_types(task, "Task", "for", FOR)
    issues += reference_types(task, "Task", "requester", REQUESTER)
    if status in REASON_REQUIRED and not (task.get("statusReason") or {}).get("text"):
        issues.append(
            error(
                f"Task.statusReason.text is required when status is {status}",
                "Task.statusReason.text",
            )
        )
    for i, output in enumerate(task.get("output") or []):
        if any(
            c.get("system") == SDOHCC_CODES and c.get("code") == "resulting-activity"
            for c in codings((output or {}).get("type"))
        ):
            ref = output.get("valueReference")
            if "valueCodeableConcept" in output:
                continue  # the PerformedActivityCode slice
            if reference_type(ref) != "Procedure":
                issues.append(
                    error(
                        "A resulting-activity output must be a valueReference to a Procedure",
                        f"Task.output[{i}].valueReference",
                    )
                )
    return issues
