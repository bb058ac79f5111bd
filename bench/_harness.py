"""Shared bench plumbing: a throwaway PostgreSQL database, a service as a real process, and a
bounded load loop that reports throughput and latency percentiles. Traffic goes to 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import AsyncIterator

import httpx

from closedloop.testing import DEFAULT_POSTGRES, free_port, postgres_database


@asynccontextmanager
async def postgres_url() -> AsyncIterator[str]:
    async with postgres_database(os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES)) as url:
        yield url


@asynccontextmanager
async def service(command: str, env_prefix: str, database_url: str,
                  extra_env: dict[str, str] | None = None) -> AsyncIterator[str]:
    """Start ``command serve`` on a free loopback port; yield its base URL."""
    port = free_port()
    env = {**os.environ, f"{env_prefix}DATABASE_URL": database_url,
           f"{env_prefix}PORT": str(port), f"{env_prefix}LOG_LEVEL": "WARNING",
           **(extra_env or {})}
    proc = subprocess.Popen([sys.executable, "-m", f"{command.replace('-', '_')}.cli", "serve"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(f"{base}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "died")
                await asyncio.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def load(name: str, make_request: Callable[[httpx.AsyncClient, int], Awaitable[None]],
               total: int, concurrency: int) -> dict[str, float]:
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
    figures = {"rps": total / elapsed, "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000,
               "p99_ms": q[98] * 1000}
    print(f"{name:<40} {figures['rps']:8.0f} req/s   p50 {figures['p50_ms']:6.1f} ms   "
          f"p95 {figures['p95_ms']:6.1f} ms   p99 {figures['p99_ms']:6.1f} ms   "
          f"({total} requests, {concurrency} concurrent)")
    return figures
