"""Renders the catalog's messages in the patient's language (``Patient.communication``),
English and Spanish, falling back to English."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifier.messages.catalog import CATALOG, NO_PROGRAM

KINDS = ("referral-new", "referral-accepted", "referral-declined", "referral-completed")
AUDIENCES = ("cbo", "patient", "clinician")
LANGUAGES = frozenset(lang for lang, _, _ in CATALOG)
_NAMES = {"english": "en", "spanish": "es", "español": "es", "espanol": "es"}


@dataclass(frozen=True)
class MessageContext:
    program: str | None
    link: str | None
    subscription_id: str


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    sms: str


def _primary(code: str) -> str:
    code = code.strip().lower()
    return _NAMES.get(code, code.split("-")[0].split("_")[0])


def language_of(patient: dict[str, Any] | None) -> str:
    """The patient's preferred language (preferred communication first), else English."""
    comms = [c for c in (patient or {}).get("communication") or [] if isinstance(c, dict)]
    comms.sort(key=lambda c: not c.get("preferred"))
    for comm in comms:
        language = comm.get("language") or {}
        candidates = [c.get("code") for c in language.get("coding") or [] if c.get("code")]
        candidates.append(language.get("text"))
        for candidate in candidates:
            if isinstance(candidate, str) and candidate.strip():
                code = _primary(candidate)
                if code in LANGUAGES:
                    return code
    return "en"


def render(kind: str, audience: str, language: str | None, ctx: MessageContext) -> Message:
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}")
    lang = _primary(language) if language else "en"
    if lang not in LANGUAGES:
        lang = "en"
    subject, text, sms = CATALOG[(lang, kind, audience)]
    values = {
        "program": ctx.program or NO_PROGRAM[lang],
        "link": ctx.link or f"(ref. {ctx.subscription_id})",
    }
    return Message(
        subject.format(**values),
        text.format(**values).strip(),
        sms.format(link=values["link"]).strip()[:160],
    )
