"""The follow-up Task: work for the requesting organization's case managers about one referral
the CBO has not answered.

``code`` is ``urn:closedloop:CodeSystem:task-code#follow-up`` (the IG defines no code for it);
``focus`` and ``partOf`` are the referral Task; ``owner`` is the requesting Organization and
``requester`` the referral's own requester (so the organization sees and may work it under
the access rules); ``businessStatus`` says where it stands: ``stalled``, ``escalated`` (with
``priority`` ``urgent``), then ``answered`` (completed) or ``ended`` (cancelled: the referral
was cancelled or retracted). ``intent`` is ``order``, so it is on the IG's Task topic and its
subscribers are notified of each step.
"""

from __future__ import annotations

from typing import Any

TASK_CODES = "urn:closedloop:CodeSystem:task-code"
FOLLOW_UP = "follow-up"
STATUSES = "urn:closedloop:CodeSystem:follow-up-status"
WAITING = frozenset({"requested", "received"})  # the referral statuses with no answer yet


def concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


BUSINESS = {
    "stalled": "No answer from the organization: follow up",
    "escalated": "Still no answer: escalated",
    "answered": "The organization answered",
    "ended": "The referral ended without an answer",
}


def is_followup(task: dict[str, Any] | None) -> bool:
    for coding in ((task or {}).get("code") or {}).get("coding") or []:
        if isinstance(coding, dict) and (coding.get("system"), coding.get("code")) == (
            TASK_CODES,
            FOLLOW_UP,
        ):
            return True
    return False


def followup_task(
    referral: dict[str, Any], owner: str | None, stall_days: int, at: str
) -> dict[str, Any]:
    ref = {"reference": f"Task/{referral['id']}"}
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "businessStatus": concept(STATUSES, "stalled", BUSINESS["stalled"]),
        "intent": "order",
        "priority": "routine",
        "code": concept(TASK_CODES, FOLLOW_UP, "Follow up a referral with no answer"),
        "description": (
            f"The referral has had no answer from the organization it was sent to for "
            f"{stall_days} days: contact the organization or refer elsewhere."
        ),
        "focus": ref,
        "partOf": [ref],
        "authoredOn": at,
        "lastModified": at,
    }
    for element in ("for", "requester"):
        if isinstance(referral.get(element), dict):
            task[element] = {"reference": referral[element].get("reference")}
    if owner:
        task["owner"] = {"reference": owner}
    return task


def escalated(task: dict[str, Any], at: str) -> dict[str, Any]:
    return {
        **task,
        "priority": "urgent",
        "businessStatus": concept(STATUSES, "escalated", BUSINESS["escalated"]),
        "lastModified": at,
    }


def closed(task: dict[str, Any], answered: bool, at: str) -> dict[str, Any]:
    code = "answered" if answered else "ended"
    return {
        **task,
        "status": "completed" if answered else "cancelled",
        "businessStatus": concept(STATUSES, code, BUSINESS[code]),
        "lastModified": at,
    }
