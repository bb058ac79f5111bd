"""Publishes the Measure at start-up, as the server's own (clients may only read it)."""

from __future__ import annotations

import orjson
from closedloop.context import SYSTEM
from closedloop.errors import FhirError
from closedloop.fhir.server import FhirServer

from referral_api.measures.definition import MEASURE_ID, measure


async def publish_measure(server: FhirServer) -> None:
    body = measure()
    try:
        stored = orjson.loads((await server.repo.read("Measure", MEASURE_ID)).content or "{}")
    except FhirError:
        stored = None
    if stored is not None:
        stored.pop("meta", None)
        if stored == body:
            return  # unchanged: no new version at every start (replicas start together)
    async with server.repo.unit_of_work(SYSTEM) as uow:
        await server.repo.update(uow, "Measure", MEASURE_ID, body)
