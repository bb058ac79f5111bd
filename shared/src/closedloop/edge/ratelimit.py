"""Per-client rate limit: a token bucket per verified caller, refused with 429 + Retry-After.

It runs as a ``request`` hook, after the bearer token is verified, so the key (the token's
client id, else its subject) cannot be forged to drain another client's bucket, and every
interaction counts, each entry of a batch or transaction included. Callers without a token
(authorization off) are not limited here. The buckets live in the process: with N replicas a
client gets up to N times the rate, which is why the limit is per replica in the README.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from closedloop import errors
from closedloop.context import SYSTEM, RequestContext
from closedloop.hooks import HookPoint, Hooks, Interaction

MAX_CLIENTS = 10_000  # buckets kept; the least recently seen go first


class RateLimit:
    def __init__(
        self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_second
        self.burst = max(1, burst)
        self.clock = clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, at)

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0 when allowed, else the seconds until one is free."""
        now = self.clock()
        tokens, at = self.buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self.buckets[key] = (tokens, now)
        if len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)
        return wait

    async def on_request(self, ctx: RequestContext, _interaction: Interaction, /) -> None:
        if ctx is SYSTEM or ctx.anonymous:
            return
        wait = self.take(ctx.client_id or ctx.subject or "-")
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise errors.FhirError(
                429,
                [
                    errors.Issue(
                        "error",
                        "throttled",
                        f"Too many requests from this client: at most {self.rate:g} per second "
                        f"(bursts of {self.burst}); retry after {retry} s",
                        (),
                        "CL-1429",
                    )
                ],
                {"Retry-After": str(retry)},
            )


def install(hooks: Hooks, per_second: float, burst: int) -> RateLimit | None:
    """Limit each client to ``per_second`` (0: no limit) with bursts of ``burst``."""
    if per_second <= 0:
        return None
    limit = RateLimit(per_second, burst)
    hooks.register(HookPoint.REQUEST, limit.on_request)
    return limit
