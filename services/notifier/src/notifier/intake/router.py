"""``POST /events``: referral-api's outbox delivers Task/ServiceRequest changes here, one event
(a JSON object) or several in order (a JSON array).

Idempotent on the event id (the body's ``id``, or the ``Idempotency-Key`` header for a single
event): an event delivered twice is recorded and notified once. Answers 200 ``{"status":
"accepted"|"duplicate", "accepted": n, "duplicates": n, "matched": n}``; a malformed event is a
400 OperationOutcome and nothing of the request is recorded. Only referral-api may post
(``intake.auth``): a request without the shared secret is refused before its body is read.
"""

from __future__ import annotations

from typing import Any

import orjson
from closedloop import errors
from closedloop.context import SYSTEM
from closedloop.fhir.instant import now_us
from closedloop.fhir.rest.negotiation import read_body
from closedloop.fhir.server import FhirServer
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from notifier.intake.auth import require_event_sender
from notifier.subscriptions.matching import enqueue
from notifier.subscriptions.tables import intake_events

router = APIRouter()
TYPES = ("Task", "ServiceRequest")
INTERACTIONS = ("create", "update", "delete")


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise errors.invalid("The event is not JSON", cl_code="CL-8410") from None


def _event(event: Any, key: str | None, where: str = "") -> dict[str, Any]:
    if not isinstance(event, dict):
        raise errors.invalid(f"{where}The event must be a JSON object", cl_code="CL-8410")
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
        raise errors.invalid(f"{where}The event needs " + "; ".join(problems), cl_code="CL-8411")
    event["id"] = event_id
    return event


@router.post("/events", tags=["intake"], dependencies=[Depends(require_event_sender)])
async def receive_event(request: Request) -> JSONResponse:
    """One event (a JSON object) or several (a JSON array, recorded in order in one
    transaction)."""
    server: FhirServer = request.app.state.fhir
    body = _parse(await read_body(request, server.config.max_body_bytes))
    if isinstance(body, list):
        events = [_event(e, None, f"events[{i}]: ") for i, e in enumerate(body)]
    else:
        events = [_event(body, request.headers.get("idempotency-key"))]
    ins = pg_insert if server.db.postgres else sqlite_insert
    accepted = duplicates = matched = 0
    async with server.repo.unit_of_work(SYSTEM) as uow:
        for event in events:
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
                duplicates += 1
                continue
            accepted += 1
            matched += await enqueue(server, uow, event)
    worker = getattr(request.app.state, "delivery", None)
    if worker is not None and matched:
        worker.notify()
    status = "duplicate" if duplicates and not accepted else "accepted"
    return JSONResponse(
        {"status": status, "accepted": accepted, "duplicates": duplicates, "matched": matched}
    )
