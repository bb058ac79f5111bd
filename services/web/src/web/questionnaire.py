"""The patient-voice Questionnaire referral-api publishes, read once and kept for an hour (a
definition: it changes with a release of referral-api, not between requests), and shown in a
language: each text and answer display carries its Spanish in the FHIR ``translation``
extension. Both the patient's survey and the staff's aggregates read it, so the questions
are worded in one place only: referral-api."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request

from web.api import ApiError
from web.pages import Site

QUESTIONNAIRE_ID = "patient-voice"
CANONICAL = "urn:closedloop:Questionnaire:patient-voice"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
KEEP_SECONDS = 3600.0
KINDS = ("boolean", "choice")  # the item types the survey shows


@dataclass(frozen=True)
class Option:
    code: str  # "true"/"false" for a boolean item, else the answer's code
    system: str | None
    label: str


@dataclass(frozen=True)
class Question:
    link_id: str
    kind: str
    text: str
    required: bool
    options: tuple[Option, ...]

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)


@dataclass(frozen=True)
class Form:
    """The Questionnaire in one language."""

    canonical: str  # with its version: ``url|version``
    title: str
    questions: tuple[Question, ...]

    def question(self, link_id: str) -> Question | None:
        return next((q for q in self.questions if q.link_id == link_id), None)


def translated(text: Any, element: Any, lang: str) -> str:
    """``text`` in ``lang`` from its ``_element``'s translation extension, else as it is."""
    extensions = element.get("extension") if isinstance(element, dict) else None
    for ext in extensions or []:
        if not isinstance(ext, dict) or ext.get("url") != TRANSLATION:
            continue
        parts = {p.get("url"): p for p in ext.get("extension") or [] if isinstance(p, dict)}
        code = str((parts.get("lang") or {}).get("valueCode") or "").lower()
        content = (parts.get("content") or {}).get("valueString")
        if code.split("-")[0] == lang and isinstance(content, str) and content:
            return content
    return str(text or "")


def localized(questionnaire: dict[str, Any], lang: str, yes: str, no: str) -> Form:
    """The questions of ``questionnaire`` in ``lang`` (``yes``/``no`` label boolean items);
    items of other types are left out (the survey has none)."""
    questions = []
    for item in questionnaire.get("item") or []:
        if not isinstance(item, dict) or item.get("type") not in KINDS or not item.get("linkId"):
            continue
        options: tuple[Option, ...]
        if item["type"] == "boolean":
            options = (Option("true", None, yes), Option("false", None, no))
        else:
            options = tuple(
                Option(
                    str(coding.get("code")),
                    coding.get("system"),
                    translated(
                        coding.get("display") or coding.get("code"), coding.get("_display"), lang
                    ),
                )
                for option in item.get("answerOption") or []
                if isinstance(option, dict)
                for coding in [option.get("valueCoding")]
                if isinstance(coding, dict) and coding.get("code")
            )
        questions.append(
            Question(
                str(item["linkId"]),
                str(item["type"]),
                translated(item.get("text"), item.get("_text"), lang),
                bool(item.get("required")),
                options,
            )
        )
    url = str(questionnaire.get("url") or CANONICAL)
    version = questionnaire.get("version")
    return Form(
        f"{url}|{version}" if version else url,
        translated(questionnaire.get("title"), questionnaire.get("_title"), lang),
        tuple(questions),
    )


class Kept:
    """The Questionnaire as last read, for ``KEEP_SECONDS``; one read at a time."""

    def __init__(self) -> None:
        self.resource: dict[str, Any] | None = None
        self.read_at = 0.0
        self.lock = asyncio.Lock()

    async def get(self, site: Site, auth: httpx.Auth | None) -> dict[str, Any]:
        async with self.lock:
            if self.resource is None or time.monotonic() - self.read_at > KEEP_SECONDS:
                url = f"{site.settings.referral_url.rstrip('/')}/Questionnaire/{QUESTIONNAIRE_ID}"
                resource = await site.api.read(url, auth)
                if resource.get("url") != CANONICAL:
                    raise ApiError("api_unavailable", 503)  # not the questions we know
                self.resource, self.read_at = resource, time.monotonic()
            return self.resource


async def patient_voice(request: Request, site: Site, auth: httpx.Auth | None) -> dict[str, Any]:
    """The published Questionnaire (kept on the app between requests)."""
    kept: Kept | None = getattr(request.app.state, "patient_voice", None)
    if kept is None:
        kept = request.app.state.patient_voice = Kept()
    return await kept.get(site, auth)


def forget(request: Request) -> None:
    """Read the Questionnaire again next time (referral-api refused answers to this one: it
    may have published another version)."""
    kept: Kept | None = getattr(request.app.state, "patient_voice", None)
    if kept is not None:
        kept.resource = None
