"""A referral as the pages show it: the Task and its ServiceRequest read from referral-api, the
organization it went to (name, address, phone, hours) from directory-api.

Directory references are followed only to the configured directory base (a Task naming some
other URL shows its display text and nothing is fetched: the app never calls an address a
writer chose)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from web.api import Api, ApiError, entries

DAY_NAMES = {
    "en": {
        "mon": "Mon",
        "tue": "Tue",
        "wed": "Wed",
        "thu": "Thu",
        "fri": "Fri",
        "sat": "Sat",
        "sun": "Sun",
    },
    "es": {
        "mon": "lun",
        "tue": "mar",
        "wed": "mié",
        "thu": "jue",
        "fri": "vie",
        "sat": "sáb",
        "sun": "dom",
    },
}
ALL_DAY = {"en": "all day", "es": "todo el día"}


def concept_text(concept: Any) -> str:
    """A CodeableConcept in words: its text, else the first coding's display, else code."""
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return ""


def address_lines(address: Any) -> list[str]:
    if not isinstance(address, dict):
        return []
    if address.get("text"):
        return [str(address["text"])]
    lines = [str(line) for line in address.get("line") or []]
    city = ", ".join(str(p) for p in (address.get("city"), address.get("state")) if p)
    last = " ".join(p for p in (city, str(address.get("postalCode") or "")) if p)
    return [*lines, last] if last else lines


def telecom(points: Any, system: str) -> str:
    for point in points or []:
        if isinstance(point, dict) and point.get("system") == system and point.get("value"):
            return str(point["value"])
    return ""


def hours(available: Any, lang: str) -> list[str]:
    """``availableTime`` / ``hoursOfOperation`` as lines like "Mon, Wed 09:00-17:00"."""
    names = DAY_NAMES.get(lang, DAY_NAMES["en"])
    out = []
    for slot in available or []:
        if not isinstance(slot, dict):
            continue
        days = ", ".join(names.get(str(d), str(d)) for d in slot.get("daysOfWeek") or [])
        if slot.get("allDay"):
            span = ALL_DAY.get(lang, ALL_DAY["en"])
        else:
            start = str(slot.get("availableStartTime") or slot.get("openingTime") or "")[:5]
            end = str(slot.get("availableEndTime") or slot.get("closingTime") or "")[:5]
            span = f"{start}-{end}" if start and end else ""
        line = " ".join(p for p in (days, span) if p)
        if line:
            out.append(line)
    return out


@dataclass
class Listing:
    """Where the referral went, as a patient needs it to get there."""

    name: str = ""
    address: list[str] = field(default_factory=list)
    phone: str = ""
    website: str = ""
    hours: list[str] = field(default_factory=list)


@dataclass
class Referral:
    task: dict[str, Any]
    service_request: dict[str, Any]
    what: str
    status: str
    reason: str
    updated: str
    listing: Listing
    outcome: str = ""

    @property
    def id(self) -> str:
        return str(self.task.get("id") or "")

    @property
    def version(self) -> str:
        return str((self.task.get("meta") or {}).get("versionId") or "")


class Referrals:
    """Reads referrals for the pages, with whichever credentials the page has."""

    def __init__(self, api: Api, referral_url: str, directory_url: str) -> None:
        self.api = api
        self.referral_url = referral_url.rstrip("/")
        self.directory_url = directory_url.rstrip("/")

    def directory_ref(self, reference: str) -> str | None:
        """The directory URL of ``reference``, or None when it is not the directory's."""
        if reference.startswith(self.directory_url + "/"):
            return reference
        if reference.split("/")[0] in ("Organization", "HealthcareService", "Location") and (
            reference.count("/") == 1
        ):
            return f"{self.directory_url}/{reference}"
        return None

    async def _directory(self, reference: str, auth: httpx.Auth | None) -> dict[str, Any] | None:
        url = self.directory_ref(reference)
        if url is None:
            return None
        try:
            return await self.api.read(url, auth)
        except ApiError as exc:
            if exc.status == 404:
                return None  # a listing since removed: the page still shows the referral
            raise

    async def listing(
        self, refs: list[dict[str, Any]], lang: str, auth: httpx.Auth | None
    ) -> Listing:
        """The first of ``refs`` (Task.owner, then ServiceRequest.performer) the directory
        knows, filled in from its Organization, HealthcareService and Location."""
        out = Listing()
        for ref in refs:
            if not out.name and ref.get("display"):
                out.name = str(ref["display"])
        for ref in refs:
            reference = str(ref.get("reference") or "")
            resource = await self._directory(reference, auth) if reference else None
            if resource is None:
                continue
            kind = resource.get("resourceType")
            if kind == "Organization":
                out.name = out.name or str(resource.get("name") or "")
                out.address = out.address or address_lines((resource.get("address") or [None])[0])
                out.phone = out.phone or telecom(resource.get("telecom"), "phone")
                out.website = out.website or telecom(resource.get("telecom"), "url")
                if not out.address or not out.hours:
                    base = self.directory_url
                    bundle = await self.api.search(
                        f"{base}/Location",
                        {"organization": f"Organization/{resource.get('id')}", "_count": "1"},
                        auth,
                    )
                    self._from_location(out, entries(bundle, "Location"), lang)
            elif kind == "HealthcareService":
                provider = resource.get("providedBy") or {}
                out.name = out.name or str(provider.get("display") or resource.get("name") or "")
                out.phone = out.phone or telecom(resource.get("telecom"), "phone")
                out.website = out.website or telecom(resource.get("telecom"), "url")
                out.hours = out.hours or hours(resource.get("availableTime"), lang)
                locations = []
                for loc in (resource.get("location") or [])[:1]:
                    found = await self._directory(str((loc or {}).get("reference") or ""), auth)
                    if found:
                        locations.append(found)
                self._from_location(out, locations, lang)
                if not out.name and provider.get("reference"):
                    org = await self._directory(str(provider["reference"]), auth)
                    out.name = str((org or {}).get("name") or "")
            if out.name and out.address and out.phone and out.hours:
                break
        return out

    @staticmethod
    def _from_location(out: Listing, locations: list[dict[str, Any]], lang: str) -> None:
        for location in locations:
            out.address = out.address or address_lines(location.get("address"))
            out.phone = out.phone or telecom(location.get("telecom"), "phone")
            out.hours = out.hours or hours(location.get("hoursOfOperation"), lang)

    async def outcome(self, task: dict[str, Any], auth: httpx.Auth | None) -> str:
        """What was delivered: the Procedures in the Task's outputs, in words."""
        texts = []
        for output in task.get("output") or []:
            ref = str(((output or {}).get("valueReference") or {}).get("reference") or "")
            if ref.startswith("Procedure/"):
                procedure = await self.api.read(f"{self.referral_url}/{ref}", auth)
                texts.append(concept_text(procedure.get("code")))
            elif (output or {}).get("valueCodeableConcept"):
                texts.append(concept_text(output["valueCodeableConcept"]))
        return "; ".join(t for t in texts if t)

    async def load(
        self, task_id: str, lang: str, auth: httpx.Auth | None, *, details: bool = True
    ) -> Referral:
        task = await self.api.read(f"{self.referral_url}/Task/{task_id}", auth)
        focus = str((task.get("focus") or {}).get("reference") or "")
        service_request: dict[str, Any] = {}
        if focus.startswith("ServiceRequest/"):
            try:
                service_request = await self.api.read(f"{self.referral_url}/{focus}", auth)
            except ApiError as exc:
                if exc.status not in (403, 404):
                    raise  # one the reader may not see: the Task alone still says a lot
        what = concept_text(service_request.get("code")) or ", ".join(
            concept_text(c) for c in service_request.get("category") or []
        )
        refs = [task.get("owner") or {}, *(service_request.get("performer") or [])]
        listing = await self.listing([r for r in refs if isinstance(r, dict)], lang, auth)
        status = str(task.get("status") or "")
        referral = Referral(
            task=task,
            service_request=service_request,
            what=what,
            status=status,
            reason=concept_text(task.get("statusReason")),
            updated=str(
                task.get("lastModified") or (task.get("meta") or {}).get("lastUpdated") or ""
            )[:10],
            listing=listing,
        )
        if details and status == "completed":
            referral.outcome = await self.outcome(task, auth)
        return referral
