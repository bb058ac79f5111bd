"""Publishes the Measure at start-up, as the server's own (clients may only read it)."""

from __future__ import annotations

from closedloop.fhir.definitions import publish_definitions
from closedloop.fhir.server import FhirServer

from referral_api.measures.definition import MEASURE_ID, measure


async def publish_measure(server: FhirServer) -> None:
    await publish_definitions(server, [("Measure", MEASURE_ID, measure())])
