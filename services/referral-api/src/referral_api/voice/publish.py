"""Publishes the Questionnaire at start-up, as the server's own (clients may only read it)."""

from __future__ import annotations

from closedloop.fhir.definitions import publish_definitions
from closedloop.fhir.server import FhirServer

from referral_api.voice.questionnaire import QUESTIONNAIRE_ID, questionnaire


async def publish_questionnaire(server: FhirServer) -> None:
    await publish_definitions(server, [("Questionnaire", QUESTIONNAIRE_ID, questionnaire())])
