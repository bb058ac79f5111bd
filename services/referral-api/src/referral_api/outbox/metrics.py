"""The outbox's Prometheus series: how many events wait and how old the oldest is (read from
the database at each scrape: every replica reports the same figures, so take the max), and
the events this replica sent or failed to send."""

from __future__ import annotations

from typing import Any

from closedloop.fhir.instant import now_us
from closedloop.observability import ServiceMetrics
from sqlalchemy import func, select

from referral_api.outbox.tables import outbox_events


class OutboxMetrics:
    def __init__(self, metrics: ServiceMetrics, database: Any) -> None:
        self.database = database  # () -> Database | None (None before start-up)
        self.depth = metrics.gauge(
            "referral_outbox_depth", "Outbox events not yet delivered to the event sink"
        )
        self.lag = metrics.gauge(
            "referral_outbox_lag_seconds",
            "Age of the oldest undelivered outbox event (0 when none waits)",
        )
        self.events = metrics.counter(
            "referral_outbox_events_sent",
            "Outbox events this replica posted to the event sink, by outcome",
            ("outcome",),
        )
        self._delivered = self.events.labels("delivered")
        self._failed = self.events.labels("failed")
        metrics.on_scrape(self.refresh)

    def sent(self, count: int, *, failed: bool) -> None:
        (self._failed if failed else self._delivered).inc(count)

    async def refresh(self) -> None:
        db = self.database()
        if db is None:
            return
        e = outbox_events.c
        async with db.read() as conn:
            depth, oldest = (
                await conn.execute(
                    select(func.count(), func.min(e.occurred_at)).where(e.delivered_at.is_(None))
                )
            ).one()
        self.depth.set(depth)
        self.lag.set(max(0.0, (now_us() - oldest) / 1_000_000) if oldest is not None else 0.0)
