"""The FHIR resource types directory-api serves, and the search parameters people expect of a
CBO directory beyond the standard R4 ones (HL7 Human Services Directory IG / NDH style)."""

from typing import Any

from closedloop.fhir.search.definitions import SearchParam

from directory_api.conventions import (
    AGE_RANGE_EXTENSION,
    BOUNDARY_EXTENSION,
    CAPACITY_EXTENSION,
    DELIVERY_METHOD_EXTENSION,
    TIMEZONE_EXTENSION,
    VERIFIED_EXTENSION,
)
from directory_api.search.age import HIGH_PARAM, LOW_PARAM, age_condition
from directory_api.search.hours import (
    NOT_AVAILABLE_PARAM,
    OPEN_PARAM,
    TIMEZONE_PARAM,
    Clock,
    extract_hours,
    extract_timezone,
    open_condition_factory,
    utc_now,
)
from directory_api.search.place import DELIVERY_PARAM, describe_place, place_condition, place_rank

RESOURCE_TYPES = [
    "HealthcareService",
    "Organization",
    "Location",
    "Endpoint",
]

_BASE = "urn:closedloop:SearchParameter"


def _hs(code: str, expression: str, description: str) -> SearchParam:
    return SearchParam(
        code=code,
        type="token",
        expression=expression,
        base=("HealthcareService",),
        url=f"{_BASE}/HealthcareService-{code}",
        description=description,
    )


_AGE = f"HealthcareService.extension.where(url='{AGE_RANGE_EXTENSION}').value"


def _age_bound(code: str, side: str) -> SearchParam:
    return SearchParam(
        code=code,
        type="number",
        expression=f"{_AGE}.{side}.value",
        base=("HealthcareService",),
        url=f"{_BASE}/HealthcareService-{code}",
        description=f"The {side} end (years) of the ages the service admits; used by age",
    )


_BOUNDARY = f"Location.extension.where(url='{BOUNDARY_EXTENSION}').value"
_BOTH = ("HealthcareService", "Location")


def _area(code: str, description: str) -> SearchParam:
    return SearchParam(
        code=code,
        type="special",
        expression=_BOUNDARY,
        base=("Location",),
        url=f"{_BASE}/Location-{code}",
        description=description,
        kind="area",
    )


def _hours_params(default_timezone: str, clock: Clock) -> list[SearchParam]:
    return [
        SearchParam(
            code=OPEN_PARAM,
            type="number",
            expression="HealthcareService.availableTime | Location.hoursOfOperation",
            base=_BOTH,
            url=f"{_BASE}/open",
            description="Open at a moment, from the weekly hours (availableTime / "
            "hoursOfOperation) in the listing's own time zone: open=now, "
            "open=2026-12-07T10:00:00-06:00 (that instant), or open=2026-12-07T10:00 (local "
            "wall time); a notAvailable period closes it; listings without hours never match",
            extract=extract_hours,
            condition=open_condition_factory(default_timezone, clock),
        ),
        SearchParam(
            code=TIMEZONE_PARAM,
            type="token",
            expression=f"HealthcareService.extension.where(url='{TIMEZONE_EXTENSION}').value"
            f" | Location.extension.where(url='{TIMEZONE_EXTENSION}').value",
            base=_BOTH,
            url=f"{_BASE}/timezone",
            description="The listing's IANA time zone (timezone extension), e.g. "
            "timezone=America/Chicago",
            extract=extract_timezone,
        ),
        SearchParam(
            code=NOT_AVAILABLE_PARAM,
            type="date",
            expression="HealthcareService.notAvailable.during",
            base=("HealthcareService",),
            url=f"{_BASE}/HealthcareService-not-available",
            description="Periods the service is closed (notAvailable.during)",
        ),
    ]


def search_params(
    default_timezone: str = "America/Chicago", clock: Clock = utc_now
) -> list[SearchParam]:
    """Every directory parameter; ``open`` reads hours in ``default_timezone`` for listings that
    name no zone, and ``open=now`` asks ``clock``."""
    return [*SEARCH_PARAMS, *_hours_params(default_timezone, clock)]


def _no_rows(_nodes: list[Any]) -> list[dict[str, Any]]:
    return []


def _place(code: str, description: str) -> SearchParam:
    return SearchParam(
        code=code,
        type="special",
        expression="HealthcareService.location",
        base=("HealthcareService",),
        url=f"{_BASE}/HealthcareService-{code}",
        description=description,
        kind="coords",
        extract=_no_rows,  # answered from the locations' own indexes
        condition=place_condition,
        rank=place_rank,
        describe=describe_place,
    )


SEARCH_PARAMS = [
    _place(
        "place",
        "Services someone at latitude|longitude|distance|unit can use: a location within the "
        "distance (km default, mi accepted), a coverage area containing the point, or virtual "
        "delivery; nearest first, each entry's search.extension match-reason says which",
    ),
    _place(
        "place-postalcode",
        "place from a US ZIP code's centroid: ZIP|distance|unit, e.g. 60614|10|mi",
    ),
    _hs(
        DELIVERY_PARAM,
        f"HealthcareService.extension.where(url='{DELIVERY_METHOD_EXTENSION}')"
        ".extension.where(url='type').value",
        "How the service is delivered: physical | virtual",
    ),
    SearchParam(
        code="_content",
        type="string",
        expression="HealthcareService.name | HealthcareService.comment"
        " | HealthcareService.extraDetails | HealthcareService.program",
        base=("HealthcareService",),
        url=f"{_BASE}/HealthcareService-content",
        description="Full text over name, description (comment, extraDetails) and program "
        "names: every word must start a word there, case and accents ignored, e.g. "
        "_content=food pantry",
        kind="text",
    ),
    _area(
        "contains",
        "Service areas whose boundary (location-boundary-geojson) contains the point "
        "latitude|longitude; chain it from HealthcareService as coverage-area.contains",
    ),
    _area(
        "contains-postalcode",
        "Service areas whose boundary contains a US ZIP code's centroid, e.g. "
        "contains-postalcode=60614; chain it as coverage-area.contains-postalcode",
    ),
    SearchParam(
        code="age",
        type="number",
        expression=_AGE,
        base=("HealthcareService",),
        url=f"{_BASE}/HealthcareService-age",
        description="Services that admit a person of this age in years, e.g. age=34 (a "
        "missing low or high bound admits that side; no age range admits all ages)",
        condition=age_condition,
    ),
    _age_bound(LOW_PARAM, "low"),
    _age_bound(HIGH_PARAM, "high"),
    SearchParam(
        code="near-postalcode",
        type="special",
        expression="Location.position",
        base=("Location",),
        url=f"{_BASE}/Location-near-postalcode",
        description="Near a US ZIP code's centroid: ZIP|distance|unit (km default, mi "
        "accepted), e.g. 60614|10|mi; chain it from HealthcareService as "
        "location.near-postalcode",
    ),
    SearchParam(
        code="verified-since",
        type="date",
        expression=f"HealthcareService.extension.where(url='{VERIFIED_EXTENSION}').value",
        base=("HealthcareService",),
        url=f"{_BASE}/HealthcareService-verified-since",
        description="When the listing was last verified (listing freshness), e.g. "
        "verified-since=ge2026-01-01",
    ),
    _hs(
        "communication",
        "HealthcareService.communication",
        "Languages the service is offered in (e.g. communication=es)",
    ),
    _hs("eligibility", "HealthcareService.eligibility.code", "Eligibility codes"),
    _hs(
        "serviceProvisionCode",
        "HealthcareService.serviceProvisionCode",
        "Conditions of provision, e.g. serviceProvisionCode=free",
    ),
    _hs(
        "capacity-status",
        f"HealthcareService.extension.where(url='{CAPACITY_EXTENSION}')"
        ".extension.where(url='capacityStatus').value",
        "SDOHCC capacity status: capacity | no-capacity | waitlist | "
        "additional-assessment-required",
    ),
]
