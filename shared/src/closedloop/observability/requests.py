"""``RequestObserver``: one pure ASGI middleware for what every request records, so it costs
one layer, one clock and one ``send`` wrapper: its count and duration by route template and
status (``metrics``), and its server span (``tracing``), named by the same template."""

from __future__ import annotations

import time
from typing import Any

from closedloop.observability.metrics import METHODS, ServiceMetrics, Templater, route_of
from closedloop.observability.tracing import NOT_TRACED, ServerSpans


class RequestObserver:
    def __init__(
        self,
        app: Any,
        metrics: ServiceMetrics | None,
        templater: Templater | None = None,
        spans: ServerSpans | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.templater = templater
        self.spans = spans

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        opened = (
            self.spans.open(scope)
            if self.spans is not None and scope["path"] not in NOT_TRACED
            else None
        )
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = route_of(scope, self.templater)
            if self.metrics is not None:
                self.metrics.observe(method, route, status, time.perf_counter() - start)
            if opened is not None:
                ServerSpans.close(*opened, method, route, status)
