"""Prometheus metrics of one service app: its own registry (several apps can live in one test
process), the request series, the database pool, and whatever the service adds.

Labels never carry ids or patient data: a request is counted under its route *template*
(``/fhir/Task/{id}``), never its path, and a service's own labels are closed sets (a channel
type, a grant type, an outcome).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger("closedloop.metrics")

# seconds: a read by id is about a millisecond, a search or a transaction up to seconds
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCRAPE_TIMEOUT = 5.0  # seconds a scrape-time refresher may take before it is left out
Refresher = Callable[[], Awaitable[None]]


class PoolCollector(Collector):
    """The database pool, read at scrape time: its size, and the connections in use (those
    checked out, minus the ones ``Database.driver`` keeps idle for the next read)."""

    def __init__(self, database: Callable[[], Any]) -> None:
        self.database = database

    def collect(self) -> Iterable[GaugeMetricFamily]:
        db = self.database()
        pool = getattr(getattr(getattr(db, "engine", None), "sync_engine", None), "pool", None)
        if pool is None:
            return []
        size = GaugeMetricFamily(
            "closedloop_db_pool_size", "Connections the database pool keeps (its pool_size)"
        )
        used = GaugeMetricFamily(
            "closedloop_db_pool_checked_out", "Database connections in use by requests or workers"
        )
        size_of = getattr(pool, "size", None)
        checked = getattr(pool, "checkedout", None)
        if not callable(size_of) or not callable(checked):
            return []  # a pool without a size (SQLite's single-connection pools)
        kept = getattr(db, "_drivers", None)
        idle = len(kept.idle) if kept is not None else 0
        size.add_metric([], float(size_of()))
        used.add_metric([], float(max(0, checked() - idle)))
        return [size, used]


class ServiceMetrics:
    """One service app's registry, exposed at ``/metrics``."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "closedloop_http_requests",
            "HTTP requests answered, by method, route template and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "closedloop_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status",
            ("method", "route", "status"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._refreshers: list[Refresher] = []

    # -- what services add -----------------------------------------------------------------

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, documentation, tuple(labels), registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, documentation, tuple(labels), registry=self.registry)

    def on_scrape(self, refresher: Refresher) -> None:
        """An async function run before each scrape (a query for a gauge: the outbox depth)."""
        self._refreshers.append(refresher)

    def watch_database(self, database: Callable[[], Any]) -> None:
        self.registry.register(PoolCollector(database))

    # -- requests ----------------------------------------------------------------------------

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = (self.requests.labels(*labels), self.duration.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    # -- exposition --------------------------------------------------------------------------

    async def render(self) -> tuple[bytes, str]:
        for refresher in self._refreshers:
            try:
                await asyncio.wait_for(refresher(), SCRAPE_TIMEOUT)
            except Exception as exc:  # a gauge left stale beats a failed scrape
                log.warning("metrics refresher failed", extra={"error": type(exc).__name__})
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


# methods a client may send are any token: only the standard ones become a label
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"
Templater = Callable[[dict[str, Any]], str | None]


def route_of(scope: dict[str, Any], templater: Templater | None) -> str:
    """The route template: ``templater``'s (the FHIR engine names what the router did not
    see: its fast path, its catch-all route), else the matched route's path."""
    if templater is not None:
        named = templater(scope)
        if named is not None:
            return named
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED
