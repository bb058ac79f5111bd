"""Shared bench plumbing: a throwaway PostgreSQL database, a service as a real process, and a
bounded load loop that reports throughput and latency percentiles. Traffic goes to 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from closedloop.testing import DEFAULT_POSTGRES, postgres_database, running_service


@asynccontextmanager
async def postgres_url() -> AsyncIterator[str]:
    async with postgres_database(os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES)) as url:
        yield url


async def load(
    name: str,
    make_request: Callable[[httpx.AsyncClient, int], Awaitable[None]],
    total: int,
    concurrency: int,
) -> dict[str, float]:
    """Run ``total`` requests with ``concurrency`` workers; print and return the figures."""
    latencies: list[float] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            t0 = time.perf_counter()
            await make_request(client, i)
            latencies.append(time.perf_counter() - t0)

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    figures = {
        "rps": total / elapsed,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
    }
    print(
        f"{name:<40} {figures['rps']:8.0f} req/s   p50 {figures['p50_ms']:6.1f} ms   "
        f"p95 {figures['p95_ms']:6.1f} ms   p99 {figures['p99_ms']:6.1f} ms   "
        f"({total} requests, {concurrency} concurrent)"
    )
    return figures


__all__ = ["load", "postgres_url", "running_service"]
