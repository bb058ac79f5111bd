"""Search, read and write figures of referral-api on a loaded PostgreSQL database, next to a raw
asyncpg endpoint on the same data: what a FHIR search costs at referral-program scale, and how
much of a request the engine itself spends.

Loads referrals through the engine's write path (bench/load_data.py), then drives referral-api
(one uvicorn process) with wrk. Needs wrk (`apt-get install wrk`).

    uv run python bench/search.py [--tasks 100000] [--service-requests 100000] [--explain]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import orjson
from closedloop.fhir.instant import format_instant

sys.path.insert(0, str(Path(__file__).parent))
from _harness import explain_search, postgres_url, running_service, wrk_available, wrk_load
from load_data import IDENTIFIER_SYSTEM, LoadPlan, load, referral_server, task
from raw_endpoint import running_raw_endpoint

FHIR = {"Content-Type": "application/fhir+json"}
SEARCH_P95_GOAL_MS = 20.0
READ_RATIO_GOAL = 0.7
TOKEN_RATIO_GOAL = 0.6


async def prepare(db_url: str) -> dict[str, Any]:
    """VACUUM ANALYZE after the bulk load: the steady state autovacuum leaves (it may be off, as
    on the dev server, or start in the middle of a measurement). Then pick the query values from
    the data: the brief's cbo-17 and p-123 when they match (always at full size), else the
    busiest."""
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
        middle = await conn.fetchval(
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY last_updated) "
            "FROM resources WHERE resource_type = 'Task'"
        )
        owner = await conn.fetchval(
            """SELECT o.target_id FROM resources r
            JOIN sp_reference o ON o.res_pk = r.pk AND o.param = 'owner'
            JOIN sp_token s ON s.res_pk = r.pk AND s.param = 'status' AND s.code = 'requested'
            WHERE r.resource_type = 'Task' AND r.last_updated > $1
            GROUP BY o.target_id ORDER BY o.target_id = 'cbo-17' DESC, count(*) DESC LIMIT 1""",
            middle,
        )
        patient = await conn.fetchval(
            """SELECT target_id FROM sp_reference
            WHERE resource_type = 'ServiceRequest' AND param = 'patient'
            GROUP BY target_id ORDER BY target_id = 'p-123' DESC, count(*) DESC LIMIT 1"""
        )
        row = await conn.fetchrow(
            """SELECT r.id, t.code FROM resources r
            JOIN sp_token t ON t.res_pk = r.pk AND t.param = 'identifier'
            WHERE r.resource_type = 'Task' ORDER BY r.pk
            OFFSET (SELECT count(*) / 2 FROM resources WHERE resource_type = 'Task') LIMIT 1"""
        )
    finally:
        await conn.close()
    return {
        "middle": format_instant(middle),
        "owner": owner,
        "patient": patient,
        "task_id": row["id"],
        "identifier": row["code"],
    }


async def check(client: httpx.AsyncClient, url: str) -> str:
    """Fetch once and describe the result, so a figure never comes from an empty answer."""
    r = await client.get(url)
    r.raise_for_status()
    body = r.json()
    if isinstance(body, list):
        assert body, f"{url} returned nothing"
        return f"{len(body)} rows"
    if body.get("resourceType") != "Bundle":
        return f"{body['resourceType']}/{body['id']}"
    modes = [e["search"]["mode"] for e in body.get("entry", [])]
    assert "match" in modes, f"{url} matched nothing"
    more = any(link["relation"] == "next" for link in body["link"])
    total = (await client.get(url + "&_summary=count")).json().get("total")
    return (
        f"{modes.count('match')} matches{' (+ next page)' if more else ''}, "
        f"{modes.count('include')} included, {total} matching in all"
    )


async def explain(db_url: str, resource_type: str, query: str, base_url: str) -> None:
    server = referral_server(db_url, pool_size=2)
    try:
        await explain_search(server, resource_type, query, base_url)
    finally:
        await server.db.dispose()


def ratio_line(name: str, ours: dict[str, float], raw: dict[str, float], goal: float) -> str:
    r = ours["rps"] / raw["rps"]
    verdict = "ok" if r >= goal else "BELOW GOAL"
    return f"{name:<44} {r:5.2f}x of raw   (goal >= {goal}x: {verdict})"


def create_request() -> dict[str, Any]:
    body = task("bench-new", "requested", "sr-new", 1, 1, 1, "2026-06-01T10:00:00Z")
    return {
        "method": "POST",
        "body": orjson.dumps(body).decode(),
        "headers": {**FHIR, "Prefer": "return=minimal"},
    }


async def measure_loaded(
    db: str, base: str, facts: dict[str, Any], args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Every figure taken on the loaded database, referral-api next to the raw endpoint."""
    wrk = {"seconds": args.seconds, "connections": args.connections}
    task_search = "Task?" + urlencode(
        [
            ("owner", f"Organization/{facts['owner']}"),
            ("status", "requested"),
            ("_lastUpdated", f"gt{facts['middle']}"),
        ]
    )
    sr_search = "ServiceRequest?" + urlencode(
        [("patient", f"Patient/{facts['patient']}"), ("_include", "ServiceRequest:performer")]
    )
    identifier = f"{IDENTIFIER_SYSTEM}|{facts['identifier']}"
    token_search = "Task?" + urlencode([("identifier", identifier)])
    raw_token = "Task/identifier?" + urlencode(
        [("system", IDENTIFIER_SYSTEM), ("code", facts["identifier"])]
    )
    figures: dict[str, dict[str, float]] = {}
    async with running_raw_endpoint(db) as raw:
        runs = [
            ("Task?owner&status&_lastUpdated", f"{base}/fhir/{task_search}"),
            ("ServiceRequest?patient&_include", f"{base}/fhir/{sr_search}"),
            ("Task read by id", f"{base}/fhir/Task/{facts['task_id']}"),
            ("raw read", f"{raw}/read/Task/{facts['task_id']}"),
            ("Task?identifier (token search)", f"{base}/fhir/{token_search}"),
            ("raw token lookup", f"{raw}/token/{raw_token}"),
        ]
        print("\nResults (one fetch each before its load)")
        async with httpx.AsyncClient(timeout=30) as client:
            for name, url in runs:
                print(f"  {name:<40} {await check(client, url)}")
        print(f"\nLoad ({args.seconds} s each, wrk)")
        for name, url in runs:
            figures[name] = wrk_load(name, url, **wrk)
        # Under a closed loop of N connections latency is N / throughput; two connections
        # show what one search costs when the service is not saturated.
        for name, url in runs[:2]:
            quiet = f"{name} (2 conn.)"
            figures[quiet] = wrk_load(quiet, url, seconds=args.seconds, connections=2)
        if args.explain:  # before the creates below add Tasks
            await explain(db, "Task", task_search.partition("?")[2], f"{base}/fhir")
            await explain(db, "ServiceRequest", sr_search.partition("?")[2], f"{base}/fhir")
        name = "create Task, loaded database"
        figures[name] = wrk_load(name, f"{base}/fhir/Task", **create_request(), **wrk)
    return figures


def summary(figures: dict[str, dict[str, float]], args: argparse.Namespace, rate: float) -> None:
    print(
        f"\nSummary ({args.tasks} Tasks + {args.service_requests} ServiceRequests, "
        f"{args.connections} connections, load {rate:.0f} resources/s)"
    )
    print(f"{'':<44} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>7}")
    for name, f in figures.items():
        print(
            f"{name:<44} {f['rps']:7.0f} {f['p50_ms']:7.1f} {f['p95_ms']:7.1f} "
            f"{f['p99_ms']:7.1f} {f['errors']:7.0f}"
        )
    print()
    for name in ("Task?owner&status&_lastUpdated", "ServiceRequest?patient&_include"):
        p95 = figures[name]["p95_ms"]
        verdict = "ok" if p95 < SEARCH_P95_GOAL_MS else "ABOVE GOAL"
        quiet = figures[f"{name} (2 conn.)"]["p95_ms"]
        print(
            f"{name:<44} p95 {p95:5.1f} ms   (goal < {SEARCH_P95_GOAL_MS:.0f} ms: {verdict}; "
            f"{quiet:.1f} ms at 2 connections)"
        )
    read, raw_read = figures["Task read by id"], figures["raw read"]
    print(ratio_line("Task read by id", read, raw_read, READ_RATIO_GOAL))
    token, raw_token = figures["Task?identifier (token search)"], figures["raw token lookup"]
    print(ratio_line("Task?identifier (token search)", token, raw_token, TOKEN_RATIO_GOAL))
    loaded, empty = figures["create Task, loaded database"], figures["create Task, empty database"]
    print(f"{'create Task, loaded / empty database':<44} {loaded['rps'] / empty['rps']:5.2f}x")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--service-requests", type=int, default=100_000)
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--loaders", type=int, default=4, help="units of work per process")
    parser.add_argument("--batch", type=int, default=500, help="resources per unit of work")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--explain", action="store_true", help="print the searches' plans")
    args = parser.parse_args()
    if not wrk_available():
        sys.exit("bench/search.py needs wrk (apt-get install wrk)")
    started = time.perf_counter()
    print(
        f"referral-api (one uvicorn process) on PostgreSQL, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} before start (other work skews the figures); "
        f"{args.tasks} Tasks + {args.service_requests} ServiceRequests"
    )
    async with postgres_url() as db, running_service("referral_api", "REFERRAL_API_", db) as base:
        plan = LoadPlan(
            args.tasks, args.service_requests, args.load_processes, args.loaders, args.batch
        )
        print(
            f"\nLoading ({plan.processes} processes x {plan.loaders} concurrent units of work "
            f"x {plan.batch} resources)"
        )
        t0 = time.perf_counter()
        rate = await load(db, plan)
        print(f"  load rate {rate:.0f} resources/s (engine write path, in process)")
        facts = await prepare(db)
        print(
            f"  loaded and analyzed in {time.perf_counter() - t0:.0f} s; "
            f"mid-load instant {facts['middle']}"
        )
        figures = await measure_loaded(db, base, facts, args)

    async with postgres_url() as db, running_service("referral_api", "REFERRAL_API_", db) as base:
        name = "create Task, empty database"
        figures[name] = wrk_load(
            name,
            f"{base}/fhir/Task",
            **create_request(),
            seconds=args.seconds,
            connections=args.connections,
        )
    summary(figures, args, rate)
    print(f"\nTotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
