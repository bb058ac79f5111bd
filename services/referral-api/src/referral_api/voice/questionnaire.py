"""The patient-voice Questionnaire: did the patient get help, was it helpful, were they treated
with respect, could they get it in their language. Short on purpose (it follows a text
message). English text, with Spanish in the FHIR ``translation`` extension on every text and
answer display, so a form renderer shows the patient's language."""

from __future__ import annotations

from typing import Any

QUESTIONNAIRE_ID = "patient-voice"
CANONICAL = "urn:closedloop:Questionnaire:patient-voice"
VERSION = "1"
ANSWERS = "urn:closedloop:CodeSystem:patient-voice"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


def _es(text: str) -> dict[str, Any]:
    return {
        "extension": [
            {
                "url": TRANSLATION,
                "extension": [
                    {"url": "lang", "valueCode": "es"},
                    {"url": "content", "valueString": text},
                ],
            }
        ]
    }


def _option(code: str, en: str, es: str) -> dict[str, Any]:
    return {"valueCoding": {"system": ANSWERS, "code": code, "display": en, "_display": _es(es)}}


# linkId: (type, English, Spanish, required, options as (code, English, Spanish))
ITEMS: dict[str, tuple[str, str, str, bool, list[tuple[str, str, str]]]] = {
    "help-received": (
        "boolean",
        "Did you get the help you were referred for?",
        "¿Recibió la ayuda para la que fue remitido?",
        True,
        [],
    ),
    "helpfulness": (
        "choice",
        "How helpful was it?",
        "¿Qué tan útil fue?",
        False,
        [
            ("not-helpful", "Not helpful", "Nada útil"),
            ("somewhat-helpful", "Somewhat helpful", "Algo útil"),
            ("very-helpful", "Very helpful", "Muy útil"),
        ],
    ),
    "respect": (
        "choice",
        "Did the staff treat you with respect?",
        "¿El personal le trató con respeto?",
        False,
        [
            ("always", "Always", "Siempre"),
            ("sometimes", "Sometimes", "A veces"),
            ("never", "Never", "Nunca"),
        ],
    ),
    "language-access": (
        "choice",
        "Could you get help in the language you prefer?",
        "¿Pudo recibir ayuda en el idioma que prefiere?",
        False,
        [
            ("yes", "Yes", "Sí"),
            ("no", "No", "No"),
            ("not-needed", "I did not need another language", "No necesitaba otro idioma"),
        ],
    ),
}


def questionnaire() -> dict[str, Any]:
    items = []
    for link_id, (kind, en, es, required, options) in ITEMS.items():
        item: dict[str, Any] = {
            "linkId": link_id,
            "text": en,
            "_text": _es(es),
            "type": kind,
            "required": required,
            "repeats": False,
        }
        if options:
            item["answerOption"] = [_option(*o) for o in options]
        items.append(item)
    return {
        "resourceType": "Questionnaire",
        "id": QUESTIONNAIRE_ID,
        "url": CANONICAL,
        "version": VERSION,
        "name": "PatientVoice",
        "title": "How did your referral go?",
        "_title": _es("¿Cómo le fue con su remisión?"),
        "status": "active",
        "language": "en",
        "subjectType": ["Patient"],
        "description": (
            "Asked of the patient after a referral is completed. Answers are "
            "QuestionnaireResponses basedOn the referral Task; each organization's aggregates "
            "hide counts from 1 to 10."
        ),
        "item": items,
    }


def option_codes(link_id: str) -> frozenset[str]:
    return frozenset(code for code, _, _ in ITEMS[link_id][4])
