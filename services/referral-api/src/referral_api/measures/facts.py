"""What one referral Task contributes to the loop metrics, as pure functions of its versions
and of the ServiceRequest and Patient it points to: shared by the live projection and the
backfill, so both build the same rows.

When a status was reached: the Task's ``lastModified`` when the change sets a new one (the IG
has the actor stamp each change, and a system that syncs late keeps the real time), else the
server's ``meta.lastUpdated`` of the version.
"""

from __future__ import annotations

from typing import Any

from closedloop.fhir.instant import format_instant, parse_instant
from closedloop.fhir.search.index.reference import parse_reference

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
RACE, ETHNICITY = US_CORE + "us-core-race", US_CORE + "us-core-ethnicity"
BIRTH_SEX, SEX = US_CORE + "us-core-birthsex", US_CORE + "us-core-sex"
ANSWERED = ("accepted", "rejected")
TIMES = ("sent_at", "first_response_at", "accepted_at", "declined_at", "completed_at")
PATIENT_FIELDS = ("language", "race", "ethnicity", "sex")


def local_ref(value: object) -> str | None:
    """``Type/id`` of a Reference (absolute or relative), the form tokens' organizations take."""
    if not isinstance(value, dict):
        return None
    parsed = parse_reference(value.get("reference") or "")
    if parsed is None or parsed[0] is None or parsed[1] is None:
        return None
    return f"{parsed[0]}/{parsed[1]}"[:128]


def _target_id(value: object, resource_type: str) -> str | None:
    ref = local_ref(value)
    if ref is None or not ref.startswith(resource_type + "/"):
        return None
    return ref.split("/", 1)[1]


def event_time(task: dict[str, Any], previous: dict[str, Any] | None) -> int | None:
    stamped = task.get("lastModified")
    if isinstance(stamped, str) and stamped != (previous or {}).get("lastModified"):
        at = parse_instant(stamped)
        if at is not None:
            return at
    updated = (task.get("meta") or {}).get("lastUpdated")
    return parse_instant(updated) if isinstance(updated, str) else None


def _reason(task: dict[str, Any]) -> str:
    """The coded decline reason; free text is not a stratum (it may name the patient)."""
    for coding in (task.get("statusReason") or {}).get("coding") or []:
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return coding["code"][:64]
    return "unspecified"


def step(
    fact: dict[str, Any] | None, task: dict[str, Any], previous: dict[str, Any] | None, at: int
) -> dict[str, Any]:
    """The fact row after one version of a referral Task (``at``: the version's time when the
    Task carries none): references follow the Task; each status's time is kept from the first
    version that reached it."""
    row = dict(fact or {})
    row["task_id"] = task["id"]
    row["patient_id"] = _target_id(task.get("for"), "Patient")
    row["service_request_id"] = _target_id(task.get("focus"), "ServiceRequest")
    row["owner_org"] = local_ref(task.get("owner"))
    row["requester_org"] = local_ref(task.get("requester"))
    status = str(task.get("status"))
    row["status"] = status
    when = event_time(task, previous) or at

    def first(column: str) -> None:
        if row.get(column) is None:
            row[column] = when

    if status != "draft":
        first("sent_at")  # every status after draft follows requested
    if row.get("sent_at") is not None:
        row["sent_month"] = format_instant(row["sent_at"])[:7]
    if status == "rejected":
        first("declined_at")
        row["declined_reason"] = row.get("declined_reason") or _reason(task)
    if status not in ("draft", "requested", "rejected", "cancelled", "entered-in-error"):
        first("accepted_at")  # in-progress, on-hold, completed and failed follow accepted
    if status == "completed":
        first("completed_at")
    if status == "cancelled":
        first("cancelled_at")
    if row.get("first_response_at") is None and (row.get("accepted_at") or row.get("declined_at")):
        row["first_response_at"] = when
    return row


def category_of(service_request: dict[str, Any] | None) -> str | None:
    for concept in (service_request or {}).get("category") or []:
        for coding in (concept or {}).get("coding") or []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                return str(coding["code"])[:64]
    return None


def _omb(patient: dict[str, Any], url: str) -> str | None:
    """The OMB category of a US Core race or ethnicity extension; ``multiple`` for several."""
    for ext in patient.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == url:
            codes = {
                str(sub["valueCoding"].get("code"))
                for sub in ext.get("extension") or []
                if isinstance(sub, dict)
                and sub.get("url") == "ombCategory"
                and isinstance(sub.get("valueCoding"), dict)
            }
            if len(codes) > 1:
                return "multiple"
            return next(iter(codes), None)
    return None


def _code_ext(patient: dict[str, Any], url: str) -> str | None:
    for ext in patient.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == url:
            value = ext.get("valueCode") or (ext.get("valueCodeableConcept") or {}).get("coding")
            if isinstance(value, str):
                return value
            if isinstance(value, list) and value and isinstance(value[0], dict):
                return str(value[0].get("code"))
    return None


def _language(patient: dict[str, Any]) -> str | None:
    """The preferred language of ``Patient.communication`` (else the first listed)."""
    listed = [c for c in patient.get("communication") or [] if isinstance(c, dict)]
    listed.sort(key=lambda c: c.get("preferred") is not True)
    for c in listed:
        for coding in (c.get("language") or {}).get("coding") or []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                return coding["code"]
    return None


def patient_fields(patient: dict[str, Any] | None) -> dict[str, str | None]:
    """Language, race, ethnicity and sex as recorded (None where not recorded): sex from US
    Core's sex or birth-sex extension, else ``Patient.gender``."""
    p = patient or {}
    sex = _code_ext(p, SEX) or _code_ext(p, BIRTH_SEX) or p.get("gender")
    values = (_language(p), _omb(p, RACE), _omb(p, ETHNICITY), sex)
    return {
        name: (str(v)[:32] if v is not None else None)
        for name, v in zip(PATIENT_FIELDS, values, strict=True)
    }
