"""One sweep at a given time ``now`` (microseconds; the caller's clock, so tests choose it):

1. **stalled**: referral Tasks still waiting (``requested``/``received``: neither accepted,
   declined nor cancelled) more than the stall limit of their category after they were sent
   (the loop metrics' ``referral_facts``, so the figures and the worklist agree) get a
   follow-up Task (``followup.task``);
2. **escalated**: follow-ups whose referral is still waiting ``escalate_days`` after it became
   stalled get priority ``urgent`` and businessStatus ``escalated``.

Exactly once, whichever replicas sweep at the same time: each referral is handled in its own
transaction, which first locks the referral Task's row (an answer from the CBO waits for it, or
is seen), then claims the step in ``referral_followups`` (insert on conflict do nothing / update
where still null); a sweep that loses the claim writes nothing. Candidates are read first
without locks; the claim is what decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from closedloop.context import SYSTEM
from closedloop.errors import FhirError
from closedloop.fhir.instant import format_instant
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.repository import UnitOfWork
from closedloop.fhir.storage.tables import resources
from sqlalchemy import and_, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from referral_api.followup import task as followup
from referral_api.followup.settings import DAY_US, FollowupSettings
from referral_api.followup.tables import referral_followups
from referral_api.measures.compute import stall_limit
from referral_api.measures.tables import referral_facts

log = logging.getLogger("referral_api.followup")
F, R = referral_facts.c, referral_followups.c
BATCH = 200


@dataclass
class SweepResult:
    stalled: int = 0
    escalated: int = 0


def _waiting() -> Any:
    return and_(
        F.status.in_(sorted(followup.WAITING)),
        F.first_response_at.is_(None),
        F.cancelled_at.is_(None),
        F.sent_at.is_not(None),
    )


async def _lock_task(uow: UnitOfWork, task_id: str) -> dict[str, Any] | None:
    """The Task's current content, its row locked until commit (SQLite: the write lock is
    already the whole database's)."""
    r = resources.c
    row = (
        await uow.conn.execute(
            select(r.content)
            .where(r.resource_type == "Task", r.id == task_id, r.deleted.is_(False))
            .with_for_update()
        )
    ).first()
    return orjson.loads(row[0]) if row and row[0] else None


async def _organization_of(server: FhirServer, uow: UnitOfWork, ref: str | None) -> str | None:
    """The requesting Organization: the requester itself, or a PractitionerRole's."""
    if not ref:
        return None
    if ref.startswith("Organization/"):
        return ref
    if ref.startswith("PractitionerRole/"):
        try:
            stored = await server.repo.read("PractitionerRole", ref.split("/", 1)[1], uow.conn)
        except FhirError:
            return None
        org = (orjson.loads(stored.content or "{}").get("organization") or {}).get("reference")
        return str(org) if isinstance(org, str) and org.startswith("Organization/") else None
    return None


async def _stall_one(server: FhirServer, settings: FollowupSettings, row: Any, now: int) -> bool:
    async with server.repo.unit_of_work(SYSTEM) as uow:
        referral = await _lock_task(uow, row.task_id)
        if referral is None or referral.get("status") not in followup.WAITING:
            return False  # answered (or ended) since the candidates were read
        ins = pg_insert if server.db.postgres else sqlite_insert
        claimed = await uow.conn.execute(
            ins(referral_followups)
            .values(
                referral_task_id=row.task_id,
                followup_task_id="",
                stalled_at=now,
            )
            .on_conflict_do_nothing(index_elements=["referral_task_id"])
        )
        if claimed.rowcount != 1:
            return False  # another sweep made it
        owner = await _organization_of(server, uow, row.requester_org)
        days = settings.stall_days_for(row.category)
        body = followup.followup_task(referral, owner, days, format_instant(now))
        written = await server.repo.create(uow, "Task", body)
        await uow.conn.execute(
            update(referral_followups)
            .where(R.referral_task_id == row.task_id)
            .values(followup_task_id=written.stored.id)
        )
    return True


async def _escalate_one(server: FhirServer, row: Any, now: int) -> bool:
    async with server.repo.unit_of_work(SYSTEM) as uow:
        referral = await _lock_task(uow, row.referral_task_id)
        if referral is None or referral.get("status") not in followup.WAITING:
            return False
        claimed = await uow.conn.execute(
            update(referral_followups)
            .where(
                R.referral_task_id == row.referral_task_id,
                R.escalated_at.is_(None),
                R.closed_at.is_(None),
            )
            .values(escalated_at=now)
        )
        if claimed.rowcount != 1:
            return False
        try:
            stored = await server.repo.read("Task", row.followup_task_id, uow.conn)
        except FhirError:
            return True  # the follow-up Task was removed by hand: nothing left to raise
        task = orjson.loads(stored.content or "{}")
        if task.get("status") in ("completed", "cancelled", "entered-in-error"):
            return True  # closed by hand
        await server.repo.update(
            uow, "Task", task["id"], followup.escalated(task, format_instant(now))
        )
    return True


async def sweep(server: FhirServer, settings: FollowupSettings, now: int) -> SweepResult:
    result = SweepResult()
    limit = stall_limit(settings.stall_days, settings.stall_days_by_category)
    stalled = (
        select(F.task_id, F.requester_org, F.category)
        .select_from(referral_facts.outerjoin(referral_followups, R.referral_task_id == F.task_id))
        .where(R.referral_task_id.is_(None), _waiting(), F.sent_at < literal(now) - limit)
        .order_by(F.sent_at)
        .limit(BATCH)
    )
    overdue = (
        select(R.referral_task_id, R.followup_task_id)
        .select_from(referral_followups.join(referral_facts, F.task_id == R.referral_task_id))
        .where(
            R.closed_at.is_(None),
            R.escalated_at.is_(None),
            _waiting(),
            F.sent_at < literal(now) - limit - literal(settings.escalate_days * DAY_US),
        )
        .order_by(F.sent_at)
        .limit(BATCH)
    )
    for statement, act in ((stalled, "stall"), (overdue, "escalate")):
        seen: set[str] = set()
        while True:
            async with server.db.read() as conn:
                rows = [r for r in (await conn.execute(statement)).all() if r[0] not in seen]
            if not rows:
                break
            for row in rows:
                seen.add(row[0])
                try:
                    if act == "stall":
                        result.stalled += await _stall_one(server, settings, row, now)
                    else:
                        result.escalated += await _escalate_one(server, row, now)
                except FhirError as exc:  # one referral's trouble is not the others'
                    log.warning("follow-up %s failed: %s", act, exc.status)
    if result.stalled or result.escalated:
        log.info(
            "follow-up sweep", extra={"stalled": result.stalled, "escalated": result.escalated}
        )
    return result
