"""Keeps ``referral_facts`` in step with the store: a ``before_commit`` listener, so a fact
row changes in the same transaction as the Task, ServiceRequest or Patient it comes from."""

from __future__ import annotations

from typing import Any

import orjson
from closedloop.errors import FhirError
from closedloop.fhir.instant import now_us
from closedloop.fhir.storage.repository import Repository, UnitOfWork
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from referral_api.measures import facts
from referral_api.measures.tables import referral_facts
from referral_api.profiles import task_referral

F = referral_facts.c


async def _stored(repo: Repository, conn: AsyncConnection, rtype: str, rid: str | None) -> Any:
    if rid is None:
        return None
    try:
        stored = await repo.read(rtype, rid, conn)
    except FhirError:
        return None  # not stored here, or deleted: the figure says "not recorded"
    return orjson.loads(stored.content or "{}")


async def _fact(conn: AsyncConnection, task_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(referral_facts).where(F.task_id == task_id))).first()
    return dict(row._mapping) if row is not None else None


async def _task_changed(repo: Repository, conn: AsyncConnection, change: Any) -> None:
    task = change.resource
    if task is None:  # only a draft may be deleted: it was never sent
        await conn.execute(delete(referral_facts).where(F.task_id == change.resource_id))
        return
    if not task_referral.applies(task):
        return
    # a create (version 1) has no row yet: no round trip to look for one
    old = None if change.version_id == 1 else await _fact(conn, change.resource_id)
    row = facts.step(old, task, change.previous, now_us())
    if old is None or old.get("service_request_id") != row["service_request_id"]:
        sr = await _stored(repo, conn, "ServiceRequest", row["service_request_id"])
        row["category"] = facts.category_of(sr)
    if old is None or old.get("patient_id") != row["patient_id"]:
        patient = await _stored(repo, conn, "Patient", row["patient_id"])
        row.update(facts.patient_fields(patient))
    if old is None:
        await conn.execute(insert(referral_facts).values(**row))
    else:
        changed = {k: v for k, v in row.items() if old.get(k) != v}
        if changed:
            await conn.execute(
                update(referral_facts).where(F.task_id == row["task_id"]).values(**changed)
            )


async def project(repo: Repository, uow: UnitOfWork) -> None:
    conn = uow.conn
    for change in uow.changes:
        if change.resource_type == "Task":
            await _task_changed(repo, conn, change)
        elif change.resource_type == "Patient":
            await conn.execute(
                update(referral_facts)
                .where(F.patient_id == change.resource_id)
                .values(**facts.patient_fields(change.resource))
            )
        elif change.resource_type == "ServiceRequest":
            await conn.execute(
                update(referral_facts)
                .where(F.service_request_id == change.resource_id)
                .values(category=facts.category_of(change.resource))
            )
