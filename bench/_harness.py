"""Shared bench plumbing: a throwaway PostgreSQL database, a service as a real process, and a
bounded load loop that reports throughput and latency percentiles. Traffic goes to 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from closedloop.testing import DEFAULT_POSTGRES, postgres_database
from closedloop.testing import running_service as _running_service
from sqlalchemy import event

# Authorization is on by default in the services; the benches measure the FHIR engine and
# stay comparable with their earlier figures, so they run it off unless the environment says
# otherwise (e.g. REFERRAL_API_AUTH_ENABLED=true). Set here, before any service or Settings.
for _prefix in ("REFERRAL_API_", "DIRECTORY_API_", "NOTIFIER_"):
    os.environ.setdefault(f"{_prefix}AUTH_ENABLED", "false")


async def explain_search(server: Any, resource_type: str, query: str, base_url: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) each SELECT the engine runs for a search, captured from the
    in-process ``server`` (a FhirServer built like the service's): the plans of the real SQL."""
    captured: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, params))

    engine = server.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        await server.search.search(resource_type, parse_qsl(query), base_url=base_url)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    async with server.db.read() as conn:
        for statement, params in captured:
            print(f"\n-- {resource_type}?{query}\n{statement}\n-- params {params}")
            plan = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            print("\n".join(row[0] for row in plan))


# The benches' Tasks go to made-up CBOs without the patient's Consent: the consent rule
# (REFERRAL_API_REQUIRE_CONSENT) would refuse them, so the benches measure without it
BENCH_ENV = {"REFERRAL_API_REQUIRE_CONSENT": "false"}


@asynccontextmanager
async def running_service(
    module: str,
    env_prefix: str,
    database_url: str,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> AsyncIterator[Any]:
    """``closedloop.testing.running_service`` with the benches' settings (``BENCH_ENV``)."""
    async with _running_service(
        module, env_prefix, database_url, {**BENCH_ENV, **(extra_env or {})}, port
    ) as base:
        yield base


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


__all__ = ["load", "postgres_url", "running_service", "wrk_available", "wrk_load"]


_WRK_SCRIPT = """
wrk.method = os.getenv("BENCH_METHOD")
local body_file = os.getenv("BENCH_BODY")
if body_file ~= nil and body_file ~= "" then
  local f = io.open(body_file, "r"); wrk.body = f:read("*a"); f:close()
end
local counter = 0
local salt = string.sub(tostring({}), 8)  -- a per-thread table address: unique per thread
if wrk.body ~= nil and string.find(wrk.body, "{{n}}", 1, true) then
  local template = wrk.body
  request = function()
    counter = counter + 1
    local body = string.gsub(template, "{{n}}", salt .. "-" .. counter)
    return wrk.format(nil, nil, nil, body)
  end
end
-- BENCH_PATHS: a file of request paths, one a line, taken in turn (each thread from its own
-- starting line), e.g. the same search around many points
local paths_file = os.getenv("BENCH_PATHS")
if paths_file ~= nil and paths_file ~= "" then
  local paths = {}
  for line in io.lines(paths_file) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  counter = (tonumber(string.match(salt, "%x+$") or "0", 16) or 0) % #paths
  request = function()
    counter = counter + 1
    return wrk.format(nil, paths[(counter % #paths) + 1])
  end
end
local headers = os.getenv("BENCH_HEADERS") or ""
for k, v in string.gmatch(headers, "([^:;]+):([^;]+)") do wrk.headers[k] = v end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_load(
    name: str,
    url: str,
    *,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    paths: list[str] | None = None,
    seconds: int = 10,
    connections: int = 32,
) -> dict[str, float]:
    """Drive ``url`` with wrk (a C load generator, so the client costs little CPU of the two
    cores the server shares); print and return req/s and latency percentiles. ``paths`` (path
    and query, already URL-encoded) are requested in turn on ``url``'s host instead of its
    path."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "bench.lua")
        script.write_text(_WRK_SCRIPT)
        env = {
            **os.environ,
            "BENCH_METHOD": method,
            "BENCH_HEADERS": ";".join(f"{k}:{v}" for k, v in (headers or {}).items()),
        }
        if body is not None:
            Path(tmp, "body.json").write_text(body)
            env["BENCH_BODY"] = str(Path(tmp, "body.json"))
        if paths:
            Path(tmp, "paths.txt").write_text("\n".join(paths) + "\n")
            env["BENCH_PATHS"] = str(Path(tmp, "paths.txt"))
        out = subprocess.run(
            [
                "wrk",
                f"-t{min(2, connections)}",
                f"-c{connections}",
                f"-d{seconds}s",
                "-s",
                str(script),
                url,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    requests, duration_us, p50, p95, p99, errors = (int(x) for x in line.split()[1:])
    figures = {
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50 / 1000,
        "p95_ms": p95 / 1000,
        "p99_ms": p99 / 1000,
        "errors": errors,
    }
    print(
        f"{name:<40} {figures['rps']:8.0f} req/s   p50 {figures['p50_ms']:6.1f} ms   "
        f"p95 {figures['p95_ms']:6.1f} ms   p99 {figures['p99_ms']:6.1f} ms   "
        f"({requests} requests in {seconds}s, {connections} connections, wrk, "
        f"{errors} errors)"
    )
    return figures
