"""Recording a subscription's status and why, in the state row and the Subscription resource
at once, and describing a failure in words safe to store and log: never SQL parameters, never
what a message said."""

from __future__ import annotations

from typing import Any

import orjson
from closedloop.errors import FhirError
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.repository import UnitOfWork
from closedloop.fhir.storage.tables import resources
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from notifier.subscriptions.tables import subscription_state

MAX_REASON = 500  # the width of subscription_state.error


def describe_failure(exc: BaseException) -> str:
    """A FHIR error says what it says; a database error gives its kind (and, for an operational
    limit such as SQLite's expression depth, the driver's one-line reason); anything else its
    type."""
    if isinstance(exc, FhirError):
        return str(exc)
    if isinstance(exc, OperationalError):
        first = str(exc.orig).splitlines()[0][:160] if str(exc.orig) else ""
        return f"database error ({type(exc.orig).__name__}: {first})"
    if isinstance(exc, DBAPIError):
        return f"database error ({type(exc.orig).__name__})"
    return type(exc).__name__


async def record_status(
    server: FhirServer,
    uow: UnitOfWork,
    subscription_id: str,
    status: str,
    error: str | None,
    **state: Any,
) -> None:
    """Set ``status`` and ``error`` (plus any other ``state`` columns) in the state row and in
    the Subscription resource, in the caller's transaction (a system write: not re-checked)."""
    reason = error[:MAX_REASON] if error else None
    if server.db.postgres:
        # the Subscription's row first, then its state row: the order of a client's update or
        # delete (the resource, then ``lifecycle.write_state``), or the two deadlock
        await uow.conn.execute(
            select(resources.c.pk)
            .where(resources.c.resource_type == "Subscription", resources.c.id == subscription_id)
            .with_for_update()
        )
    await uow.conn.execute(
        update(subscription_state)
        .where(subscription_state.c.subscription_id == subscription_id)
        .values(status=status, error=reason, **state)
    )
    try:
        stored = await server.repo.read("Subscription", subscription_id, conn=uow.conn)
    except FhirError:
        return  # deleted meanwhile: the state row is all there is
    sub = orjson.loads(stored.content or "{}")
    if sub.get("status") == status and sub.get("error") == reason:
        return
    sub["status"] = status
    if reason:
        sub["error"] = reason
    else:
        sub.pop("error", None)
    await server.repo.update(uow, "Subscription", subscription_id, sub)
