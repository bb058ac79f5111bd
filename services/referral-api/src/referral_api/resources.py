"""The FHIR resource types referral-api serves, and the search parameters it adds to the
standard R4 ones."""

from closedloop.fhir.search.definitions import SearchParam

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
    "Measure",  # the loop metrics' definition (measures.definition), published read-only
    "Questionnaire",  # the patient-voice questions (voice.questionnaire), published read-only
]
READ_ONLY_TYPES = ["Measure", "Questionnaire"]

_IG = "http://hl7.org/fhir/us/sdoh-clinicalcare/SearchParameter"

# Required by the SDOH Clinical Care IG's capability statements (not in base R4).
SEARCH_PARAMS = [
    SearchParam(
        code="supporting-info",
        type="reference",
        expression="ServiceRequest.supportingInfo",
        base=("ServiceRequest",),
        url=f"{_IG}/SDOHCC-ServiceRequestSupportingInfo",
        description="ServiceRequest.supportingInfo: e.g. the Consent behind a referral",
    ),
    SearchParam(
        code="reason-reference",
        type="reference",
        expression="ServiceRequest.reasonReference",
        base=("ServiceRequest",),
        url="urn:closedloop:SearchParameter/ServiceRequest-reason-reference",
        description="ServiceRequest.reasonReference: the Condition a referral is for (a CBO "
        "sees the Conditions its referrals give as reasons)",
    ),
    SearchParam(
        code="output",
        type="reference",
        expression="Task.output.value.ofType(Reference)",
        base=("Task",),
        url=f"{_IG}/SDOHCC-TaskOutputReference",
        description="Task.output.value as a Reference: e.g. the Procedure that was delivered",
    ),
]
