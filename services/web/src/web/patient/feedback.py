"""The patient's answers to the published patient-voice Questionnaire (``web.questionnaire``),
as the QuestionnaireResponse referral-api accepts: ``questionnaire`` its canonical and version,
``basedOn`` the referral Task, ``subject`` the patient, one answer of the item's type per
question answered (``valueBoolean``, or a ``valueCoding`` among its options). referral-api
checks it again, and keeps one response per referral (a second is 409)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from web.questionnaire import Form


def chosen(form: Form, data: Mapping[str, Any]) -> dict[str, str]:
    """The posted answers that are options of their question (anything else is dropped)."""
    out = {}
    for question in form.questions:
        value = str(data.get(question.link_id) or "")
        if question.option(value) is not None:
            out[question.link_id] = value
    return out


def missing(form: Form, answers: Mapping[str, str]) -> list[str]:
    """The required questions left unanswered."""
    return [q.link_id for q in form.questions if q.required and q.link_id not in answers]


def answer_of(form: Form, link_id: str, code: str) -> dict[str, Any]:
    question = form.question(link_id)
    option = question.option(code) if question else None
    assert question is not None and option is not None  # from ``chosen``
    if question.kind == "boolean":
        return {"valueBoolean": code == "true"}
    coding = {"system": option.system, "code": option.code, "display": option.label}
    return {"valueCoding": {k: v for k, v in coding.items() if v}}


def response_for(
    task: dict[str, Any], form: Form, answers: Mapping[str, str], lang: str, authored: str
) -> dict[str, Any]:
    """The QuestionnaireResponse for these answers (already ``chosen``), in the order of the
    questions, each with the text the patient read."""
    items = [
        {
            "linkId": q.link_id,
            "text": q.text,
            "answer": [answer_of(form, q.link_id, answers[q.link_id])],
        }
        for q in form.questions
        if q.link_id in answers
    ]
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": form.canonical,
        "status": "completed",
        "language": lang,
        "basedOn": [{"reference": f"Task/{task.get('id')}"}],
        "authored": authored,
        "item": items,
    }
    subject = (task.get("for") or {}).get("reference")
    if subject:
        response["subject"] = {"reference": subject}
        response["source"] = {"reference": subject}
    return response
