"""Closes a referral's open follow-up when the CBO answers it (accepted, declined: the
follow-up is ``completed``) or it ends otherwise (cancelled, retracted: ``cancelled``). A
before-commit rule, in the answer's own transaction, so the follow-up never outlives it; it
runs before the outbox, so the follow-up's change is notified too."""

from __future__ import annotations

from typing import Any

import orjson
from closedloop.context import SYSTEM
from closedloop.errors import FhirError
from closedloop.fhir.instant import format_instant, now_us
from closedloop.fhir.storage.repository import Repository, UnitOfWork
from sqlalchemy import select, update

from referral_api.followup import task as followup
from referral_api.followup.tables import referral_followups
from referral_api.profiles import task_referral

R = referral_followups.c
ANSWERED = frozenset({"accepted", "rejected", "in-progress", "on-hold", "completed", "failed"})


def _left_waiting(uow: UnitOfWork) -> list[dict[str, Any]]:
    out = []
    for change in uow.changes:
        task, before = change.resource, change.previous
        if change.resource_type != "Task" or task is None or before is None:
            continue
        if not task_referral.applies(task):
            continue
        if before.get("status") in followup.WAITING and task.get("status") not in followup.WAITING:
            out.append(task)
    return out


async def close_followups(repo: Repository, uow: UnitOfWork) -> None:
    for referral in _left_waiting(uow):
        now = now_us()
        closed = await uow.conn.execute(
            update(referral_followups)
            .where(R.referral_task_id == referral["id"], R.closed_at.is_(None))
            .values(closed_at=now)
        )
        if closed.rowcount != 1:
            continue  # it never stalled (the usual case), or is closed already
        followup_id = (
            await uow.conn.execute(
                select(R.followup_task_id).where(R.referral_task_id == referral["id"])
            )
        ).scalar_one()
        try:
            stored = await repo.read("Task", followup_id, uow.conn)
        except FhirError:
            continue
        task = orjson.loads(stored.content or "{}")
        if task.get("status") in ("completed", "cancelled", "entered-in-error"):
            continue  # closed by hand already
        answered = referral.get("status") in ANSWERED
        body = followup.closed(task, answered, format_instant(now))
        # the server's rule, not the caller's write (a CBO may not change this Task)
        caller, uow.ctx = uow.ctx, SYSTEM
        try:
            await repo.update(uow, "Task", task["id"], body)
        finally:
            uow.ctx = caller
