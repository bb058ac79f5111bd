"""What the access layer costs: read, search and create throughput of referral-api on
PostgreSQL with authorization on (bearer tokens checked against the issuer's keys, SMART scopes,
the organization narrowing of every search and read, the audit trail) as a ratio of the same
run with authorization and the audit trail off.

Two referral-api processes (one uvicorn worker each) on their own databases, the same data in
both; load from an httpx client in this process. With authorization on it runs twice: with a
requester's token (role requester, its Organization: every search and read narrowed) and with
an admin's (tokens, scopes and the audit trail, no narrowing). The runs alternate ``--rounds``
times and the medians are reported.

    uv run python bench/auth.py [--seconds 8] [--connections 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _harness import postgres_url, running_service
from closedloop.testing import TokenIssuer, free_port

FHIR = {"Content-Type": "application/fhir+json"}
GOALS = {"read": 0.9, "search": 0.85, "create": None}
MODES = {
    "off": "auth off",
    "on": "auth on, requester",
    "admin": "auth on, admin",
}
CLINIC = "Organization/clinic-bench"


def task(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "focus": {"reference": f"ServiceRequest/sr-{i}"},
        "for": {"reference": f"Patient/p-{i % 500}"},
        "authoredOn": "2026-11-01T10:00:00Z",
        "requester": {"reference": CLINIC},
        "owner": {"reference": f"Organization/cbo-{i % 50}"},
        "identifier": [{"system": "urn:bench", "value": uuid.uuid4().hex}],
    }


async def drive(
    name: str, seconds: float, connections: int, call: Any, client: httpx.AsyncClient
) -> float:
    """Requests per second of ``call`` over ``seconds`` with ``connections`` workers."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        i = n
        while time.perf_counter() < stop:
            await call(client, i)
            done += 1
            i += connections

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    rate = done / (time.perf_counter() - started)
    print(f"  {name:<32} {rate:8.0f} req/s", flush=True)
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=2000)
    args = parser.parse_args()
    print(
        f"referral-api on PostgreSQL, authorization on vs off, {os.cpu_count()} CPUs, load "
        f"average {os.getloadavg()[0]:.2f} before start (other work skews the figures)"
    )
    async with AsyncExitStack() as stack:
        issuer = await stack.enter_async_context(TokenIssuer())
        port_on = free_port()
        audience = f"http://127.0.0.1:{port_on}/fhir"
        quiet = {"REFERRAL_API_EVENT_SINK_URL": ""}
        off = await stack.enter_async_context(
            running_service(
                "referral_api",
                "REFERRAL_API_",
                await stack.enter_async_context(postgres_url()),
                {
                    **quiet,
                    "REFERRAL_API_AUTH_ENABLED": "false",
                    "REFERRAL_API_AUDIT_ENABLED": "false",
                },
            )
        )
        on = await stack.enter_async_context(
            running_service(
                "referral_api",
                "REFERRAL_API_",
                await stack.enter_async_context(postgres_url()),
                {
                    **quiet,
                    "REFERRAL_API_AUTH_ENABLED": "true",
                    "REFERRAL_API_AUDIT_ENABLED": "true",
                    "REFERRAL_API_AUTH_ISSUER": issuer.issuer,
                    "REFERRAL_API_AUTH_JWKS_URL": issuer.jwks_url,
                    "REFERRAL_API_AUTH_AUDIENCE": audience,
                },
                port=port_on,
            )
        )
        token = issuer.token(
            "system/*.cruds", audience, role="requester", organization=CLINIC, lifetime=3600
        )
        limits = httpx.Limits(
            max_connections=args.connections, max_keepalive_connections=args.connections
        )
        admin = issuer.token("system/*.cruds", audience, role="admin", lifetime=3600)
        clients = {
            "off": await stack.enter_async_context(httpx.AsyncClient(limits=limits, timeout=30)),
            "on": await stack.enter_async_context(
                httpx.AsyncClient(
                    limits=limits, timeout=30, headers={"Authorization": f"Bearer {token}"}
                )
            ),
            # the same server, an admin's token: tokens, scopes and audit, no narrowing
            "admin": await stack.enter_async_context(
                httpx.AsyncClient(
                    limits=limits, timeout=30, headers={"Authorization": f"Bearer {admin}"}
                )
            ),
        }
        bases = {"off": f"{off}/fhir", "on": f"{on}/fhir"}
        ids: dict[str, list[str]] = {}
        for mode, base in bases.items():
            client = clients[mode]
            created = []
            for start in range(0, args.tasks, 100):
                bundle = {
                    "resourceType": "Bundle",
                    "type": "batch",
                    "entry": [
                        {"resource": task(i), "request": {"method": "POST", "url": "Task"}}
                        for i in range(start, min(args.tasks, start + 100))
                    ],
                }
                r = await client.post(base, content=orjson.dumps(bundle), headers=FHIR)
                assert r.status_code == 200, r.text
                created += [e["response"]["location"].split("/")[1] for e in r.json()["entry"]]
            ids[mode] = created
        bases["admin"], ids["admin"] = bases["on"], ids["on"]
        print(f"{args.tasks} Tasks in each database, requested by {CLINIC}\n")

        def calls(mode: str) -> dict[str, Any]:
            base, mine = bases[mode], ids[mode]

            async def read(c: httpx.AsyncClient, i: int) -> None:
                r = await c.get(f"{base}/Task/{mine[i % len(mine)]}")
                assert r.status_code == 200, r.text

            async def search(c: httpx.AsyncClient, i: int) -> None:
                r = await c.get(f"{base}/Task?owner=Organization/cbo-{i % 50}&_count=10")
                assert r.status_code == 200, r.text

            async def create(c: httpx.AsyncClient, i: int) -> None:
                r = await c.post(
                    f"{base}/Task",
                    content=orjson.dumps(task(i)),
                    headers={**FHIR, "Prefer": "return=minimal"},
                )
                assert r.status_code == 201, r.text

            return {"read": read, "search": search, "create": create}

        rates: dict[tuple[str, str], list[float]] = {}
        for n in range(args.rounds):
            print(f"Round {n + 1} of {args.rounds}")
            for what in ("read", "search", "create"):
                for mode in ("off", "on", "admin"):
                    rate = await drive(
                        f"{what} ({MODES[mode]})",
                        args.seconds,
                        args.connections,
                        calls(mode)[what],
                        clients[mode],
                    )
                    rates.setdefault((what, mode), []).append(rate)
        for mode in ("on", "admin"):
            print(f"\nMedians, {MODES[mode]} as a ratio of auth off:")
            for what, goal in GOALS.items():
                on_rate = statistics.median(rates[(what, mode)])
                off_rate = statistics.median(rates[(what, "off")])
                ok = "ok" if on_rate / off_rate >= (goal or 0) else "BELOW GOAL"
                verdict = "" if goal is None else f"(goal >= {goal}x: {ok})"
                print(
                    f"  {what:<7} on {on_rate:6.0f} req/s   off {off_rate:6.0f} req/s   "
                    f"{on_rate / off_rate:5.2f}x {verdict}"
                )


if __name__ == "__main__":
    asyncio.run(main())
