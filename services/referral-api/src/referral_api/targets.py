"""Referral targets are real: ``ServiceRequest.performer`` and ``Task.owner`` references to
directory-api (absolute URLs under its FHIR base) must name an existing, active
HealthcareService or Organization. A full CBO (capacity status no-capacity or waitlist) is a
warning, not an error. When the directory cannot be reached the write fails with 503 and
nothing is stored.

The directory is asked before the write transaction opens (the ``before_transaction`` hook),
never while the transaction holds its locks: a slow directory must not stall other writers.
The in-transaction check only reads those answers; it asks the directory itself only for a
target no plan showed (a JSON Patch, or a conditional update's resolved id).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import httpx
import orjson
from closedloop import errors
from closedloop.errors import Issue
from closedloop.fhir.storage.repository import Repository
from closedloop.hooks import Change, PlannedWrite
from closedloop.http import get_with_retry

CAPACITY_EXTENSION = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
    "SDOHCC-ExtensionHealthcareServiceCapacityStatus"
)
TARGET_TYPES = frozenset({"HealthcareService", "Organization"})
FULL = frozenset({"no-capacity", "waitlist"})


def capacity_status(resource: dict[str, Any]) -> str | None:
    for ext in resource.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == CAPACITY_EXTENSION:
            for sub in ext.get("extension") or []:
                if sub.get("url") == "capacityStatus":
                    for coding in (sub.get("valueCodeableConcept") or {}).get("coding") or []:
                        return str(coding.get("code"))
    return None


# This request's answers from the directory: reference -> warnings (a refused target raised)
_ANSWERS: ContextVar[dict[str, list[Issue]] | None] = ContextVar("directory_answers", default=None)


def _targets(resource_type: str, resource: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(expression, reference) pairs a resource names as referral targets."""
    res = resource or {}
    if resource_type == "ServiceRequest":
        return [
            (f"ServiceRequest.performer[{i}]", str(p["reference"]))
            for i, p in enumerate(res.get("performer") or [])
            if isinstance(p, dict) and isinstance(p.get("reference"), str)
        ]
    if resource_type == "Task":
        owner = res.get("owner")
        if isinstance(owner, dict) and isinstance(owner.get("reference"), str):
            return [("Task.owner", owner["reference"])]
    return []


class DirectoryTargets:
    def __init__(self, directory_url: str, client: httpx.AsyncClient, repo: Repository) -> None:
        self.base = directory_url.rstrip("/") + "/"
        self.client = client
        self.repo = repo

    def _new_targets(
        self, resource_type: str, resource: dict[str, Any] | None, previous: dict[str, Any] | None
    ) -> list[tuple[str, str]]:
        """The directory targets of ``resource`` that ``previous`` did not name already (a
        reference that did not change was checked when it was written)."""
        targets = [(e, r) for e, r in _targets(resource_type, resource) if r.startswith(self.base)]
        before = {ref for _, ref in _targets(resource_type, previous)} if previous else set()
        return [(e, ref) for e, ref in targets if ref not in before]

    async def prefetch(self, _ctx: Any, planned: list[PlannedWrite]) -> None:
        """``before_transaction``: ask the directory about each new target of the planned
        writes; a refused one stops the request here, before any transaction opens."""
        answers = _ANSWERS.get()
        if answers is None:
            answers = {}
            _ANSWERS.set(answers)
        for write in planned:
            if not _targets(write.resource_type, write.resource):
                continue
            previous = None
            if write.resource_id is not None:  # compare with what is stored now
                try:
                    stored = await self.repo.read(write.resource_type, write.resource_id)
                    previous = orjson.loads(stored.content) if stored.content else None
                except errors.FhirError:
                    previous = None  # not there (yet, or any more): every target is new
            for expression, ref in self._new_targets(write.resource_type, write.resource, previous):
                if ref not in answers:
                    answers[ref] = await self._check_one(expression, ref)

    async def check(self, _ctx: Any, change: Change) -> None:
        """``before_create``/``before_update``, inside the transaction: the prefetched answers;
        the directory itself only for a target no plan showed."""
        answers = _ANSWERS.get() or {}
        for expression, ref in self._new_targets(
            change.resource_type, change.resource, change.previous
        ):
            found = answers.get(ref)
            change.warnings.extend(
                found if found is not None else await self._check_one(expression, ref)
            )

    async def _check_one(self, expression: str, ref: str) -> list[Issue]:
        rtype = ref[len(self.base) :].split("/")[0]
        if rtype not in TARGET_TYPES:
            raise errors.unprocessable(
                f"{expression} must be a HealthcareService or Organization in the directory, "
                f"not {rtype}",
                (expression,),
                cl_code="CL-7422",
            )
        try:
            response = await get_with_retry(self.client, ref)
        except httpx.HTTPError:
            raise errors.unavailable(
                f"The directory could not be reached to check {expression} ({ref}); "
                "nothing was stored, try again"
            ) from None
        if response.status_code in (404, 410):
            raise errors.unprocessable(
                f"{expression} refers to {ref}, which the directory does not know",
                (expression,),
                cl_code="CL-7404",
            )
        if response.status_code != 200:
            raise errors.unavailable(
                f"The directory answered {response.status_code} for {expression}; nothing "
                "was stored, try again"
            )
        try:
            target = response.json()
        except ValueError:
            raise errors.unavailable(
                "The directory answered with something that is not JSON"
            ) from None
        if target.get("active") is False:
            raise errors.unprocessable(
                f"{expression} refers to {ref}, which is not active",
                (expression,),
                cl_code="CL-7410",
            )
        status = capacity_status(target)
        if status in FULL:
            return [
                errors.warning(
                    f"{expression}: {target.get('name') or ref} reports capacity status {status}",
                    "business-rule",
                    "CL-7200",
                    (expression,),
                )
            ]
        return []
