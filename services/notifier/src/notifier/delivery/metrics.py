"""The delivery worker's Prometheus series: sends tried and failed by channel type and kind
(a notification, a handshake, a heartbeat), and the notifications still waiting (read from the
database at each scrape: every replica reports the same figure, so take the max)."""

from __future__ import annotations

from typing import Any

from closedloop.observability import ServiceMetrics
from sqlalchemy import func, select

from notifier.subscriptions.tables import notification_events


class DeliveryMetrics:
    def __init__(self, metrics: ServiceMetrics, database: Any) -> None:
        self.database = database  # () -> Database | None (None before start-up)
        self.attempts = metrics.counter(
            "notifier_delivery_attempts",
            "Sends this replica tried, by channel type (rest-hook, email, sms...) and kind",
            ("channel", "kind"),
        )
        self.failures = metrics.counter(
            "notifier_delivery_failures",
            "Sends that failed (they are retried with backoff), by channel type and kind",
            ("channel", "kind"),
        )
        self.pending = metrics.gauge(
            "notifier_notifications_pending", "Notifications not yet delivered"
        )
        metrics.on_scrape(self.refresh)

    def attempted(self, channel: str, kind: str, *, failed: bool) -> None:
        self.attempts.labels(channel, kind).inc()
        if failed:
            self.failures.labels(channel, kind).inc()

    async def refresh(self) -> None:
        db = self.database()
        if db is None:
            return
        e = notification_events.c
        async with db.read() as conn:
            waiting = (
                await conn.execute(select(func.count()).where(e.delivered_at.is_(None)))
            ).scalar_one()
        self.pending.set(waiting)
