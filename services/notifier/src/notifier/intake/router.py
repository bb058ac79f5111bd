"""``POST /events``: referral-api's outbox delivers each Task/ServiceRequest change here.

Idempotent on the event id (the ``Idempotency-Key`` header, or the body's ``id``): an event
delivered twice is recorded and notified once. Answers 200 ``{"status": "accepted"|"duplicate",
"matched": n}``; a malformed event is a 400 OperationOutcome.
"""

from __future__ import annotations

from typing import Any

import orjson
from closedloop import errors
from closedloop.context import SYSTEM
from closedloop.fhir.instant import now_us
from closedloop.fhir.rest.negotiation import read_body
from closedloop.fhir.server import FhirServer
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from notifier.subscriptions.matching import enqueue
from notifier.subscriptions.tables import intake_events

router = APIRouter()
TYPES = ("Task", "ServiceRequest")
INTERACTIONS = ("create", "update", "delete")


def _event(body: bytes, key: str | None) -> dict[str, Any]:
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise errors.invalid("The event is not JSON", cl_code="CL-8410") from None
    if not isinstance(event, dict):
        raise errors.invalid("The event must be a JSON object", cl_code="CL-8410")
    event_id = key or event.get("id")
    problems = []
    if not isinstance(event_id, str) or not event_id or len(event_id) > 64:
        problems.append("id (or an Idempotency-Key header) of at most 64 characters")
    if event.get("resourceType") not in TYPES:
        problems.append(f"resourceType, one of {', '.join(TYPES)}")
    if not isinstance(event.get("resourceId"), str) or not event.get("resourceId"):
        problems.append("resourceId")
    if event.get("interaction") not in INTERACTIONS:
        problems.append(f"interaction, one of {', '.join(INTERACTIONS)}")
    if event.get("interaction") != "delete" and not isinstance(event.get("resource"), dict):
        problems.append("resource (the changed resource)")
    if problems:
        raise errors.invalid("The event needs " + "; ".join(problems), cl_code="CL-8411")
    event["id"] = event_id
    return event


@router.post("/events", tags=["intake"])
async def receive_event(request: Request) -> JSONResponse:
    server: FhirServer = request.app.state.fhir
    event = _event(
        await read_body(request, server.config.max_body_bytes),
        request.headers.get("idempotency-key"),
    )
    ins = pg_insert if server.db.postgres else sqlite_insert
    async with server.repo.unit_of_work(SYSTEM) as uow:
        recorded = await uow.conn.execute(
            ins(intake_events)
            .values(
                event_id=event["id"],
                received_at=now_us(),
                resource_type=event["resourceType"],
                resource_id=event["resourceId"],
                interaction=event["interaction"],
            )
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
        if recorded.rowcount == 0:
            return JSONResponse({"status": "duplicate", "matched": 0})
        matched = await enqueue(server, uow, event)
    worker = getattr(request.app.state, "delivery", None)
    if worker is not None:
        worker.notify()
    return JSONResponse({"status": "accepted", "matched": matched})
