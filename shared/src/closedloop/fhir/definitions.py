"""Publishes the server's own definitional resources (SubscriptionTopics, Measures) at start-up.

Replicas start together and write the same resources at once: an unchanged resource is left
alone (no new version at every start), and the replica that loses a race to write it finds it
written and tries again, where it is then unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson

from closedloop.context import SYSTEM
from closedloop.errors import FhirError
from closedloop.fhir.server import FhirServer

Definition = tuple[str, str, dict[str, Any]]  # (resource type, id, body without meta)

ATTEMPTS = 5


async def publish_definitions(server: FhirServer, definitions: Sequence[Definition]) -> None:
    for attempt in range(ATTEMPTS):
        changed = [d for d in definitions if not await _stored_as(server, d)]
        if not changed:
            return
        try:
            async with server.repo.unit_of_work(SYSTEM) as uow:
                for resource_type, id_, body in changed:
                    await server.repo.update(uow, resource_type, id_, body)
            return
        except FhirError as exc:
            if exc.status != 409 or attempt == ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


async def _stored_as(server: FhirServer, definition: Definition) -> bool:
    resource_type, id_, body = definition
    try:
        stored = orjson.loads((await server.repo.read(resource_type, id_)).content or "{}")
    except FhirError:
        return False
    stored.pop("meta", None)
    return bool(stored == body)
