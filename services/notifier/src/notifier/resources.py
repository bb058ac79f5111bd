"""The FHIR resource types notifier serves."""

RESOURCE_TYPES = [
    "Subscription",
]
