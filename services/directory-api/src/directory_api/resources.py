"""The FHIR resource types directory-api serves."""

RESOURCE_TYPES = [
    "HealthcareService",
    "Organization",
    "Location",
    "Endpoint",
]
