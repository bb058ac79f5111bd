"""The message templates: every kind x audience renders in English and Spanish, other languages
fall back to English, and SMS texts stay short with no clinical detail and no program."""

from __future__ import annotations

import string
from typing import Any

import pytest
from notifier.messages.catalog import CATALOG
from notifier.messages.templates import (
    AUDIENCES,
    KINDS,
    LANGUAGES,
    MessageContext,
    language_of,
    render,
)

PROGRAM = "Eastside Food Bank"
CTX = MessageContext(
    program=PROGRAM, link="https://app.example.test/referrals/t-1", subscription_id="s-1"
)
FORBIDDEN = [
    "food",
    "housing",
    "insecurity",
    "homeless",
    "diabetes",
    "comida",
    "vivienda",
    "alimentos",
    "eastside",
    PROGRAM.lower(),
]
ALL = [(k, a, lang) for k in KINDS for a in AUDIENCES for lang in ("en", "es")]


@pytest.mark.parametrize(("kind", "audience", "lang"), ALL)
def test_every_message_renders(kind: str, audience: str, lang: str) -> None:
    message = render(kind, audience, lang, CTX)
    assert message.subject and message.text and message.sms
    for part in (message.subject, message.text, message.sms):
        assert "{" not in part and "}" not in part and "None" not in part
    assert "\n" not in message.subject
    assert CTX.link in message.text and CTX.link in message.sms
    assert len(message.sms) <= 160
    lowered = message.sms.lower()
    assert not [word for word in FORBIDDEN if word in lowered]


def test_catalog_is_complete_and_sms_never_names_the_program() -> None:
    assert {"en", "es"} <= LANGUAGES
    for lang in LANGUAGES:
        for kind in KINDS:
            for audience in AUDIENCES:
                subject, text, sms = CATALOG[(lang, kind, audience)]
                fields = {
                    f
                    for part in (subject, text, sms)
                    for _, f, _, _ in string.Formatter().parse(part)
                    if f
                }
                assert fields <= {"program", "link"}
                assert "{program}" not in sms


def test_spanish_differs_from_english() -> None:
    en = render("referral-accepted", "patient", "en", CTX)
    es = render("referral-accepted", "patient", "es", CTX)
    assert es.subject == "Su remisión fue aceptada" and en.subject == "Your referral was accepted"
    assert es.sms != en.sms
    assert en.sms == f"Update on your referral: it was accepted. {CTX.link}"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("es", "es"),
        ("es-MX", "es"),
        ("ES-us", "es"),
        ("es_419", "es"),
        ("Spanish", "es"),
        ("en-GB", "en"),
        ("fr", "en"),
        ("fr-CA", "en"),
        ("zz-unknown", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_language_matching_and_fallback(language: str | None, expected: str) -> None:
    message = render("referral-declined", "clinician", language, CTX)
    assert message == render("referral-declined", "clinician", expected, CTX)


def test_unknown_kind_or_audience() -> None:
    with pytest.raises(ValueError, match="kind"):
        render("referral-lost", "patient", "en", CTX)
    with pytest.raises(ValueError, match="audience"):
        render("referral-new", "landlord", "en", CTX)


def test_missing_program_and_link() -> None:
    ctx = MessageContext(program=None, link=None, subscription_id="sub-42")
    en = render("referral-accepted", "clinician", "en", ctx)
    es = render("referral-accepted", "clinician", "es", ctx)
    assert "the organization" in en.subject and "la organización" in es.subject
    assert "(ref. sub-42)" in en.sms and "(ref. sub-42)" in en.text


def test_program_name_cannot_break_the_subject_line() -> None:
    ctx = MessageContext(program="Eastside\r\nBcc: x@evil.test", link=None, subscription_id="s")
    subject = render("referral-new", "cbo", "en", ctx).subject
    assert "\r" not in subject and "\n" not in subject


def test_a_link_too_long_for_sms_becomes_the_reference_not_a_cut_link() -> None:
    link = "https://app.example.test/referrals/" + "x" * 150
    ctx = MessageContext(program=PROGRAM, link=link, subscription_id="s-9")
    for kind, audience, lang in ALL:
        message = render(kind, audience, lang, ctx)
        assert len(message.sms) <= 160
        assert message.sms.endswith("(ref. s-9)")
        assert link in message.text  # email has room for it


def patient(*communications: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "communication": list(communications)}


BCP47 = "urn:ietf:bcp:47"


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (None, "en"),
        ({"resourceType": "Patient"}, "en"),
        (patient(), "en"),
        # US Core shape: a BCP-47 coding
        (
            patient(
                {"language": {"coding": [{"system": BCP47, "code": "es", "display": "Spanish"}]}}
            ),
            "es",
        ),
        (
            patient(
                {"language": {"coding": [{"system": BCP47, "code": "es-MX"}]}, "preferred": True}
            ),
            "es",
        ),
        # text only
        (patient({"language": {"text": "Spanish"}}), "es"),
        (patient({"language": {"text": "Spanish (Mexico)"}}), "es"),
        (patient({"language": {"text": "Español"}}), "es"),
        # preferred wins over order
        (
            patient(
                {"language": {"coding": [{"system": BCP47, "code": "en"}]}},
                {"language": {"coding": [{"system": BCP47, "code": "es"}]}, "preferred": True},
            ),
            "es",
        ),
        # no preferred: the first one
        (
            patient(
                {"language": {"coding": [{"system": BCP47, "code": "es-US"}]}},
                {"language": {"coding": [{"system": BCP47, "code": "en-US"}]}},
            ),
            "es",
        ),
        (
            patient(
                {"language": {"coding": [{"system": BCP47, "code": "en"}]}, "preferred": False},
                {"language": {"coding": [{"system": BCP47, "code": "es"}]}},
            ),
            "en",
        ),
        # unsupported preferred language: the next one we have, else English
        (
            patient({"language": {"coding": [{"system": BCP47, "code": "fr"}]}, "preferred": True}),
            "en",
        ),
        (
            patient(
                {"language": {"coding": [{"code": "vi"}]}, "preferred": True},
                {"language": {"coding": [{"code": "es"}]}},
            ),
            "es",
        ),
        # an unusable coding falls through to the text
        (patient({"language": {"coding": [{"system": BCP47}], "text": "Spanish"}}), "es"),
        # malformed input never raises
        ({"communication": "es"}, "en"),
        (patient("es", {"language": "es"}, {"language": {"coding": ["es"]}}), "en"),
    ],
)
def test_language_of(resource: dict[str, Any] | None, expected: str) -> None:
    assert language_of(resource) == expected
