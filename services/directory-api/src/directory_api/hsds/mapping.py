"""HSDS 3 (normalized) -> FHIR R4 Organization, Location and HealthcareService, per the HSD IG
mapping plus the extensions in ``directory_api.conventions``. Ids are uuid5 of (source,
entity, source id), so re-imports land on the same resources."""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from directory_api.conventions import (
    AGE_RANGE_EXTENSION,
    APPROXIMATE_POSITION_EXTENSION,
    BOUNDARY_EXTENSION,
    CAPACITY_EXTENSION,
    DELIVERY_METHOD_EXTENSION,
    HSDS_IDENTIFIER_PREFIX,
    HSDS_REPAIR_TAG_SYSTEM,
    LANGUAGE_SYSTEM,
    PROVISION_SYSTEM,
    SDOHCC_CATEGORY_SYSTEM,
    TIMEZONE_EXTENSION,
    VERIFIED_EXTENSION,
)
from directory_api.geo.zipcodes import centroid
from directory_api.hsds.languages import languages
from directory_api.hsds.model import Record, Rejection, Repair, origin
from directory_api.hsds.times import parse_time

_DAYS = {"MO": "mon", "TU": "tue", "WE": "wed", "TH": "thu", "FR": "fri", "SA": "sat", "SU": "sun"}
_TELECOM = {"voice": "phone", "cell": "phone", "text": "sms", "textphone": "sms", "fax": "fax"}


class Unmappable(Exception):
    """A record that cannot become FHIR; the reason goes into the report."""


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def fhir_id(source: str, entity: str, source_id: str) -> str:
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"{HSDS_IDENTIFIER_PREFIX}{source}:{entity}:{source_id}")
    )


@dataclass
class Mapped:
    """The FHIR resources one service produced, plus what of it was dropped."""

    resources: list[tuple[str, dict[str, Any], str, int | str]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    repaired: list[Repair] = field(default_factory=list)


def phone_digits(number: Any) -> str:
    digits = re.sub(r"\D", "", str(number or ""))
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


def _meta(source: str) -> dict[str, Any]:
    return {"source": f"{HSDS_IDENTIFIER_PREFIX}{source}"}


def _identifier(source: str, entity: str, sid: str) -> dict[str, str]:
    return {"system": f"{HSDS_IDENTIFIER_PREFIX}{source}:{entity}", "value": sid}


def _telecom(phones: list[Record], email: Any = None, url: Any = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in phones or []:
        if not p.get("number"):
            continue
        system = _TELECOM.get(str(p.get("type") or "voice").lower(), "other")
        value = str(p["number"]) + (f" ext. {p['extension']}" if p.get("extension") else "")
        out.append({"system": system, "value": value, "use": "work"})
    if email:
        out.append({"system": "email", "value": str(email), "use": "work"})
    if url:
        out.append({"system": "url", "value": str(url), "use": "work"})
    return out


def _iana(schedules: list[Record]) -> str | None:
    for s in schedules or []:
        tz = s.get("timezone")
        if isinstance(tz, str) and "/" in tz:
            return tz
    return None


def organization(source: str, org: Record) -> dict[str, Any]:
    if not org.get("id"):
        raise Unmappable("organization has no id")
    if not (org.get("name") or "").strip():
        raise Unmappable("organization has no name")
    res: dict[str, Any] = {
        "resourceType": "Organization",
        "id": fhir_id(source, "organization", str(org["id"])),
        "meta": _meta(source),
        "identifier": [_identifier(source, "organization", str(org["id"]))],
        "active": True,
        "name": org["name"].strip(),
    }
    if org.get("_stub"):
        res["meta"]["tag"] = [
            {
                "system": HSDS_REPAIR_TAG_SYSTEM,
                "code": "organization-stub",
                "display": "not in the export; named from its service",
            }
        ]
    for ident in org.get("organization_identifiers") or []:
        if ident.get("identifier"):
            scheme = ident.get("identifier_scheme") or ident.get("identifier_type") or "local"
            res["identifier"].append(
                {"system": f"urn:closedloop:org-id:{scheme}", "value": str(ident["identifier"])}
            )
    if org.get("tax_id"):
        res["identifier"].append({"system": "urn:us:gov:irs", "value": str(org["tax_id"])})
    if org.get("alternate_name"):
        res["alias"] = [org["alternate_name"]]
    telecom = _telecom(
        org.get("phones") or [], org.get("email"), org.get("website") or org.get("url")
    )
    if telecom:
        res["telecom"] = telecom
    if org.get("parent_organization_id"):
        parent = fhir_id(source, "organization", str(org["parent_organization_id"]))
        res["partOf"] = {"reference": f"Organization/{parent}"}
    return res


def location(
    source: str, loc: Record, default_tz: str, repairs: list[Repair] | None = None
) -> dict[str, Any]:
    repairs = [] if repairs is None else repairs
    if not loc.get("id"):
        raise Unmappable("location has no id")
    res: dict[str, Any] = {
        "resourceType": "Location",
        "id": fhir_id(source, "location", str(loc["id"])),
        "meta": _meta(source),
        "extension": [
            {
                "url": TIMEZONE_EXTENSION,
                "valueCode": _iana(loc.get("schedules") or []) or default_tz,
            }
        ],
        "identifier": [_identifier(source, "location", str(loc["id"]))],
        "status": "active",
        "mode": "instance",
    }
    if loc.get("name"):
        res["name"] = str(loc["name"])
    if loc.get("alternate_name"):
        res["alias"] = [str(loc["alternate_name"])]
    if loc.get("description"):
        res["description"] = str(loc["description"])
    addresses = [a for a in loc.get("addresses") or [] if a.get("address_type") != "postal"]
    addresses = addresses or list(loc.get("addresses") or [])
    position = _position(loc, addresses, repairs)
    if position is not None:
        res["position"] = position
    if addresses:
        res["address"] = _address(addresses[0])
    telecom = _telecom(loc.get("phones") or [], None, loc.get("url"))
    if telecom:
        res["telecom"] = telecom
    if loc.get("location_type") == "virtual":
        res["physicalType"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                    "code": "vi",
                }
            ]
        }
    hours = _hours(loc, repairs)
    if hours:
        res["hoursOfOperation"] = hours
    exceptions = [s["description"] for s in loc.get("schedules") or [] if s.get("description")]
    if exceptions:
        res["availabilityExceptions"] = "; ".join(exceptions)
    return res


def _position(loc: Record, addresses: list[Record], repairs: list[Repair]) -> dict[str, Any] | None:
    """The location's coordinates; failing those, its ZIP's centroid (a repair, since it is
    approximate); None for a virtual location or one with no way to place it."""
    lat, lon = loc.get("latitude"), loc.get("longitude")
    if lat not in (None, "") or lon not in (None, ""):
        try:
            flat, flon = float(lat), float(lon)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise Unmappable(f"bad latitude/longitude {lat!r},{lon!r}") from None
        if not (-90 <= flat <= 90 and -180 <= flon <= 180):
            raise Unmappable(f"latitude/longitude out of range {lat},{lon}")
        if flat != 0 or flon != 0:
            return {"latitude": flat, "longitude": flon}
        # "0,0" is a spreadsheet's empty, not the Gulf of Guinea
        repairs.append(
            Repair.at(origin(loc), "Location", "zero-coordinates", "0,0 read as missing")
        )
    if loc.get("location_type") == "virtual":
        return None
    placed = _zip_position(addresses)
    if placed is None:
        return None
    zip_code, position = placed
    repairs.append(
        Repair.at(
            origin(loc),
            "Location",
            "zip-centroid",
            f"no coordinates; placed at the centroid of ZIP {zip_code} (approximate)",
        )
    )
    return position


def _address(a: Record) -> dict[str, Any]:
    addr: dict[str, Any] = {"use": "work"}
    lines = [str(x) for x in (a.get("address_1"), a.get("address_2")) if x]
    if lines:
        addr["line"] = lines
    for src, dst in (
        ("city", "city"),
        ("state_province", "state"),
        ("postal_code", "postalCode"),
        ("country", "country"),
    ):
        if a.get(src):
            addr[dst] = str(a[src])
    if a.get("region"):
        addr["district"] = str(a["region"])
    return addr


def _hours(loc: Record, repairs: list[Repair]) -> list[dict[str, Any]]:
    hours = []
    for at in _available_time(list(loc.get("schedules") or []), origin(loc), repairs):
        h: dict[str, Any] = {"daysOfWeek": at["daysOfWeek"]}
        if at.get("allDay"):
            h["allDay"] = True
        if at.get("availableStartTime"):
            h["openingTime"] = at["availableStartTime"]
        if at.get("availableEndTime"):
            h["closingTime"] = at["availableEndTime"]
        hours.append(h)
    return hours


def service_area(source: str, service_id: str, area: Record, n: int) -> dict[str, Any]:
    sid = str(area.get("id") or f"{service_id}-{n}")
    res: dict[str, Any] = {
        "resourceType": "Location",
        "id": fhir_id(source, "service_area", sid),
        "meta": _meta(source),
        "identifier": [_identifier(source, "service_area", sid)],
        "status": "active",
        "mode": "kind",
        "name": str(
            area.get("name")
            or area.get("service_area")
            or area.get("description")
            or "Service area"
        ),
    }
    if area.get("description"):
        res["description"] = str(area["description"])
    extent = area.get("extent")
    if extent and str(area.get("extent_type") or "geojson").lower() == "geojson":
        text = extent if isinstance(extent, str) else json.dumps(extent)
        try:
            json.loads(text)
        except json.JSONDecodeError:
            raise Unmappable("service_area extent is not valid GeoJSON") from None
        res["extension"] = [
            {
                "url": BOUNDARY_EXTENSION,
                "valueAttachment": {
                    "contentType": "application/geo+json",
                    "data": base64.b64encode(text.encode()).decode(),
                },
            }
        ]
    return res


def _zip_position(addresses: list[Record]) -> tuple[str, dict[str, Any]] | None:
    """The first address's US ZIP centroid as a position marked approximate."""
    for a in addresses:
        m = re.match(r"^\s*(\d{5})(?:[-\s]?\d{4})?\s*$", str(a.get("postal_code") or ""))
        country = str(a.get("country") or "US").strip().upper()
        if not m or country not in ("US", "USA", "UNITED STATES"):
            continue
        point = centroid(m.group(1))
        if point is None:
            continue
        marker = {"url": APPROXIMATE_POSITION_EXTENSION, "valueCode": "postal-code-centroid"}
        return m.group(1), {"extension": [marker], "latitude": point[0], "longitude": point[1]}
    return None


def _clock(s: Record, key: str, where: tuple[str, int | str], repairs: list[Repair]) -> str | None:
    text = s.get(key)
    parsed = parse_time(text)
    at = s.get("_origin") or where
    if parsed is None:
        if text not in (None, ""):
            repairs.append(
                Repair.at(at, "schedule", "time-unreadable", f"{key} {text!r} is not a time")
            )
        return None
    if parsed.repaired:
        repairs.append(
            Repair.at(at, "schedule", "time-format", f"{key} {text!r} read as {parsed.value}")
        )
    return parsed.value


def _available_time(
    schedules: list[Record], where: tuple[str, int | str], repairs: list[Repair]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in schedules:
        start = _clock(s, "opens_at", where, repairs)
        end = _clock(s, "closes_at", where, repairs)
        if not start and not end:
            continue
        days = [
            _DAYS[d.strip().upper()[-2:]]
            for d in str(s.get("byday") or "").split(",")
            if d.strip().upper()[-2:] in _DAYS
        ]
        entry: dict[str, Any] = {"daysOfWeek": days or list(_DAYS.values())}
        if start == "00:00:00" and end in ("23:59:00", "23:59:59", "00:00:00"):
            entry["allDay"] = True
        else:
            if start:
                entry["availableStartTime"] = start
            if end:
                entry["availableEndTime"] = end
        out.append(entry)
    return out


def _closures(schedules: list[Record]) -> list[dict[str, Any]]:
    """Closed dates (HSDS 1.x ``holiday_schedule`` with ``closed``) as ``notAvailable``, which
    the ``open`` search honours."""
    out = []
    for s in schedules:
        start = str(s.get("closed_from") or "")[:10]
        if not _DATE.match(start):
            continue
        end = str(s.get("closed_until") or "")[:10]
        during = {"start": start, "end": end if _DATE.match(end) else start}
        out.append({"description": str(s.get("description") or "Closed"), "during": during})
    return out


def _codings(service: Record) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    category: list[dict[str, Any]] = []
    types: list[dict[str, Any]] = []
    for attr in service.get("attributes") or []:
        term = attr.get("taxonomy_term") or {}
        if not term.get("code"):
            continue
        # HSDS 3 nests the taxonomy as ``taxonomy_detail``; some producers nest it as
        # ``taxonomy`` (an object) or name it there (a string).
        nested = term.get("taxonomy")
        tax = term.get("taxonomy_detail") or (nested if isinstance(nested, dict) else {})
        named = nested if isinstance(nested, str) else None
        system = (
            tax.get("uri")
            or named
            or term.get("vocabulary")
            or tax.get("name")
            or "urn:closedloop:hsds:taxonomy:local"
        )
        system = str(system)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", system, re.I):
            system = f"urn:closedloop:hsds:taxonomy:{re.sub(r'[^A-Za-z0-9.-]+', '-', system)}"
        coding: dict[str, Any] = {"system": system, "code": str(term["code"])}
        if term.get("name"):
            coding["display"] = str(term["name"])
        concept = {"coding": [coding], **({"text": str(term["name"])} if term.get("name") else {})}
        (category if system == SDOHCC_CATEGORY_SYSTEM else types).append(concept)
    return category, types


def _communication(service: Record, repairs: list[Repair]) -> list[dict[str, Any]]:
    """``communication``: BCP-47 codings; a language named but not known is kept as text."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for lang in service.get("languages") or []:
        at = lang.get("_origin") or origin(service)
        for found in languages(lang):
            key = found.code or found.name.lower()
            if key in seen:
                continue
            seen.add(key)
            if found.code is None:
                out.append({"text": found.name})
                repairs.append(
                    Repair.at(
                        at,
                        "language",
                        "language-unknown",
                        f"{found.name!r} is not a known language name; kept as text",
                    )
                )
                continue
            c: dict[str, Any] = {"system": LANGUAGE_SYSTEM, "code": found.code}
            if found.name:
                c["display"] = found.name
            out.append({"coding": [c]})
            if found.repaired:
                repairs.append(
                    Repair.at(
                        at, "language", "language-name", f"{found.name!r} read as {found.code}"
                    )
                )
    return out


def _provision(service: Record) -> str | None:
    for c in service.get("cost_options") or []:
        amount, option = c.get("amount"), str(c.get("option") or "").lower()
        try:
            if amount not in (None, "") and float(amount) == 0:
                return "free"
        except ValueError:
            pass
        if "free" in option:
            return "free"
        if amount not in (None, "") or option:
            return "cost"
    fees = str(service.get("fees_description") or service.get("fees") or "").lower()
    if fees:
        return "free" if "free" in fees or fees in ("none", "no fee") else "cost"
    return None


def _age(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Unmappable(f"bad age {value!r}") from None


def map_service(source: str, service: Record, default_tz: str) -> Mapped:
    """A service and what it references (organization, locations, service areas)."""
    out = Mapped()
    file, row = origin(service)
    if not service.get("id"):
        out.rejected.append(Rejection(file, row, "HealthcareService", "service has no id"))
        return out
    if not str(service.get("name") or "").strip():
        out.rejected.append(Rejection(file, row, "HealthcareService", "service has no name"))
        return out
    try:
        hs = _healthcare_service(source, service, default_tz, out)
    except Unmappable as exc:
        out.rejected.append(Rejection(file, row, "HealthcareService", str(exc)))
        out.resources.clear()
        return out
    out.resources.append(("HealthcareService", hs, file, row))
    return out


def _healthcare_service(
    source: str, service: Record, default_tz: str, out: Mapped
) -> dict[str, Any]:
    """The HealthcareService; what it references goes into ``out`` as it is mapped."""
    sid = str(service["id"])
    hs: dict[str, Any] = {
        "resourceType": "HealthcareService",
        "id": fhir_id(source, "service", sid),
        "meta": _meta(source),
        "extension": [],
        "identifier": [_identifier(source, "service", sid)],
        "active": str(service.get("status") or "active").lower() == "active",
        "name": str(service["name"]).strip(),
    }
    provider = _provider(source, service, out)
    if provider:
        hs["providedBy"] = provider
    category, types = _codings(service)
    if category:
        hs["category"] = category
    if types:
        hs["type"] = types
    at = _at_locations(source, service, default_tz, out)
    if at.refs:
        hs["location"] = at.refs
    description = service.get("description")
    if description:
        hs["comment"] = str(description).split("\n")[0][:500]
        hs["extraDetails"] = str(description)
    phones = list(service.get("phones") or []) or at.phones
    telecom = _telecom(phones, service.get("email"), service.get("url"))
    if telecom:
        hs["telecom"] = telecom
    coverage = _coverage(source, sid, service, out)
    if coverage:
        hs["coverageArea"] = coverage
    provision = _provision(service)
    if provision:
        hs["serviceProvisionCode"] = [{"coding": [{"system": PROVISION_SYSTEM, "code": provision}]}]
    if service.get("eligibility_description"):
        hs["eligibility"] = [{"comment": str(service["eligibility_description"])}]
    langs = _communication(service, out.repaired)
    if langs:
        hs["communication"] = langs
    schedules = list(service.get("schedules") or []) or at.schedules
    hs.update(_service_hours(schedules, origin(service), out.repaired))
    hs["extension"] = _service_extensions(service, schedules, at, default_tz)
    return hs


def _provider(source: str, service: Record, out: Mapped) -> dict[str, Any] | None:
    """``providedBy``: the embedded organization (mapped into ``out``) or the referenced one."""
    org = service.get("organization")
    if isinstance(org, dict):
        try:
            o = organization(source, org)
        except Unmappable as exc:
            out.rejected.append(Rejection.at(origin(org), "Organization", str(exc)))
            return None
        out.resources.append(("Organization", o, *origin(org)))
        return {"reference": f"Organization/{o['id']}", "display": o["name"]}
    if service.get("organization_id"):
        oid = fhir_id(source, "organization", str(service["organization_id"]))
        return {"reference": f"Organization/{oid}"}
    return None


@dataclass
class _AtLocations:
    """What a service's ``service_at_locations`` give it: Location references, whether any is
    physical, the first time zone, and the hours and phones given for the service at a
    location (HSDS 3: the service's own, when it has none of its own)."""

    refs: list[dict[str, Any]] = field(default_factory=list)
    physical: bool = False
    tz: str | None = None
    schedules: list[Record] = field(default_factory=list)
    phones: list[Record] = field(default_factory=list)


def _at_locations(source: str, service: Record, default_tz: str, out: Mapped) -> _AtLocations:
    at = _AtLocations()
    for sal in service.get("service_at_locations") or []:
        loc = sal.get("location") if isinstance(sal, dict) else None
        if not isinstance(loc, dict):
            continue
        at.schedules += [x for x in sal.get("schedules") or [] if isinstance(x, dict)]
        at.phones += [x for x in sal.get("phones") or [] if isinstance(x, dict)]
        try:
            lres = location(source, loc, default_tz, out.repaired)
        except Unmappable as exc:
            out.rejected.append(Rejection.at(origin(loc), "Location", str(exc)))
            continue
        out.resources.append(("Location", lres, *origin(loc)))
        at.refs.append({"reference": f"Location/{lres['id']}"})
        if loc.get("location_type") != "virtual":
            at.physical = True
        at.tz = at.tz or _iana(loc.get("schedules") or [])
    return at


def _coverage(source: str, sid: str, service: Record, out: Mapped) -> list[dict[str, Any]]:
    """``coverageArea``: each service area mapped into ``out`` as a Location."""
    coverage = []
    for n, area in enumerate(service.get("service_areas") or []):
        where = area.get("_origin") or origin(service)
        try:
            ares = service_area(source, sid, area, n)
        except Unmappable as exc:
            out.rejected.append(Rejection.at(where, "Location", str(exc)))
            continue
        out.resources.append(("Location", ares, *where))
        coverage.append({"reference": f"Location/{ares['id']}", "display": ares["name"]})
    return coverage


def _service_hours(
    schedules: list[Record], where: tuple[str, int | str], repairs: list[Repair]
) -> dict[str, Any]:
    """``availableTime``, ``availabilityExceptions`` and ``notAvailable`` from the schedules."""
    hours: dict[str, Any] = {}
    available = _available_time(schedules, where, repairs)
    if available:
        hours["availableTime"] = available
    exceptions = [str(s["description"]) for s in schedules if s.get("description")]
    if exceptions:
        hours["availabilityExceptions"] = "; ".join(exceptions)
    closures = _closures(schedules)
    if closures:
        hours["notAvailable"] = closures
    return hours


def _service_extensions(
    service: Record, schedules: list[Record], at: _AtLocations, default_tz: str
) -> list[dict[str, Any]]:
    ext: list[dict[str, Any]] = []
    ages = _age_range(service)
    if ages:
        ext.append({"url": AGE_RANGE_EXTENSION, "valueRange": ages})
    if service.get("assured_date"):
        ext.append({"url": VERIFIED_EXTENSION, "valueDate": str(service["assured_date"])[:10]})
    capacity = _capacity(service.get("capacities") or [])
    if capacity:
        ext.append({"url": CAPACITY_EXTENSION, "extension": capacity})
    ext.append({"url": TIMEZONE_EXTENSION, "valueCode": at.tz or _iana(schedules) or default_tz})
    ext.append(
        {
            "url": DELIVERY_METHOD_EXTENSION,
            "extension": [{"url": "type", "valueCode": "physical" if at.physical else "virtual"}],
        }
    )
    return ext


def _age_range(service: Record) -> dict[str, Any] | None:
    lo, hi = _age(service.get("minimum_age")), _age(service.get("maximum_age"))
    if lo is None and hi is None:
        return None
    rng: dict[str, Any] = {}
    for key, val in (("low", lo), ("high", hi)):
        if val is not None:
            rng[key] = {
                "value": int(val) if val == int(val) else val,
                "unit": "a",
                "system": "http://unitsofmeasure.org",
                "code": "a",
            }
    return rng


def _capacity(caps: list[Record]) -> list[dict[str, Any]] | None:
    if not caps:
        return None
    try:
        available_n = float(caps[0].get("available") or 0)
    except (TypeError, ValueError):
        raise Unmappable(f"bad capacity {caps[0].get('available')!r}") from None
    cap: list[dict[str, Any]] = [
        {"url": "capacityStatus", "valueCode": "no-capacity" if available_n == 0 else "capacity"}
    ]
    unit = caps[0].get("unit")
    unit_name = unit.get("name") if isinstance(unit, dict) else unit
    note = f"{caps[0].get('available')} {unit_name or ''} available".replace("  ", " ")
    cap.append({"url": "capacityNotes", "valueString": note.strip()})
    return cap
