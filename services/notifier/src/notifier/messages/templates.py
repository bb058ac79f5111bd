"""Renders the catalog's messages in the patient's language (``Patient.communication``).

English and Spanish today; any other language falls back to English, so a message always goes
out. Messages carry the minimum: no names, no need or condition, and no program by SMS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from notifier.messages.catalog import CATALOG, FEEDBACK, NO_PROGRAM

KINDS = (
    "referral-new",
    "referral-accepted",
    "referral-declined",
    "referral-completed",
    "referral-stalled",
    "referral-escalated",
)
AUDIENCES = ("cbo", "patient", "clinician")
LANGUAGES = frozenset(lang for lang, _, _ in CATALOG)
SMS_MAX = 160
_NAMES = {"english": "en", "spanish": "es", "español": "es", "espanol": "es", "castellano": "es"}


@dataclass(frozen=True)
class MessageContext:
    program: str | None  # the CBO / program name, if known
    link: str | None  # the app or FHIR Task URL; no PHI beyond an opaque id
    subscription_id: str  # the reference an SMS gives when the link does not fit
    feedback: str | None = None  # the patient-voice questionnaire, after a completed referral


@dataclass(frozen=True)
class Message:
    subject: str  # email subject
    text: str  # short plain-text email body
    sms: str  # <= 160 characters, no clinical detail, no program


def _primary(code: str) -> str:
    """``es-MX``/``es_MX``/``Spanish (Mexico)`` -> ``es``: only the primary subtag matters."""
    code = code.strip().lower()
    word = re.split(r"[\s(,;/]", code, maxsplit=1)[0]
    return _NAMES.get(word) or re.split(r"[-_]", word, maxsplit=1)[0]


def _supported(code: Any) -> str | None:
    if isinstance(code, str) and code.strip():
        lang = _primary(code)
        return lang if lang in LANGUAGES else None
    return None


def language_of(patient: dict[str, Any] | None) -> str:
    """The patient's language: preferred communications first, then in order; the first one we
    have messages for wins (a French speaker who also reads Spanish gets Spanish), else ``en``."""
    comms = [c for c in (patient or {}).get("communication") or [] if isinstance(c, dict)]
    comms.sort(key=lambda c: c.get("preferred") is not True)  # stable: keeps the given order
    for comm in comms:
        language = comm.get("language")
        if not isinstance(language, dict):
            continue
        codings = [c for c in language.get("coding") or [] if isinstance(c, dict)]
        for candidate in [*(c.get("code") for c in codings), language.get("text")]:
            lang = _supported(candidate)
            if lang:
                return lang
    return "en"


def render(kind: str, audience: str, language: str | None, ctx: MessageContext) -> Message:
    """One message for ``audience`` about ``kind``; unknown kind or audience -> ValueError."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}")
    lang = _supported(language) or "en"
    subject, text, sms = CATALOG.get((lang, kind, audience)) or CATALOG[("en", kind, audience)]
    # one line: the program name ends up in an email header
    program = " ".join((ctx.program or "").split()) or NO_PROGRAM.get(lang, NO_PROGRAM["en"])
    reference = f"(ref. {ctx.subscription_id})"
    link = ctx.link or reference
    short = sms.format(link=link).strip()
    if len(short) > SMS_MAX:  # a cut link is useless: give the opaque reference instead
        short = sms.format(link=reference).strip()
    body = text.format(program=program, link=link).strip()
    if ctx.feedback and kind == "referral-completed" and audience == "patient":
        line, feedback_sms = FEEDBACK.get(lang) or FEEDBACK["en"]
        if ctx.feedback == ctx.link:  # one page shows the referral and asks: one link
            body = text.format(program=program, link="").strip()
        body += "\n" + line.format(feedback=ctx.feedback)
        asked = feedback_sms.format(feedback=ctx.feedback)
        if len(asked) <= SMS_MAX:  # the questionnaire's page shows the referral too
            short = asked
    return Message(
        subject=subject.format(program=program, link=link),
        text=body,
        sms=short[:SMS_MAX],
    )
