"""Rebuilds ``referral_facts`` from the stored history of every Task (``referral-api
measures-backfill``): for a database that had referrals before the projection existed, or to
repair it. Each Task's versions are replayed through the same ``facts.step`` as live writes,
then the ServiceRequests' categories and the Patients' demographics are read as they are now.
One transaction: the table is never seen half-rebuilt."""

from __future__ import annotations

from typing import Any

import orjson
from closedloop.db import Database
from closedloop.fhir.storage.tables import resource_versions, resources
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from referral_api.measures import facts
from referral_api.measures.tables import referral_facts
from referral_api.profiles import task_referral

CHUNK = 500


async def _current(conn: AsyncConnection, rtype: str, ids: set[str]) -> dict[str, Any]:
    r = resources.c
    out: dict[str, Any] = {}
    listed = sorted(ids)
    for i in range(0, len(listed), CHUNK):
        stmt = select(r.id, r.content).where(
            r.resource_type == rtype, r.id.in_(listed[i : i + CHUNK]), r.content.is_not(None)
        )
        for rid, content in (await conn.execute(stmt)).all():
            out[rid] = orjson.loads(content)
    return out


async def _replay(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    v = resource_versions.c
    stmt = (
        select(v.id, v.last_updated, v.content)
        .where(v.resource_type == "Task")
        .order_by(v.id, v.version_id)
    )
    rows: dict[str, dict[str, Any]] = {}
    previous: dict[str, Any] = {}
    async for task_id, last_updated, content in await conn.stream(stmt):
        if content is None:  # deleted (only drafts may be): it was never sent
            rows.pop(task_id, None)
            previous.pop(task_id, None)
            continue
        task = orjson.loads(content)
        if task_referral.applies(task):
            rows[task_id] = facts.step(rows.get(task_id), task, previous.get(task_id), last_updated)
        previous[task_id] = task
    return rows


async def backfill(db: Database) -> int:
    """Rebuild the table; the number of referral Tasks it now holds."""
    async with db.write() as conn:
        rows = await _replay(conn)
        sr_ids = {r["service_request_id"] for r in rows.values() if r.get("service_request_id")}
        srs = await _current(conn, "ServiceRequest", sr_ids)
        patients = await _current(
            conn, "Patient", {r["patient_id"] for r in rows.values() if r.get("patient_id")}
        )
        for row in rows.values():
            row["category"] = facts.category_of(srs.get(row.get("service_request_id") or ""))
            row.update(facts.patient_fields(patients.get(row.get("patient_id") or "")))
        await conn.execute(delete(referral_facts))
        columns = [c.name for c in referral_facts.columns]
        listed = [{c: row.get(c) for c in columns} for row in rows.values()]
        for i in range(0, len(listed), CHUNK):
            await conn.execute(insert(referral_facts), listed[i : i + CHUNK])
    return len(rows)
