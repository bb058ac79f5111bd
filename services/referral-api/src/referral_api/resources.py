"""The FHIR resource types referral-api serves."""

RESOURCE_TYPES = [
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "ServiceRequest",
    "Task",
    "Consent",
    "Procedure",
    "Condition",
    "Goal",
    "Observation",
    "QuestionnaireResponse",
    "DocumentReference",
]
