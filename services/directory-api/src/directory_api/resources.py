"""The FHIR resource types directory-api serves, and the search parameters people expect of a
CBO directory beyond the standard R4 ones (HL7 Human Services Directory IG / NDH style)."""

from closedloop.fhir.search.definitions import SearchParam

from directory_api.conventions import AGE_RANGE_EXTENSION, CAPACITY_EXTENSION, VERIFIED_EXTENSION
from directory_api.search.age import HIGH_PARAM, LOW_PARAM, age_condition

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


SEARCH_PARAMS = [
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
