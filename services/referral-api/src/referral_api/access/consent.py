"""A referral is shared with a CBO only with the patient's consent
(``REFERRAL_API_REQUIRE_CONSENT``, on by default).

When a Task is sent to an owner (created with one, handed to another, or moved on from
``draft``), its ServiceRequest (``Task.focus``) must cite, in ``supportingInfo``, an active
Consent of the same patient that either names no recipients or names the owner among
``provision.actor`` (as the SDOH Clinical Care IG's referral does). Otherwise the write is a 422
naming the missing consent and nothing is stored. It is checked before commit, on the write's
own connection, so a transaction that carries the Consent, the ServiceRequest and the Task
together passes.
"""

from __future__ import annotations

from typing import Any

import orjson
from closedloop import errors
from closedloop.context import SYSTEM, RequestContext
from closedloop.errors import Issue
from closedloop.fhir.search.index.reference import parse_reference
from closedloop.fhir.storage.repository import UnitOfWork
from closedloop.fhir.storage.tables import resources
from sqlalchemy import select

from referral_api.profiles import task_referral

NOT_YET_SHARED = frozenset({"draft"})
RECIPIENTS = frozenset({"Organization", "HealthcareService"})


def _key(reference: str | None) -> str:
    """``Type/id`` of a relative or absolute reference, ``""`` for anything else."""
    parsed = parse_reference(reference or "")
    return f"{parsed[0]}/{parsed[1]}" if parsed and parsed[0] else ""


def _sent(change_resource: dict[str, Any], previous: dict[str, Any] | None) -> bool:
    """Does this write send a referral Task to a CBO (an Organization or HealthcareService)?
    Tasks for the patient (owner: the Patient) share nothing with a third party."""
    owner = (change_resource.get("owner") or {}).get("reference")
    if not task_referral.applies(change_resource) or _key(owner).split("/")[0] not in RECIPIENTS:
        return False
    if change_resource.get("status") in NOT_YET_SHARED:
        return False
    if previous is None:
        return True
    before = (previous.get("owner") or {}).get("reference")
    return _key(before) != _key(owner) or previous.get("status") in NOT_YET_SHARED


def _actors(provision: dict[str, Any]) -> list[str]:
    found = [
        _key((a.get("reference") or {}).get("reference")) for a in provision.get("actor") or []
    ]
    for nested in provision.get("provision") or []:
        found += _actors(nested)
    return [f for f in found if f]


def covers(consent: dict[str, Any], patient: str, owner: str) -> bool:
    if consent.get("status") != "active":
        return False
    if _key((consent.get("patient") or {}).get("reference")) != _key(patient):
        return False
    actors = _actors(consent.get("provision") or {})
    return not actors or _key(owner) in actors


async def _content(uow: UnitOfWork, key: str) -> dict[str, Any] | None:
    rtype, _, rid = key.partition("/")
    r = resources.c
    row = (
        await uow.conn.execute(
            select(r.content).where(r.resource_type == rtype, r.id == rid, r.deleted.is_(False))
        )
    ).first()
    return orjson.loads(row[0]) if row and row[0] else None


async def require_consent(ctx: RequestContext, uow: UnitOfWork) -> None:
    if ctx is SYSTEM:
        return
    for change in uow.changes:
        task = change.resource
        if change.resource_type != "Task" or task is None or not _sent(task, change.previous):
            continue
        owner = str(task["owner"]["reference"])
        patient = str((task.get("for") or {}).get("reference") or "")
        focus = _key((task.get("focus") or {}).get("reference"))
        request = await _content(uow, focus) if focus.startswith("ServiceRequest/") else None
        cited = [
            _key(ref.get("reference"))
            for ref in (request or {}).get("supportingInfo") or []
            if _key(ref.get("reference")).startswith("Consent/")
        ]
        for key in cited:
            consent = await _content(uow, key)
            if consent is not None and covers(consent, patient, owner):
                break
        else:
            raise errors.FhirError(
                422,
                [
                    Issue(
                        "error",
                        "business-rule",
                        f"Task {change.resource_id} shares the referral with {owner}, but its "
                        "ServiceRequest cites no active Consent of the patient covering that "
                        "recipient (ServiceRequest.supportingInfo -> Consent with status active, "
                        "and the recipient among provision.actor when it names any)",
                        ("Task.owner",),
                        "CL-7430",
                    )
                ],
            )
