"""When a referral Task ends, its ServiceRequest follows: completed -> completed; cancelled,
failed or rejected -> revoked, unless the ServiceRequest already ended. Runs before commit, in
the same transaction as the Task change, so the loop is closed in one place and atomically."""

from __future__ import annotations

from typing import Any

import orjson
from closedloop.context import SYSTEM
from closedloop.errors import FhirError
from closedloop.fhir.search.index.reference import parse_reference
from closedloop.fhir.storage.repository import Repository, UnitOfWork

from referral_api.profiles import task_referral

SR_FOLLOWS = {
    "completed": "completed",
    "cancelled": "revoked",
    "failed": "revoked",
    "rejected": "revoked",
}
SR_ENDED = frozenset({"completed", "revoked", "entered-in-error"})


def _ended_referrals(uow: UnitOfWork) -> list[dict[str, Any]]:
    out = []
    for change in uow.changes:
        task = change.resource
        if change.resource_type != "Task" or task is None or not task_referral.applies(task):
            continue
        status = task.get("status")
        previous = (change.previous or {}).get("status")
        if status in SR_FOLLOWS and status != previous:
            out.append(task)
    return out


async def close_loop(repo: Repository, uow: UnitOfWork) -> None:
    for task in _ended_referrals(uow):
        parsed = parse_reference((task.get("focus") or {}).get("reference") or "")
        if parsed is None or parsed[0] != "ServiceRequest" or parsed[2] is not None:
            continue  # only a ServiceRequest stored here can follow
        try:
            stored = await repo.read("ServiceRequest", str(parsed[1]), uow.conn)
        except FhirError:
            continue  # not stored here (or deleted): nothing to close
        sr = orjson.loads(stored.content or "{}")
        if sr.get("status") in SR_ENDED:
            continue
        sr["status"] = SR_FOLLOWS[str(task["status"])]
        # the server's own rule, not the caller's write: a CBO may not change a
        # ServiceRequest (referral_api.access.writes), but its Task's end closes the loop
        caller, uow.ctx = uow.ctx, SYSTEM
        try:
            await repo.update(uow, "ServiceRequest", sr["id"], sr)
        finally:
            uow.ctx = caller
