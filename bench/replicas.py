"""One replica against two: referral-api and notifier as real processes on one PostgreSQL
database each, a receiver on 127.0.0.1 subscribed once per CBO, and Task updates spread over
the referral-api replicas. Prints, for each replica count:

- throughput: Task updates as fast as they go; notifications per second from the first update
  to the last receipt;
- latency: Task updates at a fixed rate; commit (the Task's ``meta.lastUpdated``) to receipt,
  p50 and p95;

and the two-replica figures as a ratio of the one-replica figures.

    uv run python bench/replicas.py [--updates 2000] [--cbos 8] [--rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import postgres_url, running_service
from closedloop.testing import Receiver, free_port

FHIR = {"Content-Type": "application/fhir+json"}
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
TOPIC = "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task"
# each update moves a Task on: accepted, in progress, then on hold and back, as long as it goes
NEXT = {
    "requested": "accepted",
    "accepted": "in-progress",
    "in-progress": "on-hold",
    "on-hold": "in-progress",
}
NO_AUTH = {"REFERRAL_API_AUTH_ENABLED": "false", "NOTIFIER_AUTH_ENABLED": "false"}


async def start(stack: AsyncExitStack, replicas: int) -> tuple[list[str], list[str]]:
    """``replicas`` referral-api and notifier processes on one database per service; each
    referral-api replica sends its events to its own notifier replica."""
    ref_db = await stack.enter_async_context(postgres_url())
    not_db = await stack.enter_async_context(postgres_url())
    token = secrets.token_urlsafe(32)
    ports = [free_port() for _ in range(replicas)]
    referrals, notifiers = [], []
    for port in ports:
        referrals.append(
            await stack.enter_async_context(
                running_service(
                    "referral_api",
                    "REFERRAL_API_",
                    ref_db,
                    {
                        **NO_AUTH,
                        "REFERRAL_API_EVENT_SINK_URL": f"http://127.0.0.1:{port}/events",
                        "REFERRAL_API_EVENT_SINK_TOKEN": token,
                    },
                )
            )
        )
    for port in ports:
        notifiers.append(
            await stack.enter_async_context(
                running_service(
                    "notifier",
                    "NOTIFIER_",
                    not_db,
                    {
                        **NO_AUTH,
                        "NOTIFIER_ALLOW_LOOPBACK_ENDPOINTS": "true",
                        "NOTIFIER_REFERRAL_URL": f"{referrals[0]}/fhir",
                        "NOTIFIER_DELIVERY_POLL_SECONDS": "0.05",
                        "NOTIFIER_EVENTS_TOKEN": token,
                    },
                    port=port,
                )
            )
        )
    return referrals, notifiers


async def subscribe(client: httpx.AsyncClient, notifier: str, owner: str, url: str) -> None:
    r = await client.post(
        f"{notifier}/fhir/Subscription",
        headers=FHIR,
        json={
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "bench",
            "criteria": TOPIC,
            "_criteria": {
                "extension": [
                    {
                        "url": f"{BACKPORT}/backport-filter-criteria",
                        "valueString": f"Task?owner={owner}&status:not=requested",
                    }
                ]
            },
            "channel": {
                "type": "rest-hook",
                "endpoint": url,
                "payload": "application/fhir+json",
                "_payload": {
                    "extension": [
                        {
                            "url": f"{BACKPORT}/backport-payload-content",
                            "valueCode": "full-resource",
                        }
                    ]
                },
            },
        },
    )
    assert r.status_code == 201, r.text


async def new_task(client: httpx.AsyncClient, base: str, owner: str) -> dict[str, Any]:
    patient = (
        await client.post(f"{base}/Patient", json={"resourceType": "Patient"}, headers=FHIR)
    ).json()
    r = await client.post(
        f"{base}/Task",
        headers=FHIR,
        json={
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": {
                "coding": [
                    {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
                ]
            },
            "focus": {"reference": "ServiceRequest/sr-bench"},
            "for": {"reference": f"Patient/{patient['id']}"},
            "authoredOn": "2026-12-04",
            "requester": {"reference": "Organization/clinic"},
            "owner": {"reference": owner},
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def run(replicas: int, updates: int, cbos: int, rate: float) -> dict[str, float]:
    async with AsyncExitStack() as stack:
        referrals, notifiers = await start(stack, replicas)
        rx = await stack.enter_async_context(Receiver())
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=60, limits=limits))
        owners = [f"Organization/cbo-{i}" for i in range(cbos)]
        for i, owner in enumerate(owners):
            await subscribe(client, notifiers[i % replicas], owner, rx.url)
        await rx.wait_for(cbos)
        # four walkers per CBO, each on its own Task, on the referral-api replicas in turn
        tasks = [
            (referrals[n % replicas], await new_task(client, f"{referrals[0]}/fhir", owner))
            for n, owner in enumerate(owners * 4)
        ]

        async def walk(n: int, base: str, task: dict[str, Any], steps: int, pause: float) -> None:
            """Update one Task ``steps`` times; with a ``pause`` (seconds between updates of
            all walkers together) the walkers are staggered so updates arrive evenly."""
            await asyncio.sleep(pause * n)
            for _ in range(steps):
                if pause:
                    await asyncio.sleep(pause * len(tasks))
                status = NEXT[task["status"]]
                extra = {"statusReason": {"text": "waiting"}} if status == "on-hold" else {}
                body = {k: v for k, v in task.items() if k != "statusReason"}
                r = await client.put(
                    f"{base}/fhir/Task/{task['id']}",
                    headers=FHIR,
                    json={**body, "status": status, **extra},
                )
                assert r.status_code == 200, r.text
                task.clear()
                task.update(r.json())

        figures: dict[str, float] = {}
        for phase, pause in (("throughput", 0.0), ("latency", 1.0 / rate)):
            already = len(rx.received)
            steps = updates // len(tasks)
            began = time.time()
            await asyncio.gather(*(walk(n, b, t, steps, pause) for n, (b, t) in enumerate(tasks)))
            expected = steps * len(tasks)
            await rx.wait_for(already + expected, timeout=600)
            arrivals = rx.arrivals[already:]
            if phase == "throughput":
                figures["per_second"] = expected / (max(arrivals) - began)
                continue
            latencies = sorted(
                (
                    arrived
                    - datetime.fromisoformat(entry["resource"]["meta"]["lastUpdated"]).timestamp()
                )
                * 1000
                for (_, bundle), arrived in zip(rx.received[already:], arrivals, strict=True)
                for entry in bundle["entry"][1:]
            )
            q = statistics.quantiles(latencies, n=100)
            figures["p50_ms"], figures["p95_ms"] = q[49], q[94]
        print(
            f"{replicas} replica(s) of referral-api and notifier: "
            f"{figures['per_second']:.0f} notifications/s as fast as they go; "
            f"at {rate:.0f} updates/s commit -> receipt p50 {figures['p50_ms']:.1f} ms, "
            f"p95 {figures['p95_ms']:.1f} ms",
            flush=True,
        )
        return figures


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--cbos", type=int, default=8)
    parser.add_argument("--rate", type=float, default=50.0, help="updates/s of the latency phase")
    args = parser.parse_args()
    one = await run(1, args.updates, args.cbos, args.rate)
    two = await run(2, args.updates, args.cbos, args.rate)
    print(
        f"two replicas / one: {two['per_second'] / one['per_second']:.2f}x notifications/s "
        f"(goal 1.6x); p95 {two['p95_ms']:.1f} ms with two (goal under 100 ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
