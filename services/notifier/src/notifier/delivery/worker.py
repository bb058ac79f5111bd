"""The delivery worker: hands each subscription's work to one process at a time and sends it.

- Order: a subscription's events go out by event number; while one is failing, later ones
  wait (one delivery in flight per subscription).
- Retries: exponential backoff with jitter, for at most ``max_age`` after the first attempt;
  then the subscription goes to ``error`` and its events stay in the log for ``$events``.
- Restarts lose nothing: what is due, what is delivered and every counter live in the
  database; an event is marked delivered only after the receiver's 2xx.
- Several processes: a subscription is processed under a lease (``subscription_state``), so
  two notifiers never send the same event at once.
- Handshake for new rest-hook subscriptions (2xx: ``active``; otherwise ``error``), and a
  heartbeat every heartbeat period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from typing import Any

import orjson
from closedloop.context import SYSTEM
from closedloop.errors import FhirError
from closedloop.fhir.instant import now_us
from closedloop.fhir.server import FhirServer
from sqlalchemy import case, func, select, update

from notifier.channels import DeliveryError
from notifier.delivery.bundles import StoredEvent, notification_bundle
from notifier.delivery.channels import Channels
from notifier.subscriptions.spec import SubscriptionSpec, read_spec
from notifier.subscriptions.tables import notification_events, subscription_state

log = logging.getLogger("notifier.delivery")
SECOND = 1_000_000
FAR = 2**62


class DeliveryWorker:
    def __init__(
        self,
        server: FhirServer,
        channels: Channels,
        *,
        subscription_base: str,
        focus_base: str,
        max_age_seconds: float = 86_400,
        retry_initial: float = 1.0,
        retry_max: float = 300.0,
        poll_seconds: float = 0.5,
        lease_seconds: float = 30.0,
    ) -> None:
        self.server = server
        self.channels = channels
        self.subscription_base = subscription_base.rstrip("/")
        self.focus_base = focus_base.rstrip("/")
        self.max_age = int(max_age_seconds * SECOND)
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.poll = poll_seconds
        self.lease = int(lease_seconds * SECOND)
        self.holder = uuid.uuid4().hex
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sent: dict[str, int] = {}  # subscription -> when we last sent, this round

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notifier-delivery")

    async def stop(self) -> None:
        """Finish the notification in flight, then stop (a graceful shutdown duplicates
        nothing)."""
        self._stopping = True
        self.wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def notify(self) -> None:
        self.wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                due = await self._due()
                for sub_id in due:
                    if self._stopping:
                        break
                    if await self._claim(sub_id):
                        released = False
                        try:
                            released = await self._process(sub_id)
                        finally:
                            if not released:
                                await self._release(sub_id)
                if not due:
                    await self._sleep(self.poll)
            except Exception:  # keep delivering after a passing database or network fault
                log.exception("delivery loop error")
                await self._sleep(1.0)

    async def _sleep(self, seconds: float) -> None:
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=seconds)

    # -- leases ----------------------------------------------------------------------------

    async def _due(self) -> list[str]:
        s = subscription_state.c
        now = now_us()
        async with self.server.db.read() as conn:
            rows = await conn.execute(
                select(s.subscription_id)
                .where(
                    s.status.in_(("requested", "active")),
                    s.next_due_at <= now,
                    (s.lease_expires < now) | (s.lease_holder == self.holder),
                )
                .order_by(s.next_due_at)
                .limit(50)
            )
            return [r[0] for r in rows]

    async def _claim(self, sub_id: str) -> bool:
        s = subscription_state.c
        now = now_us()
        async with self.server.db.write() as conn:
            result = await conn.execute(
                update(subscription_state)
                .where(
                    s.subscription_id == sub_id,
                    (s.lease_expires < now) | (s.lease_holder == self.holder),
                )
                .values(lease_holder=self.holder, lease_expires=now + self.lease)
            )
        return result.rowcount == 1

    async def _release(self, sub_id: str) -> None:
        s = subscription_state.c
        async with self.server.db.write() as conn:
            await conn.execute(
                update(subscription_state)
                .where(s.subscription_id == sub_id, s.lease_holder == self.holder)
                .values(lease_holder=None, lease_expires=0)
            )

    # -- one subscription ------------------------------------------------------------------

    async def _process(self, sub_id: str) -> bool:
        """Work one subscription; True when the lease was released with its schedule."""
        s = subscription_state.c
        async with self.server.db.read() as conn:
            state = (
                await conn.execute(select(subscription_state).where(s.subscription_id == sub_id))
            ).first()
        if state is None:
            return False
        try:
            stored = await self.server.repo.read("Subscription", sub_id)
            spec = read_spec(
                orjson.loads(stored.content or "{}"), self.server.search, self.channels.endpoints
            )
        except FhirError as exc:
            await self._set_status(sub_id, "error", str(exc))
            return False
        self._sent.pop(sub_id, None)
        if state.status == "requested":
            await self._handshake(sub_id, spec, state)
        elif state.status == "active":
            await self._deliver_pending(sub_id, spec, state)
        await self._schedule(sub_id, spec, seen_count=state.events_count)
        return True

    def _url(self, sub_id: str) -> str:
        return f"{self.subscription_base}/Subscription/{sub_id}"

    async def _handshake(self, sub_id: str, spec: SubscriptionSpec, state: Any) -> None:
        bundle = notification_bundle(
            self._url(sub_id),
            spec.topic.url,
            "requested",
            "handshake",
            state.events_count,
            [],
            self.focus_base,
            spec.payload,
        )
        try:
            await self.channels.send(spec, sub_id, bundle, [], state.secret, None)
        except DeliveryError as exc:
            await self._set_status(sub_id, "error", f"handshake failed: {exc}")
            return
        await self._set_status(sub_id, "active", None)
        await self._touch(sub_id)

    async def _pending(self, sub_id: str, limit: int) -> list[Any]:
        e = notification_events.c
        async with self.server.db.read() as conn:
            return list(
                (
                    await conn.execute(
                        select(notification_events)
                        .where(e.subscription_id == sub_id, e.delivered_at.is_(None))
                        .order_by(e.event_number)
                        .limit(limit)
                    )
                ).all()
            )

    async def _deliver_pending(self, sub_id: str, spec: SubscriptionSpec, state: Any) -> None:
        """Send pending events in order, ``max_count`` per notification (one per message for
        people); stop at the first failure (it is retried later, and nothing after it goes
        first)."""
        per_bundle = max(1, spec.max_count) if spec.channel == "rest-hook" else 1
        sent = False
        while not self._stopping:
            rows = await self._pending(sub_id, 50)
            if not rows:
                break
            if rows[0].next_attempt_at > now_us():
                break  # backing off
            for start in range(0, len(rows), per_bundle):
                chunk = rows[start : start + per_bundle]
                if self._stopping or chunk[0].next_attempt_at > now_us():
                    break
                if not await self._send_chunk(sub_id, spec, state, chunk):
                    if sent:
                        await self._touch(sub_id)
                    return
                sent = True
        if sent:
            await self._touch(sub_id)

    async def _send_chunk(
        self, sub_id: str, spec: SubscriptionSpec, state: Any, rows: list[Any]
    ) -> bool:
        events = [
            StoredEvent(
                r.event_number, r.focus_type, r.focus_id, r.interaction, r.occurred_at, r.resource
            )
            for r in rows
        ]
        count = max(state.events_count, events[-1].number)  # the counter only grows
        bundle = notification_bundle(
            self._url(sub_id),
            spec.topic.url,
            "active",
            "event-notification",
            count,
            events,
            self.focus_base,
            spec.payload,
        )
        numbers = [ev.number for ev in events]
        people = None
        if spec.channel != "rest-hook":
            kind = rows[0].message_kind
            if kind is None:  # nothing to tell a person about this change
                await self._mark_delivered(sub_id, numbers)
                return True
            task = orjson.loads(rows[0].resource) if rows[0].resource else None
            people = (kind, task)
        try:
            await self.channels.send(
                spec, sub_id, bundle, [f"{sub_id}:{n}" for n in numbers], state.secret, people
            )
        except DeliveryError as exc:
            await self._failed(sub_id, rows[0], str(exc))
            return False
        await self._mark_delivered(sub_id, numbers)
        return True

    async def _mark_delivered(self, sub_id: str, numbers: list[int]) -> None:
        e = notification_events.c
        async with self.server.db.write() as conn:
            await conn.execute(
                update(notification_events)
                .where(e.subscription_id == sub_id, e.event_number.in_(numbers))
                .values(delivered_at=now_us(), attempts=e.attempts + 1)
            )

    async def _failed(self, sub_id: str, row: Any, error: str) -> None:
        e = notification_events.c
        now = now_us()
        first = row.first_attempt_at or now
        attempts = row.attempts + 1
        delay = min(self.retry_max, self.retry_initial * 2 ** min(attempts - 1, 20))
        delay *= 0.5 + random.random() / 2
        async with self.server.db.write() as conn:
            await conn.execute(
                update(notification_events)
                .where(e.subscription_id == sub_id, e.event_number == row.event_number)
                .values(
                    attempts=attempts,
                    first_attempt_at=first,
                    next_attempt_at=now + int(delay * SECOND),
                    last_error=error[:500],
                )
            )
        log.warning(
            "notification failed",
            extra={"subscription": sub_id, "event": row.event_number, "error": error},
        )
        if now - first >= self.max_age:
            await self._set_status(
                sub_id,
                "error",
                f"event {row.event_number} undeliverable since "
                f"{(now - first) // SECOND} s: {error}",
            )

    async def _touch(self, sub_id: str) -> None:
        """Remember when we last sent; ``_schedule`` writes it with the next due time."""
        self._sent[sub_id] = now_us()

    async def _heartbeat(self, sub_id: str, spec: SubscriptionSpec, state: Any) -> None:
        bundle = notification_bundle(
            self._url(sub_id),
            spec.topic.url,
            state.status,
            "heartbeat",
            state.events_count,
            [],
            self.focus_base,
            spec.payload,
        )
        with contextlib.suppress(DeliveryError):
            await self.channels.send(spec, sub_id, bundle, [], state.secret, None)
        await self._touch(sub_id)  # a missed heartbeat is not retried: the next one comes

    async def _schedule(self, sub_id: str, spec: SubscriptionSpec, seen_count: int) -> None:
        """When this subscription next has work: its first pending event's next attempt, or
        its next heartbeat; sends a heartbeat that is due now. If an event arrived or the
        status changed meanwhile (the counter or status moved), leave it due now."""
        s, e = subscription_state.c, notification_events.c
        async with self.server.db.read() as conn:
            state = (
                await conn.execute(select(subscription_state).where(s.subscription_id == sub_id))
            ).first()
            next_event = (
                await conn.execute(
                    select(func.min(e.next_attempt_at)).where(
                        e.subscription_id == sub_id, e.delivered_at.is_(None)
                    )
                )
            ).scalar()
        if state is None:
            return
        sent = self._sent.pop(sub_id, None)
        last_sent = max(state.last_sent_at, sent or 0)
        due = FAR
        if state.status == "active":
            if next_event is not None:
                due = next_event
            if spec.heartbeat_seconds and spec.channel == "rest-hook":
                beat = last_sent + spec.heartbeat_seconds * SECOND
                if beat <= now_us():
                    await self._heartbeat(sub_id, spec, state)
                    last_sent = self._sent.pop(sub_id, now_us())
                    beat = last_sent + spec.heartbeat_seconds * SECOND
                due = min(due, beat)
        elif state.status == "requested":
            due = now_us()
        unchanged = (s.events_count == seen_count) & (s.status == state.status)
        async with self.server.db.write() as conn:
            await conn.execute(
                update(subscription_state)
                .where(s.subscription_id == sub_id, s.lease_holder == self.holder)
                .values(
                    # an event or a status change that came meanwhile leaves it due now
                    next_due_at=case((unchanged, due), else_=s.next_due_at),
                    last_sent_at=case(
                        (s.last_sent_at < last_sent, last_sent), else_=s.last_sent_at
                    ),
                    lease_holder=None,
                    lease_expires=0,
                )
            )

    async def _set_status(self, sub_id: str, status: str, error: str | None) -> None:
        """Record the status in the state row and in the Subscription resource."""
        async with self.server.db.write() as conn:
            await conn.execute(
                update(subscription_state)
                .where(subscription_state.c.subscription_id == sub_id)
                .values(status=status, error=error)
            )
        try:
            stored = await self.server.repo.read("Subscription", sub_id)
        except FhirError:
            return
        sub = orjson.loads(stored.content or "{}")
        if sub.get("status") == status and sub.get("error") == error:
            return
        sub["status"] = status
        if error:
            sub["error"] = error[:500]
        else:
            sub.pop("error", None)
        async with self.server.repo.unit_of_work(SYSTEM) as uow:
            await self.server.repo.update(uow, "Subscription", sub_id, sub)
