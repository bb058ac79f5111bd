"""The delivery worker: hands each subscription's work to one process at a time and sends it.

- Order: a subscription's events go out by event number; while one is failing, later ones
  wait (one delivery in flight per subscription), so the subscription is next due when its
  first pending event is.
- Retries: exponential backoff with jitter and a cap, per event, for at most ``max_age``
  after the first attempt; then the subscription goes to ``error`` and its events stay in the
  log for ``$events``. Working a subscription that fails for any other reason backs that
  subscription off the same way (``subscription_state.failures``).
- What can never be sent is not retried: a channel this server has no settings for (checked
  at start-up and before each send) or an address that can never be sent to puts the
  subscription in ``error`` with the reason.
- Idle means idle: with nothing due the worker sleeps until the next due time, looking at most
  every ``poll_seconds`` for work another notifier queued (new events here wake it at once).
- Restarts lose nothing and reset no backoff: what is due, what is delivered and every counter
  live in the database; an event is marked delivered only after the receiver's 2xx.
- Several processes: a subscription is processed under a lease (``subscription_state``), so
  two notifiers never send the same event at once.
- Handshake for new subscriptions on a channel that has one (rest-hook; 2xx: ``active``;
  otherwise ``error``), and a heartbeat every heartbeat period on a channel that sends them.
- Traced: a notification's send continues the trace of the referral event it is for (the
  ``traceparent`` stored with it), so a rest-hook POST carries that trace on.
- What a channel does with a notification is the channel's business (``notifier.channels``):
  the worker looks the subscription's channel up in the registry and hands it a
  ``Notification``.
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
from closedloop.observability.tracing import span_from
from opentelemetry.trace import SpanKind
from sqlalchemy import case, select, update
from sqlalchemy.exc import DBAPIError

from notifier.channels import ChannelUnusable, DeliveryError, Notification
from notifier.channels.registry import CHANNELS, Channels
from notifier.delivery.bundles import StoredEvent, notification_bundle
from notifier.delivery.metrics import DeliveryMetrics
from notifier.subscriptions.spec import SubscriptionSpec, channel_type, read_spec
from notifier.subscriptions.ssrf import EndpointPolicy
from notifier.subscriptions.status import describe_failure, record_status
from notifier.subscriptions.tables import notification_events, subscription_state

log = logging.getLogger("notifier.delivery")
SECOND = 1_000_000
FAR = 2**62
SHORTEST_SLEEP = 0.01  # seconds: a due time in the past never turns the wait into a spin
WORKING = ("requested", "active")


class DeliveryWorker:
    def __init__(
        self,
        server: FhirServer,
        channels: Channels,
        endpoints: EndpointPolicy,
        *,
        subscription_base: str,
        focus_base: str,
        max_age_seconds: float = 86_400,
        retry_initial: float = 1.0,
        retry_max: float = 300.0,
        poll_seconds: float = 0.5,
        lease_seconds: float = 30.0,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self.server = server
        self.metrics = metrics
        self.channels = channels
        self.endpoints = endpoints  # the SSRF policy a stored Subscription is read with
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
        checked_channels = False
        while not self._stopping:
            try:
                if not checked_channels:
                    checked_channels = True  # once: a failure here is not retried in a loop
                    await self._stop_unconfigured()
                due, next_due = await self._due()
                for sub_id in due:
                    if self._stopping:
                        break
                    await self._work(sub_id)
                if not due:
                    await self._sleep(self._until(next_due))
            except Exception as exc:  # keep delivering after a passing database or network fault
                self._log_failure("delivery loop error", exc)
                await self._sleep(1.0)

    async def _work(self, sub_id: str) -> None:
        """Work one subscription under its lease; a failure backs off this subscription only."""
        if not await self._claim(sub_id):
            return
        try:
            released = await self._process(sub_id)
        except Exception as exc:
            self._log_failure("working a subscription failed", exc, subscription=sub_id)
            await self._back_off(sub_id)
            return
        if not released:
            await self._release(sub_id)

    @staticmethod
    def _log_failure(text: str, exc: Exception, **extra: str) -> None:
        """Log why, never SQL parameters (a database error's text quotes them)."""
        log.error(
            text,
            extra={**extra, "error": describe_failure(exc)},
            exc_info=None if isinstance(exc, DBAPIError) else exc,
        )

    def _until(self, next_due: int | None) -> float:
        """Seconds to sleep: until the next due time, at most ``poll`` (work another notifier
        queued shows up then; work queued here wakes the worker at once)."""
        if next_due is None:
            return self.poll
        return min(self.poll, max(SHORTEST_SLEEP, (next_due - now_us()) / SECOND))

    def _backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: exponential, capped, with jitter."""
        delay = min(self.retry_max, self.retry_initial * 2 ** min(attempts - 1, 20))
        return delay * (0.5 + random.random() / 2)

    async def _sleep(self, seconds: float) -> None:
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=seconds)

    # -- leases ----------------------------------------------------------------------------

    async def _due(self) -> tuple[list[str], int | None]:
        """The subscriptions due now (50 at most) and, among those free to take, the earliest
        due time (None: none is waiting)."""
        s = subscription_state.c
        now = now_us()
        async with self.server.db.read() as conn:
            rows = (
                await conn.execute(
                    select(s.subscription_id, s.next_due_at)
                    .where(
                        s.status.in_(WORKING),
                        (s.lease_expires < now) | (s.lease_holder == self.holder),
                    )
                    .order_by(s.next_due_at)
                    .limit(50)
                )
            ).all()
        due = [sub_id for sub_id, at in rows if at <= now]
        return due, (rows[0][1] if rows else None)

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

    async def _renew(self, sub_id: str) -> bool:
        """Extend our lease while a long run of deliveries goes on; False when it was lost (it
        expired and another notifier took the subscription: stop, it carries on from here)."""
        s = subscription_state.c
        async with self.server.db.write() as conn:
            result = await conn.execute(
                update(subscription_state)
                .where(s.subscription_id == sub_id, s.lease_holder == self.holder)
                .values(lease_expires=now_us() + self.lease)
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

    async def _back_off(self, sub_id: str) -> None:
        """Release the lease with the subscription due again after its backoff (persisted:
        a restart does not make it due at once)."""
        s = subscription_state.c
        async with self.server.db.write() as conn:
            failures = (
                await conn.execute(select(s.failures).where(s.subscription_id == sub_id))
            ).scalar() or 0
            await conn.execute(
                update(subscription_state)
                .where(s.subscription_id == sub_id, s.lease_holder == self.holder)
                .values(
                    failures=failures + 1,
                    next_due_at=now_us() + int(self._backoff(failures + 1) * SECOND),
                    lease_holder=None,
                    lease_expires=0,
                )
            )

    # -- channels this server cannot use ---------------------------------------------------

    async def _stop_unconfigured(self) -> None:
        """At start-up: subscriptions on a channel this server has no settings for go to
        ``error`` now, rather than when their next event fails."""
        if not self.channels.setup.missing:
            return
        s = subscription_state.c
        after = ""
        while not self._stopping:
            async with self.server.db.read() as conn:
                ids = [
                    r[0]
                    for r in await conn.execute(
                        select(s.subscription_id)
                        .where(s.status.in_(WORKING), s.subscription_id > after)
                        .order_by(s.subscription_id)
                        .limit(200)
                    )
                ]
            if not ids:
                return
            for sub_id in ids:
                try:
                    stored = await self.server.repo.read("Subscription", sub_id)
                    sub = orjson.loads(stored.content or "{}")
                    problem = self.channels.setup.problem(channel_type(sub))
                    if problem:
                        await self._set_status(sub_id, "error", unusable(problem))
                except Exception as exc:  # that one is checked again before it is sent
                    self._log_failure("checking a channel failed", exc, subscription=sub_id)
            after = ids[-1]

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
                orjson.loads(stored.content or "{}"), self.server.search, self.endpoints
            )
        except FhirError as exc:
            await self._set_status(sub_id, "error", str(exc))
            return False
        problem = self.channels.setup.problem(spec.channel)
        if problem:
            await self._set_status(sub_id, "error", unusable(problem))
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
            await self._send(
                Notification(spec, sub_id, bundle, [], state.secret, None), "handshake"
            )
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
        per_bundle = max(1, spec.max_count) if CHANNELS[spec.channel].batches else 1
        sent = False
        renewed = now_us()  # _claim took the lease just before
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
                if now_us() - renewed > self.lease // 3:  # keep a long run's lease fresh
                    if not await self._renew(sub_id):
                        return
                    renewed = now_us()
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
        message = None
        if CHANNELS[spec.channel].for_people:
            kind = rows[0].message_kind
            if kind is None:  # nothing to tell a person about this change
                await self._mark_delivered(sub_id, numbers)
                return True
            task = orjson.loads(rows[0].resource) if rows[0].resource else None
            message = (kind, task)
        keys = [f"{sub_id}:{n}" for n in numbers]
        try:
            notification = Notification(spec, sub_id, bundle, keys, state.secret, message)
            await self._send(notification, "notification", [r.traceparent for r in rows])
        except ChannelUnusable as exc:
            await self._set_status(sub_id, "error", unusable(str(exc)))
            return False
        except DeliveryError as exc:
            await self._failed(sub_id, rows[0], str(exc))
            return False
        await self._mark_delivered(sub_id, numbers)
        return True

    async def _send(
        self, notification: Notification, kind: str, traces: list[str | None] | None = None
    ) -> None:
        """One send through the subscription's channel, counted by channel and kind; a
        notification's continues the trace of its (first) event, linked to the others'."""
        channel = notification.spec.channel
        failed = True
        try:
            with span_from(
                f"notifier {kind}",
                traces[0] if traces else None,
                kind=SpanKind.PRODUCER,
                also=(traces or [])[1:],
                attributes={"closedloop.channel": channel},
            ):
                await self.channels.send(notification)
            failed = False
        finally:
            if self.metrics is not None:
                self.metrics.attempted(channel, kind, failed=failed)

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
        delay = self._backoff(attempts)
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
            await self._send(
                Notification(spec, sub_id, bundle, [], state.secret, None), "heartbeat"
            )
        await self._touch(sub_id)  # a missed heartbeat is not retried: the next one comes

    async def _schedule(self, sub_id: str, spec: SubscriptionSpec, seen_count: int) -> None:
        """When this subscription next has work: its first pending event's next attempt (the
        events after it wait for it, whatever their own times say), or its next heartbeat;
        sends a heartbeat that is due now. If an event arrived or the status changed meanwhile
        (the counter or status moved), leave it due now."""
        s, e = subscription_state.c, notification_events.c
        async with self.server.db.read() as conn:
            state = (
                await conn.execute(select(subscription_state).where(s.subscription_id == sub_id))
            ).first()
            next_event = (
                await conn.execute(
                    select(e.next_attempt_at)
                    .where(e.subscription_id == sub_id, e.delivered_at.is_(None))
                    .order_by(e.event_number)
                    .limit(1)
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
            if spec.heartbeat_seconds and CHANNELS[spec.channel].heartbeat:
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
                    failures=0,
                    lease_holder=None,
                    lease_expires=0,
                )
            )

    async def _set_status(self, sub_id: str, status: str, error: str | None) -> None:
        """Record the status in the state row and in the Subscription resource."""
        async with self.server.repo.unit_of_work(SYSTEM) as uow:
            await record_status(self.server, uow, sub_id, status, error)


def unusable(problem: str) -> str:
    return (
        f"Notifications cannot be sent: {problem}. The subscription is not retried; "
        "update it (status requested or active) once that is fixed"
    )
