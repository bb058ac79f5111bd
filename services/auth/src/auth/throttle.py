"""Failed sign-ins counted per username and per client address in a sliding window: past the
limit, the form refuses further tries until the window has moved on (guessing passwords gets
a handful of tries per quarter hour). Kept in this process's memory; behind several
processes each counts its own (the limit multiplies by their number)."""

from __future__ import annotations

import time
from collections import OrderedDict, deque

MAX_KEYS = 50_000  # the oldest counters are dropped past this (memory stays bounded)


class Throttle:
    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def blocked(self, key: str) -> bool:
        times = self._recent(key, time.monotonic())
        return times is not None and len(times) >= self.limit

    def failed(self, key: str) -> None:
        now = time.monotonic()
        times = self._recent(key, now) or deque()
        times.append(now)
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
