"""Stored FHIR -> an HSDS 3 JSON dump (dereferenced services), the inverse of mapping.py for
the fields people search on: names, organization, locations, schedules, languages, taxonomy
terms (their system as taxonomy uri), service areas, ages, cost, capacity, verified date."""

from __future__ import annotations

import base64
from collections import defaultdict
from typing import Any

import orjson
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.tables import resources as resources_table
from sqlalchemy import select

from directory_api.conventions import (
    AGE_RANGE_EXTENSION,
    BOUNDARY_EXTENSION,
    CAPACITY_EXTENSION,
    TIMEZONE_EXTENSION,
    VERIFIED_EXTENSION,
)

_BYDAY = {"mon": "MO", "tue": "TU", "wed": "WE", "thu": "TH", "fri": "FR", "sat": "SA", "sun": "SU"}


def _ext(res: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in res.get("extension") or [] if e.get("url") == url), None)


def _languages(hs: dict[str, Any]) -> list[dict[str, Any]]:
    """Coded languages, and those imported as a name only (kept as text) as a name."""
    out = []
    for lang in hs.get("communication") or []:
        codings = lang.get("coding") or []
        out += [{"code": c["code"], "name": c.get("display")} for c in codings]
        if not codings and lang.get("text"):
            out.append({"name": lang["text"]})
    return out


def _phones(res: dict[str, Any]) -> list[dict[str, Any]]:
    kinds = {"phone": "voice", "sms": "text", "fax": "fax"}
    return [
        {"number": t["value"], "type": kinds[t["system"]]}
        for t in res.get("telecom") or []
        if t.get("system") in kinds
    ]


def _telecom(res: dict[str, Any], system: str) -> str | None:
    return next((t["value"] for t in res.get("telecom") or [] if t.get("system") == system), None)


def _schedules(res: dict[str, Any], tz: str | None) -> list[dict[str, Any]]:
    out = []
    for at in res.get("availableTime") or []:
        s: dict[str, Any] = {
            "freq": "WEEKLY",
            "byday": ",".join(_BYDAY[d] for d in at.get("daysOfWeek") or []),
            "opens_at": "00:00" if at.get("allDay") else (at.get("availableStartTime") or "")[:5],
            "closes_at": "23:59" if at.get("allDay") else (at.get("availableEndTime") or "")[:5],
        }
        if tz:
            s["timezone"] = tz
        out.append(s)
    return out


def _location(loc: dict[str, Any]) -> dict[str, Any]:
    tz = (_ext(loc, TIMEZONE_EXTENSION) or {}).get("valueCode")
    out: dict[str, Any] = {
        "id": loc["id"],
        "name": loc.get("name"),
        "location_type": "virtual" if "physicalType" in loc else "physical",
        "phones": _phones(loc),
        "schedules": [{"timezone": tz, "description": "time zone"}] if tz else [],
    }
    if loc.get("description"):
        out["description"] = loc["description"]
    if loc.get("position"):
        out["latitude"] = loc["position"]["latitude"]
        out["longitude"] = loc["position"]["longitude"]
    a = loc.get("address")
    if a:
        lines = a.get("line") or []
        out["addresses"] = [
            {
                "address_type": "physical",
                "address_1": lines[0] if lines else None,
                "address_2": lines[1] if len(lines) > 1 else None,
                "city": a.get("city"),
                "state_province": a.get("state"),
                "postal_code": a.get("postalCode"),
                "country": a.get("country"),
            }
        ]
    return out


def service_json(
    hs: dict[str, Any], orgs: dict[str, dict[str, Any]], locs: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One HealthcareService (with its referenced resources) as an HSDS 3 service."""
    tz = (_ext(hs, TIMEZONE_EXTENSION) or {}).get("valueCode")
    out: dict[str, Any] = {
        "id": hs["id"],
        "name": hs.get("name"),
        "status": "active" if hs.get("active", True) else "inactive",
        "description": hs.get("extraDetails") or hs.get("comment"),
        "email": _telecom(hs, "email"),
        "url": _telecom(hs, "url"),
        "phones": _phones(hs),
        "schedules": _schedules(hs, tz),
        "languages": _languages(hs),
        "attributes": _attributes(hs),
    }
    if hs.get("availabilityExceptions"):
        out["schedules"].append({"description": hs["availabilityExceptions"]})
    out.update(_eligibility(hs))
    out.update(_cost_and_capacity(hs))
    org = orgs.get((hs.get("providedBy") or {}).get("reference", "").split("/")[-1])
    if org:
        out["organization"] = _organization(org)
    out["service_at_locations"] = [
        {"id": f"{hs['id']}-{ref}", "location": _location(locs[ref])}
        for ref in ((x.get("reference") or "").split("/")[-1] for x in hs.get("location") or [])
        if ref in locs
    ]
    out["service_areas"] = _service_areas(hs, locs)
    return {k: v for k, v in out.items() if v not in (None, [], "")}


def _attributes(hs: dict[str, Any]) -> list[dict[str, Any]]:
    """Each category and type coding as a taxonomy term attribute."""
    return [
        {
            "link_type": "service",
            "taxonomy_term": {
                "code": c["code"],
                "name": c.get("display") or concept.get("text"),
                "taxonomy_detail": {"uri": c.get("system"), "name": c.get("system")},
            },
        }
        for concept in (hs.get("category") or []) + (hs.get("type") or [])
        for c in concept.get("coding") or []
    ]


def _eligibility(hs: dict[str, Any]) -> dict[str, Any]:
    """Who the service is for: the eligibility text, the age range and when it was verified."""
    out: dict[str, Any] = {}
    if hs.get("eligibility"):
        out["eligibility_description"] = hs["eligibility"][0].get("comment")
    ages = (_ext(hs, AGE_RANGE_EXTENSION) or {}).get("valueRange") or {}
    if "low" in ages:
        out["minimum_age"] = ages["low"]["value"]
    if "high" in ages:
        out["maximum_age"] = ages["high"]["value"]
    verified = _ext(hs, VERIFIED_EXTENSION)
    if verified:
        out["assured_date"] = verified.get("valueDate")
    return out


def _cost_and_capacity(hs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in hs.get("serviceProvisionCode") or []:
        code = (p.get("coding") or [{}])[0].get("code")
        if code == "free":
            out["cost_options"] = [{"option": "Free", "amount": 0}]
        elif code:
            out["cost_options"] = [{"option": code}]
    cap = _ext(hs, CAPACITY_EXTENSION)
    if cap:
        status = next(
            (
                e.get("valueCode")
                for e in cap.get("extension") or []
                if e.get("url") == "capacityStatus"
            ),
            None,
        )
        out["capacities"] = [
            {"available": 0 if status == "no-capacity" else 1, "unit": {"name": "unit"}}
        ]
    return out


def _organization(org: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": org["id"],
        "name": org.get("name"),
        "description": org.get("name"),
        "alternate_name": (org.get("alias") or [None])[0],
        "phones": _phones(org),
        "email": _telecom(org, "email"),
        "website": _telecom(org, "url"),
    }


def _service_areas(hs: dict[str, Any], locs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The coverage areas, each with its GeoJSON boundary when it has one."""
    areas = []
    for cov in hs.get("coverageArea") or []:
        area = locs.get((cov.get("reference") or "").split("/")[-1])
        if not area:
            continue
        a: dict[str, Any] = {"id": area["id"], "name": area.get("name")}
        if area.get("description"):
            a["description"] = area["description"]
        boundary = _ext(area, BOUNDARY_EXTENSION)
        if boundary:
            a["extent"] = base64.b64decode(boundary["valueAttachment"]["data"]).decode()
            a["extent_type"] = "geojson"
        areas.append(a)
    return areas


async def export_services(server: FhirServer) -> list[dict[str, Any]]:
    r = resources_table.c
    stored: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    async with server.db.read() as conn:
        rows = await conn.execute(
            select(r.resource_type, r.content)
            .where(
                r.resource_type.in_(["HealthcareService", "Organization", "Location"]),
                r.content.is_not(None),
            )
            .order_by(r.pk)
        )
        for rtype, content in rows:
            res = orjson.loads(content)
            stored[rtype][res["id"]] = res
    orgs, locs = stored["Organization"], stored["Location"]
    return [service_json(hs, orgs, locs) for hs in stored["HealthcareService"].values()]
