"""Referral targets are real: ``ServiceRequest.performer`` and ``Task.owner`` references to
directory-api (absolute URLs under its FHIR base) must name an existing, active
HealthcareService or Organization. A full CBO (capacity status no-capacity or waitlist) is a
warning, not an error. When the directory cannot be reached the write fails with 503 and
nothing is stored.
"""

from __future__ import annotations

from typing import Any

import httpx
from closedloop import errors
from closedloop.errors import Issue
from closedloop.hooks import Change
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


def _targets(change: Change) -> list[tuple[str, str]]:
    """(expression, reference) pairs to check in this change."""
    res = change.resource or {}
    if change.resource_type == "ServiceRequest":
        return [
            (f"ServiceRequest.performer[{i}]", str(p["reference"]))
            for i, p in enumerate(res.get("performer") or [])
            if isinstance(p, dict) and isinstance(p.get("reference"), str)
        ]
    if change.resource_type == "Task":
        owner = res.get("owner")
        if isinstance(owner, dict) and isinstance(owner.get("reference"), str):
            return [("Task.owner", owner["reference"])]
    return []


class DirectoryTargets:
    def __init__(self, directory_url: str, client: httpx.AsyncClient) -> None:
        self.base = directory_url.rstrip("/") + "/"
        self.client = client

    def _changed_targets(self, change: Change) -> list[tuple[str, str]]:
        targets = [(e, ref) for e, ref in _targets(change) if ref.startswith(self.base)]
        if change.previous is None:
            return targets
        before = {
            ref
            for _, ref in _targets(
                Change(
                    change.interaction, change.resource_type, change.resource_id, 0, change.previous
                )
            )
        }
        # a reference that did not change was checked when it was written
        return [(e, ref) for e, ref in targets if ref not in before]

    async def check(self, _ctx: Any, change: Change) -> None:
        for expression, ref in self._changed_targets(change):
            change.warnings.extend(await self._check_one(expression, ref))

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
