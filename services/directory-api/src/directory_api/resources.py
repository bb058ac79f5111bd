"""The FHIR resource types directory-api serves, and the search parameters people expect of a
CBO directory beyond the standard R4 ones (HL7 Human Services Directory IG / NDH style)."""

from closedloop.fhir.search.definitions import SearchParam

from directory_api.conventions import CAPACITY_EXTENSION, VERIFIED_EXTENSION

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


SEARCH_PARAMS = [
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
