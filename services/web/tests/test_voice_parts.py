"""The patient-voice survey's and the loop metrics page's parts that need no browser: the
Questionnaire in Spanish, the answers as a QuestionnaireResponse, hidden figures as the page
writes them, the chart check, the periods. (The browser tests prove them against referral-api.)"""

from __future__ import annotations

import base64
from datetime import date

from web.measures import period
from web.measures.figures import report_rows, voice_figures
from web.measures.pages import Shown, safe_svg
from web.patient.feedback import chosen, missing, response_for
from web.questionnaire import TRANSLATION, localized

ANSWERS = "urn:closedloop:CodeSystem:patient-voice"


def es(text: str) -> dict:
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


QUESTIONNAIRE = {
    "resourceType": "Questionnaire",
    "url": "urn:closedloop:Questionnaire:patient-voice",
    "version": "1",
    "title": "How did your referral go?",
    "_title": es("¿Cómo le fue con su remisión?"),
    "item": [
        {
            "linkId": "help-received",
            "type": "boolean",
            "required": True,
            "text": "Did you get the help?",
            "_text": es("¿Recibió la ayuda?"),
        },
        {
            "linkId": "respect",
            "type": "choice",
            "text": "Respect?",
            "_text": es("¿Respeto?"),
            "answerOption": [
                {
                    "valueCoding": {
                        "system": ANSWERS,
                        "code": "always",
                        "display": "Always",
                        "_display": es("Siempre"),
                    }
                },
                {"valueCoding": {"system": ANSWERS, "code": "never", "display": "Never"}},
            ],
        },
        {"linkId": "note", "type": "string", "text": "Anything else?"},
    ],
}


def test_the_questionnaire_in_spanish_and_the_response() -> None:
    form = localized(QUESTIONNAIRE, "es", "Sí", "No")
    assert form.canonical == "urn:closedloop:Questionnaire:patient-voice|1"
    assert form.title == "¿Cómo le fue con su remisión?"
    assert [q.link_id for q in form.questions] == ["help-received", "respect"]  # no free text
    assert [q.text for q in form.questions] == ["¿Recibió la ayuda?", "¿Respeto?"]
    assert [o.label for o in form.questions[1].options] == ["Siempre", "Never"]  # no es: English
    assert localized(QUESTIONNAIRE, "en", "Yes", "No").questions[0].text == "Did you get the help?"

    answers = chosen(form, {"help-received": "false", "respect": "sometimes", "x": "y"})
    assert answers == {"help-received": "false"}  # not an option: dropped
    assert missing(form, {"respect": "always"}) == ["help-received"]
    task = {"id": "t1", "for": {"reference": "Patient/p"}}
    qr = response_for(
        task, form, {"help-received": "true", "respect": "always"}, "es", "2026-12-04T10:00:00Z"
    )
    assert qr["questionnaire"] == form.canonical and qr["status"] == "completed"
    assert qr["basedOn"] == [{"reference": "Task/t1"}]
    assert qr["subject"] == {"reference": "Patient/p"} and qr["language"] == "es"
    assert [i["answer"] for i in qr["item"]] == [
        [{"valueBoolean": True}],
        [{"valueCoding": {"system": ANSWERS, "code": "always", "display": "Siempre"}}],
    ]


def count(code: str, n: int | None) -> dict:
    entry: dict = {"code": {"coding": [{"code": code}]}}
    if n is None:
        entry["extension"] = [{"valueCode": "masked"}]
    else:
        entry["count"] = n
    return entry


def test_hidden_figures_read_and_written() -> None:
    report = {
        "group": [
            {
                "code": {"coding": [{"code": "referrals"}]},
                "population": [count("sent", 12), count("declined", None)],
                "measureScore": {"value": 0.5},
                "stratifier": [
                    {
                        "code": [{"coding": [{"code": "cbo"}]}],
                        "stratum": [
                            {
                                "value": {"text": "Organization/a"},
                                "population": [count("sent", None)],
                            }
                        ],
                    }
                ],
            },
            {
                "code": {"coding": [{"code": "time-to-accept.median"}]},
                "measureScore": {"value": 1.25},
            },
        ]
    }
    total, rows = report_rows(report)
    assert total.counts == {"sent": 12, "declined": None} and total.rate == 0.5
    assert total.hours["time-to-accept.median"] == 1.25
    assert total.hours["time-to-accept.p90"] is None
    assert [r.key for r in rows] == ["Organization/a"] and rows[0].counts["sent"] is None
    shown = Shown("es", 11).row(total)
    assert shown["sent"] == "12" and shown["declined"] == "<11" and shown["accepted"] == "<11"
    assert shown["closure-rate"] == "50 %" and shown["time-to-accept.median"] == "1,2 h"
    assert shown["time-to-accept.p90"] == "oculto"
    assert Shown("en", None).count(None) == "hidden"

    params = {
        "parameter": [
            {"name": "minCell", "valueInteger": 11},
            {
                "name": "organization",
                "part": [
                    {"name": "organization", "valueReference": {"reference": "Organization/a"}},
                    {"name": "responses", "part": [{"name": "count", "valueInteger": 12}]},
                    {
                        "name": "answer",
                        "part": [
                            {"name": "item", "valueString": "help-received"},
                            {"name": "value", "valueBoolean": False},
                            {"name": "suppressed", "valueBoolean": True},
                        ],
                    },
                ],
            },
        ]
    }
    min_cell, voices = voice_figures(params)
    assert min_cell == 11 and voices[0].organization == "Organization/a"
    assert voices[0].responses == 12 and voices[0].answers == {("help-received", "false"): None}


def test_only_an_svg_document_becomes_an_image() -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><title>x</title></svg>'
    src = safe_svg(svg, "image/svg+xml")
    assert src is not None and base64.b64decode(src.split(",", 1)[1]).decode() == svg
    assert safe_svg(svg, "text/html") is None
    assert safe_svg("<html><body>x</body></html>", "image/svg+xml") is None
    assert safe_svg("<svg", "image/svg+xml") is None  # not XML
    entities = '<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg"/>'
    assert safe_svg(entities, "image/svg+xml") is None


def test_periods_offered() -> None:
    today = date(2026, 3, 15)
    assert period.months(today)[:4] == ["2026-03", "2026-02", "2026-01", "2025-12"]
    assert period.years(today) == ["2026", "2025", "2024"]
    feb = period.chosen("2026-02", today)
    assert (feb.start, feb.end, feb.is_year) == (date(2026, 2, 1), date(2026, 2, 28), False)
    year = period.chosen("2025", today)
    assert (year.start, year.end, year.is_year) == (date(2025, 1, 1), date(2025, 12, 31), True)
    assert period.chosen("1999-01", today).key == "2026-03"  # not offered: this month
    assert period.chosen("'; drop", today).key == "2026-03"
    assert period.label("2026-02", "es") == "febrero de 2026"
    assert period.label("2026-02", "en") == "February 2026"
