"""Records audit events off the request path: ``record`` appends to a buffer, a background
task writes what is buffered every ``flush_seconds`` (or sooner once ``batch`` are waiting)
in one multi-row INSERT per table. The buffer is bounded: when ``max_pending`` events wait, the
recording request writes them itself before going on (back-pressure; nothing is dropped).
``stop`` writes what is left, so a normal shutdown loses nothing; a crash loses at most the
last ``flush_seconds`` of events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from closedloop.audit.security import REASON
from closedloop.audit.tables import audit_entities, audit_events
from closedloop.context import SYSTEM, RequestContext
from closedloop.db.direct import insert_rows
from closedloop.db.engine import Database
from closedloop.fhir.instant import now_us
from closedloop.hooks import Change, HookPoint, Hooks, Interaction, Shown

log = logging.getLogger("closedloop.audit")
MAX_ENTITIES = 200  # per event: a page of matches and its includes
ACTIONS = {"create": "C", "update": "U", "delete": "D"}
REFUSED_ACTIONS = {
    "create": "C",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "read": "R",
    "vread": "R",
    "history-instance": "R",
}
SHOWN = {"read": ("R", "read"), "history": ("R", "history"), "match": ("E", "search")}


class AuditTrail:
    def __init__(
        self,
        db: Database,
        source: str,
        *,
        flush_seconds: float = 0.2,
        batch: int = 500,
        max_pending: int = 20_000,
    ) -> None:
        self.db = db
        self.source = source
        self.flush_seconds = flush_seconds
        self.batch = batch
        self.max_pending = max_pending
        self._events: list[dict[str, Any]] = []
        self._entities: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._stopping = False

    # -- recording -------------------------------------------------------------------------

    async def record(
        self,
        ctx: RequestContext | None,
        action: str,
        subtype: str,
        status: int,
        resource_type: str | None,
        entities: Sequence[tuple[str, str]] = (),
        request_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        """``reason``: why a security decision went as it did (``closedloop.audit.security``),
        a short code, never a secret or a token."""
        if ctx is SYSTEM:
            return  # the service's own work (a worker, a loop-closing write) is not a caller
        event_id = uuid.uuid4().hex
        self._events.append(
            {
                "id": event_id,
                "recorded": now_us(),
                "action": action,
                "subtype": subtype,
                "outcome": "0" if status < 400 else "4",
                "status": status,
                "agent_subject": ctx.subject if ctx else None,
                "agent_client": ctx.client_id if ctx else None,
                "agent_role": ctx.role if ctx else None,
                "agent_organization": ctx.organization if ctx else None,
                "resource_type": resource_type,
                "source": self.source,
                "request_id": (request_id or (ctx.request_id if ctx else "-"))[:64],
                "entity_count": len(entities),
            }
        )
        self._entities.extend(
            {"event_id": event_id, "entity_type": t, "entity_id": i}
            for t, i in entities[:MAX_ENTITIES]
        )
        if reason:
            self._entities.append(
                {"event_id": event_id, "entity_type": REASON, "entity_id": reason[:64]}
            )
        if len(self._events) >= self.max_pending:
            await self.flush()  # back-pressure: this request writes the backlog
        elif len(self._events) >= self.batch:
            self._wake.set()

    async def refused(
        self, ctx: RequestContext | None, interaction: Interaction, status: int, request_id: str
    ) -> None:
        """An authorization decision against the caller (401, 403, 429)."""
        name = interaction.effective
        action = REFUSED_ACTIONS.get(name, "E")
        entities = (
            [(interaction.resource_type, interaction.resource_id)]
            if interaction.resource_type and interaction.resource_id
            else []
        )
        await self.record(
            ctx, action, name, status, interaction.resource_type, entities, request_id
        )

    async def on_show(self, ctx: RequestContext, shown: Sequence[Shown], /) -> None:
        first = shown[0].mode if shown else "read"
        action, subtype = SHOWN.get(first, ("R", first))
        await self.record(
            ctx,
            action,
            subtype,
            200,
            shown[0].resource_type if shown else None,
            [(s.resource_type, s.resource_id) for s in shown],
        )

    async def on_commit(self, ctx: RequestContext, changes: list[Change], /) -> None:
        for change in changes:
            await self.record(
                ctx,
                ACTIONS.get(change.interaction, "U"),
                change.interaction,
                201 if change.interaction == "create" else 200,
                change.resource_type,
                [(change.resource_type, change.resource_id)],
            )

    def install(self, hooks: Hooks) -> None:
        hooks.register(HookPoint.BEFORE_SHOW, self.on_show)
        hooks.register(HookPoint.AFTER_COMMIT, self.on_commit)

    # -- writing ---------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="audit-trail")

    async def stop(self) -> None:
        """Let the writer finish the batch it is writing (cancelling it mid-INSERT could write
        a batch and still put it back, to be written twice), then write what is left."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:  # shutting down with the database away: say how many are lost
            log.exception("audit events not written at shutdown", extra={"lost": len(self._events)})

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.flush()
            except Exception:  # the database may be briefly away: the events wait
                log.exception("writing the audit trail failed; retrying")
                if not self._stopping:
                    await asyncio.sleep(1.0)

    async def flush(self) -> None:
        async with self._lock:
            if not self._events:
                return
            events, entities = self._events, self._entities
            self._events, self._entities = [], []
            try:
                async with self.db.write() as conn:
                    await insert_rows(conn, audit_events, events)
                    if entities:
                        await insert_rows(conn, audit_entities, entities)
            except IntegrityError:
                # already written (a cancelled flush that committed): never block the trail
                log.warning("audit batch already written", extra={"events": len(events)})
            except Exception:
                # rolled back: put them back, in front of what came meanwhile, for next time
                self._events[:0], self._entities[:0] = events, entities
                raise
