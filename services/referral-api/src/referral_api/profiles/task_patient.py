"""SDOHCC Task For Patient: something the patient is asked to do (fill in a questionnaire,
make contact, review material, answer a question)."""

from __future__ import annotations

from typing import Any

from closedloop.errors import Issue

from referral_api.profiles.rules import (
    SDOHCC_CODES,
    claims,
    codings,
    error,
    reference_type,
    reference_types,
    required,
)

SDC_TEMP = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"
CODES = {
    (SDC_TEMP, "complete-questionnaire"),
    (SDOHCC_CODES, "make-contact"),
    (SDOHCC_CODES, "review-material"),
    (SDOHCC_CODES, "general-information"),
}
STATUSES = frozenset(
    {"ready", "in-progress", "on-hold", "completed", "cancelled", "failed", "entered-in-error"}
)
OWNER = frozenset({"Patient", "RelatedPerson"})
REQUESTER = frozenset({"PractitionerRole", "Organization"})
QUESTIONNAIRE_INPUTS = {"questionnaire", "questionnaire-pdf", "questionnaire-url"}


def task_code(task: dict[str, Any]) -> str | None:
    for c in codings(task.get("code")):
        if (c.get("system"), c.get("code")) in CODES:
            return str(c["code"])
    return None


def applies(task: dict[str, Any]) -> bool:
    return task_code(task) is not None or claims(task, "SDOHCC-TaskForPatient")


def _input_codes(task: dict[str, Any]) -> list[str]:
    return [
        str(c.get("code"))
        for item in task.get("input") or []
        for c in codings((item or {}).get("type"))
    ]


def check(task: dict[str, Any]) -> list[Issue]:
    issues = required(
        task,
        "Task",
        "status",
        "intent",
        "priority",
        "code",
        "for",
        "owner",
        "requester",
        "authoredOn",
    )
    status = task.get("status")
    if status is not None and status not in STATUSES:
        issues.append(
            error(
                f"Task.status {status!r} is not used for patient Tasks (SDOHCC-ValueSetTaskStatus)",
                "Task.status",
            )
        )
    if task.get("intent") not in (None, "order"):
        issues.append(error("Task.intent must be 'order'", "Task.intent"))
    if task.get("priority") not in (None, "routine", "urgent"):
        issues.append(error("Task.priority must be routine or urgent", "Task.priority"))
    issues += reference_types(task, "Task", "owner", OWNER)
    issues += reference_types(task, "Task", "requester", REQUESTER)
    code = task_code(task)
    inputs = _input_codes(task)
    if code == "complete-questionnaire":
        if len(QUESTIONNAIRE_INPUTS & set(inputs)) != 1:
            issues.append(
                error(
                    "complete-questionnaire needs exactly one questionnaire, "
                    "questionnaire-pdf or questionnaire-url input",
                    "Task.input",
                )
            )
        if "questionnaire-category" not in inputs:
            issues.append(
                error("complete-questionnaire needs a questionnaire-category input", "Task.input")
            )
    elif code == "make-contact":
        if not task.get("description"):
            issues.append(error("make-contact needs Task.description", "Task.description"))
        if "contact-entity" not in inputs:
            issues.append(
                error("make-contact needs at least one contact-entity input", "Task.input")
            )
    elif code == "general-information":
        if not task.get("description"):
            issues.append(error("general-information needs Task.description", "Task.description"))
    elif code == "review-material" and reference_type(task.get("focus")) != "DocumentReference":
        issues.append(
            error("review-material needs Task.focus to refer to a DocumentReference", "Task.focus")
        )
    return issues
