"""A QuestionnaireResponse to the published patient-voice Questionnaire: its answers fit the
Questionnaire (``voice.answers``), and it is about a referral (``basedOn`` or ``partOf`` a
Task). That the Task exists, is a completed referral and is answered once is checked before
commit (``voice.projection``), where the store can be read."""

from __future__ import annotations

from typing import Any

from closedloop.errors import Issue

from referral_api.profiles.rules import error, reference_type
from referral_api.voice.answers import check_response
from referral_api.voice.questionnaire import CANONICAL, VERSION, questionnaire

QUESTIONNAIRE = questionnaire()


def applies(response: dict[str, Any]) -> bool:
    canonical = response.get("questionnaire")
    return isinstance(canonical, str) and canonical.split("|")[0] == CANONICAL


def task_of(response: dict[str, Any]) -> str | None:
    """The referral Task's id the response is about (``basedOn``, else ``partOf``)."""
    for element in ("basedOn", "partOf"):
        for ref in response.get(element) or []:
            if reference_type(ref) == "Task":
                return str(ref["reference"]).rstrip("/").rsplit("/", 1)[-1]
    return None


def check(response: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    version = str(response.get("questionnaire")).partition("|")[2]
    if version and version != VERSION:
        issues.append(
            error(
                f"Version {version} of {CANONICAL} is not published (only {VERSION})",
                "QuestionnaireResponse.questionnaire",
            )
        )
    if task_of(response) is None:
        issues.append(
            error(
                "A patient-voice response is about a referral: basedOn (or partOf) its Task",
                "QuestionnaireResponse.basedOn",
            )
        )
    return issues + check_response(QUESTIONNAIRE, response)
