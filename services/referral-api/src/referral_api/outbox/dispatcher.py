"""Delivers outbox events, in order, to the event sink (the notifier's intake) over HTTP.

- Order: events go out by ``seq``, one at a time; a failed delivery is retried (exponential
  backoff with jitter, capped) before any later event is tried, so nothing is reordered.
- Nothing lost: an event is marked delivered only after a 2xx; a crash in between means it is
  sent again, and the receiver deduplicates on the event id (``Idempotency-Key`` for a single
  event). Pending events go in groups (a JSON array, in order) to keep up with bursts.
- Two processes: only the holder of the ``dispatcher`` lease delivers; a lease is renewed
  while working and taken over once it expires.
- Traced: each post continues the trace of its first event's request (the ``traceparent``
  stored with the event; the others' are linked), and httpx passes it on to the receiver.
- Authenticated: with a ``token`` (a shared secret), each post carries ``Authorization: Bearer
  <token>``; otherwise the ``client``'s own auth (referral-api's access token) does. The
  notifier refuses events without one; a refusal is retried like any failed delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid

import httpx
from closedloop.db.engine import Database
from closedloop.fhir.instant import now_us
from closedloop.observability.tracing import span_from
from opentelemetry.trace import SpanKind
from sqlalchemy import select, update

from referral_api.outbox.metrics import OutboxMetrics
from referral_api.outbox.tables import outbox_events, outbox_leases

log = logging.getLogger("referral_api.outbox")


class OutboxDispatcher:
    def __init__(
        self,
        db: Database,
        sink_url: str,
        client: httpx.AsyncClient,
        *,
        lease_seconds: float = 10.0,
        idle_poll: float = 1.0,
        max_backoff: float = 30.0,
        batch: int = 100,
        per_post: int = 50,
        token: str | None = None,
        metrics: OutboxMetrics | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.sink_url = sink_url
        self.client = client
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.holder = uuid.uuid4().hex
        self.lease_us = int(lease_seconds * 1_000_000)
        self.idle_poll = idle_poll
        self.max_backoff = max_backoff
        self.batch = batch
        self.per_post = max(1, per_post)
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self) -> None:
        self._stopping = True
        self.wake.set()
        if self._task is not None:
            # let a delivery in flight finish and be marked (a cancelled one is sent again)
            done, _ = await asyncio.wait({self._task}, timeout=10)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self._release()

    def notify(self) -> None:
        """A change committed: look for new events now rather than at the next poll."""
        self.wake.set()

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                if not await self._hold_lease():
                    await self._sleep(self.lease_us / 2_000_000)
                    continue
                delivered = await self._deliver_pending()
                failures = 0 if delivered is not False else failures + 1
                if delivered is False:
                    await self._sleep(self._backoff(failures))
                elif delivered == 0:
                    await self._sleep(self.idle_poll)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly away; keep the loop alive
                log.exception("outbox dispatcher error")
                failures += 1
                await self._sleep(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        base = min(self.max_backoff, 0.1 * 2 ** min(failures, 10))
        return base * (0.5 + random.random() / 2)

    async def _sleep(self, seconds: float) -> None:
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=seconds)

    async def _hold_lease(self) -> bool:
        now = now_us()
        lease = outbox_leases.c
        async with self.db.write() as conn:
            result = await conn.execute(
                update(outbox_leases)
                .where(
                    lease.name == "dispatcher",
                    (lease.holder == self.holder) | (lease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=now + self.lease_us)
            )
        return result.rowcount == 1

    async def _release(self) -> None:
        lease = outbox_leases.c
        with contextlib.suppress(Exception):
            async with self.db.write() as conn:
                await conn.execute(
                    update(outbox_leases)
                    .where(lease.name == "dispatcher", lease.holder == self.holder)
                    .values(holder=None, expires_at=0)
                )

    async def _deliver_pending(self) -> int | bool:
        """Deliver what is pending; the count delivered, or False when a delivery failed.

        Events go ``per_post`` at a time, as a JSON array in seq order (one event alone is sent
        as an object). Each group is marked delivered after the receiver's 2xx; a crash in
        between re-sends that group, which the receiver recognises by the event ids. The lease
        is renewed whenever a third of it has passed.
        """
        e = outbox_events.c
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(e.seq, e.event_id, e.payload, e.traceparent)
                    .where(e.delivered_at.is_(None))
                    .order_by(e.seq)
                    .limit(self.batch)
                )
            ).all()
        if not rows:
            return 0
        renewed = now_us()  # the loop took the lease just before calling us
        done = 0
        for start in range(0, len(rows), self.per_post):
            group = rows[start : start + self.per_post]
            if now_us() - renewed > self.lease_us // 3:  # a slow batch keeps its lease fresh
                if not await self._hold_lease():
                    return done  # another process took over; it continues from here
                renewed = now_us()
            with span_from(
                "outbox send",
                group[0].traceparent,
                kind=SpanKind.PRODUCER,
                also=[r.traceparent for r in group[1:]],
                attributes={"closedloop.events": len(group)},
            ):
                error = await self._post([r.event_id for r in group], [r.payload for r in group])
            if self.metrics is not None:
                self.metrics.sent(len(group), failed=error is not None)
            seqs = [r.seq for r in group]
            if error is not None:
                async with self.db.write() as conn:
                    await conn.execute(
                        update(outbox_events)
                        .where(e.seq.in_(seqs))
                        .values(attempts=e.attempts + 1, last_error=error[:500])
                    )
                log.warning(
                    "event delivery failed", extra={"event_id": group[0].event_id, "error": error}
                )
                return False
            await self._mark(seqs)
            done += len(group)
        return done

    async def _mark(self, seqs: list[int]) -> None:
        if not seqs:
            return
        e = outbox_events.c
        async with self.db.write() as conn:
            await conn.execute(
                update(outbox_events)
                .where(e.seq.in_(seqs))
                .values(delivered_at=now_us(), attempts=e.attempts + 1)
            )

    async def _post(self, event_ids: list[str], payloads: list[str]) -> str | None:
        if len(payloads) == 1:
            body, key = payloads[0], event_ids[0]
        else:
            body, key = "[" + ",".join(payloads) + "]", f"{event_ids[0]}..{event_ids[-1]}"
        try:
            response = await self.client.post(
                self.sink_url,
                content=body,
                headers={"Content-Type": "application/json", "Idempotency-Key": key, **self._auth},
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"
