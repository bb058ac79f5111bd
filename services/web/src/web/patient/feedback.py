"""The three-question survey at a referral's closure, stored in referral-api as a
QuestionnaireResponse: ``subject`` the patient, ``basedOn`` the ServiceRequest, the Task in an
extension, and an identifier per Task, so the survey is answered once (a conditional create:
a second post finds the first answers)."""

from __future__ import annotations

from typing import Any

QUESTIONNAIRE = "urn:closedloop:fhir:Questionnaire/referral-feedback"
IDENTIFIER = "urn:closedloop:fhir:referral-feedback"
TASK_EXTENSION = "urn:closedloop:fhir:referral-task"
RECEIVED = ("yes", "partly", "no")
HELPFUL = ("1", "2", "3")
COMMENT_MAX = 1000


def identifier_query(task_id: str) -> str:
    return f"identifier={IDENTIFIER}|{task_id}"


def response_for(
    task: dict[str, Any], received: str, helpful: str, comment: str, lang: str
) -> dict[str, Any]:
    """The QuestionnaireResponse for these answers (already checked against the choices)."""
    items: list[dict[str, Any]] = [
        {
            "linkId": "received",
            "text": "Did you receive the help you were referred for?",
            "answer": [{"valueCoding": {"system": f"{QUESTIONNAIRE}#received", "code": received}}],
        },
        {
            "linkId": "helpful",
            "text": "How helpful was it? (1-3)",
            "answer": [{"valueInteger": int(helpful)}],
        },
    ]
    if comment:
        items.append(
            {
                "linkId": "comment",
                "text": "Anything you would like to tell us?",
                "answer": [{"valueString": comment[:COMMENT_MAX]}],
            }
        )
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "identifier": {"system": IDENTIFIER, "value": str(task.get("id"))},
        "questionnaire": QUESTIONNAIRE,
        "status": "completed",
        "language": lang,
        "extension": [
            {"url": TASK_EXTENSION, "valueReference": {"reference": f"Task/{task.get('id')}"}}
        ],
        "item": items,
    }
    subject = (task.get("for") or {}).get("reference")
    if subject:
        response["subject"] = {"reference": subject}
        response["source"] = {"reference": subject}
    focus = (task.get("focus") or {}).get("reference")
    if focus:
        response["basedOn"] = [{"reference": focus}]
    return response
